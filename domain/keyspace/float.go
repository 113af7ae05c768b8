package keyspace

import (
	"math/big"
)

// INCRBYFLOAT computes in C's long double, which on the x86-64 servers
// Redis runs on is the x87 80-bit extended format: a 64-bit significand
// and a binary exponent from -16382 (normal) down to -16445 (subnormal) up
// to 16383. These functions emulate it with big.Float at precision 64,
// rounding to nearest even, so that every replica and every platform
// computes the same bits Redis would.

const (
	// ldPrec is long double's significand width.
	ldPrec = 64
	// ldMaxExp is the greatest big.Float exponent (significand in [0.5, 1))
	// of a finite long double.
	ldMaxExp = 16384
	// ldMinNormExp is the least big.Float exponent of a normal long double
	// (2^-16382 = 0.5 * 2^-16381).
	ldMinNormExp = -16381
	// ldQuantumExp: subnormals (and the least normal binade) are multiples
	// of 2^ldQuantumExp.
	ldQuantumExp = -16445
	// maxLongDoubleChars is Redis's MAX_LONG_DOUBLE_CHARS: string2ld
	// refuses a string this long or longer.
	maxLongDoubleChars = 5 * 1024
)

// ldResult reports what rounding an exact value to long double gave.
type ldResult int

const (
	ldFinite    ldResult = iota
	ldOverflow           // beyond the greatest long double: ±HUGE_VAL, ERANGE
	ldUnderflow          // a nonzero value rounded to zero: ERANGE
)

// ParseLongDouble parses s as Redis's string2ld does with glibc's strtold:
// no leading space, the whole string, decimal or hexadecimal ("0x1.8p3")
// notation or "inf"/"infinity", not NaN, not a value strtold reports out of
// range (an overflow, or an underflow to zero). An infinity is returned as
// a big.Float infinity.
func ParseLongDouble(s []byte) (*big.Float, bool) {
	if len(s) == 0 || len(s) >= maxLongDoubleChars {
		return nil, false
	}
	neg := false
	p := s
	if p[0] == '+' || p[0] == '-' {
		neg = p[0] == '-'
		p = p[1:]
	}
	if isInfName(p) {
		return new(big.Float).SetInf(neg), true
	}
	var (
		mant    big.Int
		exp2    int64 // value = mant * 2^exp2 * 10^exp10
		exp10   int64
		digits  int // significant digits read (leading zeros excepted)
		anyDig  bool
		hex     bool
		digBase int64 = 10
	)
	if len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') {
		hex = true
		digBase = 16
		p = p[2:]
	}
	// Digits, in chunks to keep the big.Int work linear enough.
	var chunk uint64
	var chunkMul uint64 = 1
	flush := func() {
		if chunkMul == 1 {
			return
		}
		mant.Mul(&mant, new(big.Int).SetUint64(chunkMul))
		mant.Add(&mant, new(big.Int).SetUint64(chunk))
		chunk, chunkMul = 0, 1
	}
	addDigit := func(d uint64) {
		if d == 0 && digits == 0 {
			return
		}
		digits++
		chunk = chunk*uint64(digBase) + d
		chunkMul *= uint64(digBase)
		if chunkMul >= 1<<56 {
			flush()
		}
	}
	seenDot := false
	for len(p) > 0 {
		c := p[0]
		d, ok := digitVal(c, hex)
		if ok {
			anyDig = true
			addDigit(d)
			if seenDot {
				if hex {
					exp2 -= 4
				} else {
					exp10--
				}
			}
			p = p[1:]
			continue
		}
		if c == '.' && !seenDot {
			seenDot = true
			p = p[1:]
			continue
		}
		break
	}
	flush()
	if !anyDig {
		return nil, false
	}
	if len(p) > 0 {
		// An exponent, and nothing after it.
		if hex && p[0] != 'p' && p[0] != 'P' || !hex && p[0] != 'e' && p[0] != 'E' {
			return nil, false
		}
		p = p[1:]
		eneg := false
		if len(p) > 0 && (p[0] == '+' || p[0] == '-') {
			eneg = p[0] == '-'
			p = p[1:]
		}
		if len(p) == 0 {
			return nil, false
		}
		var e int64
		for _, c := range p {
			if c < '0' || c > '9' {
				return nil, false
			}
			if e < 1e9 {
				e = e*10 + int64(c-'0')
			}
		}
		if eneg {
			e = -e
		}
		if hex {
			exp2 += e
		} else {
			exp10 += e
		}
	}
	if mant.Sign() == 0 {
		f := new(big.Float).SetPrec(ldPrec)
		if neg {
			f.Neg(f)
		}
		return f, true
	}
	// Surely out of range: no need to build huge powers. A decimal value
	// is below 10^e, at least 10^(e-1); a hexadecimal one below 2^e, at
	// least 2^(e-1). The greatest long double is about 1.19e4932 (below
	// 2^16384), half the least subnormal 2^-16446 (above 10^-4952).
	if hex {
		e := exp2 + int64(mant.BitLen())
		if e > ldMaxExp+1 || e < ldQuantumExp-1 {
			return nil, false
		}
	} else {
		e := exp10 + int64(digits)
		if e > 4934 || e < -4952 {
			return nil, false
		}
	}
	r := new(big.Rat).SetInt(&mant)
	if hex {
		r.Mul(r, pow2Rat(exp2))
	} else if exp10 > 0 {
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(exp10), nil)))
	} else if exp10 < 0 {
		r.Quo(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(-exp10), nil)))
	}
	if neg {
		r.Neg(r)
	}
	f, res := ratToLongDouble(r)
	if res != ldFinite {
		return nil, false
	}
	return f, true
}

func isInfName(p []byte) bool {
	l := string(p)
	if len(l) != 3 && len(l) != 8 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != "infinity"[i] {
			return false
		}
	}
	return true
}

func digitVal(c byte, hex bool) (uint64, bool) {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0'), true
	case hex && 'a' <= c && c <= 'f':
		return uint64(c-'a') + 10, true
	case hex && 'A' <= c && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

func pow2Rat(e int64) *big.Rat {
	if e >= 0 {
		return new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(e)))
	}
	return new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), uint(-e)))
}

// ratToLongDouble rounds the exact value r to the nearest long double
// (ties to even), subnormals included.
func ratToLongDouble(r *big.Rat) (*big.Float, ldResult) {
	f := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).SetRat(r)
	if f.Sign() == 0 {
		return f, ldFinite
	}
	if f.MantExp(nil) > ldMaxExp {
		return nil, ldOverflow
	}
	if f.MantExp(nil) > ldMinNormExp {
		return f, ldFinite
	}
	// Subnormal range (or the least normal binade, where the quantum is the
	// same): round r / 2^ldQuantumExp to an integer, ties to even.
	q := new(big.Rat).Mul(r, pow2Rat(-ldQuantumExp))
	n := roundRatEven(q)
	if n.Sign() == 0 {
		return nil, ldUnderflow
	}
	out := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).SetInt(n)
	out.SetMantExp(out, ldQuantumExp)
	return out, ldFinite
}

// roundRatEven rounds q to the nearest integer, ties to even.
func roundRatEven(q *big.Rat) *big.Int {
	num, den := q.Num(), q.Denom()
	neg := num.Sign() < 0
	a := new(big.Int).Abs(num)
	quo, rem := new(big.Int).QuoRem(a, den, new(big.Int))
	twice := new(big.Int).Lsh(rem, 1)
	switch twice.Cmp(den) {
	case 1:
		quo.Add(quo, big.NewInt(1))
	case 0:
		if quo.Bit(0) == 1 {
			quo.Add(quo, big.NewInt(1))
		}
	}
	if neg {
		quo.Neg(quo)
	}
	return quo
}

// addLongDouble returns a + b rounded to long double; false if the sum is
// an infinity or NaN (an operand infinite, or an overflow).
func addLongDouble(a, b *big.Float) (*big.Float, bool) {
	if a.IsInf() || b.IsInf() {
		return nil, false
	}
	// Both are multiples of 2^ldQuantumExp, so is their exact sum: a
	// subnormal sum is exact, and rounding to 64 bits is all there is.
	s := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(a, b)
	if s.Sign() != 0 && s.MantExp(nil) > ldMaxExp {
		return nil, false
	}
	return s, true
}

// FormatLongDouble formats f as Redis's ld2string in LD_STR_HUMAN mode:
// "%.17Lf", then trailing zeros and a trailing point removed, "-0" as "0".
func FormatLongDouble(f *big.Float) string {
	s := f.Text('f', 17)
	// Text of a negative zero may keep its sign; %Lf does too, and Redis
	// turns "-0" into "0" below.
	if i := len(s) - 1; i >= 0 {
		for i > 0 && s[i] == '0' {
			i--
		}
		if s[i] == '.' {
			i--
		}
		s = s[:i+1]
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

package keyspace

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// C's strtod syntax, the whole string: decimal, hexadecimal (exponent
// optional), infinity or NaN, with an optional sign.
var (
	decimalRe = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
	hexRe     = regexp.MustCompile(`^[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?$`)
	specialRe = regexp.MustCompile(`^(?i)[+-]?(inf|infinity|nan)$`)
)

// strtod parses all of s as C's strtod would: ok is false if s is not
// entirely a number; overflow and underflow report a result out of a
// double's range (then f is ±Inf or 0).
func strtod(s string) (f float64, overflow, underflow, ok bool) {
	if s == "" {
		return 0, false, false, false
	}
	if isPlainNumber(s) && decimalRe.MatchString(s) {
		return goFloat(s, mantissaNonZero(s, false))
	}
	switch {
	case specialRe.MatchString(s):
		if strings.HasSuffix(strings.ToLower(s), "nan") {
			return math.NaN(), false, false, true
		}
		sign := 1
		if s[0] == '-' {
			sign = -1
		}
		return math.Inf(sign), false, false, true
	case hexRe.MatchString(s):
		t := s
		if !strings.ContainsAny(t, "pP") {
			t += "p0"
		}
		return goFloat(t, mantissaNonZero(s, true))
	case decimalRe.MatchString(s):
		return goFloat(s, mantissaNonZero(s, false))
	}
	return 0, false, false, false
}

func isPlainNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// mantissaNonZero reports whether s's digits before its exponent are not
// all zero.
func mantissaNonZero(s string, hex bool) bool {
	if hex {
		s = s[strings.IndexAny(s, "xX")+1:]
		if i := strings.IndexAny(s, "pP"); i >= 0 {
			s = s[:i]
		}
	} else if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	return strings.ContainsAny(s, "123456789abcdefABCDEF")
}

func goFloat(s string, nonZero bool) (float64, bool, bool, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if ne, isNum := err.(*strconv.NumError); isNum && ne.Err == strconv.ErrRange {
			return f, true, false, true
		}
		return 0, false, false, false
	}
	if f == 0 && nonZero {
		return f, false, true, true
	}
	return f, false, false, true
}

// parseDouble parses a score or increment as Redis's string2d: no
// leading space, the whole string, not NaN, not out of range.
func parseDouble(b []byte) (float64, bool) {
	s := string(b)
	if s == "" || isCSpace(s[0]) {
		return 0, false
	}
	f, over, under, ok := strtod(s)
	if !ok || over || under || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// parseRangeDouble parses a score range bound as Redis's zslParseRange
// calls strtod: leading white space skipped, an empty string is 0, out
// of range is ±Inf or 0, NaN refused.
func parseRangeDouble(b []byte) (float64, bool) {
	s := string(b)
	if s == "" {
		return 0, true
	}
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	if t == "" {
		return 0, false // no conversion: strtod's end is the start
	}
	f, _, _, ok := strtod(t)
	if !ok || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

package compat

import (
	"math/rand/v2"
	"strconv"
	"strings"
)

// mode says how the replies of a command are compared.
type mode int

const (
	mExact    mode = iota
	mSorted        // an array whose order is unspecified (KEYS)
	mTTL           // seconds: equal within ttlTolS (TTL)
	mPTTL          // milliseconds: equal within ttlTolMS (PTTL)
	mNil           // only nil versus non-nil (RANDOMKEY)
	mScan          // SCAN, iterated to completion by the runner
	mSkip          // not compared (listed in differences.txt)
	mLen           // an array's length only, or nil against non-nil (random members)
	mScanColl      // HSCAN, SSCAN, ZSCAN: the cursor, and the page's elements sorted
)

const (
	ttlTolS  = 2
	ttlTolMS = 2000
)

// op is one generated command of one client.
type op struct {
	client  int
	args    []string
	mode    mode
	inMulti bool // the client was inside MULTI when sending it
}

type clientState struct {
	inMulti bool
	queued  int
}

// gen produces a deterministic sequence of commands from a seed. It keeps
// only the state needed to produce sensible sequences (who is in MULTI) and
// never looks at replies.
type gen struct {
	r       *rand.Rand
	clients []clientState
	// relMS is the last relative TTL handed out, in milliseconds. Relative
	// TTLs only grow (by at least two seconds), so that comparing the
	// deadline of a new relative TTL with an earlier one (EXPIRE GT/LT)
	// never depends on how long the servers took between the commands.
	relMS int64
	// past is set when ttlArg hands out an absolute deadline in the past.
	past bool
	// pending are commands to send next, before any new one.
	pending []op
}

func newGen(seed uint64, clients int) *gen {
	return &gen{
		r:       rand.New(rand.NewPCG(seed, seed^0x5e5a7c0a7)),
		clients: make([]clientState, clients),
		relMS:   100_000,
	}
}

var keyPool = []string{"k1", "k2", "k3", "k4", "{t}k5", "bin\r\n\x00key", "", "k\x00"}

var matchPatterns = []string{"*", "k*", "k?", "*k*", "[a-k]*", "[^k]*", "bin*", "\\{t\\}*", "k[1-3]", "", "nomatch", "*\x00*", "k\\*"}

var badInts = []string{"+1", "01", " 1", "1 ", "-0", "9223372036854775808", "-9223372036854775809", "abc", "", "1.5", "0x10", "1e3"}

var edgeInts = []string{"0", "-1", "9223372036854775807", "-9223372036854775808", "9223372036854775806", "-9223372036854775807"}

var floats = []string{"0.1", "-1.5", "3", "1e3", "2.5e-3", "1.5e308", "-1.5e308", "0", "-0", "10.50", "5.0e3", "17"}

var badFloats = []string{"inf", "-inf", "+inf", "nan", "abc", "", " 1.5", "1.5 ", "0x10", "1e", "1..2", "1e400"}

func (g *gen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) key() string { return keyPool[g.r.IntN(len(keyPool))] }

func (g *gen) keys(min, max int) []string {
	n := min + g.r.IntN(max-min+1)
	out := make([]string, n)
	for i := range out {
		out[i] = g.key()
	}
	return out
}

func (g *gen) bytes(n int) string {
	b := make([]byte, n)
	for i := range b {
		switch g.r.IntN(8) {
		case 0:
			b[i] = "\r\n\x00\xff"[g.r.IntN(4)]
		default:
			b[i] = byte('a' + g.r.IntN(26))
		}
	}
	return string(b)
}

func (g *gen) val() string {
	switch n := g.r.IntN(100); {
	case n < 1:
		return g.bytes(100_000 + g.r.IntN(3))
	case n < 10:
		return ""
	case n < 30:
		return strconv.Itoa(g.r.IntN(200) - 50)
	case n < 37:
		return g.pick(edgeInts...)
	case n < 43:
		return g.pick(floats...)
	case n < 48:
		return g.pick(badInts...)
	case n < 60:
		return g.bytes(1 + g.r.IntN(12))
	default:
		return g.pick("a", "b", "hello", "a\r\nb\x00c", "\x00", "\r\n", "v1", "v2", "\xff\xfe", "@")
	}
}

// intArg is mostly a small integer, sometimes an edge or a bad one.
func (g *gen) intArg(lo, hi int) string {
	switch n := g.r.IntN(100); {
	case n < 6:
		return g.pick(badInts...)
	case n < 10:
		return g.pick(edgeInts...)
	default:
		return strconv.Itoa(lo + g.r.IntN(hi-lo+1))
	}
}

func (g *gen) floatArg() string {
	if g.chance(0.2) {
		return g.pick(badFloats...)
	}
	if g.chance(0.3) {
		return g.pick(floats...)
	}
	return strconv.FormatFloat(float64(g.r.IntN(2000)-1000)/float64(1+g.r.IntN(16)), 'f', -1, 64)
}

// relMillis hands out a new, strictly larger relative TTL (>= 100 s).
func (g *gen) relMillis() int64 {
	g.relMS += 2000 + g.r.Int64N(5000)
	return g.relMS
}

func (g *gen) relSecs() int64 {
	s := g.relMillis()/1000 + 1
	g.relMS = s * 1000
	return s
}

var pastSecs = []int64{1, 1_000_000_000, 1_600_000_000}
var futureSecs = []int64{4_102_444_800, 4_102_444_801, 5_000_000_000}

// ttlArg returns the argument of a relative (EX/PX/EXPIRE/PEXPIRE/SETEX)
// or absolute (EXAT/PXAT/EXPIREAT/PEXPIREAT) deadline, in seconds or
// milliseconds. Relative ones are at least 100 s; absolute ones are in the
// past or far in the future. Some are invalid. Negative or zero relative
// ones are only produced when allowPast (EXPIRE deletes the key at once).
func (g *gen) ttlArg(abs, ms, allowPast bool) string {
	if g.chance(0.06) {
		return g.pick("abc", "", "1.5", "9223372036854775807", "-9223372036854775808", "+100", "9223372036854775")
	}
	if abs {
		var s int64
		if g.chance(0.4) {
			s = pastSecs[g.r.IntN(len(pastSecs))]
			g.past = true
		} else {
			s = futureSecs[g.r.IntN(len(futureSecs))]
		}
		if ms {
			return strconv.FormatInt(s*1000+int64(g.r.IntN(2))*g.r.Int64N(1000), 10)
		}
		return strconv.FormatInt(s, 10)
	}
	if g.chance(0.08) {
		if allowPast {
			return g.pick("0", "-1", "-100")
		}
		return g.pick("0", "-1")
	}
	if ms {
		return strconv.FormatInt(g.relMillis(), 10)
	}
	return strconv.FormatInt(g.relSecs(), 10)
}

// expiry is one SET/GETEX expiry option with its argument.
func (g *gen) expiry() []string {
	switch g.r.IntN(4) {
	case 0:
		return []string{"EX", g.ttlArg(false, false, false)}
	case 1:
		return []string{"PX", g.ttlArg(false, true, false)}
	case 2:
		return []string{"EXAT", g.ttlArg(true, false, false)}
	default:
		return []string{"PXAT", g.ttlArg(true, true, false)}
	}
}

func (g *gen) setCmd() []string {
	args := []string{"SET", g.key(), g.val()}
	var opts [][]string
	if g.chance(0.3) {
		opts = append(opts, []string{g.pick("NX", "XX")})
	}
	if g.chance(0.2) {
		opts = append(opts, []string{"GET"})
	}
	if g.chance(0.4) {
		if g.chance(0.2) {
			opts = append(opts, []string{"KEEPTTL"})
		} else {
			opts = append(opts, g.expiry())
		}
	}
	if g.chance(0.04) { // conflicting or unknown options
		opts = append(opts, g.pick2([]string{"NX"}, []string{"XX"}, []string{"KEEPTTL"}, []string{"EX", "100"}, []string{"BOGUS"}, []string{"EX"}))
	}
	g.r.Shuffle(len(opts), func(i, j int) { opts[i], opts[j] = opts[j], opts[i] })
	for _, o := range opts {
		args = append(args, o...)
	}
	return args
}

func (g *gen) pick2(xs ...[]string) []string { return xs[g.r.IntN(len(xs))] }

func (g *gen) expireCmd() []string {
	var args []string
	switch g.r.IntN(4) {
	case 0:
		args = []string{"EXPIRE", g.key(), g.ttlArg(false, false, true)}
	case 1:
		args = []string{"PEXPIRE", g.key(), g.ttlArg(false, true, true)}
	case 2:
		args = []string{"EXPIREAT", g.key(), g.ttlArg(true, false, true)}
	default:
		args = []string{"PEXPIREAT", g.key(), g.ttlArg(true, true, true)}
	}
	if g.chance(0.5) {
		args = append(args, g.pick("NX", "XX", "GT", "LT", "nx", "gt"))
		if g.chance(0.1) {
			args = append(args, g.pick("NX", "XX", "GT", "LT", "BAD"))
		}
	}
	return args
}

func (g *gen) rangeArgs(withUnit bool) []string {
	n := g.r.IntN(10)
	switch {
	case n < 2:
		return nil
	case n < 3:
		return []string{g.intArg(-5, 20)} // start without end: a syntax error
	default:
		args := []string{g.intArg(-20, 20), g.intArg(-20, 20)}
		if withUnit && g.chance(0.4) {
			args = append(args, g.pick("BYTE", "BIT", "bit", "WORD"))
		}
		return args
	}
}

// command generates one ordinary command; inMulti leaves out what cannot be
// compared inside a transaction (SCAN's cursors).
func (g *gen) command(inMulti bool) ([]string, mode) {
	k := g.key
	if g.chance(collectionShare) {
		return g.collectionCommand(inMulti)
	}
	// 0-169: ordinary commands; 170-177 (about 4.5%): wrong arity.
	switch n := g.r.IntN(178); {
	case n < 14:
		return []string{"GET", k()}, mExact
	case n < 30:
		// Redis 7.0 stores a key SET with a deadline in the past and
		// counts it in DBSIZE until its active expiry, at a random time,
		// deletes it; next() makes the client read the key at once.
		// Inside MULTI, only deadlines in the future.
		for {
			g.past = false
			args := g.setCmd()
			if !g.past || !inMulti {
				return args, mExact
			}
		}
	case n < 33:
		return []string{"SETNX", k(), g.val()}, mExact
	case n < 36:
		return []string{"SETEX", k(), g.ttlArg(false, false, false), g.val()}, mExact
	case n < 38:
		return []string{"PSETEX", k(), g.ttlArg(false, true, false), g.val()}, mExact
	case n < 40:
		return []string{"GETSET", k(), g.val()}, mExact
	case n < 42:
		return []string{"GETDEL", k()}, mExact
	case n < 45:
		args := []string{"GETEX", k()}
		if g.chance(0.7) {
			if g.chance(0.25) {
				args = append(args, "PERSIST")
			} else {
				args = append(args, g.expiry()...)
			}
		}
		return args, mExact
	case n < 48:
		return append([]string{"MGET"}, g.keys(1, 5)...), mExact
	case n < 54:
		name := "MSET"
		if n >= 52 {
			name = "MSETNX"
		}
		args := []string{name}
		for range 1 + g.r.IntN(3) {
			args = append(args, k(), g.val())
		}
		return args, mExact
	case n < 58:
		return []string{"APPEND", k(), g.val()}, mExact
	case n < 60:
		return []string{"STRLEN", k()}, mExact
	case n < 63:
		return []string{"GETRANGE", k(), g.intArg(-20, 20), g.intArg(-20, 20)}, mExact
	case n < 66:
		off := g.intArg(0, 40)
		if g.chance(0.05) {
			off = g.pick("100000", "536870912", "1073741824", "-1") // the large ones fail unless the value is empty
		}
		return []string{"SETRANGE", k(), off, g.val()}, mExact
	case n < 72:
		return []string{g.pick("INCR", "DECR"), k()}, mExact
	case n < 78:
		return []string{g.pick("INCRBY", "DECRBY"), k(), g.intArg(-100, 100)}, mExact
	case n < 82:
		return []string{"INCRBYFLOAT", k(), g.floatArg()}, mExact
	case n < 86:
		off := g.intArg(0, 200)
		if g.chance(0.05) {
			off = g.pick("800000", "4294967295", "4294967296", "-1")
			if off == "4294967295" { // would make a 512 MB string in Redis
				off = "4294967296"
			}
		}
		return []string{"SETBIT", k(), off, g.pick("0", "1", "1", "2", "-1", "a")}, mExact
	case n < 89:
		return []string{"GETBIT", k(), g.intArg(0, 200)}, mExact
	case n < 92:
		return append([]string{"BITCOUNT", k()}, g.rangeArgs(true)...), mExact
	case n < 95:
		args := []string{"BITPOS", k(), g.pick("0", "1", "1", "2")}
		return append(args, g.rangeArgs(true)...), mExact
	case n < 100:
		return append([]string{g.pick("DEL", "UNLINK")}, g.keys(1, 3)...), mExact
	case n < 104:
		return append([]string{"EXISTS"}, g.keys(1, 4)...), mExact
	case n < 106:
		return []string{"TYPE", k()}, mExact
	case n < 109:
		return []string{g.pick("RENAME", "RENAMENX"), k(), k()}, mExact
	case n < 112:
		args := []string{"COPY", k(), k()}
		if g.chance(0.4) {
			args = append(args, "DB", g.intArg(0, 15))
		}
		if g.chance(0.4) {
			args = append(args, "REPLACE")
		}
		return args, mExact
	case n < 114:
		return []string{"KEYS", g.pick(matchPatterns...)}, mSorted
	case n < 116:
		if inMulti {
			return []string{"DBSIZE"}, mExact
		}
		args := []string{"SCAN", "0"}
		if g.chance(0.5) {
			args = append(args, "MATCH", g.pick(matchPatterns...))
		}
		if g.chance(0.5) {
			args = append(args, "COUNT", strconv.Itoa(1+g.r.IntN(10)))
		}
		if g.chance(0.2) {
			args = append(args, "TYPE", g.pick("string", "list", "hash", "set", "zset", "none"))
		}
		return args, mScan
	case n < 118:
		return []string{"DBSIZE"}, mExact
	case n < 120:
		return append([]string{"TOUCH"}, g.keys(1, 3)...), mExact
	case n < 132:
		return g.expireCmd(), mExact
	case n < 137:
		return []string{"TTL", k()}, mTTL
	case n < 142:
		return []string{"PTTL", k()}, mPTTL
	case n < 144:
		return []string{"EXPIRETIME", k()}, mTTL
	case n < 146:
		return []string{"PEXPIRETIME", k()}, mPTTL
	case n < 149:
		return []string{"PERSIST", k()}, mExact
	case n < 153:
		db := strconv.Itoa(g.r.IntN(3)) // mostly the first few databases
		if g.chance(0.3) {
			db = g.intArg(0, 15)
		}
		if g.chance(0.03) {
			db = "16"
		}
		return []string{"SELECT", db}, mExact
	case n < 155:
		return []string{"MOVE", k(), g.intArg(0, 3)}, mExact
	case n < 156:
		return []string{"SWAPDB", g.intArg(0, 3), g.intArg(0, 3)}, mExact
	case n < 157:
		args := []string{"FLUSHDB"}
		if g.chance(0.3) {
			args = append(args, g.pick("SYNC", "ASYNC", "BAD"))
		}
		return args, mExact
	case n < 159:
		return []string{"RANDOMKEY"}, mNil
	case n < 161:
		args := []string{"PING"}
		if g.chance(0.5) {
			args = append(args, g.val())
		}
		return args, mExact
	case n < 163:
		return []string{"ECHO", g.val()}, mExact
	case n < 165:
		return []string{g.pick("FOOBAR", "GETT", "SETT", "XYZZY"), k(), g.val()}, mExact
	case n < 166:
		return []string{"INFO", g.pick("replication", "keyspace", "server")}, mExact
	case n < 170:
		// A bad integer or float where one is expected.
		switch g.r.IntN(4) {
		case 0:
			return []string{"INCRBY", k(), g.pick(badInts...)}, mExact
		case 1:
			return []string{"EXPIRE", k(), g.pick(badInts...)}, mExact
		case 2:
			return []string{"GETRANGE", k(), g.pick(badInts...), "5"}, mExact
		default:
			return []string{"INCRBYFLOAT", k(), g.pick(badFloats...)}, mExact
		}
	default:
		// Wrong arity: a command with its arguments cut or padded.
		// (The mode stays: cutting twice may give a valid command again.)
		args, m := g.command(inMulti)
		if m == mScan {
			return []string{"SCAN"}, mExact
		}
		if len(args) > 1 && g.chance(0.6) {
			args = args[:g.r.IntN(len(args)-1)+1]
			if strings.EqualFold(args[0], "SPOP") && len(args) == 2 {
				// Not a valid SPOP of one random member, which would pop
				// different members on each side and part the states
				// (seed 5904599132423389595): no key either.
				args = args[:1]
			}
		} else {
			args = append(args, "extra")
		}
		return args, m
	}
}

// next returns the next command, of a random client.
func (g *gen) next() op {
	if len(g.pending) > 0 {
		o := g.pending[0]
		g.pending = g.pending[1:]
		return o
	}
	c := g.r.IntN(len(g.clients))
	st := &g.clients[c]
	o := op{client: c, inMulti: st.inMulti}
	var args []string
	m := mExact
	if st.inMulti {
		switch n := g.r.IntN(100); {
		case n < 15 || st.queued >= 8:
			args = []string{"EXEC"}
			st.inMulti = false
		case n < 20:
			args = []string{"DISCARD"}
			st.inMulti = false
		case n < 22:
			args = []string{"MULTI"} // nested: an error
		case n < 24:
			args = append([]string{"WATCH"}, g.keys(1, 2)...) // not allowed inside MULTI
		case n < 26:
			args = []string{g.pick("GET", "SET", "INCR", "EXPIRE")} // wrong arity: EXECABORT
			st.queued++
		default:
			args, m = g.command(true)
			st.queued++
		}
	} else {
		switch n := g.r.IntN(100); {
		case n < 5:
			args = []string{"MULTI"}
			st.inMulti, st.queued = true, 0
		case n < 8:
			args = append([]string{"WATCH"}, g.keys(1, 3)...)
		case n < 9:
			args = []string{"UNWATCH"}
		case n < 10:
			args = []string{g.pick("EXEC", "DISCARD")} // without MULTI: an error
		default:
			args, m = g.command(false)
		}
	}
	if g.chance(0.05) { // command names are case-insensitive
		args[0] = randomCase(g, args[0])
	}
	o.args, o.mode = args, m
	if !o.inMulti && g.past && strings.EqualFold(args[0], "SET") && len(args) > 1 {
		// The SET may have stored an expired key (see command): read it
		// (in Redis, reading an expired key deletes it) before anything
		// else happens.
		g.pending = append(g.pending, op{client: c, args: []string{"EXISTS", args[1]}})
	}
	g.past = false
	return o
}

func randomCase(g *gen, s string) string {
	b := []byte(strings.ToLower(s))
	for i := range b {
		if g.chance(0.5) && b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

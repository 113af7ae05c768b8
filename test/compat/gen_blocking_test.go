package compat

import "strconv"

// The blocking pops. The harness waits for each reply before it sends the
// next command, so a blocked client is never served by another: outside
// MULTI it pops what there is or times out (timeouts of 10-50 ms, never
// 0, which would wait for ever); inside MULTI it does not block, whatever
// its timeout.

// timeoutArg is a blocking command's timeout: short, or bad. The longest
// timeout Redis accepts (9223372036854775 s, just under 2^63 ms) is as
// good as 0, so it too is given only inside MULTI; one more second is
// refused, outside MULTI as well.
func (g *gen) timeoutArg(inMulti bool) string {
	switch n := g.r.IntN(20); {
	case n < 1:
		return g.pick("x", "nan", "-1", "-inf", "inf", "1e400", "1e5000", "", "9223372036854776", " 1")
	case n < 4 && inMulti:
		return g.pick("0", "9223372036854775")
	default:
		return g.pick("0.01", "0.02", ".05", "1e-2")
	}
}

// blockingCommand is one of BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP,
// BZPOPMIN, BZPOPMAX and BZMPOP.
func (g *gen) blockingCommand(inMulti bool) ([]string, mode) {
	to := g.timeoutArg(inMulti)
	switch n := g.r.IntN(8); n {
	case 0, 1:
		return append(append([]string{g.pick("BLPOP", "BRPOP")}, g.keys(1, 3)...), to), mExact
	case 2:
		return []string{"BLMOVE", g.key(), g.key(), g.end(), g.end(), to}, mExact
	case 3:
		return []string{"BRPOPLPUSH", g.key(), g.key(), to}, mExact
	case 4, 5:
		return append(append([]string{g.pick("BZPOPMIN", "BZPOPMAX")}, g.keys(1, 3)...), to), mExact
	default:
		list := n == 6
		keys := g.keys(1, 3)
		name, ends := "BZMPOP", []string{"MIN", "MAX", "min", "UP"}
		if list {
			name, ends = "BLMPOP", []string{"LEFT", "RIGHT", "left", "UP"}
		}
		args := append([]string{name, to, strconv.Itoa(len(keys))}, keys...)
		if g.chance(0.1) {
			args[2] = g.pick("0", "-1", "5", "x")
		}
		args = append(args, g.pick(ends...))
		if g.chance(0.5) {
			args = append(args, "COUNT", g.pick("1", "2", "10", "0", "-1", "x"))
		}
		return args, mExact
	}
}

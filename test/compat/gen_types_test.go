package compat

import (
	"strconv"
	"strings"
)

// The collection types' commands. They share the key pool with the
// strings, so every command also meets keys of every other type
// (WRONGTYPE).

var fieldPool = []string{"f1", "f2", "f3", "f4", "", "a\r\nb\x00", "x", "1", "-1", "10"}

func (g *gen) field() string {
	if g.chance(0.005) {
		return g.bytes(70_000)
	}
	return g.pick(fieldPool...)
}

func (g *gen) fields(min, max int) []string {
	n := min + g.r.IntN(max-min+1)
	out := make([]string, n)
	for i := range out {
		out[i] = g.field()
	}
	return out
}

// collectionShare is the share of commands that are of the collection
// types.
const collectionShare = 0.5

// collectionCommand is one command of hashes, sets, sorted sets or lists.
func (g *gen) collectionCommand(inMulti bool) ([]string, mode) {
	if g.chance(0.04) {
		return g.blockingCommand(inMulti) // gen_blocking_test.go
	}
	switch g.r.IntN(4) {
	case 0:
		return g.hashCommand(inMulti)
	case 1:
		return g.setCommand(inMulti)
	case 2:
		return g.listCommand()
	default:
		return g.zsetCommand(inMulti)
	}
}

// countArg is the count of the random-member commands: mostly small,
// sometimes negative, sometimes bad.
func (g *gen) countArg() string {
	switch n := g.r.IntN(20); {
	case n < 1:
		return g.pick(badInts...)
	case n < 2:
		return g.pick("-9223372036854775808", "0")
	default:
		return strconv.Itoa(g.r.IntN(16) - 5)
	}
}

func (g *gen) scanOpts(args []string) []string {
	if g.chance(0.4) {
		args = append(args, "MATCH", g.pick("*", "f*", "?", "*1*", "[a-f]*", "nomatch"))
	}
	if g.chance(0.3) {
		args = append(args, "COUNT", g.pick("1", "5", "100", "0", "-1", "x"))
	}
	return args
}

func (g *gen) hashCommand(inMulti bool) ([]string, mode) {
	k := g.key()
	switch n := g.r.IntN(32); {
	case n < 7:
		name := g.pick("HSET", "HSET", "HMSET")
		args := []string{name, k}
		for range 1 + g.r.IntN(4) {
			args = append(args, g.field(), g.val())
		}
		return args, mExact
	case n < 8:
		return []string{"HSETNX", k, g.field(), g.val()}, mExact
	case n < 11:
		return []string{"HGET", k, g.field()}, mExact
	case n < 12:
		return append([]string{"HMGET", k}, g.fields(1, 4)...), mExact
	case n < 14:
		return []string{g.pick("HGETALL", "HKEYS", "HVALS"), k}, mSorted
	case n < 17:
		return append([]string{"HDEL", k}, g.fields(1, 3)...), mExact
	case n < 18:
		return []string{"HEXISTS", k, g.field()}, mExact
	case n < 20:
		return []string{"HLEN", k}, mExact
	case n < 21:
		return []string{"HSTRLEN", k, g.field()}, mExact
	case n < 24:
		return []string{"HINCRBY", k, g.field(), g.intArg(-100, 100)}, mExact
	case n < 26:
		by := g.floatArg()
		if g.chance(0.1) {
			by = g.pick("inf", "-inf", "nan", "1e308")
		}
		return []string{"HINCRBYFLOAT", k, g.field(), by}, mExact
	case n < 29:
		args := []string{"HRANDFIELD", k}
		if g.chance(0.3) {
			return args, mNil
		}
		args = append(args, g.countArg())
		if g.chance(0.4) {
			args = append(args, g.pick("WITHVALUES", "withvalues", "WITHSCORES"))
		}
		return args, mLen
	case n < 31:
		if inMulti {
			return []string{"HLEN", k}, mExact
		}
		return g.scanOpts([]string{"HSCAN", k, "0"}), mScanColl
	default:
		return []string{"TYPE", k}, mExact
	}
}

func (g *gen) setCommand(inMulti bool) ([]string, mode) {
	k := g.key()
	switch n := g.r.IntN(40); {
	case n < 8:
		return append([]string{"SADD", k}, g.fields(1, 5)...), mExact
	case n < 11:
		return append([]string{"SREM", k}, g.fields(1, 3)...), mExact
	case n < 13:
		return []string{"SMEMBERS", k}, mSorted
	case n < 15:
		return []string{"SISMEMBER", k, g.field()}, mExact
	case n < 16:
		return append([]string{"SMISMEMBER", k}, g.fields(1, 3)...), mExact
	case n < 18:
		return []string{"SCARD", k}, mExact
	case n < 20:
		// Only pops that take every member compare: which members a
		// smaller pop takes is random on both sides.
		args := []string{"SPOP", k, g.pick("1000", "1000", "-1", "x", "0")}
		if g.chance(0.05) {
			args = append(args, "1")
		}
		return args, mSorted
	case n < 22:
		args := []string{"SRANDMEMBER", k}
		if g.chance(0.3) {
			return args, mNil
		}
		return append(args, g.countArg()), mLen
	case n < 24:
		return []string{"SMOVE", k, g.key(), g.field()}, mExact
	case n < 27:
		return append([]string{g.pick("SINTER", "SUNION", "SDIFF")}, g.keys(1, 3)...), mSorted
	case n < 30:
		return append([]string{g.pick("SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"), k}, g.keys(1, 3)...), mExact
	case n < 32:
		keys := g.keys(1, 3)
		args := append([]string{"SINTERCARD", strconv.Itoa(len(keys))}, keys...)
		if g.chance(0.1) {
			args[1] = g.pick("0", "-1", "5", "x")
		}
		if g.chance(0.4) {
			args = append(args, g.pick("LIMIT", "limit", "LIMT"), g.pick("0", "1", "2", "-1", "x"))
		}
		return args, mExact
	case n < 35:
		if inMulti {
			return []string{"SCARD", k}, mExact
		}
		return g.scanOpts([]string{"SSCAN", k, "0"}), mScanColl
	default:
		return []string{g.pick("TYPE", "DEL", "EXISTS"), k}, mExact
	}
}

var scorePool = []string{"0", "1", "2", "-1", "1.5", "-2.5", "10", "1e3", "2.5e-3", "inf", "-inf", "+inf", "-0", "0x10", "3"}
var badScores = []string{"nan", "abc", "", " 1", "1 ", "1e400", "1e", "--1", "inf1"}

func (g *gen) score() string {
	if g.chance(0.05) {
		return g.pick(badScores...)
	}
	return g.pick(scorePool...)
}

func (g *gen) scoreBound() string {
	switch n := g.r.IntN(10); {
	case n < 1:
		return g.pick("nan", "abc", "((1", "(", "", " 2", "1e400")
	case n < 4:
		return "(" + g.pick(scorePool...)
	default:
		return g.pick(scorePool...)
	}
}

func (g *gen) lexBound() string {
	switch n := g.r.IntN(10); {
	case n < 1:
		return g.pick("a", "", "+a", "-a")
	case n < 3:
		return g.pick("-", "+")
	default:
		return g.pick("[", "(") + g.pick("", "f1", "f2", "f3", "x", "1", "a")
	}
}

func (g *gen) limitOpt(args []string) []string {
	if g.chance(0.3) {
		args = append(args, "LIMIT", g.pick("0", "1", "2", "-1", "x"), g.pick("1", "2", "-1", "0", "5", "x"))
	}
	return args
}

func (g *gen) zsetCommand(inMulti bool) ([]string, mode) {
	k := g.key()
	switch n := g.r.IntN(60); {
	case n < 10:
		args := []string{"ZADD", k}
		for range g.r.IntN(3) {
			args = append(args, g.pick("NX", "XX", "GT", "LT", "CH", "INCR", "ch", "gt"))
		}
		for range 1 + g.r.IntN(3) {
			args = append(args, g.score(), g.field())
		}
		return args, mExact
	case n < 12:
		return []string{"ZINCRBY", k, g.score(), g.field()}, mExact
	case n < 14:
		return append([]string{"ZREM", k}, g.fields(1, 3)...), mExact
	case n < 16:
		return []string{"ZSCORE", k, g.field()}, mExact
	case n < 17:
		return append([]string{"ZMSCORE", k}, g.fields(1, 3)...), mExact
	case n < 18:
		return []string{"ZCARD", k}, mExact
	case n < 20:
		return []string{"ZCOUNT", k, g.scoreBound(), g.scoreBound()}, mExact
	case n < 21:
		return []string{"ZLEXCOUNT", k, g.lexBound(), g.lexBound()}, mExact
	case n < 23:
		return []string{g.pick("ZRANK", "ZREVRANK"), k, g.field()}, mExact
	case n < 28:
		args := []string{"ZRANGE", k}
		switch g.r.IntN(3) {
		case 0:
			args = append(args, g.intArg(-6, 6), g.intArg(-6, 6))
		case 1:
			args = append(args, g.scoreBound(), g.scoreBound(), "BYSCORE")
		default:
			args = append(args, g.lexBound(), g.lexBound(), "BYLEX")
		}
		if g.chance(0.3) {
			args = append(args, "REV")
		}
		args = g.limitOpt(args)
		if g.chance(0.4) {
			args = append(args, "WITHSCORES")
		}
		if g.chance(0.1) {
			g.r.Shuffle(len(args)-4, func(i, j int) { args[4+i], args[4+j] = args[4+j], args[4+i] })
		}
		return args, mExact
	case n < 29:
		args := []string{"ZRANGESTORE", g.key(), k, g.scoreBound(), g.scoreBound(), g.pick("BYSCORE", "REV", "BYLEX", "WITHSCORES")}
		return g.limitOpt(args), mExact
	case n < 31:
		args := []string{"ZREVRANGE", k, g.intArg(-6, 6), g.intArg(-6, 6)}
		if g.chance(0.4) {
			args = append(args, "WITHSCORES")
		}
		return args, mExact
	case n < 35:
		name := g.pick("ZRANGEBYSCORE", "ZREVRANGEBYSCORE")
		args := []string{name, k, g.scoreBound(), g.scoreBound()}
		if g.chance(0.4) {
			args = append(args, "WITHSCORES")
		}
		return g.limitOpt(args), mExact
	case n < 37:
		return g.limitOpt([]string{g.pick("ZRANGEBYLEX", "ZREVRANGEBYLEX"), k, g.lexBound(), g.lexBound()}), mExact
	case n < 38:
		return []string{"ZREMRANGEBYRANK", k, g.intArg(-4, 4), g.intArg(-4, 4)}, mExact
	case n < 39:
		return []string{"ZREMRANGEBYSCORE", k, g.scoreBound(), g.scoreBound()}, mExact
	case n < 40:
		return []string{"ZREMRANGEBYLEX", k, g.lexBound(), g.lexBound()}, mExact
	case n < 43:
		args := []string{g.pick("ZPOPMIN", "ZPOPMAX"), k}
		if g.chance(0.6) {
			args = append(args, g.pick("1", "2", "0", "-1", "10", "x"))
		}
		return args, mExact
	case n < 45:
		keys := g.keys(1, 3)
		args := append([]string{"ZMPOP", strconv.Itoa(len(keys))}, keys...)
		if g.chance(0.1) {
			args[1] = g.pick("0", "-1", "5", "x")
		}
		args = append(args, g.pick("MIN", "MAX", "min", "BAD"))
		if g.chance(0.5) {
			args = append(args, "COUNT", g.pick("1", "2", "10", "0", "-1", "x"))
		}
		return args, mExact
	case n < 47:
		args := []string{"ZRANDMEMBER", k}
		if g.chance(0.3) {
			return args, mNil
		}
		args = append(args, g.countArg())
		if g.chance(0.4) {
			args = append(args, g.pick("WITHSCORES", "WITHVALUES"))
		}
		return args, mLen
	case n < 53:
		name := g.pick("ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD")
		var args []string
		if strings.HasSuffix(name, "STORE") {
			args = []string{name, g.key()}
		} else {
			args = []string{name}
		}
		keys := g.keys(1, 3)
		num := strconv.Itoa(len(keys))
		if g.chance(0.08) {
			num = g.pick("0", "-1", "5", "x")
		}
		args = append(append(args, num), keys...)
		if g.chance(0.3) {
			args = append(args, "WEIGHTS")
			for range keys {
				args = append(args, g.pick("1", "2", "0", "-1", "0.5", "inf", "x"))
			}
		}
		if g.chance(0.3) {
			args = append(args, "AGGREGATE", g.pick("SUM", "MIN", "MAX", "max", "AVG"))
		}
		if g.chance(0.3) {
			args = append(args, "WITHSCORES")
		}
		if name == "ZINTERCARD" && g.chance(0.5) {
			args = append(args, "LIMIT", g.pick("0", "1", "-1", "x"))
		}
		return args, mExact
	case n < 56:
		if inMulti {
			return []string{"ZCARD", k}, mExact
		}
		return g.scanOpts([]string{"ZSCAN", k, "0"}), mScanColl
	default:
		return []string{g.pick("TYPE", "DEL", "EXISTS"), k}, mExact
	}
}

func (g *gen) end() string { return g.pick("LEFT", "RIGHT", "left", "right", "UP") }

func (g *gen) listCommand() ([]string, mode) {
	k := g.key()
	switch n := g.r.IntN(50); {
	case n < 10:
		return append([]string{g.pick("LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"), k}, g.fields(1, 4)...), mExact
	case n < 15:
		args := []string{g.pick("LPOP", "RPOP"), k}
		if g.chance(0.4) {
			args = append(args, g.pick("1", "2", "0", "-1", "10", "x"))
		}
		return args, mExact
	case n < 17:
		return []string{"LLEN", k}, mExact
	case n < 22:
		return []string{"LRANGE", k, g.intArg(-6, 6), g.intArg(-6, 6)}, mExact
	case n < 24:
		return []string{"LINDEX", k, g.intArg(-5, 5)}, mExact
	case n < 26:
		return []string{"LSET", k, g.intArg(-5, 5), g.field()}, mExact
	case n < 28:
		return []string{"LINSERT", k, g.pick("BEFORE", "AFTER", "after", "MIDDLE"), g.field(), g.field()}, mExact
	case n < 30:
		return []string{"LREM", k, g.intArg(-3, 3), g.field()}, mExact
	case n < 32:
		return []string{"LTRIM", k, g.intArg(-5, 5), g.intArg(-5, 5)}, mExact
	case n < 36:
		args := []string{"LPOS", k, g.field()}
		for range g.r.IntN(3) {
			args = append(args, g.pick("RANK", "COUNT", "MAXLEN", "BAD"), g.pick("1", "2", "-1", "-2", "0", "x", "-9223372036854775808"))
		}
		return args, mExact
	case n < 40:
		return []string{"LMOVE", k, g.key(), g.end(), g.end()}, mExact
	case n < 42:
		return []string{"RPOPLPUSH", k, g.key()}, mExact
	case n < 45:
		keys := g.keys(1, 3)
		args := append([]string{"LMPOP", strconv.Itoa(len(keys))}, keys...)
		if g.chance(0.1) {
			args[1] = g.pick("0", "-1", "5", "x")
		}
		args = append(args, g.end())
		if g.chance(0.5) {
			args = append(args, "COUNT", g.pick("1", "2", "10", "0", "-1", "x"))
		}
		return args, mExact
	default:
		return []string{g.pick("TYPE", "DEL", "EXISTS"), k}, mExact
	}
}

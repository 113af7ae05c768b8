package keyspace

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func dbl(s string) domain.Reply { return domain.Reply{Kind: domain.ReplyDouble, Str: s} }

func TestZAdd(t *testing.T) {
	x := newTester(t)
	x.expect(num(3), "zadd", "z", "1", "a", "2", "b", "3", "c")
	x.expect(num(0), "zadd", "z", "NX", "5", "a")
	x.expect(num(1), "zadd", "z", "XX", "CH", "5", "a", "9", "new")
	x.expect(nil_, "zadd", "z", "XX", "INCR", "1", "new")
	x.expect(dbl("6"), "zadd", "z", "INCR", "1", "a")
	x.expect(num(0), "zadd", "z", "GT", "CH", "1", "a")
	x.expect(num(1), "zadd", "z", "LT", "CH", "1", "a")
	x.expect(errr("ERR XX and NX options at the same time are not compatible"), "zadd", "z", "NX", "XX", "1", "a")
	x.expect(errr("ERR GT, LT, and/or NX options at the same time are not compatible"), "zadd", "z", "GT", "LT", "1", "a")
	x.expect(errr("ERR INCR option supports a single increment-element pair"), "zadd", "z", "INCR", "1", "a", "2", "b")
	x.expect(errr("ERR syntax error"), "zadd", "z", "CH", "1")
	x.expect(errr("ERR value is not a valid float"), "zadd", "z", "nan", "a")
	x.expect(errr("ERR value is not a valid float"), "zadd", "z", "1e400", "a")
	x.expect(num(2), "zadd", "z", "inf", "top", "-inf", "bottom")
	x.expect(errr("ERR resulting score is not a number (NaN)"), "zincrby", "z", "-inf", "top")
	x.expect(dbl("inf"), "zscore", "z", "top")
	x.expect(dbl("16"), "zincrby", "z", "0x10", "hex")
	x.expect(dbl("0.10000000000000001"), "zincrby", "z", "0.1", "tenth")
	x.expect(num(7), "zcard", "z")
	x.expect(arr(dbl("1"), nil_), "zmscore", "z", "a", "nope")
	x.expect(num(1), "zrem", "z", "tenth", "nope")
	x.expect(num(0), "zrank", "z", "bottom")
	x.expect(num(0), "zrevrank", "z", "top")
	x.expect(num(3), "zrank", "z", "c")
	x.expect(nil_, "zrank", "z", "nope")
}

func TestZRanges(t *testing.T) {
	x := newTester(t)
	x.expect(num(5), "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e")
	x.expect(arr(bulk("a"), bulk("b")), "zrange", "z", "0", "1")
	x.expect(arr(bulk("e"), dbl("5"), bulk("d"), dbl("4")), "zrange", "z", "0", "1", "REV", "WITHSCORES")
	x.expect(arr(bulk("d"), bulk("e")), "zrange", "z", "-2", "-1")
	x.expect(arr(), "zrange", "z", "3", "1")
	x.expect(arr(bulk("b"), bulk("c")), "zrangebyscore", "z", "(1", "3")
	x.expect(arr(bulk("c"), bulk("b")), "zrevrangebyscore", "z", "3", "(1")
	x.expect(arr(bulk("c")), "zrangebyscore", "z", "-inf", "+inf", "LIMIT", "2", "1")
	x.expect(arr(bulk("d"), bulk("c")), "zrange", "z", "(5", "0", "BYSCORE", "REV", "LIMIT", "0", "2")
	x.expect(arr(), "zrangebyscore", "z", "-inf", "+inf", "LIMIT", "-1", "1")
	x.expect(errr("ERR min or max is not a float"), "zrangebyscore", "z", "x", "1")
	x.expect(errr("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"), "zrange", "z", "0", "1", "LIMIT", "0", "1")
	x.expect(errr("ERR syntax error, WITHSCORES not supported in combination with BYLEX"), "zrange", "z", "-", "+", "BYLEX", "WITHSCORES")
	x.expect(num(3), "zcount", "z", "2", "4")
	x.expect(num(2), "zremrangebyrank", "z", "0", "1")
	x.expect(num(1), "zremrangebyscore", "z", "5", "+inf")
	x.expect(arr(bulk("c"), dbl("3"), bulk("d"), dbl("4")), "zrange", "z", "0", "-1", "WITHSCORES")
	x.expect(num(2), "zrangestore", "dst", "z", "0", "-1")
	x.expect(status("zset"), "type", "dst")
	x.expect(num(0), "zrangestore", "dst", "z", "5", "9")
	x.expect(num(0), "exists", "dst")
}

func TestZLex(t *testing.T) {
	x := newTester(t)
	x.expect(num(5), "zadd", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e")
	x.expect(arr(bulk("b"), bulk("c")), "zrangebylex", "z", "(a", "[c")
	x.expect(arr(bulk("e"), bulk("d")), "zrevrangebylex", "z", "+", "(c")
	x.expect(num(5), "zlexcount", "z", "-", "+")
	x.expect(num(0), "zlexcount", "z", "+", "-")
	x.expect(errr("ERR min or max not valid string range item"), "zlexcount", "z", "a", "+")
	x.expect(num(2), "zremrangebylex", "z", "[d", "+")
	x.expect(arr(bulk("a"), bulk("b"), bulk("c")), "zrange", "z", "-", "+", "BYLEX")
}

func TestZPopAndSetOps(t *testing.T) {
	x := newTester(t)
	x.expect(num(3), "zadd", "a", "1", "x", "2", "y", "3", "z")
	x.expect(num(2), "sadd", "s", "x", "w")
	x.expect(arr(bulk("x"), dbl("1")), "zpopmin", "a")
	x.expect(arr(bulk("z"), dbl("3"), bulk("y"), dbl("2")), "zpopmax", "a", "5")
	x.expect(num(0), "exists", "a")
	x.expect(arr(), "zpopmin", "a")
	x.expect(errr("ERR value is out of range, must be positive"), "zpopmin", "a", "-1")
	x.expect(num(3), "zadd", "a", "1", "x", "2", "y", "3", "z")
	x.expect(arr(bulk("a"), arr(arr(bulk("z"), dbl("3")))), "zmpop", "2", "nokey", "a", "MAX")
	x.expect(domain.Reply{Kind: domain.ReplyNilArray}, "zmpop", "1", "nokey", "MIN")
	x.expect(errr("ERR count should be greater than 0"), "zmpop", "1", "a", "MIN", "COUNT", "0")
	x.expect(errr("ERR numkeys should be greater than 0"), "zmpop", "0", "a", "MIN")
	x.expect(arr(bulk("w"), bulk("x"), bulk("y")), "zunion", "2", "a", "s")
	x.expect(arr(bulk("w"), dbl("1"), bulk("x"), dbl("2"), bulk("y"), dbl("2")), "zunion", "2", "a", "s", "WITHSCORES")
	x.expect(arr(bulk("x"), dbl("3")), "zinter", "2", "a", "s", "WEIGHTS", "1", "2", "WITHSCORES")
	x.expect(arr(bulk("x"), dbl("1")), "zinter", "2", "a", "s", "AGGREGATE", "MIN", "WITHSCORES")
	x.expect(arr(bulk("y")), "zdiff", "2", "a", "s")
	x.expect(num(1), "zintercard", "2", "a", "s")
	x.expect(num(3), "zunionstore", "u", "2", "a", "s")
	x.expect(errr("ERR at least 1 input key is needed for 'zunion' command"), "zunion", "0", "a")
	x.expect(errr("ERR weight value is not a float"), "zunion", "1", "a", "WEIGHTS", "x")
	x.expect(ok, "set", "str", "v")
	x.expect(wrongType, "zunion", "2", "a", "str")
	x.expect(wrongType, "zadd", "str", "1", "a")
	x.expect(wrongType, "zrange", "str", "0", "1")
}

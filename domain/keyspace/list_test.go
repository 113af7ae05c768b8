package keyspace

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func TestListPushPopRange(t *testing.T) {
	x := newTester(t)
	x.expect(num(3), "rpush", "l", "a", "b", "c")
	x.expect(num(5), "lpush", "l", "y", "z")
	x.expect(arr(bulk("z"), bulk("y"), bulk("a"), bulk("b"), bulk("c")), "lrange", "l", "0", "-1")
	x.expect(arr(bulk("b"), bulk("c")), "lrange", "l", "-2", "100")
	x.expect(arr(), "lrange", "l", "4", "2")
	x.expect(bulk("z"), "lindex", "l", "0")
	x.expect(bulk("c"), "lindex", "l", "-1")
	x.expect(nil_, "lindex", "l", "5")
	x.expect(bulk("z"), "lpop", "l")
	x.expect(arr(bulk("c"), bulk("b")), "rpop", "l", "2")
	x.expect(num(2), "llen", "l")
	x.expect(arr(), "lpop", "l", "0")
	x.expect(domain.Reply{Kind: domain.ReplyNilArray}, "lpop", "nokey", "1")
	x.expect(nil_, "lpop", "nokey")
	x.expect(errr("ERR value is out of range, must be positive"), "lpop", "l", "-1")
	x.expect(num(0), "lpushx", "nokey", "a")
	x.expect(num(3), "rpushx", "l", "q")
	x.expect(arr(bulk("y"), bulk("a"), bulk("q")), "lpop", "l", "10")
	x.expect(num(0), "exists", "l")
}

func TestListEdits(t *testing.T) {
	x := newTester(t)
	x.expect(num(5), "rpush", "l", "a", "b", "a", "c", "a")
	x.expect(ok, "lset", "l", "1", "B")
	x.expect(errr("ERR index out of range"), "lset", "l", "9", "x")
	x.expect(errr("ERR no such key"), "lset", "nokey", "0", "x")
	x.expect(num(6), "linsert", "l", "BEFORE", "c", "ins")
	x.expect(num(-1), "linsert", "l", "AFTER", "nope", "x")
	x.expect(num(0), "linsert", "nokey", "AFTER", "a", "x")
	x.expect(errr("ERR syntax error"), "linsert", "l", "MIDDLE", "a", "x")
	x.expect(arr(bulk("a"), bulk("B"), bulk("a"), bulk("ins"), bulk("c"), bulk("a")), "lrange", "l", "0", "-1")
	x.expect(num(1), "lrem", "l", "-1", "a")
	x.expect(num(2), "lrem", "l", "0", "a")
	x.expect(arr(bulk("B"), bulk("ins"), bulk("c")), "lrange", "l", "0", "-1")
	x.expect(ok, "ltrim", "l", "1", "-1")
	x.expect(arr(bulk("ins"), bulk("c")), "lrange", "l", "0", "-1")
	x.expect(ok, "ltrim", "l", "5", "9")
	x.expect(num(0), "exists", "l")
}

func TestListPosAndMove(t *testing.T) {
	x := newTester(t)
	x.expect(num(6), "rpush", "l", "a", "b", "a", "c", "a", "d")
	x.expect(num(0), "lpos", "l", "a")
	x.expect(num(2), "lpos", "l", "a", "RANK", "2")
	x.expect(num(4), "lpos", "l", "a", "RANK", "-1")
	x.expect(arr(num(0), num(2), num(4)), "lpos", "l", "a", "COUNT", "0")
	x.expect(arr(num(0)), "lpos", "l", "a", "COUNT", "0", "MAXLEN", "2")
	x.expect(nil_, "lpos", "l", "zz")
	x.expect(errr("ERR COUNT can't be negative"), "lpos", "l", "a", "COUNT", "-1")
	// RANK -2^63, as redis-server 7.0.15 answers it (by hand, redis-cli):
	// every match from the tail, COUNT ignored, MAXLEN kept.
	const minRank = "-9223372036854775808"
	x.expect(num(4), "lpos", "l", "a", "RANK", minRank)
	for _, count := range []string{"0", "1", "2"} {
		x.expect(arr(num(4), num(2), num(0)), "lpos", "l", "a", "RANK", minRank, "COUNT", count)
	}
	x.expect(arr(num(4)), "lpos", "l", "a", "RANK", minRank, "COUNT", "1", "MAXLEN", "3")
	x.expect(arr(num(4), num(2)), "lpos", "l", "a", "RANK", minRank, "COUNT", "1", "MAXLEN", "4")
	x.expect(arr(), "lpos", "l", "zz", "RANK", minRank, "COUNT", "1")
	x.expect(nil_, "lpos", "l", "zz", "RANK", minRank)
	x.expect(bulk("d"), "rpoplpush", "l", "l")
	x.expect(bulk("d"), "lmove", "l", "m", "LEFT", "RIGHT")
	x.expect(bulk("a"), "lmove", "l", "m", "LEFT", "LEFT")
	x.expect(arr(bulk("a"), bulk("d")), "lrange", "m", "0", "-1")
	x.expect(nil_, "lmove", "nokey", "m", "LEFT", "LEFT")
	x.expect(ok, "set", "s", "v")
	x.expect(wrongType, "lmove", "l", "s", "LEFT", "LEFT")
	x.expect(arr(bulk("m"), arr(bulk("d"), bulk("a"))), "lmpop", "2", "nokey", "m", "RIGHT", "COUNT", "5")
	x.expect(domain.Reply{Kind: domain.ReplyNilArray}, "lmpop", "1", "m", "LEFT")
	x.expect(wrongType, "lpush", "s", "a")
	x.expect(wrongType, "lrange", "s", "0", "1")
}

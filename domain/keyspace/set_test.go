package keyspace

import (
	"testing"
)

func TestSetCommands(t *testing.T) {
	x := newTester(t)
	x.expect(num(3), "sadd", "s", "a", "b", "c", "a")
	x.expect(num(0), "sadd", "s", "a")
	x.expect(num(3), "scard", "s")
	x.expect(num(1), "sismember", "s", "b")
	x.expect(num(0), "sismember", "s", "z")
	x.expect(num(0), "sismember", "nokey", "z")
	x.expect(arr(num(1), num(0)), "smismember", "s", "a", "z")
	x.expect(arr(bulk("a"), bulk("b"), bulk("c")), "smembers", "s")
	x.expect(num(2), "srem", "s", "a", "z", "b")
	x.expect(status("set"), "type", "s")
	x.expect(num(1), "srem", "s", "c")
	x.expect(num(0), "exists", "s")
	x.expect(arr(), "smembers", "s")
	x.expect(ok, "set", "str", "v")
	for _, args := range [][]string{{"sadd", "str", "a"}, {"srem", "str", "a"}, {"smembers", "str"}, {"scard", "str"},
		{"spop", "str"}, {"srandmember", "str"}, {"sismember", "str", "a"}, {"sinter", "str"}, {"sunion", "str"}} {
		x.expect(wrongType, args...)
	}
}

func TestSetAlgebra(t *testing.T) {
	x := newTester(t)
	x.expect(num(4), "sadd", "a", "1", "2", "3", "4")
	x.expect(num(3), "sadd", "b", "3", "4", "5")
	x.expect(ok, "set", "str", "v")
	x.expect(arr(bulk("3"), bulk("4")), "sinter", "a", "b")
	x.expect(arr(), "sinter", "a", "nokey")
	x.expect(wrongType, "sinter", "nokey", "str") // every key is checked
	x.expect(wrongType, "sinter", "str", "nokey")
	x.expect(arr(bulk("1"), bulk("2"), bulk("3"), bulk("4"), bulk("5")), "sunion", "a", "b", "nokey")
	x.expect(wrongType, "sunion", "nokey", "str")
	x.expect(arr(bulk("1"), bulk("2")), "sdiff", "a", "b")
	x.expect(arr(), "sdiff", "nokey", "a")
	x.expect(num(2), "sinterstore", "str", "a", "b")
	x.expect(status("set"), "type", "str")
	x.expect(num(0), "sinterstore", "str", "a", "nokey")
	x.expect(num(0), "exists", "str")
	x.expect(num(5), "sunionstore", "u", "a", "b")
	x.expect(num(1), "sdiffstore", "b", "b", "a")
	x.expect(arr(bulk("5")), "smembers", "b")
	x.expect(num(4), "sintercard", "2", "a", "u")
	x.expect(num(1), "sintercard", "2", "a", "u", "LIMIT", "1")
	x.expect(errr("ERR numkeys should be greater than 0"), "sintercard", "0", "a")
	x.expect(errr("ERR Number of keys can't be greater than number of args"), "sintercard", "3", "a", "b")
	x.expect(errr("ERR LIMIT can't be negative"), "sintercard", "1", "a", "LIMIT", "-1")
	x.expect(errr("ERR syntax error"), "sintercard", "1", "a", "LIMOT", "1")
}

func TestSetMoveAndPop(t *testing.T) {
	x := newTester(t)
	x.expect(num(3), "sadd", "a", "1", "2", "3")
	x.expect(num(1), "smove", "a", "b", "1")
	x.expect(num(0), "smove", "a", "b", "1")
	x.expect(num(1), "smove", "a", "a", "2")
	x.expect(num(0), "smove", "nokey", "a", "2")
	x.expect(ok, "set", "str", "v")
	x.expect(wrongType, "smove", "a", "str", "2")
	x.expect(num(0), "smove", "nokey", "str", "2")
	x.expect(arr(bulk("1")), "smembers", "b")
	x.expect(errr("ERR value is out of range, must be positive"), "spop", "a", "-1")
	x.expect(errr("ERR syntax error"), "spop", "a", "1", "2")
	x.expect(arr(), "spop", "a", "0")
	x.expect(nil_, "spop", "nokey")
	x.expect(arr(), "spop", "nokey", "3")
	got := sortedKeys(t, x.do("spop", "a", "10"))
	if len(got) != 2 || got[0] != "2" || got[1] != "3" {
		t.Errorf("spop a 10 = %q, want 2 and 3", got)
	}
	x.expect(num(0), "exists", "a")
	r := x.do("spop", "b")
	if r.String() != bulk("1").String() {
		t.Errorf("spop b = %v, want 1", r)
	}
	x.expect(num(0), "exists", "b")
}

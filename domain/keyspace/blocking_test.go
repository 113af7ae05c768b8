package keyspace

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func TestBlockingFormsDoNotBlock(t *testing.T) {
	x := newTester(t)
	nilArr := domain.Reply{Kind: domain.ReplyNilArray}
	x.expect(nilArr, "blpop", "a", "b", "0")
	x.expect(nil_, "blmove", "a", "b", "LEFT", "RIGHT", "0")
	x.expect(nil_, "brpoplpush", "a", "b", "1.5")
	x.expect(nilArr, "blmpop", "0", "2", "a", "b", "LEFT")
	x.expect(nilArr, "bzpopmin", "z", "0")
	x.expect(nilArr, "bzmpop", "0", "1", "z", "MAX", "COUNT", "3")
	x.expect(num(3), "rpush", "b", "1", "2", "3")
	x.expect(arr(bulk("b"), bulk("1")), "blpop", "a", "b", "0")
	x.expect(arr(bulk("b"), bulk("3")), "brpop", "a", "b", "0")
	x.expect(bulk("2"), "blmove", "b", "c", "LEFT", "RIGHT", "0")
	x.expect(bulk("2"), "brpoplpush", "c", "c", "0")
	x.expect(arr(bulk("c"), arr(bulk("2"))), "blmpop", "0", "2", "b", "c", "RIGHT", "COUNT", "9")
	x.expect(num(3), "zadd", "z", "1", "a", "2", "b", "3", "c")
	x.expect(arr(bulk("z"), bulk("a"), dbl("1")), "bzpopmin", "y", "z", "0")
	x.expect(arr(bulk("z"), bulk("c"), dbl("3")), "bzpopmax", "z", "0")
	x.expect(arr(bulk("z"), arr(arr(bulk("b"), dbl("2")))), "bzmpop", "0", "1", "z", "MIN", "COUNT", "9")
	x.expect(ok, "set", "s", "v")
	x.expect(wrongType, "blpop", "s", "0")
	x.expect(wrongType, "bzpopmax", "nokey", "s", "0")
	x.expect(nil_, "blmove", "nokey", "s", "LEFT", "LEFT", "0")
}

func TestBlockingArgumentErrors(t *testing.T) {
	x := newTester(t)
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"ERR timeout is not a float or out of range", []string{"blpop", "a", "x"}},
		{"ERR timeout is not a float or out of range", []string{"blpop", "a", "nan"}},
		{"ERR timeout is not a float or out of range", []string{"blpop", "a", ""}},
		{"ERR timeout is not a float or out of range", []string{"blpop", "a", " 1"}},
		{"ERR timeout is not a float or out of range", []string{"blpop", "a", "1e5000"}},
		// redis-server 7.0.15: seconds*1000 past 2^63 wraps negative there.
		{"ERR timeout is negative", []string{"blpop", "a", "inf"}},
		{"ERR timeout is negative", []string{"blpop", "a", "1e400"}},
		{"ERR timeout is negative", []string{"blpop", "a", "9.3e15"}},
		{"ERR timeout is negative", []string{"bzmpop", "inf", "1", "a", "MIN", "COUNT", "10"}},
		{"ERR timeout is negative", []string{"brpop", "a", "-1"}},
		{"ERR timeout is negative", []string{"brpop", "a", "-inf"}},
		{"ERR syntax error", []string{"blmove", "a", "b", "UP", "LEFT", "x"}},
		{"ERR timeout is negative", []string{"blmove", "a", "b", "LEFT", "LEFT", "-2"}},
		{"ERR numkeys should be greater than 0", []string{"blmpop", "x", "0", "a", "LEFT"}},
		{"ERR syntax error", []string{"blmpop", "0", "1", "a", "UP"}},
		{"ERR count should be greater than 0", []string{"bzmpop", "0", "1", "a", "MIN", "COUNT", "0"}},
		{"ERR timeout is not a float or out of range", []string{"bzmpop", "x", "1", "a", "MIN"}},
		{"ERR syntax error", []string{"blmpop", "0", "5", "a", "LEFT"}},
	} {
		x.expect(errr(tc.want), tc.args...)
	}
	for _, ok := range []string{"0", "-0.0001", "0.5", "1e3", "+2", ".5"} {
		if _, rep, good := ParseTimeout([]byte(ok)); !good {
			t.Errorf("timeout %q: %v", ok, rep)
		}
	}
	if ms, _, _ := ParseTimeout([]byte("0.0001")); ms != 1 {
		t.Errorf("timeout 0.0001 s = %d ms, want 1 (rounded up)", ms)
	}
	// Accepted by redis-server 7.0.15 (it blocks); longer than a Go timer
	// counts, so it waits for ever.
	if ms, rep, ok := ParseTimeout([]byte("9223372036854775")); !ok || ms != 0 {
		t.Errorf("timeout 9223372036854775 s = %d ms %v, want 0 (for ever)", ms, rep)
	}
}

func TestBlockingPopOnce(t *testing.T) {
	x := newTester(t)
	x.expect(domain.Reply{Kind: domain.ReplyNilArray}, OnceCommand, "t1", "blpop", "l", "0")
	x.expect(num(3), "rpush", "l", "a", "b", "c")
	x.expect(arr(bulk("l"), bulk("a")), OnceCommand, "t1", "blpop", "l", "0")
	// The same token again: the same reply, nothing popped.
	x.expect(arr(bulk("l"), bulk("a")), OnceCommand, "t1", "blpop", "l", "0")
	x.expect(num(2), "llen", "l")
	x.expect(arr(bulk("l"), bulk("c")), OnceCommand, "t2", "brpop", "l", "0")
	x.expect(errr("ERR seshat.bpop runs blocking pops only"), OnceCommand, "t3", "lpop", "l")
	x.expect(errr("ERR wrong number of arguments for 'blpop' command"), OnceCommand, "t3", "blpop", "l")
	// The record expires with TombstoneTTL.
	x.now += TombstoneTTL + 1
	x.expect(arr(bulk("l"), bulk("b")), OnceCommand, "t1", "blpop", "l", "0")
}

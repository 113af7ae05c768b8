package keyspace

import (
	"fmt"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

var wrongType = errr("WRONGTYPE Operation against a key holding the wrong kind of value")

func hmap(r ...domain.Reply) domain.Reply {
	if r == nil {
		r = []domain.Reply{}
	}
	return domain.Reply{Kind: domain.ReplyMap, Array: r}
}

func TestHashCommands(t *testing.T) {
	x := newTester(t)
	x.expect(num(2), "hset", "h", "a", "1", "b", "2")
	x.expect(num(0), "hset", "h", "a", "10")
	x.expect(errr("ERR wrong number of arguments for 'hset' command"), "hset", "h", "a", "1", "b")
	x.expect(ok, "hmset", "h", "c", "3")
	x.expect(num(0), "hsetnx", "h", "a", "x")
	x.expect(num(1), "hsetnx", "h", "d", "")
	x.expect(bulk("10"), "hget", "h", "a")
	x.expect(nil_, "hget", "h", "zz")
	x.expect(nil_, "hget", "nokey", "a")
	x.expect(arr(bulk("10"), nil_, bulk("")), "hmget", "h", "a", "zz", "d")
	x.expect(arr(nil_, nil_), "hmget", "nokey", "a", "b")
	x.expect(hmap(bulk("a"), bulk("10"), bulk("b"), bulk("2"), bulk("c"), bulk("3"), bulk("d"), bulk("")), "hgetall", "h")
	x.expect(arr(bulk("a"), bulk("b"), bulk("c"), bulk("d")), "hkeys", "h")
	x.expect(arr(bulk("10"), bulk("2"), bulk("3"), bulk("")), "hvals", "h")
	x.expect(num(4), "hlen", "h")
	x.expect(num(2), "hstrlen", "h", "a")
	x.expect(num(0), "hstrlen", "h", "zz")
	x.expect(num(1), "hexists", "h", "b")
	x.expect(num(0), "hexists", "h", "zz")
	x.expect(status("hash"), "type", "h")
	x.expect(num(2), "hdel", "h", "a", "zz", "b")
	x.expect(num(2), "hlen", "h")
	// The last field gone, the key is gone.
	x.expect(num(2), "hdel", "h", "c", "d")
	x.expect(num(0), "exists", "h")
	x.expect(status("none"), "type", "h")
	x.expect(num(0), "hlen", "h")
	x.expect(hmap(), "hgetall", "h")
}

func TestHashIncr(t *testing.T) {
	x := newTester(t)
	x.expect(num(5), "hincrby", "h", "n", "5")
	x.expect(num(-1), "hincrby", "h", "n", "-6")
	x.expect(errr("ERR value is not an integer or out of range"), "hincrby", "h", "n", "x")
	x.expect(num(1), "hset", "h", "s", "abc")
	x.expect(errr("ERR hash value is not an integer"), "hincrby", "h", "s", "1")
	x.expect(num(1), "hset", "h", "big", "9223372036854775807")
	x.expect(errr("ERR increment or decrement would overflow"), "hincrby", "h", "big", "1")
	x.expect(bulk("1.5"), "hincrbyfloat", "h", "f", "1.5")
	x.expect(bulk("1.6"), "hincrbyfloat", "h", "f", "0.1")
	x.expect(errr("ERR hash value is not a float"), "hincrbyfloat", "h", "s", "1")
	x.expect(errr("ERR value is not a valid float"), "hincrbyfloat", "h", "f", "x")
	x.expect(errr("ERR value is NaN or Infinity"), "hincrbyfloat", "h", "f", "inf")
}

// Every hash command on a string, and every string command on a hash,
// answers WRONGTYPE and changes nothing.
func TestHashWrongType(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "s", "v")
	x.expect(num(1), "hset", "h", "f", "v")
	for _, args := range [][]string{
		{"hset", "s", "f", "v"}, {"hsetnx", "s", "f", "v"}, {"hget", "s", "f"}, {"hmget", "s", "f"},
		{"hgetall", "s"}, {"hdel", "s", "f"}, {"hlen", "s"}, {"hexists", "s", "f"}, {"hstrlen", "s", "f"},
		{"hkeys", "s"}, {"hvals", "s"}, {"hincrby", "s", "f", "1"}, {"hincrbyfloat", "s", "f", "1"},
		{"hrandfield", "s"}, {"hscan", "s", "0"},
		{"get", "h"}, {"append", "h", "x"}, {"incr", "h"}, {"strlen", "h"}, {"getrange", "h", "0", "1"},
		{"setrange", "h", "0", "x"}, {"getbit", "h", "0"}, {"setbit", "h", "0", "1"}, {"bitcount", "h"},
		{"getset", "h", "x"}, {"getdel", "h"}, {"getex", "h"}, {"set", "h", "x", "GET"}, {"incrbyfloat", "h", "1"},
	} {
		x.expect(wrongType, args...)
	}
	x.expect(arr(nil_, bulk("v")), "mget", "h", "s")
	x.expect(bulk("v"), "hget", "h", "f")
	// SET overwrites a hash (and its fields are gone with it).
	x.expect(ok, "set", "h", "x")
	x.expect(status("string"), "type", "h")
	x.expect(num(1), "hset", "h2", "f", "v")
	x.expect(ok, "set", "h2", "x")
	x.expect(num(1), "del", "h2")
	x.expect(num(1), "hset", "h2", "g", "w")
	x.expect(hmap(bulk("g"), bulk("w")), "hgetall", "h2")
}

// Keys commands carry a hash whole: RENAME, COPY, MOVE, EXPIRE, PERSIST,
// DEL, FLUSHDB, SWAPDB.
func TestHashAcrossKeyCommands(t *testing.T) {
	x := newTester(t)
	x.expect(num(2), "hset", "h", "a", "1", "b", "2")
	x.expect(ok, "rename", "h", "r")
	x.expect(hmap(bulk("a"), bulk("1"), bulk("b"), bulk("2")), "hgetall", "r")
	x.expect(num(1), "copy", "r", "c")
	x.expect(num(1), "hset", "c", "z", "26")
	x.expect(num(2), "hlen", "r")
	x.expect(num(3), "hlen", "c")
	x.expect(num(1), "copy", "r", "c", "DB", "1")
	x.expect(num(1), "move", "c", "2")
	x.expect(num(1), "expire", "r", "100")
	x.expect(num(2), "hlen", "r")
	x.expect(num(100), "ttl", "r")
	x.expect(num(1), "persist", "r")
	x.expect(num(-1), "ttl", "r")
	x.expect(arr(bulk("0"), arr(bulk("r"))), "scan", "0", "TYPE", "hash")
	x.expect(arr(bulk("0"), arr()), "scan", "0", "TYPE", "string")
	x.expect(num(1), "pexpire", "r", "5")
	x.now += 5
	x.expect(num(0), "hlen", "r")
	x.db = 2
	x.expect(num(3), "hlen", "c")
	x.expect(ok, "swapdb", "2", "1")
	x.expect(num(2), "hlen", "c")
	x.db = 1
	x.expect(num(3), "hlen", "c")
	x.expect(ok, "flushdb")
	x.expect(num(0), "hlen", "c")
	x.expect(num(0), "dbsize")
	// Left: db 2's c, and r's, expired but not yet deleted (a read
	// deletes nothing).
	if len(x.st.elems) != 2 {
		t.Errorf("%d instances' elements left, want 2", len(x.st.elems))
	}
}

func TestHashRandAndScan(t *testing.T) {
	x := newTester(t)
	x.expect(nil_, "hrandfield", "h")
	x.expect(arr(), "hrandfield", "h", "3")
	x.expect(num(3), "hset", "h", "a", "1", "b", "2", "c", "3")
	x.expect(arr(bulk("a"), bulk("1"), bulk("b"), bulk("2"), bulk("c"), bulk("3")), "hrandfield", "h", "5", "WITHVALUES")
	if r := x.do("hrandfield", "h", "-7"); len(r.Array) != 7 {
		t.Errorf("hrandfield -7: %v, want 7 fields", r)
	}
	if r := x.do("hrandfield", "h", "2"); len(sortedKeys(t, r)) != 2 || r.Array[0].String() == r.Array[1].String() {
		t.Errorf("hrandfield 2: %v, want 2 distinct fields", r)
	}
	x.expect(errr("ERR syntax error"), "hrandfield", "h", "2", "WITHSCORES")
	x.expect(arr(bulk("0"), arr(bulk("a"), bulk("1"), bulk("b"), bulk("2"), bulk("c"), bulk("3"))), "hscan", "h", "0")
	x.expect(arr(bulk("0"), arr(bulk("b"), bulk("2"))), "hscan", "h", "0", "MATCH", "b*", "COUNT", "1")
	x.expect(errr("ERR syntax error"), "hscan", "h", "0", "COUNT", "0")
}

// The same write entry draws the same random members on every replica.
func TestRandomnessIsTheEntrys(t *testing.T) {
	run := func() domain.Reply {
		x := newTester(t)
		for i := range 50 {
			x.do("hset", "h", string(rune('a'+i%26))+string(rune('a'+i/26)), "v")
		}
		return x.do("hrandfield", "h", "5")
	}
	a, b := run(), run()
	if a.String() != b.String() {
		t.Fatalf("two runs drew %v and %v", a, b)
	}
}

func TestObjectEncoding(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "i", "123")
	x.expect(ok, "set", "s", "short")
	x.expect(num(1), "hset", "h", "f", "v")
	x.expect(num(2), "sadd", "is", "1", "2")
	x.expect(num(1), "sadd", "ss", "a")
	x.expect(num(1), "zadd", "z", "1", "a")
	x.expect(num(1), "rpush", "l", "a")
	for key, want := range map[string]string{"i": "int", "s": "embstr", "h": "listpack", "is": "intset", "ss": "hashtable", "z": "listpack", "l": "quicklist"} {
		x.expect(bulk(want), "object", "encoding", key)
	}
	x.expect(nil_, "object", "encoding", "nokey")
	x.expect(errr("ERR unknown subcommand 'bad'. Try OBJECT HELP."), "object", "bad", "k")
}

// A collection larger than scanAllBelow is paged; iterating to cursor 0
// returns every element once when nothing changes meanwhile.
func TestScanPagesABigCollection(t *testing.T) {
	x := newTester(t)
	args := []string{"sadd", "s"}
	for i := range 2000 {
		args = append(args, fmt.Sprintf("m%04d", i))
	}
	x.expect(num(2000), args...)
	seen := map[string]bool{}
	cursor, pages := "0", 0
	for {
		r := x.do("sscan", "s", cursor, "COUNT", "7")
		pages++
		for _, m := range r.Array[1].Array {
			if seen[string(m.Bulk)] {
				t.Fatalf("%s returned twice", m.Bulk)
			}
			seen[string(m.Bulk)] = true
		}
		cursor = string(r.Array[0].Bulk)
		if cursor == "0" {
			break
		}
	}
	if len(seen) != 2000 || pages < 2 || pages > 65 {
		t.Fatalf("%d members in %d pages, want 2000 in 2 to 65", len(seen), pages)
	}
}

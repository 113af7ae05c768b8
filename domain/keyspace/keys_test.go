package keyspace

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// Replies below were checked against redis-server 7.0.15, except where a
// test says the behaviour is Seshat's own (SCAN cursors, RANDOMKEY).

func status(s string) domain.Reply { return domain.Reply{Kind: domain.ReplyStatus, Str: s} }

// sortedKeys returns an array reply's bulk strings, sorted.
func sortedKeys(t *testing.T, r domain.Reply) []string {
	t.Helper()
	if r.Kind != domain.ReplyArray {
		t.Fatalf("reply %v: not an array", r)
	}
	var out []string
	for _, e := range r.Array {
		if e.Kind != domain.ReplyBulk {
			t.Fatalf("element %v: not a bulk string", e)
		}
		out = append(out, string(e.Bulk))
	}
	slices.Sort(out)
	return out
}

func TestKeySpecs(t *testing.T) {
	// As COMMAND INFO and COMMAND DOCS (group) of Redis 7.0 give them.
	specs := []struct {
		name              string
		arity             int
		flags             Flags
		first, last, step int
		group             string
	}{
		{"del", -2, Write, 1, -1, 1, "generic"},
		{"unlink", -2, Write | Fast, 1, -1, 1, "generic"},
		{"exists", -2, ReadOnly | Fast, 1, -1, 1, "generic"},
		{"touch", -2, ReadOnly | Fast, 1, -1, 1, "generic"},
		{"type", 2, ReadOnly | Fast, 1, 1, 1, "generic"},
		{"rename", 3, Write, 1, 2, 1, "generic"},
		{"renamenx", 3, Write | Fast, 1, 2, 1, "generic"},
		{"copy", -3, Write | DenyOOM, 1, 2, 1, "generic"},
		{"move", 3, Write | Fast, 1, 1, 1, "generic"},
		{"keys", 2, ReadOnly, 0, 0, 0, "generic"},
		{"scan", -2, ReadOnly, 0, 0, 0, "generic"},
		{"randomkey", 1, ReadOnly, 0, 0, 0, "generic"},
		{"dbsize", 1, ReadOnly | Fast, 0, 0, 0, "server"},
		{"flushdb", -1, Write, 0, 0, 0, "server"},
		{"flushall", -1, Write, 0, 0, 0, "server"},
		{"swapdb", 3, Write | Fast, 0, 0, 0, "server"},
		{"expire", -3, Write | Fast, 1, 1, 1, "generic"},
		{"pexpire", -3, Write | Fast, 1, 1, 1, "generic"},
		{"expireat", -3, Write | Fast, 1, 1, 1, "generic"},
		{"pexpireat", -3, Write | Fast, 1, 1, 1, "generic"},
		{"ttl", 2, ReadOnly | Fast, 1, 1, 1, "generic"},
		{"pttl", 2, ReadOnly | Fast, 1, 1, 1, "generic"},
		{"expiretime", 2, ReadOnly | Fast, 1, 1, 1, "generic"},
		{"pexpiretime", 2, ReadOnly | Fast, 1, 1, 1, "generic"},
		{"persist", 2, Write | Fast, 1, 1, 1, "generic"},
		{"seshat.reap", 4, Write | Internal, 2, 2, 1, "generic"},
	}
	for _, want := range specs {
		s := Lookup([]byte(want.name))
		if s == nil {
			t.Errorf("%s: not registered", want.name)
			continue
		}
		if s.Arity != want.arity || s.Flags != want.flags || s.FirstKey != want.first ||
			s.LastKey != want.last || s.Step != want.step || s.Group != want.group {
			t.Errorf("%s: spec %+v, want %+v", want.name, *s, want)
		}
	}
	rn := Lookup([]byte("RENAME"))
	if got := rn.Keys([][]byte{[]byte("rename"), []byte("a"), []byte("b")}); len(got) != 2 || string(got[1]) != "b" {
		t.Errorf("rename keys %q", got)
	}
	if got := Lookup([]byte("seshat.reap")).Keys([][]byte{[]byte("seshat.reap"), []byte("0"), []byte("k"), []byte("1")}); len(got) != 1 || string(got[0]) != "k" {
		t.Errorf("reap keys %q", got)
	}
}

func TestArity(t *testing.T) {
	x := newTester(t)
	for _, args := range [][]string{
		{"unlink"}, {"touch"}, {"type"}, {"type", "a", "b"}, {"rename", "a"}, {"renamenx", "a", "b", "c"},
		{"copy", "a"}, {"move", "a"}, {"keys"}, {"keys", "a", "b"}, {"scan"}, {"randomkey", "x"},
		{"dbsize", "x"}, {"swapdb", "0"}, {"expire", "a"}, {"pexpireat", "a"}, {"ttl"}, {"pttl", "a", "b"},
		{"expiretime"}, {"pexpiretime"}, {"persist"}, {"persist", "a", "b"},
	} {
		x.expect(errr(fmt.Sprintf("ERR wrong number of arguments for '%s' command", args[0])), args...)
	}
}

func TestUnlinkTouchType(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "a", "1")
	x.expect(ok, "set", "b", "2")
	x.expect(num(2), "UNLINK", "a", "b", "c", "a")
	x.expect(num(0), "exists", "a", "b")
	x.expect(ok, "set", "a", "1")
	x.expect(num(3), "touch", "a", "a", "nokey", "a")
	x.expect(status("string"), "TYPE", "a")
	x.expect(status("none"), "type", "nokey")
	x.expect(ok, "set", "", "empty")
	x.expect(status("string"), "type", "")
	x.expect(ok, "set", "t", "v", "PX", "10")
	x.expect(status("string"), "type", "t")
	x.now += 10
	x.expect(status("none"), "type", "t")
	x.expect(num(0), "touch", "t")
	x.expect(num(0), "unlink", "t")
}

func TestRename(t *testing.T) {
	x := newTester(t)
	x.expect(errr("ERR no such key"), "rename", "nokey", "x")
	x.expect(errr("ERR no such key"), "rename", "nokey", "nokey")
	x.expect(errr("ERR no such key"), "renamenx", "nokey", "x")
	x.expect(errr("ERR no such key"), "renamenx", "nokey", "nokey")
	x.expect(ok, "set", "a", "1", "EX", "100")
	x.expect(ok, "rename", "a", "a")
	x.expect(num(0), "renamenx", "a", "a")
	x.expect(num(100), "ttl", "a")
	x.expect(ok, "RENAME", "a", "b")
	x.expect(num(0), "exists", "a")
	x.expect(bulk("1"), "get", "b")
	x.expect(num(100), "ttl", "b") // the deadline moves with the value
	x.expect(ok, "set", "c", "3")
	x.expect(num(0), "renamenx", "b", "c")
	x.expect(bulk("3"), "get", "c")
	x.expect(ok, "rename", "b", "c")
	x.expect(bulk("1"), "get", "c")
	x.expect(num(100), "ttl", "c")
	x.expect(ok, "set", "d", "4")
	x.expect(ok, "rename", "d", "c") // overwrites, deadline included
	x.expect(bulk("4"), "get", "c")
	x.expect(num(-1), "ttl", "c")
	x.expect(num(1), "RENAMENX", "c", "e")
	x.expect(nil_, "get", "c")
	x.expect(bulk("4"), "get", "e")
	// An expired source is absent; an expired target is free.
	x.expect(ok, "set", "old", "v", "PX", "5")
	x.expect(ok, "set", "gone", "v", "PX", "5")
	x.now += 5
	x.expect(errr("ERR no such key"), "rename", "gone", "f")
	x.expect(num(1), "renamenx", "e", "old")
	x.expect(bulk("4"), "get", "old")
}

func TestCopy(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "copy", "nokey", "b")
	x.expect(ok, "set", "a", "1", "PX", "5000")
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR value is not an integer or out of range"), []string{"copy", "a", "b", "db", "x"}},
		{errr("ERR value is not an integer or out of range"), []string{"copy", "a", "b", "db", "+1"}},
		{errr("ERR value is out of range, value must between -2147483648 and 2147483647"), []string{"copy", "a", "b", "db", "99999999999"}},
		{errr("ERR syntax error"), []string{"copy", "a", "b", "foo", "db", "99"}},
		{errr("ERR DB index is out of range"), []string{"copy", "a", "b", "db", "99", "foo"}},
		{errr("ERR DB index is out of range"), []string{"copy", "a", "b", "db", "16"}},
		{errr("ERR DB index is out of range"), []string{"copy", "a", "b", "DB", "-1"}},
		{errr("ERR syntax error"), []string{"copy", "a", "b", "db"}},
		{errr("ERR syntax error"), []string{"copy", "a", "b", "replace", "x"}},
		{errr("ERR source and destination objects are the same"), []string{"copy", "a", "a"}},
		{errr("ERR source and destination objects are the same"), []string{"copy", "a", "a", "db", "0"}},
		{errr("ERR source and destination objects are the same"), []string{"copy", "nokey", "nokey"}},
	} {
		x.expect(tc.want, tc.args...)
	}
	x.expect(num(1), "COPY", "a", "b")
	x.expect(bulk("1"), "get", "b")
	x.expect(num(5000), "pttl", "b") // the deadline is copied
	x.expect(ok, "set", "a", "2")
	x.expect(num(0), "copy", "a", "b")
	x.expect(bulk("1"), "get", "b")
	x.expect(num(1), "copy", "a", "b", "REPLACE")
	x.expect(bulk("2"), "get", "b")
	x.expect(num(-1), "pttl", "b")
	x.expect(num(1), "copy", "a", "a", "db", "1")
	x.expect(num(1), "copy", "a", "b", "replace", "replace", "db", "2", "db", "1")
	x.expect(num(0), "copy", "a", "b", "db", "1")
	x.expect(bulk("2"), "get", "a")
	x.db = 1
	x.expect(bulk("2"), "get", "a")
	x.expect(bulk("2"), "get", "b")
	x.expect(num(1), "copy", "a", "c", "db", "0")
	x.db = 2
	x.expect(nil_, "get", "b")
	x.db = 0
	x.expect(bulk("2"), "get", "c")
	// An expired target is free; an expired source is absent.
	x.expect(ok, "set", "exp", "v", "PX", "5")
	x.now += 5
	x.expect(num(1), "copy", "a", "exp")
	x.expect(bulk("2"), "get", "exp")
	x.expect(ok, "set", "exp", "v", "PX", "5")
	x.now += 5
	x.expect(num(0), "copy", "exp", "z")
}

func TestMove(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "a", "1", "EX", "100")
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR value is not an integer or out of range"), []string{"move", "a", "x"}},
		{errr("ERR value is out of range, value must between -2147483648 and 2147483647"), []string{"move", "a", "5000000000"}},
		{errr("ERR DB index is out of range"), []string{"move", "a", "16"}},
		{errr("ERR DB index is out of range"), []string{"move", "a", "-1"}},
		{errr("ERR DB index is out of range"), []string{"move", "a", "255"}}, // never SystemDB
		{errr("ERR source and destination objects are the same"), []string{"move", "a", "0"}},
		{errr("ERR source and destination objects are the same"), []string{"move", "nokey", "0"}},
		{num(0), []string{"move", "nokey", "1"}},
	} {
		x.expect(tc.want, tc.args...)
	}
	x.expect(num(1), "MOVE", "a", "1")
	x.expect(num(0), "exists", "a")
	x.db = 1
	x.expect(bulk("1"), "get", "a")
	x.expect(num(100), "ttl", "a")
	x.db = 0
	x.expect(ok, "set", "a", "0")
	x.expect(num(0), "move", "a", "1") // taken in the target
	x.expect(bulk("0"), "get", "a")
	x.db = 1
	x.expect(num(0), "move", "a", "0")
	x.expect(bulk("1"), "get", "a")
	x.expect(ok, "set", "b", "v", "PX", "1")
	x.now++
	x.db = 0
	x.expect(ok, "set", "b", "w")
	x.expect(num(1), "move", "b", "1") // an expired key in the target is gone
	x.db = 1
	x.expect(bulk("w"), "get", "b")
}

func TestSwapDB(t *testing.T) {
	x := newTester(t)
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR invalid first DB index"), []string{"swapdb", "x", "1"}},
		{errr("ERR invalid first DB index"), []string{"swapdb", "99999999999", "1"}},
		{errr("ERR invalid first DB index"), []string{"swapdb", "x", "y"}},
		{errr("ERR invalid second DB index"), []string{"swapdb", "1", "x"}},
		{errr("ERR invalid second DB index"), []string{"swapdb", "16", "99999999999"}},
		{errr("ERR DB index is out of range"), []string{"swapdb", "0", "16"}},
		{errr("ERR DB index is out of range"), []string{"swapdb", "-1", "0"}},
		{errr("ERR DB index is out of range"), []string{"swapdb", "255", "0"}},
		{ok, []string{"swapdb", "0", "0"}},
	} {
		x.expect(tc.want, tc.args...)
	}
	x.expect(ok, "set", "a", "0")
	x.db = 3
	x.expect(ok, "set", "b", "3")
	x.expect(ok, "SWAPDB", "0", "3")
	x.expect(bulk("0"), "get", "a")
	x.expect(nil_, "get", "b")
	x.db = 0
	x.expect(bulk("3"), "get", "b")
	x.expect(ok, "swapdb", "3", "0")
	x.expect(bulk("0"), "get", "a")
}

func TestDBSizeFlush(t *testing.T) {
	x := newTester(t)
	x.expect(num(0), "dbsize")
	x.expect(ok, "mset", "a", "1", "b", "2")
	x.expect(ok, "set", "t", "v", "PX", "1")
	x.now++
	x.expect(num(3), "DBSIZE") // an expired key not yet removed counts
	x.expect(errr("ERR syntax error"), "flushdb", "foo")
	x.expect(errr("ERR syntax error"), "flushdb", "sync", "sync")
	x.expect(errr("ERR syntax error"), "flushall", "now")
	x.expect(errr("ERR syntax error"), "flushall", "async", "x")
	x.db = 1
	x.expect(ok, "set", "one", "1")
	x.expect(ok, "FLUSHDB", "ASYNC")
	x.expect(num(0), "dbsize")
	x.expect(ok, "set", "one", "1")
	x.expect(ok, "flushdb", "sync")
	x.expect(num(0), "dbsize")
	x.expect(ok, "set", "one", "1")
	x.db = 0
	x.expect(num(3), "dbsize")
	x.expect(ok, "flushdb")
	x.expect(num(0), "dbsize")
	x.expect(ok, "set", "a", "1")
	x.db = 15
	x.expect(ok, "set", "a", "1")
	x.expect(ok, "FLUSHALL", "sync")
	x.expect(num(0), "dbsize")
	x.db = 0
	x.expect(num(0), "dbsize")
	x.expect(ok, "set", "a", "1")
	x.expect(ok, "flushall", "async")
	x.expect(ok, "flushall")
	x.expect(num(0), "dbsize")
	// SystemDB keeps the clock.
	if now, err := Clock(x.st); err != nil || now != x.now {
		t.Errorf("clock after FLUSHALL: %d, %v; want %d", now, err, x.now)
	}
}

func TestKeysCommand(t *testing.T) {
	x := newTester(t)
	x.expect(arr(), "keys", "*")
	x.expect(ok, "mset", "hello", "1", "hallo", "2", "hxllo", "3", "heeello", "4", "", "5", "a*b", "6")
	x.expect(ok, "set", "hillo", "v", "PX", "1")
	x.now++
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"*", []string{"", "a*b", "hallo", "heeello", "hello", "hxllo"}},
		{"**", []string{"a*b", "hallo", "heeello", "hello", "hxllo"}},
		{"", []string{""}},
		{"h?llo", []string{"hallo", "hello", "hxllo"}},
		{"h*llo", []string{"hallo", "heeello", "hello", "hxllo"}},
		{"h[ae]llo", []string{"hallo", "hello"}},
		{"h[^e]llo", []string{"hallo", "hxllo"}},
		{"h[a-b]llo", []string{"hallo"}},
		{"a\\*b", []string{"a*b"}},
		{"H*", nil},
	} {
		if got := sortedKeys(t, x.do("KEYS", tc.pattern)); !slices.Equal(got, tc.want) {
			t.Errorf("KEYS %q: %q, want %q", tc.pattern, got, tc.want)
		}
	}
}

// scanAll runs SCAN from 0 to the end with the options and returns every
// key and the number of calls.
func scanAll(t *testing.T, x *tester, opts ...string) ([]string, int) {
	t.Helper()
	var all []string
	cursor := "0"
	for calls := 1; ; calls++ {
		r := x.do(append([]string{"scan", cursor}, opts...)...)
		if r.Kind != domain.ReplyArray || len(r.Array) != 2 || r.Array[0].Kind != domain.ReplyBulk {
			t.Fatalf("SCAN %s: reply %v", cursor, r)
		}
		all = append(all, sortedKeys(t, r.Array[1])...)
		cursor = string(r.Array[0].Bulk)
		if cursor == "0" {
			slices.Sort(all)
			return all, calls
		}
		if calls > 10000 {
			t.Fatal("SCAN does not end")
		}
	}
}

func TestScanErrors(t *testing.T) {
	x := newTester(t)
	empty := arr(bulk("0"), arr())
	for _, tc := range []struct {
		want domain.Reply
		args []string
	}{
		{errr("ERR invalid cursor"), []string{"scan", "x"}},
		{errr("ERR invalid cursor"), []string{"scan", " 0"}},
		{errr("ERR invalid cursor"), []string{"scan", "0 "}},
		{errr("ERR invalid cursor"), []string{"scan", "0x"}},
		{errr("ERR invalid cursor"), []string{"scan", "+"}},
		{errr("ERR invalid cursor"), []string{"scan", "18446744073709551616"}},
		{errr("ERR invalid cursor"), []string{"scan", "x", "foo"}}, // the cursor first
		{empty, []string{"scan", ""}},
		{empty, []string{"scan", "-1"}},
		{empty, []string{"scan", "+0"}},
		{empty, []string{"scan", "007"}},
		{empty, []string{"scan", "18446744073709551615"}},
		{empty, []string{"scan", "-18446744073709551615"}},
		{errr("ERR syntax error"), []string{"scan", "0", "count", "0"}},
		{errr("ERR syntax error"), []string{"scan", "0", "count", "-1"}},
		{errr("ERR value is not an integer or out of range"), []string{"scan", "0", "count", "x"}},
		{errr("ERR syntax error"), []string{"scan", "0", "foo"}},
		{errr("ERR syntax error"), []string{"scan", "0", "match"}},
		{errr("ERR syntax error"), []string{"scan", "0", "count", "5", "type"}},
		{empty, []string{"scan", "0", "type", "foo"}},
		{empty, []string{"scan", "0", "MATCH", "*", "COUNT", "3", "TYPE", "string"}},
	} {
		x.expect(tc.want, tc.args...)
	}
}

func TestParseCursor(t *testing.T) {
	for s, want := range map[string]uint64{
		"": 0, "0": 0, "42": 42, "+7": 7, "-0": 0, "-1": 1<<64 - 1, "18446744073709551615": 1<<64 - 1,
		"-18446744073709551615": 1, "12\x00junk": 12, "\x00x": 0,
	} {
		if got, ok := parseCursor([]byte(s)); !ok || got != want {
			t.Errorf("parseCursor(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"x", " 1", "\t1", "1 ", "-", "+", "--1", "+-1", "0x10", "18446744073709551616", "-18446744073709551616", "1.0"} {
		if got, ok := parseCursor([]byte(s)); ok {
			t.Errorf("parseCursor(%q) = %d, true; want an error", s, got)
		}
	}
}

func TestScan(t *testing.T) {
	x := newTester(t)
	var want []string
	for i := range 95 {
		k := "key:" + strconv.Itoa(i)
		x.expect(ok, "set", k, "v")
		want = append(want, k)
	}
	x.expect(ok, "set", "other", "v")
	x.expect(ok, "set", "key:exp", "v", "PX", "1")
	x.now++
	slices.Sort(want)

	got, calls := scanAll(t, x, "MATCH", "key:*")
	if !slices.Equal(got, want) {
		t.Errorf("SCAN MATCH key:*: %d keys, want %d", len(got), len(want))
	}
	// 97 keys (the expired one counts) at 10 a call.
	if calls != 10 {
		t.Errorf("SCAN: %d calls, want 10", calls)
	}
	all, calls := scanAll(t, x, "COUNT", "1000")
	if calls != 1 || len(all) != 96 {
		t.Errorf("SCAN COUNT 1000: %d keys in %d calls", len(all), calls)
	}
	if got, _ := scanAll(t, x, "count", "7", "type", "STRING"); len(got) != 96 {
		t.Errorf("SCAN TYPE STRING: %d keys", len(got))
	}
	if got, _ := scanAll(t, x, "type", "hash"); len(got) != 0 {
		t.Errorf("SCAN TYPE hash: %q", got)
	}
	if got, _ := scanAll(t, x, "match", "other", "match", "*"); len(got) != 96 {
		t.Errorf("SCAN MATCH other MATCH *: %d keys (the last MATCH wins)", len(got))
	}

	// Seshat's cursor is the hash of the first key not visited.
	type hk struct {
		h uint64
		k string
	}
	var order []hk
	for _, k := range append(slices.Clone(all), "key:exp") {
		order = append(order, hk{Hash([]byte(k)), k})
	}
	slices.SortFunc(order, func(a, b hk) int {
		if a.h != b.h {
			if a.h < b.h {
				return -1
			}
			return 1
		}
		return bytes.Compare([]byte(a.k), []byte(b.k))
	})
	r := x.do("scan", "0", "count", "5")
	if want := strconv.FormatUint(order[5].h, 10); string(r.Array[0].Bulk) != want {
		t.Errorf("cursor %s, want %s", r.Array[0].Bulk, want)
	}
	var first []string
	for _, e := range order[:5] {
		if e.k != "key:exp" {
			first = append(first, e.k)
		}
	}
	slices.Sort(first)
	if got := sortedKeys(t, r.Array[1]); !slices.Equal(got, first) {
		t.Errorf("first page %q, want %q", got, first)
	}
	// Any hash is a cursor: resuming mid-way gives the keys from there.
	r = x.do("scan", strconv.FormatUint(order[90].h, 10), "count", "100")
	if len(r.Array[1].Array)+1 < len(order)-90 || string(r.Array[0].Bulk) != "0" {
		t.Errorf("scan from order[90]: %v", r)
	}
}

func TestScanPageKeepsHashes(t *testing.T) {
	// No two short keys share an FNV hash; check the page bound logic on
	// the visit counts instead: a page visits exactly count keys when the
	// hashes differ, and the cursor advances past every visited hash.
	st := newMapStore()
	for i := range 50 {
		st.Put(0, []byte(strconv.Itoa(i)), Record{Value: []byte("v")})
	}
	seen := map[string]bool{}
	var cursor uint64
	for pages := 0; ; pages++ {
		n := 0
		var last uint64
		next, err := scanPage(st, 0, cursor, 7, func(key []byte, _ Record) {
			n++
			seen[string(key)] = true
			last = Hash(key)
		})
		if err != nil {
			t.Fatal(err)
		}
		if next != 0 && (n != 7 || next <= last) {
			t.Fatalf("page from %d: %d keys, next %d after %d", cursor, n, next, last)
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	if len(seen) != 50 {
		t.Errorf("saw %d keys", len(seen))
	}
}

func TestRandomKey(t *testing.T) {
	x := newTester(t)
	x.expect(nil_, "randomkey")
	x.expect(ok, "set", "only", "v")
	for i := range 50 {
		x.now += int64(i) * 7919
		x.expect(bulk("only"), "RANDOMKEY") // from any start, wrapping round
	}
	x.expect(ok, "set", "only", "v", "PX", "1")
	x.now++
	x.expect(nil_, "randomkey")
	live := map[string]bool{}
	for i := range 20 {
		k := "k" + strconv.Itoa(i)
		x.expect(ok, "set", k, "v")
		live[k] = true
	}
	x.expect(ok, "set", "dead", "v", "PX", "1")
	x.now++
	for range 200 {
		x.now += 13
		r := x.do("randomkey")
		if r.Kind != domain.ReplyBulk || !live[string(r.Bulk)] {
			t.Fatalf("RANDOMKEY: %v", r)
		}
		if again := x.do("randomkey"); !cmp.Equal(again, r) {
			t.Fatalf("RANDOMKEY at one time: %v then %v", r, again)
		}
	}
	// Seshat's choice: the first live key from the hash of the time.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(x.now))
	start := Hash(b[:])
	var want string
	best := uint64(0)
	for k := range live {
		h := Hash([]byte(k))
		// The least hash at or after start, or failing that the least.
		d := h - start
		if want == "" || d < best {
			want, best = k, d
		}
	}
	x.expect(bulk(want), "randomkey")
}

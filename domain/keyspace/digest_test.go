package keyspace

import (
	"bytes"
	"testing"
)

// content is commands that build one keyspace of every type, with
// deadlines, in two databases.
var digestContent = [][]string{
	{"set", "s", "v"},
	{"set", "t", "w", "px", "100000"},
	{"hset", "h", "f1", "a", "f2", "b"},
	{"rpush", "l", "x", "y", "z"},
	{"sadd", "set", "m1", "m2"},
	{"zadd", "z", "1", "a", "2.5", "b"},
	{"select", "3"},
	{"set", "other", "db"},
	{"select", "0"},
}

func digestOf(t *testing.T, x *tester) []byte {
	t.Helper()
	d, err := Digest(x.st)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// build runs cmds on a fresh store; "select" switches the tester's
// database.
func buildDigest(t *testing.T, cmds [][]string) *tester {
	x := newTester(t)
	for _, c := range cmds {
		if c[0] == "select" {
			x.db = int(c[1][0] - '0')
			continue
		}
		x.do(c...)
	}
	return x
}

func TestDigestSameContentSameDigest(t *testing.T) {
	a := buildDigest(t, digestContent)
	// The same content by another history: other versions, instance ids
	// and list positions, deleted and overwritten keys, tombstones.
	b := buildDigest(t, [][]string{
		{"select", "3"},
		{"set", "other", "db"},
		{"select", "0"},
		{"set", "gone", "1"},
		{"lpush", "l", "z"},
		{"lpush", "l", "y"},
		{"lpush", "l", "x"},
		{"zadd", "z", "2.5", "b", "7", "a"},
		{"zadd", "z", "1", "a"},
		{"sadd", "set", "m2", "junk", "m1"},
		{"srem", "set", "junk"},
		{"hset", "h", "f2", "b"},
		{"hset", "h", "f1", "a"},
		{"set", "s", "old"},
		{"set", "s", "v"},
		{"del", "gone"},
		{"set", "t", "w", "px", "100000"},
	})
	if da, db := digestOf(t, a), digestOf(t, b); !bytes.Equal(da, db) {
		t.Fatalf("same content, different digests: %x %x", da, db)
	}
	if d := digestOf(t, newTester(t)); bytes.Equal(d, digestOf(t, a)) {
		t.Fatal("an empty store has the digest of a full one")
	}
}

func TestDigestChangeChangesDigest(t *testing.T) {
	base := digestOf(t, buildDigest(t, digestContent))
	changes := map[string][][]string{
		"string value":   {{"set", "s", "v2"}},
		"new key":        {{"set", "new", "1"}},
		"deleted key":    {{"del", "s"}},
		"deadline":       {{"pexpire", "s", "5000"}},
		"deadline moved": {{"pexpire", "t", "200000"}},
		"persist":        {{"persist", "t"}},
		"type":           {{"del", "s"}, {"rpush", "s", "v"}},
		"hash value":     {{"hset", "h", "f1", "c"}},
		"hash field":     {{"hdel", "h", "f2"}, {"hset", "h", "f3", "b"}},
		"list order":     {{"del", "l"}, {"rpush", "l", "y", "x", "z"}},
		"list element":   {{"rpush", "l", "w"}},
		"set member":     {{"sadd", "set", "m3"}},
		"zset score":     {{"zadd", "z", "3", "b"}},
		"other database": {{"select", "3"}, {"set", "other", "db2"}},
		"moved database": {{"move", "s", "5"}},
		"renamed":        {{"rename", "s", "s2"}},
	}
	for name, extra := range changes {
		cmds := append(append([][]string{}, digestContent...), extra...)
		if d := digestOf(t, buildDigest(t, cmds)); bytes.Equal(d, base) {
			t.Errorf("%s: the digest did not change", name)
		}
	}
}

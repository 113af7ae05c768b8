package keyspace

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// WATCH versions change on every write of a key, deletion included, and a
// key created and deleted again since has a new version too (tombstones).
func TestKeyVersionsSeeEveryChange(t *testing.T) {
	for _, c := range []struct {
		name    string
		setup   [][]string
		changes [][]string
		changed bool
	}{
		{"set", [][]string{{"SET", "k", "v"}}, [][]string{{"SET", "k", "v"}}, true},
		{"getex in the past", [][]string{{"SETEX", "k", "412", "126"}}, [][]string{{"GETEX", "k", "EXAT", "1600000000"}}, true},
		{"absent, created and deleted", nil, [][]string{{"SET", "k", "v"}, {"DEL", "k"}}, true},
		{"absent, untouched", nil, [][]string{{"SET", "other", "v"}}, false},
		{"read only", [][]string{{"SET", "k", "v"}}, [][]string{{"GET", "k"}, {"EXISTS", "k"}}, false},
		{"noop persist", [][]string{{"SET", "k", "v"}}, [][]string{{"PERSIST", "k"}}, false},
		{"flushdb", [][]string{{"SET", "k", "v"}}, [][]string{{"FLUSHDB"}}, true},
		{"rename away", [][]string{{"SET", "k", "v"}}, [][]string{{"RENAME", "k", "j"}}, true},
		{"absent, created and flushed", nil, [][]string{{"SET", "k", "v"}, {"FLUSHDB"}}, true},
		{"absent, flushed", [][]string{{"SET", "j", "v"}}, [][]string{{"FLUSHALL"}}, false},
		{"present, swapped away", [][]string{{"SET", "k", "v"}}, [][]string{{"SWAPDB", "0", "1"}}, true},
		{"absent in both, swapped", [][]string{{"SET", "k", "v"}, {"DEL", "k"}}, [][]string{{"SWAPDB", "0", "1"}}, false},
		{"absent, swapped in", [][]string{{"SELECT1"}}, [][]string{{"SWAPDB", "0", "1"}}, true},
		{"present, swapped twice", [][]string{{"SET", "k", "v"}}, [][]string{{"SWAPDB", "0", "1"}, {"SWAPDB", "1", "0"}}, true},
		{"watch older than the tombstones", [][]string{{"SET", "k", "v"}}, [][]string{{"sleep"}}, true},
		{"hset a field", [][]string{{"HSET", "k", "f", "v"}}, [][]string{{"HSET", "k", "g", "v"}}, true},
		{"hdel a missing field", [][]string{{"HSET", "k", "f", "v"}}, [][]string{{"HDEL", "k", "nope"}}, false},
		{"hdel the last field", [][]string{{"HSET", "k", "f", "v"}}, [][]string{{"HDEL", "k", "f"}}, true},
		{"sadd a member", [][]string{{"SADD", "k", "a"}}, [][]string{{"SADD", "k", "b"}}, true},
		{"sadd a member again", [][]string{{"SADD", "k", "a"}}, [][]string{{"SADD", "k", "a"}}, false},
		{"spop", [][]string{{"SADD", "k", "a", "b"}}, [][]string{{"SPOP", "k"}}, true},
		{"zadd a new score", [][]string{{"ZADD", "k", "1", "a"}}, [][]string{{"ZADD", "k", "2", "a"}}, true},
		{"zadd the same score", [][]string{{"ZADD", "k", "1", "a"}}, [][]string{{"ZADD", "k", "1", "a"}}, false},
		{"rpush", [][]string{{"RPUSH", "k", "a"}}, [][]string{{"RPUSH", "k", "b"}}, true},
		{"lpop the last element", [][]string{{"RPUSH", "k", "a"}}, [][]string{{"LPOP", "k"}}, true},
		{"lset", [][]string{{"RPUSH", "k", "a"}}, [][]string{{"LSET", "k", "0", "b"}}, true},
		{"set over a hash", [][]string{{"HSET", "k", "f", "v"}}, [][]string{{"SET", "k", "v"}}, true},
		{"read a hash", [][]string{{"HSET", "k", "f", "v"}}, [][]string{{"HGETALL", "k"}, {"HLEN", "k"}}, false},
	} {
		x := newTester(t)
		for _, cmd := range c.setup {
			if cmd[0] == "SELECT1" {
				// k exists in database 1 only.
				x.db = 1
				x.do("SET", "k", "in1")
				x.db = 0
				continue
			}
			x.do(cmd...)
		}
		before := uint64(x.do(WatchCommand, "0", "k").Array[0].Int)
		for _, cmd := range c.changes {
			if cmd[0] == "sleep" {
				x.now += TombstoneTTL
				continue
			}
			x.do(cmd...)
		}
		// The EXEC check, at apply.
		x.index++
		res, err := x.e.Apply(x.st, x.index, domain.Command{Time: x.now, Tx: true,
			Watch: []domain.Watch{{Key: []byte("k"), Version: before}}})
		if err != nil {
			t.Fatal(err)
		}
		aborted := res.Reply.Kind == domain.ReplyNilArray
		if aborted != c.changed {
			t.Errorf("%s: EXEC aborted %v, want %v", c.name, aborted, c.changed)
		}
	}
}

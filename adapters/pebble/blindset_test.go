package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// twin applies the same commands to a Pebble KV and to the engine over
// keyspace.MapStore (the reference), and compares what they answer and
// what they count.
type twin struct {
	t    *testing.T
	n    *memNode
	kv   *KV
	ref  *keyspace.MapStore
	eng  keyspace.Engine
	next domain.Index
}

func newTwin(t *testing.T) *twin {
	n := newMemNode(t)
	return &twin{t: t, n: n, kv: n.db.StateMachine(), ref: keyspace.NewMapStore(), next: 1}
}

const twinEpoch = 1_700_000_000_000

// do applies one command line (words split on spaces) in db 0 to both
// and checks that they answer the same.
func (w *twin) do(line string) {
	w.t.Helper()
	var args [][]byte
	for _, a := range strings.Fields(line) {
		args = append(args, []byte(a))
	}
	cmd := domain.Command{Time: twinEpoch + int64(w.next), Calls: []domain.Call{{Args: args}}}
	e := domain.Entry{Index: w.next, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
	got, err := w.kv.Apply([]domain.Entry{e})
	if err != nil {
		w.t.Fatalf("%s: Apply: %v", line, err)
	}
	want, err := w.eng.Apply(w.ref, uint64(w.next), cmd)
	if err != nil {
		w.t.Fatalf("%s: reference Apply: %v", line, err)
	}
	w.next++
	if diff := cmp.Diff(want.Reply, got[0].Reply); diff != "" {
		w.t.Errorf("%s: reply differs from the reference (-want +got):\n%s", line, diff)
	}
}

// check compares, for databases 0 and 1, the key and deadline counts
// (DBSIZE, INFO keyspace) and every key's TYPE, and checks that no
// collection elements are left when no collection is live.
func (w *twin) check(when string) {
	w.t.Helper()
	now := twinEpoch + int64(w.next)
	err := w.kv.View(func(st keyspace.Store) error {
		for db := range 2 {
			k, e, err := st.Len(db)
			if err != nil {
				return err
			}
			rk, re, _ := w.ref.Len(db)
			if k != rk || e != re {
				w.t.Errorf("%s: db %d holds %d keys, %d with a deadline; the reference %d and %d", when, db, k, e, rk, re)
			}
			var keys []string
			_ = w.ref.Scan(db, 0, func(key []byte, _ keyspace.Record) bool {
				keys = append(keys, string(key))
				return true
			})
			for _, key := range append(keys, "never-set") {
				call := domain.Call{DB: db, Args: [][]byte{[]byte("TYPE"), []byte(key)}}
				got, err := w.eng.Read(st, now, call)
				if err != nil {
					return err
				}
				want, _ := w.eng.Read(w.ref, now, call)
				if diff := cmp.Diff(want, got); diff != "" {
					w.t.Errorf("%s: TYPE %s in db %d (-want +got):\n%s", when, key, db, diff)
				}
			}
		}
		return nil
	})
	if err != nil {
		w.t.Fatalf("%s: View: %v", when, err)
	}
	// Elements left in Pebble: none once no collection is live (a
	// sorted set stores more than one key a member, so counts of live
	// ones are not compared).
	live := false
	for db := range 2 {
		_ = w.ref.Scan(db, 0, func(_ []byte, r keyspace.Record) bool {
			live = live || r.Type != keyspace.TypeString
			return !live
		})
	}
	if got := w.elemKeys(); !live && got != 0 {
		w.t.Errorf("%s: %d collection elements stored, and no collection is live", when, got)
	}
}

// elemKeys counts the stored collection elements of the current
// generation.
func (w *twin) elemKeys() int64 {
	w.t.Helper()
	w.kv.mu.RLock()
	gen := w.kv.mu.gen
	w.kv.mu.RUnlock()
	it, err := w.kv.d.db.NewIter(&pebble.IterOptions{LowerBound: slotPrefix(gen, elemSlotBit), UpperBound: dataPrefix(gen + 1)})
	if err != nil {
		w.t.Fatal(err)
	}
	defer it.Close()
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n
}

// A SET that writes without reading first (a new key, which the key
// filter says is absent) leaves the same state as one that reads: the
// key and deadline counts, the types, and no elements of a collection it
// replaced, whatever the key held before; also once the filter is built
// again after a restart and after a restore.
func TestBlindSetKeepsCountsAndTypes(t *testing.T) {
	w := newTwin(t)
	script := func(tag string) {
		for i := range 50 {
			w.do(fmt.Sprintf("SET %s:new:%d v", tag, i)) // new keys: no read
		}
		w.check(tag + ": after blind SETs of new keys")
		for i := range 50 {
			w.do(fmt.Sprintf("SET %s:new:%d v2", tag, i)) // overwrites
		}
		w.do("SET " + tag + ":ttl v PX 100000")
		w.do("SET " + tag + ":ttl v2")        // drops the deadline
		w.do("SET " + tag + ":ttl2 v EX 100") // a new key with a deadline
		w.do("SET " + tag + ":ttl2 v3 KEEPTTL")
		w.do("SET " + tag + ":gone v PX 1") // expires at once, on the next entry
		w.do("SET " + tag + ":gone v2")
		w.do("RPUSH " + tag + ":list a b c")
		w.do("HSET " + tag + ":hash f v g w")
		w.do("SADD " + tag + ":set m n o")
		w.do("ZADD " + tag + ":zset 1 m 2 n")
		big := "RPUSH " + tag + ":biglist"
		for i := range 40 { // more than elemPointDeletes: one range deletion
			big += fmt.Sprintf(" e%d", i)
		}
		w.do(big)
		w.check(tag + ": before SET over every type")
		for _, k := range []string{"list", "hash", "set", "zset", "biglist"} {
			w.do("SET " + tag + ":" + k + " s")
		}
		w.do("DEL " + tag + ":new:0")
		w.do("SET " + tag + ":new:0 back") // in the filter, absent: read, counted once
		w.do("DEL " + tag + ":new:1 " + tag + ":new:2")
		w.do("GET " + tag + ":list")
		w.do("LLEN " + tag + ":list")
		w.do("DBSIZE")
		w.check(tag + ": after SET over every type")
	}
	script("a")
	if !w.kv.filter.valid {
		t.Fatal("the key filter was not built: the test does not test blind writes")
	}
	// Restarted: the filter is built again from what is stored.
	if err := w.kv.Sync(); err != nil {
		t.Fatal(err)
	}
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	w.check("after a restart")
	script("b")
	// Restored from a snapshot: a new generation, a new filter.
	var buf bytes.Buffer
	meta, err := w.kv.Snapshot(&buf)
	if err != nil {
		t.Fatal(err)
	}
	other := newMemNode(t)
	kv2 := other.db.StateMachine()
	if err := kv2.Restore(meta, &buf); err != nil {
		t.Fatal(err)
	}
	w.n, w.kv = other, kv2
	w.check("after a restore")
	script("c")
	w.do("FLUSHDB")
	w.check("after FLUSHDB")
	script("d")
}

// The key filter never says a key it was given is absent, says most
// others are, and grows as keys are added; it answers nothing for
// another generation or before it is built.
func TestKeyFilter(t *testing.T) {
	key := func(slot uint32, i int) []byte { return dataKey(3, slot, fmt.Appendf(nil, "key:%d", i)) }
	var f keyFilter
	if f.absent(3, key(0, 1)) {
		t.Fatal("an unbuilt filter says a key is absent")
	}
	db := newMemNode(t).db
	if err := f.build(db.db, 3, 0); err != nil {
		t.Fatal(err)
	}
	const n = 300_000 // several segments' worth
	for i := range n {
		f.add(3, key(0, i))
	}
	if len(f.segs) < 2 {
		t.Errorf("%d segments after %d adds, want the filter to have grown", len(f.segs), n)
	}
	for i := range n {
		if f.absent(3, key(0, i)) {
			t.Fatalf("key %d was added and is said absent", i)
		}
	}
	fp := 0
	for i := range n {
		if !f.absent(3, key(1, i)) { // the same user keys in another slot
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.05 {
		t.Errorf("false-positive rate %.3f, want at most 0.05", rate)
	}
	if f.absent(4, key(1, 0)) {
		t.Error("the filter answers for another generation")
	}
	if !f.stale(4, 0) || f.stale(3, n) {
		t.Errorf("stale(other gen) = %v, stale(own gen, live %d) = %v; want true, false", f.stale(4, 0), n, f.stale(3, n))
	}
	if !f.stale(3, 1000) {
		t.Error("a filter with far more adds than live keys is not stale")
	}
}

// The filter's hash uses the slot and user-key hash stored in the key.
func TestFilterHashReadsTheKeyLayout(t *testing.T) {
	k := dataKey(7, 9, []byte("x"))
	if got := binary.BigEndian.Uint32(k[9:13]); got != 9 {
		t.Fatalf("slot at k[9:13] = %d, want 9", got)
	}
	if got := binary.BigEndian.Uint64(k[13:21]); got != keyspace.Hash([]byte("x")) {
		t.Fatalf("hash at k[13:21] = %x, want keyspace.Hash", got)
	}
}

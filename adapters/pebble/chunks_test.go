package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// bigValue is n bytes that differ from chunk to chunk and from tag to
// tag, so that a chunk read from the wrong place or value shows.
func bigValue(tag string, n int) []byte {
	out := make([]byte, 0, n+64)
	for i := 0; len(out) < n; i++ {
		out = fmt.Appendf(out, "%s:%d;", tag, i)
	}
	return out[:n]
}

// doArgs applies one command given as arguments to both sides of the
// twin, and checks that they answer the same.
func (w *twin) doArgs(args ...[]byte) {
	w.t.Helper()
	cmd := domain.Command{Time: twinEpoch + int64(w.next), Calls: []domain.Call{{Args: args}}}
	e := domain.Entry{Index: w.next, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
	got, err := w.kv.Apply([]domain.Entry{e})
	if err != nil {
		w.t.Fatalf("%s: Apply: %v", args[0], err)
	}
	want, err := w.eng.Apply(w.ref, uint64(w.next), cmd)
	if err != nil {
		w.t.Fatalf("%s: reference Apply: %v", args[0], err)
	}
	w.next++
	// reflect first: cmp compares large values byte by byte, slowly.
	if reflect.DeepEqual(want.Reply, got[0].Reply) {
		return
	}
	if diff := cmp.Diff(want.Reply, got[0].Reply); diff != "" {
		w.t.Errorf("%s: reply differs from the reference (-want +got):\n%s", args[0], diff)
	}
}

// checkValues compares every string value of database 0 with the
// reference, byte for byte, through Get and through a View's Scan, and
// counts the stored chunks against what the live values need.
func (w *twin) checkValues(when string) {
	w.t.Helper()
	want := map[string]string{}
	wantChunks := 0
	_ = w.ref.Scan(0, 0, func(key []byte, r keyspace.Record) bool {
		if r.Type == keyspace.TypeString {
			v, _, _ := w.ref.Get(0, key)
			want[string(key)] = string(v.Value)
			wantChunks += recordChunks(dataKey(0, 0, key), len(v.Value))
		}
		return true
	})
	got := map[string]string{}
	scanned := map[string]string{}
	for k := range want {
		v, err := w.kv.Get([]byte(k))
		if err != nil {
			w.t.Fatalf("%s: Get(%q): %v", when, k, err)
		}
		got[k] = string(v)
	}
	err := w.kv.View(func(st keyspace.Store) error {
		var keys []string
		err := st.Scan(0, 0, func(key []byte, r keyspace.Record) bool {
			if r.Type == keyspace.TypeString {
				keys = append(keys, string(key))
			}
			return true
		})
		for _, k := range keys {
			r, _, err := st.Get(0, []byte(k))
			if err != nil {
				return err
			}
			scanned[k] = string(r.Value)
		}
		return err
	})
	must(w.t, err)
	if !cmp.Equal(want, got) {
		w.t.Errorf("%s: Get differs from the reference in %d keys", when, diffKeys(want, got))
	}
	if !cmp.Equal(want, scanned) {
		w.t.Errorf("%s: Scan differs from the reference in %d keys", when, diffKeys(want, scanned))
	}
	if n := storedChunks(w.t, w.kv); n != wantChunks {
		w.t.Errorf("%s: %d chunks stored, the live values need %d", when, n, wantChunks)
	}
}

func diffKeys(a, b map[string]string) int {
	n := 0
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			n++
		}
	}
	return n + max(0, len(b)-len(a))
}

// storedChunks counts the record chunks stored under kv's current
// generation.
func storedChunks(t *testing.T, kv *KV) int { return countSlotPairs(t, kv, chunkSlotBit) }

// countSlotPairs counts the pairs stored under kv's current generation
// whose slot's top two bits are top.
func countSlotPairs(t *testing.T, kv *KV, top uint32) int {
	t.Helper()
	kv.mu.RLock()
	gen := kv.mu.gen
	kv.mu.RUnlock()
	it, err := kv.d.db.NewIter(&pebble.IterOptions{LowerBound: dataPrefix(gen), UpperBound: dataPrefix(gen + 1)})
	must(t, err)
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if binary.BigEndian.Uint32(it.Key()[9:13])&(elemSlotBit|chunkSlotBit) == top {
			n++
		}
	}
	return n
}

// Values of every size around the chunk boundary, through every command
// that writes a string, read back byte for byte, with the chunks each
// leaves stored counted: none left over by an overwrite, a DEL, a type
// change or a FLUSHDB, and the key counts never see a chunk.
func TestChunkedValues(t *testing.T) {
	big := func(tag string, n int) []byte { return bigValue(tag, n) }
	b := func(s string) []byte { return []byte(s) }
	steps := []struct {
		name string
		args [][]byte
	}{
		{"small", [][]byte{b("SET"), b("k"), b("v")}},
		{"small to big", [][]byte{b("SET"), b("k"), big("a", 3*chunkSize+7)}},
		{"exactly one chunk stays inline", [][]byte{b("SET"), b("one"), big("o", chunkSize)}},
		{"one byte over", [][]byte{b("SET"), b("two"), big("t", chunkSize+1)}},
		{"big to smaller big", [][]byte{b("SET"), b("k"), big("b", chunkSize+100)}},
		{"big to bigger", [][]byte{b("SET"), b("k"), big("c", 5*chunkSize)}},
		{"big to small", [][]byte{b("SET"), b("k"), b("tiny")}},
		{"append past the threshold", [][]byte{b("APPEND"), b("k"), big("d", chunkSize)}},
		{"append to a chunked value", [][]byte{b("APPEND"), b("k"), big("e", chunkSize/2)}},
		{"setrange inside", [][]byte{b("SETRANGE"), b("k"), b("5"), b("overwritten")}},
		{"setrange grows", [][]byte{b("SETRANGE"), b("k"), b(fmt.Sprint(3 * chunkSize)), b("end")}},
		{"setrange creates", [][]byte{b("SETRANGE"), b("fresh"), b(fmt.Sprint(chunkSize + 3)), b("x")}},
		{"expire keeps the value", [][]byte{b("EXPIRE"), b("k"), b("1000")}},
		{"persist", [][]byte{b("PERSIST"), b("k")}},
		{"getset", [][]byte{b("GETSET"), b("two"), big("g", 2*chunkSize+1)}},
		{"rename", [][]byte{b("RENAME"), b("two"), b("renamed")}},
		{"del", [][]byte{b("DEL"), b("k")}},
		{"big again", [][]byte{b("SET"), b("k"), big("h", 2*chunkSize+9)}},
		{"type change: del then hash", [][]byte{b("DEL"), b("renamed")}},
		{"hash", [][]byte{b("HSET"), b("renamed"), b("f"), b("v")}},
		{"string over the hash", [][]byte{b("SET"), b("renamed"), big("i", 2*chunkSize)}},
		{"long key stays inline", [][]byte{b("SET"), b(strings.Repeat("K", maxChunkedKey+1)), big("j", chunkSize+1)}},
		{"mset in one entry", [][]byte{b("MSET"), b("m1"), big("m", chunkSize+1), b("m1"), big("n", 2*chunkSize+1)}},
	}
	w := newTwin(t)
	for _, s := range steps {
		w.doArgs(s.args...)
		w.check(s.name)
		w.checkValues(s.name)
	}
	// The same state read back after a restart (the key filter and the
	// record cache built anew).
	must(t, w.kv.Sync())
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	w.check("after a restart")
	w.checkValues("after a restart")
	w.doArgs(b("FLUSHDB"))
	w.check("after FLUSHDB")
	w.checkValues("after FLUSHDB")
}

// An unsynced large SET lost in a crash leaves neither its record nor
// any chunk behind; a synced one is read back whole.
func TestChunkedValueCrash(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	// Both under ingestBytes: TestIngestCrash has the ingested batches.
	v1, v2 := bigValue("synced", 3*chunkSize+1), bigValue("lost", 3*chunkSize-1)
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("a", string(v1)))})
	must(t, err)
	must(t, kv.Sync())
	_, err = kv.Apply([]domain.Entry{cmdEntry(2, 1, set("b", string(v2)), set("a", "small"))})
	must(t, err)
	n.crash()
	kv = n.db.StateMachine()
	wantGet(t, kv, "a", string(v1))
	wantGet(t, kv, "b", "")
	if got, want := storedChunks(t, kv), chunkCount(len(v1)); got != want {
		t.Fatalf("%d chunks stored after the crash, want %d (key a's)", got, want)
	}
}

// chunkDamage is one way to damage a stored pair: edit rewrites the pair
// k, v in b; want is in the error that reading chunk 1 of a 3-chunk
// value reports then.
type chunkDamage struct {
	name string
	edit func(b *pebble.Batch, k, v []byte)
	want string
}

var chunkDamages = []chunkDamage{
	{"flipped byte", func(b *pebble.Batch, k, v []byte) {
		v = bytes.Clone(v)
		v[100] ^= 1
		_ = b.Set(k, v, nil)
	}, "chunk 1: "},
	{"missing", func(b *pebble.Batch, k, _ []byte) { _ = b.Delete(k, nil) }, "chunk 1 of 3 missing"},
	{"short", func(b *pebble.Batch, k, v []byte) { _ = b.Set(k, v[:len(v)-1], nil) }, "chunk 1: "},
	{"chunk of another value", func(b *pebble.Batch, k, v []byte) {
		// A CRC right for the key and data under another head: a
		// stale chunk.
		crc := crc32.Update(chunkSeed(12345), castagnoli, k)
		crc = crc32.Update(crc, castagnoli, v[4:])
		_ = b.Set(k, append(binary.LittleEndian.AppendUint32(nil, crc), v[4:]...), nil)
	}, "chunk 1: "},
}

// damage rewrites the pair stored at k in d with edit.
func damage(t *testing.T, d *DB, k []byte, edit func(b *pebble.Batch, k, v []byte)) {
	t.Helper()
	v, ok, err := d.get(d.db, k)
	must(t, err)
	if !ok {
		t.Fatalf("no pair at %x to damage", k)
	}
	b := d.db.NewBatch()
	edit(b, k, v)
	must(t, d.commit(b, false))
}

// A damaged or missing chunk is domain.ErrCorrupt naming the key and the
// chunk, from GET, a View's Get and a snapshot; never a wrong value.
func TestCorruptChunk(t *testing.T) {
	for _, tc := range chunkDamages {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode(t)
			kv := n.db.StateMachine()
			_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("key", string(bigValue("x", 3*chunkSize))))})
			must(t, err)
			k := dataKey(kv.mu.gen, 0, []byte("key"))
			damage(t, n.db, chunkKey(nil, chunkBase(k), 1), tc.edit)
			kv.cache.clear()
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "key") {
					t.Fatalf("%s: %v; want ErrCorrupt naming the key and %q", what, err, tc.want)
				}
			}
			_, err = kv.Get([]byte("key"))
			check("Get", err)
			check("a View's Get", kv.View(func(st keyspace.Store) error {
				_, _, err := st.Get(0, []byte("key"))
				return err
			}))
			// A scan of keys reads no value: it does not see the damage.
			must(t, kv.View(func(st keyspace.Store) error {
				return st.Scan(0, 0, func([]byte, keyspace.Record) bool { return true })
			}))
			_, err = kv.Snapshot(&bytes.Buffer{})
			check("Snapshot", err)
		})
	}
}

// A value stored whole before chunks existed is still read, overwritten
// and deleted.
func TestInlineLargeValueStaysReadable(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("old", "x"))})
	must(t, err)
	k := dataKey(kv.mu.gen, 0, []byte("old"))
	v := bigValue("inline", 2*chunkSize+3)
	b := n.db.db.NewBatch()
	_ = b.Set(k, seal(k, keyspace.AppendRecord(nil, keyspace.Record{Value: v, Version: 1})), nil)
	must(t, n.db.commit(b, false))
	kv.cache.clear()
	wantGet(t, kv, "old", string(v))
	v2 := bigValue("new", 3*chunkSize)
	_, err = kv.Apply([]domain.Entry{cmdEntry(2, 1, set("old", string(v2)))})
	must(t, err)
	wantGet(t, kv, "old", string(v2))
	_, err = kv.Apply([]domain.Entry{cmdEntry(3, 1, del("old"))})
	must(t, err)
	wantGet(t, kv, "old", "")
	if got := storedChunks(t, kv); got != 0 {
		t.Fatalf("%d chunks left after DEL", got)
	}
}

// A snapshot of a DB with chunked values restores into a fresh DB with
// the same values and the same chunks, also when the restore commits in
// the middle of a value (a batch limit under a chunk: after every chunk).
func TestChunkedSnapshotRestore(t *testing.T) {
	for _, batch := range []int{DefaultRestoreBatchSize, chunkSize / 2} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) { testChunkedSnapshotRestore(t, batch) })
	}
}

func testChunkedSnapshotRestore(t *testing.T, batch int) {
	src := newMemNode(t)
	kv := src.db.StateMachine()
	want := map[string]string{}
	var es []domain.Entry
	for i, size := range []int{5, chunkSize, chunkSize + 1, 3*chunkSize + 17, 2 * chunkSize, ingestBytes + 3} {
		key := fmt.Sprintf("k%d", i)
		v := string(bigValue(key, size))
		want[key] = v
		es = append(es, cmdEntry(domain.Index(i+1), 1, set(key, v)))
	}
	_, err := kv.Apply(es)
	must(t, err)
	var buf bytes.Buffer
	meta, err := kv.Snapshot(&buf)
	must(t, err)
	dst := newMemNode(t)
	dst.db.opts.RestoreBatchSize = batch
	// Something to replace, chunked too.
	_, err = dst.db.StateMachine().Apply([]domain.Entry{cmdEntry(1, 1, set("gone", string(bigValue("g", 2*chunkSize+1))))})
	must(t, err)
	must(t, dst.db.StateMachine().Restore(meta, &buf))
	got := map[string]string{}
	for k := range want {
		v, err := dst.db.StateMachine().Get([]byte(k))
		must(t, err)
		got[k] = string(v)
	}
	if !cmp.Equal(want, got) {
		t.Fatalf("restored values differ in %d keys", diffKeys(want, got))
	}
	wantGet(t, dst.db.StateMachine(), "gone", "")
	if a, b := storedChunks(t, kv), storedChunks(t, dst.db.StateMachine()); a != b || a == 0 {
		t.Fatalf("%d chunks restored, the source holds %d", b, a)
	}
	// Nothing of the old generation is left either.
	it, err := dst.db.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataPrefix(dst.db.StateMachine().mu.gen)})
	must(t, err)
	defer it.Close()
	if it.First() {
		t.Fatalf("old generation's key %x left after the restore", it.Key())
	}
}

// Log entries of every size around the chunk boundary are read back byte
// for byte, across a restart, a suffix truncation and a purge that cut
// between chunked entries; no chunk outlives its entry.
func TestChunkedLogEntries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"batched", []int{0, 10, chunkSize, chunkSize + 1, 3*chunkSize + 5, 7, 2 * chunkSize}},
		// Entries of ingestBytes or more are ingested (see ingestBytes),
		// between batches or side by side.
		{"ingested", []int{0, 10, ingestBytes + 3, chunkSize + 1, ingestBytes, ingestBytes + chunkSize, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) { testChunkedLogEntries(t, tc.sizes) })
	}
}

func testChunkedLogEntries(t *testing.T, sizes []int) {
	n := newMemNode(t)
	entry := func(i domain.Index, term domain.Term, tag string) domain.Entry {
		return domain.Entry{Index: i, Term: term, Type: domain.EntryNormal, Data: bigValue(tag, sizes[int(i-1)%len(sizes)])}
	}
	var want []domain.Entry
	for i := range len(sizes) {
		want = append(want, entry(domain.Index(i+1), 1, "t1"))
	}
	want[0].Data = nil
	must(t, n.db.LogStore().Append(want))
	check := func(when string, lo domain.Index) {
		t.Helper()
		last, err := n.db.LogStore().LastIndex()
		must(t, err)
		got, err := n.db.LogStore().Entries(lo, last+1, 0)
		if err != nil {
			t.Fatalf("%s: Entries: %v", when, err)
		}
		if len(got) != len(want[lo-1:]) {
			t.Fatalf("%s: %d entries from %d, want %d", when, len(got), lo, len(want[lo-1:]))
		}
		for k, e := range want[lo-1:] {
			g := got[k]
			if g.Index != e.Index || g.Term != e.Term || g.Type != e.Type || !bytes.Equal(g.Data, e.Data) {
				t.Fatalf("%s: entry %d/%d read back as %d/%d with %d bytes, want %d", when, e.Index, e.Term, g.Index, g.Term, len(g.Data), len(e.Data))
			}
		}
		for _, e := range want[lo-1:] {
			term, err := n.db.LogStore().Term(e.Index)
			if err != nil || term != e.Term {
				t.Fatalf("%s: Term(%d) = %d, %v; want %d", when, e.Index, term, err, e.Term)
			}
		}
		// One at a time with a byte limit: the first is always returned.
		for _, e := range want[lo-1:] {
			got, err := n.db.LogStore().Entries(e.Index, last+1, 1)
			if err != nil || len(got) != 1 || !bytes.Equal(got[0].Data, e.Data) {
				t.Fatalf("%s: Entries(%d, limit 1): %d entries, %v", when, e.Index, len(got), err)
			}
		}
		var chunks int
		for _, e := range want[lo-1:] {
			if len(e.Data) > chunkSize {
				chunks += chunkCount(len(e.Data))
			}
		}
		if got := logChunks(t, n.db); got != chunks {
			t.Fatalf("%s: %d log chunks stored, want %d", when, got, chunks)
		}
	}
	check("appended", 1)
	must(t, n.db.LogStore().Sync())
	n.crash()
	check("after a restart", 1)

	// Truncate inside the chunked run, then write other entries there.
	must(t, n.db.LogStore().TruncateSuffix(5))
	want = want[:4]
	check("truncated", 1)
	for i := domain.Index(5); i <= 7; i++ {
		want = append(want, entry(i, 2, "t2"))
	}
	must(t, n.db.LogStore().Append(want[4:]))
	check("rewritten", 1)

	must(t, n.db.LogStore().Purge(5))
	check("purged", 6)
	must(t, n.db.LogStore().Sync())
	n.crash()
	check("purged, after a restart", 6)

	// An unsynced chunked entry lost in a crash leaves no chunk.
	must(t, n.db.LogStore().Append([]domain.Entry{{Index: 8, Term: 2, Type: domain.EntryNormal, Data: bigValue("lost", 2*chunkSize)}}))
	n.crash()
	check("lost append", 6)
}

// logChunks counts the stored chunks of log entries.
func logChunks(t *testing.T, d *DB) int {
	t.Helper()
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	must(t, err)
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) == 9+4 {
			n++
		}
	}
	return n
}

// A damaged or missing chunk of a log entry is domain.ErrCorrupt naming
// the entry and the chunk.
func TestCorruptLogChunk(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(b *pebble.Batch, k, v []byte)
		want string
	}{
		{"flipped byte", func(b *pebble.Batch, k, v []byte) {
			v = bytes.Clone(v)
			v[len(v)-1] ^= 1
			_ = b.Set(k, v, nil)
		}, "entry 2: chunk 1: "},
		{"missing", func(b *pebble.Batch, k, _ []byte) { _ = b.Delete(k, nil) }, "entry 2: chunk 1 of 2 missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode(t)
			es := []domain.Entry{
				{Index: 1, Term: 1, Data: []byte("a")},
				{Index: 2, Term: 1, Data: bigValue("e", chunkSize+1)},
				{Index: 3, Term: 1, Data: []byte("c")},
			}
			must(t, n.db.LogStore().Append(es))
			ck := chunkKey(nil, logKey(2), 1)
			v, ok, err := n.db.get(n.db.db, ck)
			must(t, err)
			if !ok {
				t.Fatal("chunk not stored")
			}
			b := n.db.db.NewBatch()
			tc.edit(b, ck, v)
			must(t, n.db.commit(b, false))
			_, err = n.db.LogStore().Entries(1, 4, 0)
			if !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Entries: %v; want ErrCorrupt with %q", err, tc.want)
			}
		})
	}
}

package pebble

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// A batch for a large entry is sized for it and does not grow: Pebble's
// doubling made a value just past a power of two cost twice its size,
// in the log's batch and in the apply's.
func TestLargeBatchesAreSizedUpFront(t *testing.T) {
	n := newMemNode(t)
	value := bytes.Repeat([]byte("x"), 2<<20+5) // just past a power of two
	e := cmdEntry(1, 1, set("big", string(value)))
	ents := []domain.Entry{e}

	lb := newLogBatch(n.db.db, ents)
	defer lb.Close()
	must(t, putEntry(lb, e))
	if c, want := cap(lb.Repr()), entriesData(ents); c > want {
		t.Fatalf("log batch grew to %d bytes for an entry of %d, sized %d", c, len(e.Data), want)
	}
	ab := newApplyBatch(n.db.db, ents)
	defer ab.Close()
	_, _, err := putRecord(ab, dataKey(1, 0, []byte("some key")), keyspace.Record{Value: value, Version: 1})
	must(t, err)
	if c, want := cap(ab.Repr()), entriesData(ents); c > want {
		t.Fatalf("apply batch grew to %d bytes for an entry of %d, sized %d", c, len(e.Data), want)
	}

	// And through the stores.
	must(t, n.db.LogStore().Append(ents))
	got, err := n.db.LogStore().Entries(1, 2, 0)
	must(t, err)
	if len(got) != 1 || !bytes.Equal(got[0].Data, e.Data) {
		t.Fatalf("log entries read back: %d", len(got))
	}
	kv := n.db.StateMachine()
	_, err = kv.Apply(ents)
	must(t, err)
	wantGet(t, kv, "big", string(value))
}

// After a large write, Pebble lets go of its batches (see releaseLarge):
// they used to stay in its memtable queue's array until enough later
// writes had rotated memtables, the value's size on every node.
func TestLargeBatchIsReleased(t *testing.T) {
	// A real directory: an in-memory one keeps the files on the heap.
	d, err := Open(Options{Dir: t.TempDir(), MemTableSize: 4 << 20, NoSync: true})
	must(t, err)
	defer d.Close()
	heap := func() int64 {
		// Twice: what sync.Pools hold (Pebble's WAL blocks) goes at the
		// second.
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	base := heap()
	const size = 32 << 20
	ents := []domain.Entry{cmdEntry(1, 1, set("big", string(bigValue("x", size))))}
	must(t, d.LogStore().Append(ents))
	// The apply flushes the log's batch first (drainLarge).
	_, err = d.StateMachine().Apply(ents)
	must(t, err)
	ents = nil
	got, err := d.StateMachine().Get([]byte("big"))
	must(t, err)
	if !bytes.Equal(got, bigValue("x", size)) {
		t.Fatalf("read back %d bytes, not the %d written", len(got), size)
	}
	got = nil
	// Wait for those flushes and for the compactions they start, whose
	// buffers would count.
	busy := func() bool {
		m := d.db.Metrics()
		return d.largeCommits.Load() != 0 || m.Compact.NumInProgress != 0 || m.Flush.NumInProgress != 0
	}
	for deadline := time.Now().Add(10 * time.Second); busy(); {
		if time.Now().After(deadline) {
			t.Fatal("the flushes after the large batches did not finish in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if grew := heap() - base; grew > size/2 {
		t.Fatalf("the heap is %d MiB above its size before a %d MiB write, after it", grew>>20, size>>20)
	}
}

// A batch of the largest value the front door accepts by default, queued
// for its flush beside Pebble's two default memtables, must not reach the
// threshold at which Pebble holds every write back (it cost a 256 MB
// SET's cluster its leader: the driver's loop waited in a small Apply).
func TestLargeBatchDoesNotStallWrites(t *testing.T) {
	for _, mem := range []uint64{4 << 20, DefaultMemTableSize, 64 << 20} {
		queued := 2*mem + 512<<20
		if limit := uint64(stopWritesThreshold(mem)) * mem; queued >= limit {
			t.Errorf("memtable %d MiB: %d MiB queued reaches the stop-writes limit of %d MiB", mem>>20, queued>>20, limit>>20)
		}
	}
}

// A large log batch leaves nothing large behind in Pebble's batch pool:
// pebble.WithInitialSizeBytes stays on a pooled batch, and the next batch
// taken from the pool (a small append, the sync's empty record)
// allocated the large entry's size again.
func TestLargeLogBatchLeavesThePoolSmall(t *testing.T) {
	// A real directory: an in-memory file's buffer grows as it is written.
	d, err := Open(Options{Dir: t.TempDir()})
	must(t, err)
	defer d.Close()
	const size = 8 << 20
	must(t, d.LogStore().Append([]domain.Entry{cmdEntry(1, 1, set("big", string(bigValue("x", size))))}))
	must(t, d.LogStore().Sync())
	small := []domain.Entry{cmdEntry(2, 1, set("k", "v"))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	must(t, d.LogStore().Append(small))
	must(t, d.LogStore().Sync())
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > size/4 {
		t.Fatalf("a small append after a %d MiB one allocated %d KiB", size>>20, grew>>10)
	}
}

// A command that makes a large value from a stored one carries almost
// nothing in its entry: the batch moves to one sized for the value
// rather than doubling up to it (which copied up to the value's size in
// one unpreemptible move: a SETRANGE of 2 bytes into 512 MiB cost a
// cluster its leader), and the values read back whole.
func TestDerivedLargeValueGetsABatchOfItsSize(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	const size = 3 << 20 // under ingestBytes: a larger record is deferred (TestLargeRecordIsDeferred)
	v := bigValue("v", size)
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("big", string(v)))})
	must(t, err)

	kv.mu.Lock()
	b := kv.d.db.NewIndexedBatch()
	dbs := *kv.mu.dbs
	st := &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: &dbs}
	must(t, st.Put(0, []byte("small"), keyspace.Record{Value: []byte("x")}))
	must(t, st.Put(0, []byte("copy"), keyspace.Record{Value: v}))
	moved, room := st.moved, cap(st.w.Repr())
	r, ok, err := st.Get(0, []byte("small"))
	st.w.Close()
	kv.mu.Unlock()
	if !moved || room >= 2*size {
		t.Fatalf("batch moved %v, %d bytes of room for a %d-byte value: want moved, under twice the value", moved, room, size)
	}
	if err != nil || !ok || string(r.Value) != "x" {
		t.Fatalf("the write made before the move reads %q %v %v", r.Value, ok, err)
	}

	// An element's value likewise (LMOVE, COPY of a hash).
	kv.mu.Lock()
	b = kv.d.db.NewIndexedBatch()
	st = &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: &dbs}
	must(t, st.ElemPut(0, 7, []byte("f"), []byte("x")))
	must(t, st.ElemPut(0, 7, []byte("g"), v))
	moved, room = st.moved, cap(st.w.Repr())
	got, ok, err := st.ElemGet(0, 7, []byte("f"))
	st.w.Close()
	kv.mu.Unlock()
	if !moved || room >= 2*size {
		t.Fatalf("element: batch moved %v, %d bytes of room for a %d-byte value: want moved, under twice the value", moved, room, size)
	}
	if err != nil || !ok || string(got) != "x" {
		t.Fatalf("the element written before the move reads %q %v %v", got, ok, err)
	}

	call := func(i domain.Index, args ...string) domain.Entry {
		var a [][]byte
		for _, s := range args {
			a = append(a, []byte(s))
		}
		return domain.Entry{Index: i, Term: 1, Type: domain.EntryNormal,
			Data: domain.EncodeCommand(domain.Command{Time: twinEpoch, Calls: []domain.Call{{Args: a}}})}
	}
	_, err = kv.Apply([]domain.Entry{call(2, "SETRANGE", "big", "100", "yy"), call(3, "APPEND", "big", "zz")})
	must(t, err)
	want := append(append(append([]byte{}, v[:100]...), "yy"...), v[102:]...)
	want = append(want, "zz"...)
	got, err = kv.Get([]byte("big"))
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatalf("after SETRANGE and APPEND: %d bytes, want %d, equal %v", len(got), len(want), bytes.Equal(got, want))
	}
}

// A stream chunk of tens of MB is read with a few doublings and one
// buffer of its length: append's growth by a quarter copied a 512 MiB
// row about 25 times, and a restore peaked at over 4 times it. The
// length is a little over a power of two, where a plain doubling would
// allocate once more. Counted in bytes allocated by the read.
func TestStreamChunkReadGrowsFew(t *testing.T) {
	n := 16<<20 + 100
	body := bytes.Repeat([]byte{'D'}, n)
	var h [8]byte
	binary.LittleEndian.PutUint32(h[:], uint32(n))
	binary.LittleEndian.PutUint32(h[4:], chunkCRC(0, body))
	cr := &chunkReader{r: io.MultiReader(bytes.NewReader(h[:]), bytes.NewReader(body))}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	typ, p, err := cr.next()
	runtime.ReadMemStats(&after)
	must(t, err)
	if typ != 'D' || len(p) != n-1 {
		t.Fatalf("read chunk %q of %d bytes, want 'D' of %d", typ, len(p), n-1)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(n)*5/2 {
		t.Fatalf("reading a chunk of %d bytes allocated %d (%.1fx), want at most 2.5x", n, got, float64(got)/float64(n))
	}
}

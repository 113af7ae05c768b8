package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// A large log entry and a large SET's apply go to ingested tables: the
// WAL takes in a small part of the value, the tables all of it.
func TestIngestKeepsLargeValuesOutOfTheWAL(t *testing.T) {
	n := newMemNode(t)
	v := bigValue("large", ingestBytes+chunkSize/2)
	e := cmdEntry(1, 1, set("k", string(v)))
	wal, ingested := n.db.db.Metrics().WAL.BytesIn, n.db.ingested.Load()
	must(t, n.db.LogStore().Append([]domain.Entry{e}))
	_, err := n.db.StateMachine().Apply([]domain.Entry{e})
	must(t, err)
	if got := n.db.db.Metrics().WAL.BytesIn - wal; got > uint64(len(v)/8) {
		t.Errorf("the WAL took in %d bytes for a %d-byte value in the log and a record", got, len(v))
	}
	if got := n.db.ingested.Load() - ingested; got < 2*uint64(len(v)) {
		t.Errorf("%d bytes ingested, want the value twice (%d)", got, 2*len(v))
	}
	wantGet(t, n.db.StateMachine(), "k", string(v))
	got, err := n.db.LogStore().Entries(1, 2, 0)
	must(t, err)
	if !bytes.Equal(got[0].Data, e.Data) {
		t.Fatalf("log entry read back with %d bytes, want %d", len(got[0].Data), len(e.Data))
	}
}

// An ingested entry is durable at once, so the entries appended before
// it must be too: a crash that keeps it keeps them, and the log has no
// hole.
func TestIngestedEntryKeepsTheLogWhole(t *testing.T) {
	n := newMemNode(t)
	s := n.db.LogStore()
	must(t, s.Append(ents(1, 3, 1)))
	must(t, s.Sync())
	must(t, s.Append(ents(4, 6, 1))) // not synced
	large := domain.Entry{Index: 7, Term: 1, Type: domain.EntryNormal, Data: bigValue("large", ingestBytes)}
	must(t, s.Append([]domain.Entry{large}))
	n.crash()
	s = n.db.LogStore()
	wantBounds(t, s, 1, 7)
	got, err := s.Entries(1, 8, 0)
	if err != nil {
		t.Fatalf("Entries after the crash: %v", err)
	}
	want := append(ents(1, 6, 1), large)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("log after the crash (-want +got):\n%.2000s", diff)
	}
}

// The same for the state machine: an ingested apply does not outlive the
// unsynced applies before it, which would leave its applied index past
// writes that are gone.
func TestIngestedApplyKeepsTheStateWhole(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("a", "synced"))})
	must(t, err)
	must(t, kv.Sync())
	_, err = kv.Apply([]domain.Entry{cmdEntry(2, 1, set("b", "unsynced"))})
	must(t, err)
	v := bigValue("large", ingestBytes)
	_, err = kv.Apply([]domain.Entry{cmdEntry(3, 1, set("c", string(v)))})
	must(t, err)
	n.crash()
	kv = n.db.StateMachine()
	m, err := kv.Applied()
	must(t, err)
	if m.Index != 3 {
		t.Fatalf("applied index %d after the crash, want 3 (an ingestion is durable)", m.Index)
	}
	wantGet(t, kv, "a", "synced")
	wantGet(t, kv, "b", "unsynced")
	wantGet(t, kv, "c", string(v))
}

// Several changes of the same keys in one ingested batch leave what the
// reference store does: the last write of each key wins.
func TestIngestedBatchMatchesReference(t *testing.T) {
	const c = chunkSize
	w := newTwin(t)
	w.doCalls(argv("SET", "old", bigValue("old", 6*c)), argv("SET", "gone", "x"))
	ingested := w.n.db.ingested.Load()
	w.doCalls(
		argv("SET", "k", bigValue("k1", ingestBytes)),
		argv("APPEND", "k", "tail"),
		argv("SET", "j", "small"),
		argv("DEL", "j"),
		argv("SET", "old", bigValue("new", 2*c+3)),
		argv("DEL", "gone"),
		argv("SET", "gone", "back"),
		argv("SET", "m", bigValue("m", 3*c)),
		argv("DEL", "m"),
	)
	if w.n.db.ingested.Load() == ingested {
		t.Fatal("the batch was not ingested")
	}
	w.checkValues("after the ingested batch")
	w.n.crash()
	w.kv = w.n.db.StateMachine()
	w.checkValues("after a crash")
}

// Deferred values (see deferredValue) meet every other write to their
// key in one transaction: each transaction leaves what the reference
// store does, before and after a crash.
func TestDeferredValuesMatchReference(t *testing.T) {
	const c = chunkSize
	big := func(tag string, extra int) []byte { return bigValue(tag, ingestBytes+extra) }
	for _, tc := range []struct {
		name  string
		calls [][][]byte
	}{
		{"set twice", [][][]byte{argv("SET", "k", big("a", 2*c)), argv("SET", "k", big("b", 5))}},
		{"over a batched value", [][][]byte{argv("SET", "k", bigValue("a", 3*c)), argv("SET", "k", big("b", 7))}},
		{"then a smaller one", [][][]byte{argv("SET", "k", big("a", c)), argv("SET", "k", bigValue("b", 2*c+1))}},
		{"then inline", [][][]byte{argv("SET", "k", big("a", 0)), argv("SET", "k", "small")}},
		{"then deleted", [][][]byte{argv("SET", "k", big("a", 0)), argv("DEL", "k")}},
		{"then changed in part", [][][]byte{argv("SET", "k", big("a", 3)), argv("SETRANGE", "k", c-2, "xyz"), argv("APPEND", "k", bigValue("t", c)), argv("GETRANGE", "k", c-5, c+5)}},
		{"then renamed and copied", [][][]byte{argv("SET", "k", big("a", 9)), argv("RENAME", "k", "j"), argv("COPY", "j", "k"), argv("SETBIT", "k", 8, 1)}},
		{"then flushed", [][][]byte{argv("SET", "k", big("a", 0)), argv("FLUSHDB"), argv("SET", "j", big("b", 1))}},
		{"then swapped", [][][]byte{argv("SET", "k", big("a", 0)), argv("SWAPDB", 0, 1), argv("SWAPDB", 0, 1), argv("GET", "k"), argv("APPEND", "k", "z"), argv("SET", "j", big("b", 1))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTwin(t)
			w.doCalls(argv("SET", "k", bigValue("old", 6*c)), argv("SET", "j", "x"))
			w.doCalls(tc.calls...)
			w.checkValues(tc.name)
			must(t, w.kv.Sync()) // an apply committed as a batch is not
			w.n.crash()
			w.kv = w.n.db.StateMachine()
			w.checkValues(tc.name + ", after a crash")
		})
	}
}

// sortedOps orders a batch's writes by key, keeps the last write of each,
// and refuses a range deletion.
func TestSortedOps(t *testing.T) {
	type op struct {
		Kind       pebble.InternalKeyKind
		Key, Value string
	}
	for _, tc := range []struct {
		name  string
		build func(b *pebble.Batch)
		want  []op
		ok    bool
	}{
		{"last write wins", func(b *pebble.Batch) {
			_ = b.LogData(nil, nil)
			_ = b.Set([]byte("b"), []byte("1"), nil)
			_ = b.Set([]byte("a"), []byte("1"), nil)
			_ = b.Delete([]byte("a"), nil)
			_ = b.Delete([]byte("c"), nil)
			_ = b.Set([]byte("c"), []byte("2"), nil)
			_ = b.Set([]byte("b"), []byte("2"), nil)
		}, []op{
			{pebble.InternalKeyKindDelete, "a", ""},
			{pebble.InternalKeyKindSet, "b", "2"},
			{pebble.InternalKeyKindSet, "c", "2"},
		}, true},
		{"range deletion", func(b *pebble.Batch) {
			_ = b.Set([]byte("a"), []byte("1"), nil)
			_ = b.DeleteRange([]byte("a"), []byte("b"), nil)
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newMemNode(t)
			b := n.db.db.NewBatch()
			defer b.Close()
			tc.build(b)
			ops, ok, err := sortedOps(b)
			must(t, err)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			var got []op
			for _, o := range ops {
				got = append(got, op{o.kind, string(o.key), string(o.value)})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("sortedOps (-want +got):\n%s", diff)
			}
		})
	}
}

// Open clears what an ingestion left behind in a crash before Pebble took
// its table.
func TestOpenClearsIngestDir(t *testing.T) {
	n := newMemNode(t)
	path := n.fs.PathJoin("node", ingestDir, "000999.sst")
	f, err := n.fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Write([]byte("half a table"))
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	n.crash()
	if _, err := n.fs.Stat(path); err == nil {
		t.Fatalf("%s is still there after Open", path)
	}
}

// A table that cannot be written is fatal, as a failed WAL write is: the
// large entry is not in the log, and the DB refuses every later call.
func TestFailedTableIsFatal(t *testing.T) {
	tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileSync) {
			return syscall.ENOSPC
		}
		return nil
	})}
	db, err := Open(Options{Dir: "node", FS: errorfs.Wrap(vfs.NewCrashableMem(), tog)})
	must(t, err)
	defer db.Close()
	s := db.LogStore()
	must(t, s.Append(ents(1, 3, 1)))
	tog.On()
	err = s.Append([]domain.Entry{{Index: 4, Term: 1, Type: domain.EntryNormal, Data: bigValue("large", ingestBytes)}})
	if !errors.Is(err, domain.ErrDiskFull) {
		t.Fatalf("Append of a large entry on a full disk: %v, want ErrDiskFull", err)
	}
	tog.Off()
	if err := s.Append(ents(4, 4, 1)); err == nil {
		t.Fatal("Append succeeded after a failed table")
	}
	if _, err := db.StateMachine().Apply([]domain.Entry{cmdEntry(1, 1, set("a", "b"))}); !errors.Is(err, domain.ErrDiskFull) {
		t.Fatalf("Apply after a failed table: %v, want ErrDiskFull", err)
	}
}

// A record of ingestBytes or more leaves its chunks out of the apply's
// batch: the batch holds its head, and the value only its deferral.
func TestLargeRecordIsDeferred(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	v := bigValue("v", 2*ingestBytes)
	kv.mu.Lock()
	b := kv.d.db.NewIndexedBatch()
	dbs := *kv.mu.dbs
	st := &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: &dbs}
	must(t, st.Put(0, []byte("big"), keyspace.Record{Value: v}))
	held, deferred := len(st.w.Repr()), st.deferredBytes()
	r, ok, err := st.Get(0, []byte("big"))
	st.w.Close()
	kv.mu.Unlock()
	if held > 64<<10 || deferred != len(v) {
		t.Fatalf("the batch holds %d bytes and %d are deferred for a %d-byte value", held, deferred, len(v))
	}
	if err != nil || !ok || !bytes.Equal(r.Value, v) {
		t.Fatalf("the deferred value reads back with %d bytes, %v %v", len(r.Value), ok, err)
	}

	// Applied: the apply's batch is not sized for the value, and the
	// value is stored.
	e := cmdEntry(1, 1, set("big", string(v)))
	nb := newApplyBatch(kv.d.db, []domain.Entry{e})
	if got := cap(nb.Repr()); got > 64<<10 {
		t.Errorf("the apply batch for a %d MiB SET takes %d KiB", len(v)>>20, got>>10)
	}
	nb.Close()
	_, err = kv.Apply([]domain.Entry{e})
	must(t, err)
	wantGet(t, kv, "big", string(v))
}

// BenchmarkLargeSet is one node's storage work for a SET of an 8 MB value:
// the log append and its sync, then the apply, on a real directory.
func BenchmarkLargeSet(b *testing.B) {
	d, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	v := string(bigValue("v", 8_000_000))
	b.SetBytes(int64(len(v)))
	for i := range b.N {
		e := cmdEntry(domain.Index(i+1), 1, set(fmt.Sprint("k", i%8), v))
		if err := d.LogStore().Append([]domain.Entry{e}); err != nil {
			b.Fatal(err)
		}
		if err := d.LogStore().Sync(); err != nil {
			b.Fatal(err)
		}
		if _, err := d.StateMachine().Apply([]domain.Entry{e}); err != nil {
			b.Fatal(err)
		}
	}
}

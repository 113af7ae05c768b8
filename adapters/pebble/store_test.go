package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
)

// memNode is a node's disk in memory that can crash: crash keeps only
// what was synced and reopens the DB on it.
type memNode struct {
	t  *testing.T
	fs *vfs.MemFS
	db *DB
}

func newMemNode(t *testing.T) *memNode {
	t.Helper()
	n := &memNode{t: t, fs: vfs.NewCrashableMem()}
	n.open()
	t.Cleanup(func() { _ = n.db.Close() })
	return n
}

func (n *memNode) open() {
	n.t.Helper()
	db, err := Open(Options{Dir: "node", FS: n.fs, CacheSize: 1 << 20})
	if err != nil {
		n.t.Fatalf("open: %v", err)
	}
	n.db = db
}

// crash throws away everything not synced and reopens.
func (n *memNode) crash() {
	n.t.Helper()
	clone := n.fs.CrashClone(vfs.CrashCloneCfg{})
	_ = n.db.Close()
	n.fs = clone
	n.open()
}

func ents(lo, hi domain.Index, term domain.Term) []domain.Entry {
	var out []domain.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, domain.Entry{Index: i, Term: term, Type: domain.EntryNormal, Data: fmt.Appendf(nil, "e%d/%d", i, term)})
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantBounds(t *testing.T, s *LogStore, first, last domain.Index) {
	t.Helper()
	f, err := s.FirstIndex()
	must(t, err)
	l, err := s.LastIndex()
	must(t, err)
	if f != first || l != last {
		t.Fatalf("bounds [%d,%d], want [%d,%d]", f, l, first, last)
	}
}

func TestLogStore(t *testing.T) {
	n := newMemNode(t)
	s := n.db.LogStore()
	wantBounds(t, s, 1, 0)
	if _, err := s.Term(1); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Term(1) on empty log: %v", err)
	}
	must(t, s.Append(ents(1, 10, 1)))
	wantBounds(t, s, 1, 10)
	if err := s.Append(ents(12, 12, 1)); err == nil {
		t.Fatal("append with a gap succeeded")
	}
	if err := s.Append([]domain.Entry{{Index: 11, Term: 1}, {Index: 13, Term: 1}}); err == nil {
		t.Fatal("non-contiguous append succeeded")
	}
	wantBounds(t, s, 1, 10)

	got, err := s.Entries(3, 7, 0)
	must(t, err)
	if len(got) != 4 || got[0].Index != 3 || !bytes.Equal(got[3].Data, []byte("e6/1")) {
		t.Fatalf("Entries(3,7) = %+v", got)
	}
	size := got[0].Size()
	if got, _ := s.Entries(3, 7, 2*size); len(got) != 2 {
		t.Fatalf("maxBytes 2 entries: got %d", len(got))
	}
	if got, _ := s.Entries(3, 7, 1); len(got) != 1 {
		t.Fatalf("maxBytes below one entry: got %d, want 1", len(got))
	}
	if _, err := s.Entries(5, 12, 0); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("Entries past end: %v", err)
	}

	must(t, s.TruncateSuffix(8))
	wantBounds(t, s, 1, 7)
	must(t, s.TruncateSuffix(100))
	must(t, s.Append(ents(8, 9, 2)))
	if term, _ := s.Term(8); term != 2 {
		t.Fatalf("Term(8) = %d after conflict, want 2", term)
	}

	must(t, s.Purge(4))
	wantBounds(t, s, 5, 9)
	if _, err := s.Term(4); !errors.Is(err, domain.ErrCompacted) {
		t.Fatalf("Term(4) after purge: %v", err)
	}
	if _, err := s.Entries(3, 6, 0); !errors.Is(err, domain.ErrCompacted) {
		t.Fatalf("Entries below first: %v", err)
	}
	if err := s.TruncateSuffix(3); !errors.Is(err, domain.ErrCompacted) {
		t.Fatalf("TruncateSuffix below first: %v", err)
	}
	must(t, s.Purge(2)) // below first: no-op
	wantBounds(t, s, 5, 9)
	must(t, s.Purge(20))
	wantBounds(t, s, 21, 20)
	must(t, s.Append(ents(21, 22, 3)))
	wantBounds(t, s, 21, 22)

	// Reopen without a crash: everything is there.
	must(t, s.Sync())
	must(t, n.db.Close())
	n.open()
	wantBounds(t, n.db.LogStore(), 21, 22)

	must(t, n.db.LogStore().Close())
	if _, err := n.db.LogStore().LastIndex(); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestLogStoreCrash(t *testing.T) {
	n := newMemNode(t)
	s := n.db.LogStore()
	must(t, s.Append(ents(1, 5, 1)))
	must(t, s.Sync())
	must(t, s.Append(ents(6, 9, 1)))
	n.crash()
	s = n.db.LogStore()
	wantBounds(t, s, 1, 5)

	must(t, s.Append(ents(6, 9, 2)))
	must(t, s.Purge(3))
	must(t, s.Sync())
	must(t, s.TruncateSuffix(7))
	must(t, s.Purge(5))
	n.crash()
	s = n.db.LogStore()
	wantBounds(t, s, 4, 9)
	got, err := s.Entries(4, 10, 0)
	must(t, err)
	for i, e := range got {
		if want := domain.Index(4 + i); e.Index != want {
			t.Fatalf("entry %d has index %d", want, e.Index)
		}
	}

	// A purge past the end survives as an empty log at the right place.
	must(t, s.Purge(30))
	must(t, s.Sync())
	n.crash()
	wantBounds(t, n.db.LogStore(), 31, 30)
}

func TestSyncIsFreeWhenClean(t *testing.T) {
	var syncs int
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) {
			syncs++
		}
		return nil
	})
	db, err := Open(Options{Dir: "node", FS: errorfs.Wrap(vfs.NewMem(), inj)})
	must(t, err)
	defer db.Close()
	must(t, db.LogStore().Append(ents(1, 1, 1)))
	before := syncs
	must(t, db.LogStore().Sync())
	if syncs != before+1 {
		t.Fatalf("Sync after a write made %d WAL syncs, want 1", syncs-before)
	}
	before = syncs
	must(t, db.LogStore().Sync())
	must(t, db.StateMachine().Sync())
	if syncs != before {
		t.Fatalf("Sync with nothing pending made %d WAL syncs, want 0", syncs-before)
	}
}

func TestVoteStore(t *testing.T) {
	n := newMemNode(t)
	v, err := n.db.VoteStore().Vote()
	must(t, err)
	if v != (domain.Vote{}) {
		t.Fatalf("fresh vote %+v", v)
	}
	must(t, n.db.VoteStore().SetVote(domain.Vote{Term: 3, VotedFor: 2}))
	n.crash() // SetVote is durable on return: no Sync
	v, err = n.db.VoteStore().Vote()
	must(t, err)
	if v != (domain.Vote{Term: 3, VotedFor: 2}) {
		t.Fatalf("vote after crash %+v", v)
	}
}

func set(k, v string) domain.Op {
	return domain.Op{Kind: domain.OpSet, Key: []byte(k), Value: []byte(v)}
}
func del(k string) domain.Op { return domain.Op{Kind: domain.OpDel, Key: []byte(k)} }

func cmdEntry(i domain.Index, term domain.Term, ops ...domain.Op) domain.Entry {
	return domain.Entry{Index: i, Term: term, Type: domain.EntryNormal, Data: domain.EncodeCommand(domain.Command{Ops: ops})}
}

func wantGet(t *testing.T, kv *KV, key, want string) {
	t.Helper()
	got, err := kv.Get([]byte(key))
	if want == "" {
		if !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
		}
		return
	}
	if err != nil || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, got, err, want)
	}
}

func TestKVApply(t *testing.T) {
	n := newMemNode(t)
	kv := n.db.StateMachine()
	mem := domain.Membership{Voters: []domain.NodeID{1, 2, 3}}
	res, err := kv.Apply([]domain.Entry{
		cmdEntry(1, 1, set("a", "1"), set("b", "2")),
		{Index: 2, Term: 1, Type: domain.EntryBlank},
		{Index: 3, Term: 1, Type: domain.EntryMembership, Data: domain.EncodeMembership(mem)},
		cmdEntry(4, 1, del("a"), del("zz"), set("c", "3"), del("c")),
	})
	must(t, err)
	if res[0].N != 2 || res[3].N != 3 {
		t.Fatalf("results %+v", res)
	}
	wantGet(t, kv, "a", "")
	wantGet(t, kv, "b", "2")
	wantGet(t, kv, "c", "")
	m, err := kv.Applied()
	must(t, err)
	if m.Index != 4 || m.Term != 1 || !sameMeta(m, domain.SnapshotMeta{Index: 4, Term: 1, Membership: mem}) {
		t.Fatalf("applied %+v", m)
	}

	// Idempotent: replaying old entries changes nothing.
	res, err = kv.Apply([]domain.Entry{cmdEntry(1, 1, set("b", "old")), cmdEntry(5, 2, set("d", "4"))})
	must(t, err)
	if res[0].N != 0 || res[0].Value != nil || res[0].Err != nil {
		t.Fatalf("replayed entry result %+v", res[0])
	}
	wantGet(t, kv, "b", "2")
	wantGet(t, kv, "d", "4")

	// A corrupt command applies nothing, not even the entries before it.
	_, err = kv.Apply([]domain.Entry{cmdEntry(6, 2, set("e", "5")), {Index: 7, Term: 2, Data: []byte{9, 9}}})
	if !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("corrupt command: %v", err)
	}
	wantGet(t, kv, "e", "")
	if m, _ := kv.Applied(); m.Index != 5 {
		t.Fatalf("applied %d after a failed apply, want 5", m.Index)
	}

	// Durability: only what was synced survives, and never half an apply.
	must(t, kv.Sync())
	_, err = kv.Apply([]domain.Entry{cmdEntry(6, 2, set("e", "5"))})
	must(t, err)
	n.crash()
	kv = n.db.StateMachine()
	wantGet(t, kv, "e", "")
	wantGet(t, kv, "d", "4")
	m, _ = kv.Applied()
	if m.Index != 5 || !sameMeta(m, domain.SnapshotMeta{Index: 5, Term: 2, Membership: mem}) {
		t.Fatalf("applied after crash %+v", m)
	}
}

// kvState reads every key of the current generation through the stores'
// own checks.
func kvState(t *testing.T, kv *KV) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	meta, err := kv.Snapshot(&buf)
	must(t, err)
	n := newMemNode(t)
	must(t, n.db.StateMachine().Restore(meta, &buf))
	out := map[string]string{}
	it, err := n.db.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
	must(t, err)
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if binary.BigEndian.Uint32(it.Key()[9:13])&chunkSlotBit != 0 {
			continue // read with their record
		}
		e, err := openRecord(func() reader { return n.db.db }, it.Key(), it.Value(), true)
		must(t, err)
		out[string(it.Key()[dataKeyLen:])] = string(e.r.Value)
	}
	return out
}

func fill(t *testing.T, kv *KV, from domain.Index, keys int, tag string) domain.Index {
	t.Helper()
	var es []domain.Entry
	i := from
	for k := 0; k < keys; k += 10 {
		var ops []domain.Op
		for j := k; j < min(k+10, keys); j++ {
			ops = append(ops, set(fmt.Sprintf("k%04d", j), fmt.Sprintf("%s-%d", tag, j)))
		}
		es = append(es, cmdEntry(i, 1, ops...))
		i++
	}
	_, err := kv.Apply(es)
	must(t, err)
	return i - 1
}

func TestSnapshotRestore(t *testing.T) {
	src := newMemNode(t)
	src.db.opts.SnapshotChunkSize = 256 // many chunks
	last := fill(t, src.db.StateMachine(), 1, 300, "src")
	var buf bytes.Buffer
	meta, err := src.db.StateMachine().Snapshot(&buf)
	must(t, err)
	if meta.Index != last {
		t.Fatalf("snapshot meta %+v, want index %d", meta, last)
	}
	// Applying after the snapshot does not change the stream.
	_, err = src.db.StateMachine().Apply([]domain.Entry{cmdEntry(last+1, 1, set("k0000", "later"))})
	must(t, err)
	image := buf.Bytes()

	dst := newMemNode(t)
	kv := dst.db.StateMachine()
	fill(t, kv, 1, 500, "dst")
	must(t, kv.Sync())

	must(t, kv.Restore(meta, bytes.NewReader(image)))
	dst.crash() // Restore is durable on return
	kv = dst.db.StateMachine()
	got, err := kv.Applied()
	must(t, err)
	if !sameMeta(got, meta) {
		t.Fatalf("applied after restore %+v, want %+v", got, meta)
	}
	wantGet(t, kv, "k0000", "src-0")
	wantGet(t, kv, "k0299", "src-299")
	wantGet(t, kv, "k0300", "") // only dst had it
	if s := kvState(t, kv); len(s) != 300 {
		t.Fatalf("%d keys after restore, want 300", len(s))
	}

	// Every torn prefix and every flipped byte is rejected, leaving the
	// state as it was.
	bad := 0
	check := func(what string, stream []byte) {
		t.Helper()
		err := kv.Restore(meta, bytes.NewReader(stream))
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("%s: Restore = %v, want ErrCorrupt", what, err)
		}
		bad++
	}
	for cut := 0; cut < len(image); cut += 97 {
		check(fmt.Sprintf("torn at %d", cut), image[:cut])
	}
	check("torn before end chunk", image[:len(image)-17])
	for pos := 0; pos < len(image); pos += 89 {
		flipped := bytes.Clone(image)
		flipped[pos] ^= 0x40
		check(fmt.Sprintf("byte %d flipped", pos), flipped)
	}
	other := meta
	other.Term++
	if err := kv.Restore(other, bytes.NewReader(image)); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("meta mismatch: %v", err)
	}
	wantGet(t, kv, "k0000", "src-0")
	if got, _ := kv.Applied(); !sameMeta(got, meta) {
		t.Fatalf("applied after rejected restores %+v", got)
	}
	dst.crash()
	if s := kvState(t, dst.db.StateMachine()); len(s) != 300 || s["k0042"] != "src-42" {
		t.Fatalf("state after rejected restores and a crash: %d keys, k0042=%q", len(s), s["k0042"])
	}
	t.Logf("%d bad streams rejected", bad)
}

// crashingReader crashes the node's disk once it has served n bytes, so
// the clone holds a restore cut in the middle.
type crashingReader struct {
	r     *bytes.Reader
	n     int
	node  *memNode
	clone *vfs.MemFS
}

func (c *crashingReader) Read(p []byte) (int, error) {
	if c.clone == nil && c.r.Size()-int64(c.r.Len()) >= int64(c.n) {
		// Something else (a log append, say) syncs the WAL, making the
		// staged rows durable, and then the node crashes.
		if err := c.node.db.sync(); err != nil {
			return 0, err
		}
		c.clone = c.node.fs.CrashClone(vfs.CrashCloneCfg{})
	}
	return c.r.Read(p[:min(len(p), 512)])
}

func TestRestoreCrashMidway(t *testing.T) {
	src := newMemNode(t)
	src.db.opts.SnapshotChunkSize = 1 << 10 // pairs are written as chunks arrive
	fill(t, src.db.StateMachine(), 1, 2000, "new")
	var buf bytes.Buffer
	meta, err := src.db.StateMachine().Snapshot(&buf)
	must(t, err)

	dst := newMemNode(t)
	dst.db.opts.RestoreBatchSize = 4 << 10 // many batches before the swap
	old := fill(t, dst.db.StateMachine(), 1, 100, "old")
	must(t, dst.db.StateMachine().Sync())
	cr := &crashingReader{r: bytes.NewReader(buf.Bytes()), n: buf.Len() / 2, node: dst}
	must(t, dst.db.StateMachine().Restore(meta, cr))
	must(t, dst.db.LogStore().Sync()) // make sure the staged rows were written
	if cr.clone == nil {
		t.Fatal("reader never crashed the disk")
	}
	_ = dst.db.Close()
	dst.fs = cr.clone
	var logged bytes.Buffer
	lg := zerolog.New(&logged)
	db, err := Open(Options{Dir: "node", FS: dst.fs, Logger: &lg})
	must(t, err)
	dst.db = db
	if !strings.Contains(logged.String(), "interrupted") {
		t.Fatalf("reopen did not report the interrupted restore; log:\n%s", logged.String())
	}
	kv := dst.db.StateMachine()
	m, _ := kv.Applied()
	if m.Index != old {
		t.Fatalf("applied %d after a crash mid-restore, want the old %d", m.Index, old)
	}
	wantGet(t, kv, "k0000", "old-0")
	wantGet(t, kv, "k0100", "")
	// The staged rows are gone from disk, and so is the marker.
	it, err := dst.db.db.NewIter(&pebble.IterOptions{LowerBound: dataPrefix(kv.mu.gen + 1), UpperBound: dataUpper})
	must(t, err)
	if it.First() {
		t.Fatalf("staged row %q survived the reopen", it.Key())
	}
	must(t, it.Close())
	if _, ok, _ := dst.db.get(dst.db.db, keyRestore); ok {
		t.Fatal("restore marker survived the reopen")
	}
}

func TestCorruptRecords(t *testing.T) {
	n := newMemNode(t)
	s, kv := n.db.LogStore(), n.db.StateMachine()
	must(t, s.Append(ents(1, 10, 1)))
	_, err := kv.Apply([]domain.Entry{cmdEntry(1, 1, set("apple", "red"), set("pear", "green"))})
	must(t, err)
	must(t, n.db.VoteStore().SetVote(domain.Vote{Term: 1, VotedFor: 1}))

	flip := func(key []byte) {
		t.Helper()
		rec, ok, err := n.db.get(n.db.db, key)
		if err != nil || !ok {
			t.Fatalf("read %x: %v %v", key, ok, err)
		}
		rec[len(rec)-1] ^= 1
		must(t, n.db.db.Set(key, rec, pebble.Sync))
	}
	flip(logKey(7))
	if _, err := s.Term(7); !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), "entry 7") {
		t.Fatalf("Term(7) on a flipped record: %v", err)
	}
	if _, err := s.Entries(5, 9, 0); !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), "entry 7") {
		t.Fatalf("Entries over a flipped record: %v", err)
	}
	if _, err := s.Entries(8, 10, 0); err != nil {
		t.Fatalf("Entries beside the flipped record: %v", err)
	}
	// A record moved to another index fails too: the key is checksummed.
	rec, _, _ := n.db.get(n.db.db, logKey(3))
	must(t, n.db.db.Set(logKey(4), rec, pebble.Sync))
	if _, err := s.Term(4); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("record moved to another index: %v", err)
	}
	// A torn record: too short to hold even the checksum.
	must(t, n.db.db.Set(logKey(2), []byte{1, 2}, pebble.Sync))
	if _, err := s.Term(2); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("torn record: %v", err)
	}

	flip(dataKey(0, 0, []byte("apple")))
	if _, err := kv.Get([]byte("apple")); !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), `"apple"`) {
		t.Fatalf("Get on a flipped value: %v", err)
	}
	wantGet(t, kv, "pear", "green")
	if _, err := kv.Snapshot(&bytes.Buffer{}); !errors.Is(err, domain.ErrCorrupt) || !strings.Contains(err.Error(), "apple") {
		t.Fatalf("Snapshot over a flipped value: %v", err)
	}

	flip(keyVote)
	if _, err := n.db.VoteStore().Vote(); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("Vote on a flipped record: %v", err)
	}
	flip(keyApplied)
	_ = n.db.Close()
	if _, err := Open(Options{Dir: "node", FS: n.fs}); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("Open with a flipped applied record: %v", err)
	}
}

// failingFS fails WAL syncs with err once armed.
func failingFS(err error) (vfs.FS, *errorfs.Toggle, *vfs.MemFS) {
	tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileWrite) {
			return err
		}
		return nil
	})}
	mem := vfs.NewCrashableMem()
	return errorfs.Wrap(mem, tog), tog, mem
}

func TestFailedSyncIsFatal(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		diskFull bool
	}{
		{"EIO", syscall.EIO, false},
		{"ENOSPC", syscall.ENOSPC, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, tog, mem := failingFS(tc.err)
			db, err := Open(Options{Dir: "node", FS: fs})
			must(t, err)
			defer db.Close()
			s := db.LogStore()
			must(t, s.Append(ents(1, 3, 1)))
			must(t, s.Sync())
			tog.On()
			must(t, s.Append(ents(4, 4, 1))) // buffered: may or may not fail
			err = s.Sync()
			if err == nil {
				t.Fatal("Sync succeeded on a failing disk")
			}
			if got := errors.Is(err, domain.ErrDiskFull); got != tc.diskFull {
				t.Fatalf("Sync error %v: ErrDiskFull=%v, want %v", err, got, tc.diskFull)
			}
			// Poisoned: even with the disk healthy again nothing is trusted.
			tog.Off()
			if err := s.Sync(); err == nil {
				t.Fatal("second Sync succeeded after a failed one")
			}
			if err := db.VoteStore().SetVote(domain.Vote{Term: 2}); err == nil {
				t.Fatal("SetVote succeeded after a failed sync")
			}
			if _, err := db.StateMachine().Apply([]domain.Entry{cmdEntry(1, 1, set("a", "b"))}); err == nil {
				t.Fatal("Apply succeeded after a failed sync")
			}
			if got := errors.Is(err, domain.ErrDiskFull); got != tc.diskFull {
				t.Fatalf("later error lost its kind: %v", err)
			}
			// What was synced before the failure is intact after a restart
			// on a healthy disk.
			db2, err := Open(Options{Dir: "node", FS: mem.CrashClone(vfs.CrashCloneCfg{})})
			must(t, err)
			defer db2.Close()
			last, err := db2.LogStore().LastIndex()
			must(t, err)
			if last < 3 {
				t.Fatalf("last index %d after the failure, want >= 3", last)
			}
			es, err := db2.LogStore().Entries(1, last+1, 0)
			must(t, err)
			for _, e := range es {
				if !bytes.Equal(e.Data, ents(e.Index, e.Index, 1)[0].Data) {
					t.Fatalf("entry %d = %q after the failure", e.Index, e.Data)
				}
			}
		})
	}
}

func TestVoteFailsOnFailingDisk(t *testing.T) {
	fs, tog, _ := failingFS(syscall.ENOSPC)
	db, err := Open(Options{Dir: "node", FS: fs})
	must(t, err)
	defer db.Close()
	tog.On()
	if err := db.VoteStore().SetVote(domain.Vote{Term: 2, VotedFor: 1}); !errors.Is(err, domain.ErrDiskFull) {
		t.Fatalf("SetVote on a full disk: %v", err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := Open(Options{}); err == nil {
		t.Fatal("Open without Dir succeeded")
	}
	o := Options{Dir: "x"}
	o.EnsureDefaults()
	if o.FS != vfs.Default || o.CacheSize != DefaultCacheSize || o.SnapshotChunkSize != DefaultSnapshotChunkSize || o.Logger == nil {
		t.Fatalf("defaults not applied: %+v", o)
	}
	if err := (&Options{Dir: "x", SnapshotChunkSize: maxSnapshotChunkSize + 1}).Validate(); err == nil {
		t.Fatal("oversized chunk accepted")
	}
}

func TestRealDir(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir})
	must(t, err)
	must(t, db.LogStore().Append(ents(1, 100, 1)))
	must(t, db.LogStore().Sync())
	_, err = db.StateMachine().Apply([]domain.Entry{cmdEntry(1, 1, set("k", "v"))})
	must(t, err)
	must(t, db.StateMachine().Sync())
	must(t, db.Close())
	db, err = Open(Options{Dir: dir})
	must(t, err)
	defer db.Close()
	wantBounds(t, db.LogStore(), 1, 100)
	wantGet(t, db.StateMachine(), "k", "v")
}

func TestLogging(t *testing.T) {
	var buf bytes.Buffer
	lg := zerolog.New(&buf)
	db, err := Open(Options{Dir: "node", FS: vfs.NewMem(), NoSync: true, Logger: &lg})
	must(t, err)
	must(t, db.Close())
	out := buf.String()
	if !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "NoSync") {
		t.Fatalf("NoSync not warned about at open; log:\n%s", out)
	}
	// Pebble's own messages arrive through zerolog (it logs what it found
	// and created at open).
	if !strings.Contains(out, `"level":"info"`) {
		t.Fatalf("no Pebble log line routed to zerolog; log:\n%s", out)
	}
}

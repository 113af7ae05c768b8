package memory_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

func cmdEntry(i domain.Index, ops ...domain.Op) domain.Entry {
	return domain.Entry{Index: i, Term: 1, Data: domain.EncodeCommand(domain.Command{Ops: ops})}
}

func setOp(k, v string) domain.Op {
	return domain.Op{Kind: domain.OpSet, Key: []byte(k), Value: []byte(v)}
}

func delOp(k string) domain.Op { return domain.Op{Kind: domain.OpDel, Key: []byte(k)} }

func mustApply(t *testing.T, kv *memory.KV, es ...domain.Entry) {
	t.Helper()
	if _, err := kv.Apply(es); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func image(t *testing.T, kv *memory.KV) (domain.SnapshotMeta, []byte) {
	t.Helper()
	var buf bytes.Buffer
	meta, err := kv.Snapshot(&buf)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return meta, buf.Bytes()
}

// Two replicas reaching one state by different paths write the same image
// and have the same Digest: the image depends on the state (each key's
// version, the index that last wrote it, included), not on map order or
// history.
func TestKVSnapshotDeterministic(t *testing.T) {
	a, b := memory.NewKV(), memory.NewKV()
	mustApply(t, a, cmdEntry(1, setOp("x", "1"), setOp("y", "2"), setOp("z", "3")), cmdEntry(2, delOp("y"), setOp("x", "1")))
	mustApply(t, b, cmdEntry(1, setOp("z", "3"), setOp("y", "0")), cmdEntry(2, delOp("y"), setOp("x", "1")))
	_, ia := image(t, a)
	_, ib := image(t, b)
	if !bytes.Equal(ia, ib) {
		t.Fatalf("equal states, different images:\n%x\n%x", ia, ib)
	}
	for range 20 {
		if _, again := image(t, a); !bytes.Equal(ia, again) {
			t.Fatalf("one state, two images")
		}
	}
	if a.Digest() != b.Digest() {
		t.Fatalf("equal states, different digests")
	}
	if a.Len() != 2 {
		t.Fatalf("Len %d, want 2", a.Len())
	}
}

func TestKVDigestSeesEverything(t *testing.T) {
	base := func() *memory.KV {
		kv := memory.NewKV()
		mustApply(t, kv, cmdEntry(1, setOp("k", "v"), setOp("ab", "c")))
		return kv
	}
	ref := base().Digest()
	for name, change := range map[string][]domain.Entry{
		"a value":                {cmdEntry(2, setOp("k", "w"))},
		"a key removed":          {cmdEntry(2, delOp("k"))},
		"a key added":            {cmdEntry(2, setOp("new", ""))},
		"key/value boundary":     {cmdEntry(2, delOp("ab"), setOp("a", "bc"))},
		"only the applied index": {{Index: 2, Term: 1, Type: domain.EntryBlank}},
	} {
		kv := base()
		mustApply(t, kv, change...)
		if kv.Digest() == ref {
			t.Errorf("changing %s left the Digest as it was", name)
		}
	}
}

func TestKVRestoreChecksMeta(t *testing.T) {
	src := memory.NewKV()
	mustApply(t, src, cmdEntry(1, setOp("k", "v")), domain.Entry{Index: 2, Term: 3, Type: domain.EntryMembership,
		Data: domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2, 3}})})
	meta, img := image(t, src)
	dst := memory.NewKV()
	for name, m := range map[string]domain.SnapshotMeta{
		"index":      {Index: 3, Term: meta.Term, Membership: meta.Membership},
		"term":       {Index: meta.Index, Term: 2, Membership: meta.Membership},
		"membership": {Index: meta.Index, Term: meta.Term, Membership: domain.Membership{Voters: []domain.NodeID{1, 2}}},
	} {
		if err := dst.Restore(m, bytes.NewReader(img)); !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("Restore with another %s than the image's: %v, want ErrCorrupt", name, err)
		}
	}
	if dst.Len() != 0 {
		t.Fatalf("failed Restores left %d keys", dst.Len())
	}
	if err := dst.Restore(meta, bytes.NewReader(img)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.Digest() != src.Digest() {
		t.Fatalf("restored state differs from its source")
	}
}

// A failed Apply leaves the whole batch unapplied, not a prefix of it.
func TestKVApplyBatchAtomicOnError(t *testing.T) {
	kv := memory.NewKV()
	mustApply(t, kv, cmdEntry(1, setOp("a", "1")))
	before := kv.Digest()
	for name, batch := range map[string][]domain.Entry{
		"gap":     {cmdEntry(2, setOp("a", "2")), cmdEntry(4, setOp("a", "4"))},
		"corrupt": {cmdEntry(2, setOp("a", "2")), {Index: 3, Term: 1, Data: []byte{1, 1}}},
		"type":    {cmdEntry(2, setOp("a", "2")), {Index: 3, Term: 1, Type: 77}},
	} {
		if _, err := kv.Apply(batch); err == nil {
			t.Fatalf("Apply with a %s: no error", name)
		}
		if kv.Digest() != before {
			t.Fatalf("a failed Apply (%s) changed the state", name)
		}
	}
	_, err := kv.Apply([]domain.Entry{{Index: 2, Term: 1, Type: 77}})
	if !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("Apply of an unknown entry type: %v, want ErrCorrupt", err)
	}
}

// Values handed to Apply are copied: the caller's entry buffers may be
// reused once Apply returns.
func TestKVApplyCopiesValues(t *testing.T) {
	kv := memory.NewKV()
	e := cmdEntry(1, setOp("k", "value"))
	mustApply(t, kv, e)
	for i := range e.Data {
		e.Data[i] = 0
	}
	if v, err := kv.Get([]byte("k")); err != nil || string(v) != "value" {
		t.Fatalf("Get(k) = %q, %v after the entry's buffer was reused", v, err)
	}
}

// Crash rolls back values overwritten several times since the last Sync,
// keys created and deleted, and the membership.
func TestKVCrashRollsBackEverything(t *testing.T) {
	kv := memory.NewKV()
	m1 := domain.Membership{Voters: []domain.NodeID{1}}
	mustApply(t, kv, cmdEntry(1, setOp("a", "1"), setOp("b", "1")),
		domain.Entry{Index: 2, Term: 1, Type: domain.EntryMembership, Data: domain.EncodeMembership(m1)})
	if err := kv.Sync(); err != nil {
		t.Fatal(err)
	}
	wantMeta, wantImg := image(t, kv)
	mustApply(t, kv, cmdEntry(3, setOp("a", "2"), delOp("b"), setOp("c", "1")),
		cmdEntry(4, setOp("a", "3"), setOp("b", "2"), delOp("c")),
		domain.Entry{Index: 5, Term: 2, Type: domain.EntryMembership,
			Data: domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2}})})
	kv.Crash()
	gotMeta, gotImg := image(t, kv)
	if d := cmp.Diff(wantMeta, gotMeta); d != "" {
		t.Fatalf("meta after Crash (-want +got):\n%s", d)
	}
	if !bytes.Equal(wantImg, gotImg) {
		t.Fatalf("state after Crash differs from the synced one")
	}
	// And again after more changes: the undo record was reset.
	mustApply(t, kv, cmdEntry(3, setOp("z", "9")))
	if err := kv.Sync(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, kv, cmdEntry(4, delOp("z")))
	kv.Crash()
	if v, err := kv.Get([]byte("z")); err != nil || string(v) != "9" {
		t.Fatalf("Get(z) after Crash = %q, %v; want 9", v, err)
	}
}

// Images whose checksum is right but whose body is not what Snapshot
// writes are refused too: the parser does not rely on the checksum alone.
func TestKVRestoreRejectsMalformedBodies(t *testing.T) {
	table := crc32.MakeTable(crc32.Castagnoli)
	seal := func(body []byte) []byte {
		return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, table))
	}
	header := func(count uint64) []byte {
		b := []byte("SKV3")
		b = binary.AppendUvarint(b, 0) // index
		b = binary.AppendUvarint(b, 0) // term
		m := domain.EncodeMembership(domain.Membership{})
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
		return binary.AppendUvarint(b, count)
	}
	kvBytes := func(k, v string) []byte {
		b := binary.AppendUvarint(nil, 0) // database
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		rec := keyspace.EncodeRecord(keyspace.Record{Value: []byte(v), Version: 1})
		b = binary.AppendUvarint(b, uint64(len(rec)))
		b = append(b, rec...)
		return binary.AppendUvarint(b, 0) // no elements
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	good := cat(header(2), kvBytes("a", "1"), kvBytes("b", "2"))
	// The sealed good body restores: the cases below fail for their flaw.
	if err := memory.NewKV().Restore(domain.SnapshotMeta{}, bytes.NewReader(seal(good))); err != nil {
		t.Fatalf("Restore of a hand-made good image: %v", err)
	}
	for name, body := range map[string][]byte{
		"trailing byte":        append(bytes.Clone(good), 0),
		"keys out of order":    cat(header(2), kvBytes("b", "2"), kvBytes("a", "1")),
		"a key twice":          cat(header(2), kvBytes("a", "1"), kvBytes("a", "2")),
		"count too large":      cat(header(3), kvBytes("a", "1"), kvBytes("b", "2")),
		"count too small":      cat(header(1), kvBytes("a", "1"), kvBytes("b", "2")),
		"bad magic":            cat([]byte("SKV2"), good[4:]),
		"bad membership":       cat([]byte("SKV3"), []byte{0, 0, 3, 1, 1, 0}, []byte{0}),
		"value past the end":   cat(header(1), []byte{0, 1, 'a', 9, 'x'}),
		"membership too long":  cat([]byte("SKV3"), []byte{0, 0, 50}),
		"bad record":           cat(header(1), []byte{0, 1, 'a', 2, 9, 0}),
		"elements of a string": cat(header(1), kvBytes("a", "1")[:len(kvBytes("a", "1"))-1], []byte{1, 1, 'x', 0}),
		"bad database":         cat(header(1), []byte{0xff, 0x7f, 1, 'a', 3, 1, 0, 0}),
	} {
		kv := memory.NewKV()
		if err := kv.Restore(domain.SnapshotMeta{}, bytes.NewReader(seal(body))); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("Restore of an image with %s: %v, want ErrCorrupt", name, err)
		}
	}
}

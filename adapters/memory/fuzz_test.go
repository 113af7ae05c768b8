package memory

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// FuzzRestore feeds Restore arbitrary images: it must never panic, must
// fail only with domain.ErrCorrupt, must leave the state alone when it
// fails, and an image it accepts must be a state that snapshots and
// restores again to the same thing. Each input is tried as is and with
// its checksum made right, so that the fuzzer reaches the parser behind
// the checksum.
func FuzzRestore(f *testing.F) {
	for _, seed := range restoreSeeds(f) {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("SKV1"))
	f.Fuzz(func(t *testing.T, img []byte) {
		fixed := append([]byte(nil), img...)
		if len(fixed) >= 4 {
			fixed = binary.BigEndian.AppendUint32(fixed[:len(fixed)-4], crc32.Checksum(fixed[:len(fixed)-4], castagnoli))
		}
		for _, in := range [][]byte{img, fixed} {
			checkRestore(t, in)
		}
	})
}

func checkRestore(t *testing.T, img []byte) {
	kv := NewKV()
	if _, err := kv.Apply([]domain.Entry{{Index: 1, Term: 1, Data: domain.EncodeCommand(domain.Command{
		Ops: []domain.Op{{Kind: domain.OpSet, Key: []byte("old"), Value: []byte("state")}}})}}); err != nil {
		t.Fatal(err)
	}
	before := kv.Digest()
	// Restore with the meta the image claims, when it claims one, so that
	// a well-formed image can succeed; else with a zero meta.
	var meta domain.SnapshotMeta
	if _, _, m, err := decodeImage(img); err == nil {
		meta = m
	}
	err := kv.Restore(meta, bytes.NewReader(img))
	if err != nil {
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("Restore: %v, want ErrCorrupt", err)
		}
		if kv.Digest() != before {
			t.Fatalf("a failed Restore changed the state")
		}
		return
	}
	got, err := kv.Applied()
	if err != nil || !metaEqual(got, meta) {
		t.Fatalf("Applied after Restore = %+v, %v; want %+v", got, err, meta)
	}
	var buf bytes.Buffer
	meta2, err := kv.Snapshot(&buf)
	if err != nil {
		t.Fatalf("Snapshot of a restored state: %v", err)
	}
	again := NewKV()
	if err := again.Restore(meta2, &buf); err != nil {
		t.Fatalf("Restore of a restored state's image: %v", err)
	}
	if again.Digest() != kv.Digest() {
		t.Fatalf("restored twice, digests differ")
	}
}

func restoreSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	kv := NewKV()
	snap := func() {
		var buf bytes.Buffer
		if _, err := kv.Snapshot(&buf); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	snap()
	if _, err := kv.Apply([]domain.Entry{
		{Index: 1, Term: 1, Data: domain.EncodeCommand(domain.Command{Ops: []domain.Op{
			{Kind: domain.OpSet, Key: []byte("a"), Value: []byte("1")},
			{Kind: domain.OpSet, Key: []byte(""), Value: []byte("")},
			{Kind: domain.OpSet, Key: []byte("b\x00"), Value: bytes.Repeat([]byte("v"), 200)},
		}})},
		{Index: 2, Term: 2, Type: domain.EntryMembership, Data: domain.EncodeMembership(
			domain.Membership{Voters: []domain.NodeID{1, 2, 3}, Learners: []domain.NodeID{4}})},
	}); err != nil {
		f.Fatal(err)
	}
	snap()
	return seeds
}

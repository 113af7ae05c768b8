package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seshat-kv/seshat/domain"
)

// FuzzRestore feeds arbitrary snapshot streams to Restore: it must never
// panic or hang, a stream it rejects must be reported as ErrCorrupt, and
// whatever happens the node's previous state must stay readable and whole.
//
//	go test -run '^$' -fuzz FuzzRestore -fuzztime 30s ./adapters/pebble
func FuzzRestore(f *testing.F) {
	db, err := Open(Options{Dir: "seed", FS: vfs.NewMem(), CacheSize: 1 << 20, SnapshotChunkSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	var es []domain.Entry
	for i := domain.Index(1); i <= 4; i++ {
		es = append(es, cmdEntry(i, 1, set(fmt.Sprintf("k%04d", i), "seed")))
	}
	if _, err := db.StateMachine().Apply(es); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	meta, err := db.StateMachine().Snapshot(&buf)
	if err != nil {
		f.Fatal(err)
	}
	_ = db.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:len(buf.Bytes())/2])
	f.Add([]byte{})
	f.Add([]byte("SKV1 not a pebble image"))

	f.Fuzz(func(t *testing.T, image []byte) {
		n := newMemNode(t)
		kv := n.db.StateMachine()
		fill(t, kv, 1, 20, "old")
		before, err := kv.Applied()
		if err != nil {
			t.Fatal(err)
		}
		err = kv.Restore(meta, bytes.NewReader(image))
		if err != nil && !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("Restore: %v, want nil or ErrCorrupt", err)
		}
		after, aerr := kv.Applied()
		if aerr != nil {
			t.Fatal(aerr)
		}
		if err != nil {
			// Rejected: the old state is intact.
			if after.Index != before.Index {
				t.Fatalf("rejected restore moved applied %d -> %d", before.Index, after.Index)
			}
			if _, gerr := kv.Get([]byte("k0000")); gerr != nil {
				t.Fatalf("old key lost after a rejected restore: %v", gerr)
			}
		} else if after.Index != meta.Index {
			t.Fatalf("accepted restore: applied %d, want %d", after.Index, meta.Index)
		}
	})
}

package pebble

import (
	"bytes"
	"testing"

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
	_, err := putRecord(ab, dataKey(1, 0, []byte("some key")), keyspace.Record{Value: value, Version: 1})
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

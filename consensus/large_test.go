package consensus

import (
	"bytes"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestLargeEntryBesideSmallProposals: an entry larger than MaxMsgBytes is
// not held to MaxUncommittedBytes (it would never fit), only one such
// entry may be uncommitted at a time, small proposals go on beside it, and
// it replicates alone in its MsgApp.
func TestLargeEntryBesideSmallProposals(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxMsgBytes = 1000; c.MaxUncommittedBytes = 250 })
	l := nw.elect(1)
	nw.isolate(1)
	small := bytes.Repeat([]byte("s"), 76) // counts 100
	big := bytes.Repeat([]byte("B"), 5000)
	if _, _, err := l.Propose(small); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Propose(big); err != nil {
		t.Fatalf("large entry with small ones uncommitted: %v", err)
	}
	if _, _, err := l.Propose(small); err != nil {
		t.Fatalf("small entry beside a large one: %v", err)
	}
	last := l.log.lastIndex()
	if _, _, err := l.Propose(big); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("second large entry while one is uncommitted: %v", err)
	}
	if _, _, err := l.Propose(small); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("small entries past MaxUncommittedBytes: %v", err)
	}
	if l.log.lastIndex() != last {
		t.Fatal("a dropped proposal was appended")
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	if l.uncommittedBytes != 0 || l.uncommittedLarge != 0 {
		t.Fatalf("uncommitted %d bytes, %d large, after everything committed", l.uncommittedBytes, l.uncommittedLarge)
	}
	for id := domain.NodeID(2); id <= 3; id++ {
		f := nw.node(id)
		if f.log.committed != last {
			t.Fatalf("node %d committed %d, want %d", id, f.log.committed, last)
		}
	}
	if _, _, err := l.Propose(big); err != nil {
		t.Fatalf("large entry after commit: %v", err)
	}
}

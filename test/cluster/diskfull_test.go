package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// TestDiskFullLeaderStepsAside: a leader whose disk fills up refuses new
// writes with ErrDiskFull and hands leadership over, the cluster keeps
// taking writes, the full node keeps serving linearizable reads and
// following, and once space returns it takes writes again by itself.
func TestDiskFullLeaderStepsAside(t *testing.T) {
	var full [3]atomic.Bool
	c := New(t, Options{N: 3, DiskFull: func(i int) bool { return full[i].Load() }})
	c.One(t, 3, false)
	l := c.Leader(t)
	full[l].Store(true)

	// It stops leading within a few election timeouts.
	deadline := time.Now().Add(20 * electionTimeout)
	for c.Node(l).Status().Role == consensus.Leader {
		if time.Now().After(deadline) {
			t.Fatalf("node %d still leads %v after its disk filled", l+1, 20*electionTimeout)
		}
		time.Sleep(tickInterval)
	}
	// Writes through it are refused with a clear error, never lost.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w := c.NewWrite()
	if _, err := c.Node(l).Propose(ctx, w.Cmd()); !errors.Is(err, domain.ErrDiskFull) && !errors.Is(err, domain.ErrNotLeader) {
		t.Fatalf("proposal on the full node: %v, want ErrDiskFull or ErrNotLeader", err)
	}
	// The others take writes, and the full node still follows them.
	idx := c.One(t, 3, true)
	// Reads on the full node go on.
	if err := c.Node(l).ReadIndex(ctx); err != nil {
		t.Fatalf("ReadIndex on the full node: %v", err)
	}
	if st := c.Node(l).Status(); st.Applied < idx {
		t.Fatalf("full node applied %d after a read, want >= %d", st.Applied, idx)
	}
	// Space returns: it takes writes again, as leader if it becomes one.
	full[l].Store(false)
	time.Sleep(2 * tickInterval)
	if err := c.Node(l).TransferLeadership(ctx, c.id(l)); err != nil {
		// Asking a follower to transfer to itself is refused; ask the leader.
		lead := c.Leader(t)
		if err := c.Node(lead).TransferLeadership(ctx, c.id(l)); err != nil {
			t.Fatalf("transfer back to node %d: %v", l+1, err)
		}
	}
	w = c.NewWrite()
	if err := c.ProposeTo(l, w, 5*time.Second); err != nil {
		t.Fatalf("write on node %d after space returned: %v", l+1, err)
	}
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestDiskFullFollowerDoesNotStopWrites: a follower with a full disk does
// not stand in the way of the cluster's writes.
func TestDiskFullFollowerDoesNotStopWrites(t *testing.T) {
	var full [3]atomic.Bool
	c := New(t, Options{N: 3, DiskFull: func(i int) bool { return full[i].Load() }})
	l := c.Leader(t)
	f := (l + 1) % 3
	full[f].Store(true)
	time.Sleep(3 * tickInterval)
	for range 20 {
		c.One(t, 3, true)
	}
	c.CheckApplied(t)
}

package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// TestLeaderTransfer: the leader hands leadership to a chosen follower
// (TimeoutNow) while writers run; the follower becomes leader in the next
// term and no acknowledged write is lost.
func TestLeaderTransfer(t *testing.T) {
	const n = 3
	c := New(t, Options{N: n})
	c.One(t, n, false)
	cl := startClients(c, 3, 4*electionTimeout)
	for round, tries := 0, 0; round < 4; round++ {
		time.Sleep(electionTimeout / 2)
		l := c.Leader(t)
		term := c.Node(l).Status().Term
		to := (l + 1 + c.Rand().IntN(n-1)) % n
		ctx, cancel := context.WithTimeout(context.Background(), 10*electionTimeout)
		err := c.Node(l).TransferLeadership(ctx, c.id(to))
		cancel()
		if errors.Is(err, domain.ErrNotLeader) && tries < 5 {
			// The leader we saw was already gone (a starved machine can
			// cause an election): pick again.
			tries++
			round--
			continue
		}
		if err != nil {
			t.Fatalf("round %d: transfer from %d to %d: %v", round, c.id(l), c.id(to), err)
		}
		if got := c.Leader(t); got != to {
			t.Fatalf("round %d: transfer to %d succeeded but node %d leads", round, c.id(to), c.id(got))
		}
		if got := c.Node(to).Status().Term; got <= term {
			t.Fatalf("round %d: new leader %d is in term %d, not past %d", round, c.id(to), got, term)
		}
	}
	cl.finish()
	if cl.acked.Load() == 0 {
		t.Fatal("no write acknowledged during the transfers")
	}
	c.One(t, n, true)
	c.CheckApplied(t)
	c.CheckAcked(t)

	// A follower cannot transfer.
	l := c.Leader(t)
	f := (l + 1) % n
	ctx, cancel := context.WithTimeout(context.Background(), electionTimeout)
	defer cancel()
	if err := c.Node(f).TransferLeadership(ctx, c.id(l)); err == nil {
		t.Fatalf("follower %d accepted a transfer", c.id(f))
	}
}

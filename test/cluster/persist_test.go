package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// TestPersist1: crashed and restarted nodes come back with their log, vote
// and term, and commit again.
func TestPersist1(t *testing.T) {
	c := New(t, Options{N: 3})
	c.One(t, 3, false)

	for i := range 3 {
		c.Crash(i)
	}
	for i := range 3 {
		c.Restart(i)
	}
	c.One(t, 3, true)

	l1 := c.Leader(t)
	c.Crash(l1)
	c.Restart(l1)
	c.One(t, 3, true)

	l2 := c.Leader(t)
	c.Crash(l2)
	c.One(t, 2, true)
	c.Restart(l2)
	c.One(t, 3, true)

	l3 := c.Leader(t)
	c.Crash((l3 + 1) % 3)
	c.One(t, 2, true)
	c.Restart((l3 + 1) % 3)
	c.One(t, 3, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestPersist2: rounds of crashes and partitions of 5 nodes, a committed
// write surviving each.
func TestPersist2(t *testing.T) {
	c := New(t, Options{N: 5})
	for range 4 {
		c.One(t, 5, true)
		l1 := c.Leader(t)

		c.Disconnect((l1 + 1) % 5)
		c.Disconnect((l1 + 2) % 5)
		c.One(t, 3, true)

		c.Crash((l1 + 0) % 5)
		c.Crash((l1 + 3) % 5)
		c.Crash((l1 + 4) % 5)
		c.Disconnect((l1 + 0) % 5)
		c.Disconnect((l1 + 3) % 5)
		c.Disconnect((l1 + 4) % 5)

		c.Reconnect((l1 + 1) % 5)
		c.Reconnect((l1 + 2) % 5)
		c.Restart((l1 + 3) % 5)
		c.Reconnect((l1 + 3) % 5)
		c.One(t, 3, true)

		c.Restart((l1 + 4) % 5)
		c.Reconnect((l1 + 4) % 5)
		c.Restart((l1 + 0) % 5)
		c.Reconnect((l1 + 0) % 5)
	}
	c.One(t, 5, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestPersist3: a node that crashes right after a partition comes back
// with what it had synced and the cluster commits with it.
func TestPersist3(t *testing.T) {
	c := New(t, Options{N: 3})
	c.One(t, 3, true)
	l := c.Leader(t)
	c.Disconnect((l + 2) % 3)
	c.One(t, 2, true)

	c.Crash((l + 0) % 3)
	c.Crash((l + 1) % 3)
	c.Reconnect((l + 2) % 3)
	c.Restart((l + 0) % 3)
	c.One(t, 2, true)

	c.Restart((l + 1) % 3)
	c.One(t, 3, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// clients runs writers proposing new writes to random nodes until stop,
// recording what was acknowledged; the harness records the acks.
type clients struct {
	wg      sync.WaitGroup
	stop    atomic.Bool
	acked   atomic.Int64
	unknown atomic.Int64
}

func startClients(c *Cluster, count int, timeout time.Duration) *clients {
	cl := &clients{}
	for k := range count {
		cl.wg.Go(func() {
			target := k % c.N()
			for !cl.stop.Load() {
				w := c.NewWrite()
				err := c.ProposeTo(target, w, timeout)
				switch {
				case err == nil:
					cl.acked.Add(1)
					continue
				case errors.Is(err, domain.ErrNotLeader):
					if n := c.Node(target); n != nil && n.Leader() != domain.None {
						target = int(n.Leader()) - 1
						continue
					}
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, domain.ErrLeadershipLost):
					cl.unknown.Add(1)
				}
				target = (target + 1) % c.N()
				time.Sleep(tickInterval)
			}
		})
	}
	return cl
}

func (cl *clients) finish() { cl.stop.Store(true); cl.wg.Wait() }

// TestFigure8: Figure 8 of the Raft paper: leaders crash right after
// appending, others are elected and appended over; an entry of an earlier
// term must never count as committed by replication alone. Every
// acknowledged write survives and no two nodes apply different entries at
// one index.
func TestFigure8(t *testing.T) {
	const n = 5
	// Compaction on, so that crashes also fall around snapshots.
	c := New(t, Options{N: n, SnapshotEntries: 20, TrailingEntries: 5})
	c.One(t, 1, true)
	up := n
	var wg sync.WaitGroup
	for range 300 {
		for i := range n {
			if nd := c.Node(i); nd != nil && nd.Status().Role == consensus.Leader {
				w := c.NewWrite()
				wg.Go(func() { c.ProposeTo(i, w, 4*electionTimeout) })
			}
		}
		if c.Rand().IntN(1000) < 100 {
			time.Sleep(time.Duration(c.Rand().Int64N(int64(electionTimeout / 2))))
		} else {
			time.Sleep(time.Duration(c.Rand().Int64N(int64(4 * tickInterval))))
		}
		for i := range n {
			if nd := c.Node(i); nd != nil && nd.Status().Role == consensus.Leader {
				c.Crash(i)
				up--
				break
			}
		}
		if up < 3 {
			s := c.Rand().IntN(n)
			if !c.Alive(s) {
				c.Restart(s)
				up++
			}
		}
	}
	wg.Wait()
	for i := range n {
		if !c.Alive(i) {
			c.Restart(i)
		}
	}
	c.One(t, n, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestFigure8Unreliable: Figure 8 over a lossy, reordering network with
// leaders cut off instead of crashed.
func TestFigure8Unreliable(t *testing.T) {
	const n = 5
	c := New(t, Options{N: n, Unreliable: true})
	c.One(t, 1, true)
	var wg sync.WaitGroup
	nup := n
	for iter := range 250 {
		if iter == 125 {
			c.SetLongReordering()
		}
		l := -1
		for i := range n {
			if c.Node(i).Status().Role == consensus.Leader {
				l = i
			}
			w := c.NewWrite()
			wg.Go(func() { c.ProposeTo(i, w, 4*electionTimeout) })
		}
		if c.Rand().IntN(1000) < 100 {
			time.Sleep(time.Duration(c.Rand().Int64N(int64(electionTimeout / 2))))
		} else {
			time.Sleep(time.Duration(c.Rand().Int64N(int64(3 * tickInterval))))
		}
		if l != -1 && c.Rand().IntN(1000) < 500 && c.Connected(l) {
			c.Disconnect(l)
			nup--
		}
		if nup < 3 {
			s := c.Rand().IntN(n)
			if !c.Connected(s) {
				c.Reconnect(s)
				nup++
			}
		}
	}
	wg.Wait()
	c.SetUnreliable(false)
	c.Heal()
	c.One(t, n, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestUnreliableAgree: writes commit over a lossy, duplicating, reordering
// network.
func TestUnreliableAgree(t *testing.T) {
	c := New(t, Options{N: 5, Unreliable: true})
	var wg sync.WaitGroup
	for range 30 {
		for range 4 {
			wg.Go(func() { c.One(t, 1, true) })
		}
		c.One(t, 1, true)
	}
	wg.Wait()
	c.SetUnreliable(false)
	c.One(t, 5, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// churn runs writers while nodes crash, restart, disconnect and reconnect
// at random; at the end every acknowledged write is on every node.
func churn(t *testing.T, unreliable bool) {
	const n = 5
	// Compaction on: restarted nodes often catch up by snapshot.
	c := New(t, Options{N: n, Unreliable: unreliable, SnapshotEntries: 200, TrailingEntries: 20})
	cl := startClients(c, 3, 4*electionTimeout)
	for range 30 {
		if c.Rand().IntN(1000) < 200 {
			c.Disconnect(c.Rand().IntN(n))
		}
		if c.Rand().IntN(1000) < 500 {
			i := c.Rand().IntN(n)
			if !c.Alive(i) {
				c.Restart(i)
			}
			c.Reconnect(i)
		}
		if c.Rand().IntN(1000) < 200 {
			i := c.Rand().IntN(n)
			if c.Alive(i) {
				c.Crash(i)
			}
		}
		// Churn faster than an election timeout often enough to hurt.
		time.Sleep(time.Duration(c.Rand().Int64N(int64(7*electionTimeout/10))) + tickInterval)
	}
	time.Sleep(electionTimeout)
	c.SetUnreliable(false)
	for i := range n {
		if !c.Alive(i) {
			c.Restart(i)
		}
	}
	c.Heal()
	time.Sleep(electionTimeout)
	cl.finish()
	c.One(t, n, true)
	c.CheckApplied(t)
	got := c.CheckAcked(t)
	restores := 0
	for i := range n {
		restores += c.Restores(i)
	}
	t.Logf("acknowledged %d writes (%d by the churn clients, %d unknown outcomes), %d snapshots installed",
		got, cl.acked.Load(), cl.unknown.Load(), restores)
	if cl.acked.Load() == 0 {
		t.Fatal("no write was acknowledged during the churn")
	}
}

// TestReliableChurn: churn on a reliable network.
func TestReliableChurn(t *testing.T) { churn(t, false) }

// TestUnreliableChurn: churn on a lossy network.
func TestUnreliableChurn(t *testing.T) { churn(t, true) }

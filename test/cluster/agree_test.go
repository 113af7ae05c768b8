package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// TestBasicAgree: with no failure, writes commit on every node at
// consecutive indexes.
func TestBasicAgree(t *testing.T) {
	c := New(t, Options{N: 3})
	c.Leader(t)
	var prev domain.Index
	for i := range 5 {
		idx := c.One(t, 3, false)
		if i > 0 && idx != prev+1 {
			t.Fatalf("write %d went to index %d, want %d", i, idx, prev+1)
		}
		prev = idx
	}
	c.CheckApplied(t)
	if got := c.CheckAcked(t); got != 5 {
		t.Fatalf("%d acknowledged writes, want 5", got)
	}
}

// TestFollowerFailure: losing one follower of three still commits; losing
// both leaves the leader unable to commit.
func TestFollowerFailure(t *testing.T) {
	c := New(t, Options{N: 3})
	c.One(t, 3, false)
	l := c.Leader(t)
	c.Disconnect((l + 1) % 3)
	c.One(t, 2, false)
	time.Sleep(electionTimeout)
	c.One(t, 2, false)

	l = c.Leader(t)
	c.Disconnect((l + 1) % 3)
	c.Disconnect((l + 2) % 3)
	w := c.NewWrite()
	if err := c.ProposeTo(l, w, 2*electionTimeout); err == nil {
		t.Fatalf("leader alone acknowledged write %s", w.Key)
	}
	time.Sleep(electionTimeout)
	c.NotApplied(t, w)
}

// TestLeaderFailure: losing the leader of three still commits through the
// new one; losing that too, nobody commits.
func TestLeaderFailure(t *testing.T) {
	c := New(t, Options{N: 3})
	c.One(t, 3, false)
	l1 := c.Leader(t)
	c.Disconnect(l1)
	c.One(t, 2, false)
	time.Sleep(electionTimeout)
	c.One(t, 2, false)

	l2 := c.Leader(t)
	c.Disconnect(l2)
	w := c.NewWrite()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { c.ProposeTo(i, w, 2*electionTimeout) })
	}
	wg.Wait()
	time.Sleep(electionTimeout)
	c.NotApplied(t, w)
}

// TestFailNoAgree: a leader with 3 of 5 nodes cut off commits nothing;
// once they are back, writes commit again.
func TestFailNoAgree(t *testing.T) {
	c := New(t, Options{N: 5})
	c.One(t, 5, false)
	l := c.Leader(t)
	for k := 1; k <= 3; k++ {
		c.Disconnect((l + k) % 5)
	}
	w := c.NewWrite()
	if err := c.ProposeTo(l, w, 2*electionTimeout); err == nil {
		t.Fatalf("leader with 2 of 5 acknowledged write %s", w.Key)
	}
	c.NotApplied(t, w)
	for k := 1; k <= 3; k++ {
		c.Reconnect((l + k) % 5)
	}
	c.Leader(t)
	c.One(t, 5, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestConcurrentStarts: concurrent proposals on one leader all commit, in
// one term, at distinct indexes.
func TestConcurrentStarts(t *testing.T) {
	c := New(t, Options{N: 3})
	for try := 0; ; try++ {
		if try == 5 {
			t.Fatal("leadership changed too often")
		}
		l := c.Leader(t)
		term := c.Node(l).Status().Term
		ws := make([]Write, 20)
		errs := make([]error, len(ws))
		var wg sync.WaitGroup
		for k := range ws {
			ws[k] = c.NewWrite()
			wg.Go(func() { errs[k] = c.ProposeTo(l, ws[k], time.Second) })
		}
		wg.Wait()
		if c.Node(l).Status().Term != term || errors.Join(errs...) != nil {
			continue // leadership changed under us: try again
		}
		seen := map[domain.Index]bool{}
		for _, w := range ws {
			idx, ok := c.IndexOf(w)
			if !ok || seen[idx] {
				t.Fatalf("write %s: index %d applied=%v, duplicate=%v", w.Key, idx, ok, seen[idx])
			}
			seen[idx] = true
		}
		break
	}
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestRejoin: a partitioned leader that appended entries nobody else has
// rejoins; its stale entries are replaced and it does not disturb commits.
func TestRejoin(t *testing.T) {
	c := New(t, Options{N: 3})
	c.One(t, 3, true)
	l1 := c.Leader(t)
	c.Disconnect(l1)
	stale := []Write{c.NewWrite(), c.NewWrite(), c.NewWrite()}
	var wg sync.WaitGroup
	for _, w := range stale {
		wg.Go(func() { c.ProposeTo(l1, w, electionTimeout) })
	}
	c.One(t, 2, true)
	wg.Wait()

	l2 := c.Leader(t)
	c.Disconnect(l2)
	c.Reconnect(l1)
	c.One(t, 2, true)

	c.Reconnect(l2)
	c.One(t, 3, true)
	for _, w := range stale {
		c.NotApplied(t, w)
	}
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// TestBackup: leaders back up quickly over incorrect follower logs (fast
// conflict backtracking): many uncommitted entries on both sides of a
// partition are replaced by the committed ones.
func TestBackup(t *testing.T) {
	const n, batch = 5, 50
	c := New(t, Options{N: n})
	c.One(t, n, true)

	// The leader and one follower are cut off from the other three.
	l1 := c.Leader(t)
	c.Disconnect((l1 + 2) % n)
	c.Disconnect((l1 + 3) % n)
	c.Disconnect((l1 + 4) % n)
	lost1 := proposeBatch(c, l1, batch, electionTimeout)

	time.Sleep(electionTimeout / 2)
	c.Disconnect((l1 + 0) % n)
	c.Disconnect((l1 + 1) % n)
	c.Reconnect((l1 + 2) % n)
	c.Reconnect((l1 + 3) % n)
	c.Reconnect((l1 + 4) % n)
	for range batch {
		c.One(t, 3, true)
	}

	// Now another partitioned leader and one follower.
	l2 := c.Leader(t)
	other := (l1 + 2) % n
	if l2 == other {
		other = (l2 + 1) % n
	}
	c.Disconnect(other)
	lost2 := proposeBatch(c, l2, batch, electionTimeout)
	time.Sleep(electionTimeout / 2)

	// Bring the original leader back with the partitioned follower.
	for i := range n {
		c.Disconnect(i)
	}
	c.Reconnect((l1 + 0) % n)
	c.Reconnect((l1 + 1) % n)
	c.Reconnect(other)
	for range batch {
		c.One(t, 3, true)
	}

	for i := range n {
		c.Reconnect(i)
	}
	c.One(t, n, true)
	for _, w := range append(lost1, lost2...) {
		c.NotApplied(t, w)
	}
	c.CheckApplied(t)
	c.CheckAcked(t)
}

// proposeBatch proposes count new writes on node i in one call that is
// not expected to commit, and returns them.
func proposeBatch(c *Cluster, i, count int, timeout time.Duration) []Write {
	ws := make([]Write, count)
	cmds := make([][]byte, count)
	for k := range ws {
		ws[k] = c.NewWrite()
		cmds[k] = ws[k].Cmd()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if n := c.Node(i); n != nil {
		if _, err := n.Propose(ctx, cmds...); err == nil {
			for _, w := range ws {
				c.Ack(w)
			}
		}
	}
	return ws
}

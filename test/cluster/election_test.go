package cluster

import (
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
)

// TestInitialElection: a fresh cluster elects one leader, and with no
// failure the term then stays put and the leader stays leader.
func TestInitialElection(t *testing.T) {
	c := New(t, Options{N: 3})
	l1 := c.Leader(t)
	time.Sleep(electionTimeout / 3)
	term1 := c.Terms(t)
	if term1 < 1 {
		t.Fatalf("term is %d, but an election happened", term1)
	}
	time.Sleep(3 * electionTimeout)
	if term2 := c.Terms(t); term2 != term1 {
		t.Fatalf("term moved from %d to %d with no failure", term1, term2)
	}
	if l2 := c.Leader(t); l2 != l1 {
		t.Fatalf("leader moved from %d to %d with no failure", l1, l2)
	}
	// Every node knows the leader.
	for i := range c.N() {
		if got := c.Node(i).Leader(); got != c.id(l1) {
			t.Fatalf("node %d thinks the leader is %d, want %d", c.id(i), got, c.id(l1))
		}
	}
}

// TestReElection: losing the leader elects another; the old one rejoining
// does not disturb it; with no quorum nobody is elected; quorum back, a
// leader again.
func TestReElection(t *testing.T) {
	c := New(t, Options{N: 3})
	l1 := c.Leader(t)

	c.Disconnect(l1)
	l2 := c.Leader(t)
	if l2 == l1 {
		t.Fatalf("disconnected node %d is still the leader", l1)
	}

	// The old leader rejoins: one leader still.
	c.Reconnect(l1)
	l3 := c.Leader(t)

	// No quorum: no leader.
	c.Disconnect(l3)
	c.Disconnect((l3 + 1) % 3)
	time.Sleep(2 * electionTimeout)
	c.NoLeader(t)

	// Quorum back.
	c.Reconnect((l3 + 1) % 3)
	c.Leader(t)

	c.Reconnect(l3)
	c.Leader(t)
}

// TestManyElections: 7 nodes; repeatedly cut off 3 at random, and the 4
// left elect a leader each time.
func TestManyElections(t *testing.T) {
	const n = 7
	c := New(t, Options{N: n})
	c.Leader(t)
	for range 8 {
		cut := c.Rand().Perm(n)[:3]
		for _, i := range cut {
			c.Disconnect(i)
		}
		l := c.Leader(t)
		for _, i := range cut {
			if l == i {
				t.Fatalf("disconnected node %d is leader", c.id(i))
			}
		}
		for _, i := range cut {
			c.Reconnect(i)
		}
	}
	c.Leader(t)
}

// TestPreVoteNoDisruption: a follower partitioned away and back (thesis
// §9.6) does not depose the leader or make the term jump.
func TestPreVoteNoDisruption(t *testing.T) {
	c := New(t, Options{N: 3})
	l := c.Leader(t)
	c.One(t, 3, false)
	term := c.Terms(t)
	f := (l + 1) % 3
	c.Disconnect(f)
	time.Sleep(5 * electionTimeout) // many election timeouts of its own
	if s := c.Node(f).Status(); s.Term != term {
		t.Fatalf("partitioned follower moved its term from %d to %d: pre-vote should keep it", term, s.Term)
	}
	c.Reconnect(f)
	time.Sleep(3 * electionTimeout)
	if got := c.Leader(t); got != l {
		t.Fatalf("leader changed from %d to %d when a follower rejoined", c.id(l), c.id(got))
	}
	if got := c.Terms(t); got != term {
		t.Fatalf("term moved from %d to %d when a follower rejoined", term, got)
	}
	c.One(t, 3, false)
}

// TestCheckQuorumLeaderStepsDown: a leader cut off from the quorum steps
// down within a few election timeouts, and the rest elect a new one.
func TestCheckQuorumLeaderStepsDown(t *testing.T) {
	c := New(t, Options{N: 5})
	l := c.Leader(t)
	c.One(t, 5, false)
	c.Disconnect(l)
	deadline := time.Now().Add(4 * electionTimeout)
	for c.Node(l).Status().Role == consensus.Leader {
		if time.Now().After(deadline) {
			t.Fatalf("node %d still leads %v after losing its quorum", c.id(l), 4*electionTimeout)
		}
		time.Sleep(tickInterval)
	}
	l2 := c.Leader(t)
	if l2 == l {
		t.Fatalf("cut-off node %d is leader", c.id(l))
	}
	c.One(t, 4, false)
	c.Reconnect(l)
	c.One(t, 5, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
}

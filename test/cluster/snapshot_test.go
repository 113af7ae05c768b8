package cluster

import (
	"testing"
	"time"
)

// Compaction settings of the snapshot tests: compact every 10 applied
// entries, keeping 2 behind, so a follower that misses a dozen entries
// needs a snapshot.
const (
	snapEvery    = 10
	snapTrailing = 2
	// maxLogLen bounds a node's stored log: compaction must keep it short.
	maxLogLen = 3*snapEvery + 2*(snapEvery/2+snapEvery) + snapTrailing
)

// snapCommon is the lab's snapcommon: rounds in which a victim is cut off
// or crashed while the leader's log moves on and is compacted; the victim
// then catches up, by snapshot when it is too far behind.
func snapCommon(t *testing.T, disconnect, reliable, crash bool) {
	const n, iters = 3, 30
	c := New(t, Options{N: n, Unreliable: !reliable, SnapshotEntries: snapEvery, TrailingEntries: snapTrailing})
	c.One(t, n, true)
	l := c.Leader(t)
	for i := range iters {
		victim, sender := (l+1)%n, l
		if i%3 == 1 {
			victim, sender = l, (l+1)%n
		}
		if disconnect {
			c.Disconnect(victim)
			c.One(t, n-1, true)
		}
		if crash {
			c.Crash(victim)
			c.One(t, n-1, true)
		}
		// Enough entries to compact, proposed on sender if it leads.
		proposeBatch(c, sender, snapEvery/2+c.Rand().IntN(snapEvery), 2*electionTimeout)
		if !disconnect && !crash {
			c.One(t, n, true)
		} else {
			c.One(t, n-1, true)
		}
		for j := range n {
			if c.Alive(j) {
				if got := c.LogLen(t, j); got > maxLogLen {
					t.Fatalf("round %d: node %d holds %d log entries, more than %d: compaction is not working", i, c.id(j), got, maxLogLen)
				}
			}
		}
		if disconnect {
			c.Reconnect(victim)
			c.One(t, n, true)
			l = c.Leader(t)
		}
		if crash {
			c.Restart(victim)
			c.One(t, n, true)
			l = c.Leader(t)
		}
	}
	c.SetUnreliable(false)
	time.Sleep(electionTimeout / 3)
	c.One(t, n, true)
	c.CheckApplied(t)
	c.CheckAcked(t)
	restores := 0
	for j := range n {
		restores += c.Restores(j)
	}
	if (disconnect || crash) && restores == 0 {
		t.Fatal("no snapshot was installed although followers fell behind the compacted log")
	}
	t.Logf("snapshots installed: %d", restores)
}

// TestSnapshotBasic: compaction with every node up keeps the log short and
// loses nothing.
func TestSnapshotBasic(t *testing.T) { snapCommon(t, false, true, false) }

// TestSnapshotInstall: a follower cut off while the log is compacted
// catches up by snapshot.
func TestSnapshotInstall(t *testing.T) { snapCommon(t, true, true, false) }

// TestSnapshotInstallUnreliable: likewise over a lossy network.
func TestSnapshotInstallUnreliable(t *testing.T) { snapCommon(t, true, false, false) }

// TestSnapshotInstallCrash: a follower that crashed catches up by snapshot
// after restarting from its own compacted state.
func TestSnapshotInstallCrash(t *testing.T) { snapCommon(t, false, true, true) }

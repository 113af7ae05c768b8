package cluster

import (
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus"
)

// TestLeaseLinearizable: the linearizability test of ReadIndex with lease
// reads: leaders answer reads from their lease while leadership moves by
// transfer and by cutting the leader off, half the readers calling the
// leader the nemesis cuts off; the history must stay linearizable.
//
// The nodes tick at 5, 5.25 and 5.5 ms (drift of 10%), on the wall clock:
// the lease's real margin is whatever the machine's scheduling leaves.
// With ElectionTicks 10 and LeaseDriftTicks 5 a lease lasts 5 leader ticks
// (at most 27.5 ms) while a follower refuses votes for 8 of its ticks (at
// least 40 ms with consensus/node's ticker), so a leader's driver may take
// its ticks up to 12.5 ms late before the assumption breaks.
func TestLeaseLinearizable(t *testing.T) {
	cutOff := checkReadsLinearizable(t, Options{
		Raft: func(_ int, c *consensus.Config) {
			c.ReadMode = consensus.LeaseMode
			c.LeaseDriftTicks = 5
		},
		TickInterval: func(i int) time.Duration { return tickInterval + time.Duration(i)*tickInterval/20 },
	}, true)
	// Reads a cut-off leader answered came from its lease: without any,
	// the test would not have exercised the lease where it matters.
	if cutOff == 0 {
		t.Fatal("no read answered by a cut-off leader: the lease was never exercised under a partition")
	}
}

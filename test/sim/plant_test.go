//go:build seshatplant

package main

import (
	"flag"
	"runtime"
	"testing"
)

// plantSteps is the length of a planted-bug run: longer than the default,
// so that each seed sees more elections and the rarer bugs (the Figure 8
// commit) show up within fewer seeds.
const plantSteps = 30000

// TestPlantedBugsFound switches on each of the planted bugs (the core's and
// the driver's) in turn
// and checks that the simulator reports a violation within 500 seeds:
//
//	go test -tags seshatplant -run TestPlantedBugsFound ./test/sim
func TestPlantedBugsFound(t *testing.T) {
	for _, tc := range []struct {
		bug   string
		nodes int
	}{
		{"vote", 3},   // a vote that is not persisted
		{"commit", 3}, // an earlier term's entry committed by counting replicas
		{"ack", 3},    // a follower that acknowledges before its append is synced
		// The pipeline's bugs, in the core and in the driver:
		{"leader-unsynced", 3},   // the leader counts its own unsynced entries toward commit
		{"apply-uncommitted", 3}, // the leader applies its entries before they commit
		{"answer-by-index", 3},   // a proposal answered by whatever entry applied at its index
		{"purge-unsynced", 3},    // the log purged before the state machine covering it is synced
		// Membership changes (the membership nemesis):
		{"two-changes", 3},  // a change proposed while another is uncommitted
		{"early-change", 3}, // a new leader changes membership before committing in its term
	} {
		t.Run(tc.bug, func(t *testing.T) {
			opts := defaultOptions()
			opts.plant, opts.nodes, opts.steps = tc.bug, tc.nodes, plantSteps
			v := firstViolation(t, opts, 500)
			if v == nil {
				t.Fatalf("planted bug %q: no violation in seeds 1..500 with %d nodes", tc.bug, tc.nodes)
			}
			t.Logf("planted bug %q found by seed %d (inv=%s): %s", tc.bug, v.seed, v.inv, v.line(opts))
		})
	}
}

// firstViolation runs seeds 1..max in batches and returns the violation of
// the lowest seed that has one.
func firstViolation(t *testing.T, opts options, max uint64) *violation {
	batch := uint64(4 * runtime.GOMAXPROCS(0))
	for lo := uint64(1); lo <= max; lo += batch {
		for _, r := range runBatch(opts, lo, min(lo+batch-1, max)) {
			if r.err != nil {
				t.Fatalf("seed %d: %v", r.seed, r.err)
			}
			if r.violation != nil {
				return r.violation
			}
		}
	}
	return nil
}

func TestPlantFlag(t *testing.T) {
	if flag.Lookup("plant") == nil || plantBug == nil {
		t.Fatal("a seshatplant build has no -plant flag")
	}
	opts := defaultOptions()
	opts.plant = "nonsense"
	if _, err := newSim(opts, 1); err == nil {
		t.Fatal("an unknown planted bug was accepted")
	}
}

package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// The failure classes Jepsen reported on RedisRaft, each a named test
// over a short fixed schedule against a 3-node cluster, with every
// checker of the chaos run (registers, counters, lists, convergence).
// The membership classes (lost updates when a partition meets a
// membership change, empty reads after a membership change and a crash)
// need SESHAT.MEMBER, which this branch does not have.

// regression runs steps under the workloads and fails on any violation.
func regression(t *testing.T, label string, steps []step) {
	s := enabled(t)
	if s.plant != "" {
		t.Skip("SESHAT_CHAOS_PLANT is for TestChaosFindsPlantedBug")
	}
	dir := evidenceDir(t, s.seed)
	res := runChaos(t, runConfig{Name: fmt.Sprintf("chaos-%s-%d", label, s.seed%100000), Nodes: 3, Seed: s.seed, Steps: steps}, dir)
	for _, f := range res.failed {
		t.Error(f)
	}
	if len(res.failed) > 0 || t.Failed() {
		fmt.Printf("chaos %s seed=%d FAILED: evidence in %s\n", label, s.seed, dir)
		return
	}
	os.RemoveAll(dir)
}

// Data loss on failover: the leader killed (SIGKILL) twice and paused
// once while clients write; every acknowledged write survives.
func TestRegressionFailoverDataLoss(t *testing.T) {
	regression(t, "failover", []step{
		{Nemesis: "kill-leader", Fault: 4 * time.Second, Pick: 1},
		{Nemesis: "pause-leader", Fault: 4 * electionTimeout, Pick: 2},
		{Nemesis: "kill-leader", Fault: 3 * time.Second, Pick: 3},
	})
}

// A committed write reported as failed: writes refused with CLUSTERDOWN
// or TRYAGAIN must not apply. The schedule makes many refusals (the
// leader isolated, a minority cut off, the leader killed); the list and
// counter checkers fail on a refused write that is present.
func TestRegressionCommittedWriteReportedFailed(t *testing.T) {
	regression(t, "reported-failed", []step{
		{Nemesis: "isolate-leader", Fault: 5 * time.Second, Pick: 1},
		{Nemesis: "halves", Fault: 5 * time.Second, Pick: 2},
		{Nemesis: "kill-leader", Fault: 3 * time.Second, Pick: 3},
	})
}

// Lost writes after a crash during a partition: the leader cut off while
// the majority takes writes, then every node killed before the partition
// heals, and started again.
func TestRegressionCrashDuringPartition(t *testing.T) {
	regression(t, "crash-partition", []step{
		{Nemesis: "kill-all-partitioned", Fault: 2 * time.Second, Pick: 1},
		{Nemesis: "kill-all-partitioned", Fault: 2 * time.Second, Pick: 2},
	})
}

// Stale reads from a deposed leader: the leader is cut off from its
// followers while a client still reaches it. After the majority has
// acknowledged a newer value, a read on the old leader must return that
// value or an error, never the value before (a read served without a
// committed entry of the reader's term, or on a lease it no longer has).
func TestRegressionStaleReadDeposedLeader(t *testing.T) {
	s := enabled(t)
	if s.plant != "" {
		t.Skip("SESHAT_CHAOS_PLANT is for TestChaosFindsPlantedBug")
	}
	c := newCluster(t, fmt.Sprintf("chaos-stale-%d", s.seed%100000), 3, s.seed, nil)
	c.startAll()
	t.Cleanup(func() {
		if t.Failed() {
			dir := evidenceDir(t, s.seed)
			c.logs(dir)
			fmt.Printf("chaos stale-read FAILED: logs in %s\n", dir)
		}
	})
	old := c.waitLeader(60 * time.Second)
	if old == nil {
		t.Fatal("no leader")
	}
	set := func(nd *node, v string) error {
		cl := newClient(nd.addr())
		defer cl.Close()
		ctx, cancel := opCtx()
		defer cancel()
		return cl.Set(ctx, "stale", v, 0).Err()
	}
	if err := set(old, "v0"); err != nil {
		t.Fatal(err)
	}
	var others []*node
	for _, nd := range c.nodes {
		if nd != old {
			others = append(others, nd)
		}
	}
	if err := c.partition(groups([]int{old.id}, []int{others[0].id, others[1].id})); err != nil {
		t.Fatal(err)
	}
	reader := newClient(old.addr())
	defer reader.Close()
	var stale, errs, fresh int
	deadline := time.Now().Add(20 * time.Second)
	for i := 1; i <= 30 && time.Now().Before(deadline); i++ {
		v := "v" + strconv.Itoa(i)
		acked := false
		for try := 0; try < 50 && !acked; try++ {
			acked = set(others[try%2], v) == nil
			if !acked {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if !acked {
			t.Fatalf("the majority took no write within 5s (round %d)", i)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		got, err := reader.Get(ctx, "stale").Result()
		cancel()
		switch {
		case err != nil:
			errs++
		case got != v:
			stale++
			t.Errorf("round %d: the deposed leader n%d answered %q after the majority acknowledged %q", i, old.id, got, v)
		default:
			fresh++
		}
	}
	c.heal()
	if d, ok := c.takesWrites(recoverWithin); !ok {
		t.Errorf("no write taken within %v of the heal", d)
	}
	fmt.Printf("chaos regression=stale-read seed=%d deposed=n%d reads fresh=%d stale=%d refused=%d verdict=%s\n",
		s.seed, old.id, fresh, stale, errs, map[bool]string{true: "ok", false: "FAILED"}[stale == 0])
}

// Lost updates when a partition meets a membership change, and empty
// reads after a membership change and a crash: on 5 nodes, a follower is
// killed and replaced by a new node (REPLACE, then --join) while the
// leader is cut off; then every node is killed and started again, and
// the leader is isolated once more. Every acknowledged write must be
// there, on every member.
func TestRegressionMembershipChangeDuringPartition(t *testing.T) {
	s := enabled(t)
	if s.plant != "" {
		t.Skip("SESHAT_CHAOS_PLANT is for TestChaosFindsPlantedBug")
	}
	dir := evidenceDir(t, s.seed)
	res := runChaos(t, runConfig{Name: fmt.Sprintf("chaos-members-%d", s.seed%100000), Nodes: 5, Seed: s.seed, Steps: []step{
		{Nemesis: "replace-during-partition", Fault: 5 * time.Second, Pick: 1},
		{Nemesis: "kill-all", Fault: 3 * time.Second, Pick: 2},
		{Nemesis: "isolate-leader", Fault: 4 * time.Second, Pick: 3},
	}}, dir)
	for _, f := range res.failed {
		t.Error(f)
	}
	if len(res.failed) > 0 || t.Failed() {
		fmt.Printf("chaos members seed=%d FAILED: evidence in %s\n", s.seed, dir)
		return
	}
	os.RemoveAll(dir)
}

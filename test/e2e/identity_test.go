package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/domain"
)

// dataDir is node id's data dir.
func (c *cluster) dataDir(id int) string { return filepath.Join(c.dir, strconv.Itoa(id)) }

// stop SIGTERMs node id and waits for it to exit.
func (c *cluster) stop(id int) {
	p := c.signal(id, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("node %d did not stop within 20s", id)
	}
	c.forget(id)
}

// refusedAtStart runs node id with its restart command line plus extra and
// expects it to exit at once with status 2 and one line containing every
// one of want.
func (c *cluster) refusedAtStart(id int, extra []string, want ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, seshatd, append(c.args(id), extra...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		c.t.Fatalf("node %d %v: %v, want exit status 2; output:\n%s", id, extra, err, out)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for _, w := range want {
		if !strings.Contains(lines[len(lines)-1], w) {
			c.t.Fatalf("node %d %v: last line %q lacks %q; output:\n%s", id, extra, lines[len(lines)-1], w, out)
		}
	}
}

// waitApplied waits until node id has applied index at least want.
func (c *cluster) waitApplied(ctx context.Context, id int, want uint64) {
	c.t.Helper()
	for {
		inf, err := c.info(ctx, id)
		if err == nil {
			if got, _ := strconv.ParseUint(inf["applied_index"], 10, 64); got >= want {
				return
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("node %d: applied index below %d: %v %v", id, want, inf, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeKeys SETs n keys through the leader and waits until every node has
// applied them.
func (c *cluster) writeKeys(ctx context.Context, prefix string, n int) map[string]string {
	c.t.Helper()
	lead := c.leader(10 * time.Second)
	acked := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("%s-%d", prefix, i), strconv.Itoa(i*7)
		if err := c.client(lead).Set(ctx, k, v, 0).Err(); err != nil {
			c.t.Fatalf("SET %s: %v", k, err)
		}
		acked[k] = v
	}
	inf, err := c.info(ctx, lead)
	if err != nil {
		c.t.Fatal(err)
	}
	commit, _ := strconv.ParseUint(inf["commit_index"], 10, 64)
	for id := 1; id <= c.n; id++ {
		c.waitApplied(ctx, id, commit)
	}
	return acked
}

// keyCount is INFO keyspace's key count of db0 on node id (what it has
// applied, read locally: no quorum needed).
func (c *cluster) keyCount(ctx context.Context, id int) int {
	c.t.Helper()
	s, err := c.client(id).Info(ctx, "keyspace").Result()
	if err != nil {
		c.t.Fatalf("node %d: INFO keyspace: %v", id, err)
	}
	_, rest, ok := strings.Cut(s, "db0:keys=")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
	return n
}

// A wiped majority does not form a new cluster by itself: the two nodes
// whose data dirs were deleted, restarted with their usual command line,
// refuse to start, saying what to do; they write no identity; the
// surviving node keeps all its data.
func TestWipedMajorityRefusesToStart(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	acked := c.writeKeys(ctx, "wipe", 200)
	for id := 1; id <= 3; id++ {
		c.stop(id)
	}
	for _, id := range []int{2, 3} {
		if err := os.RemoveAll(c.dataDir(id)); err != nil {
			t.Fatal(err)
		}
		c.refusedAtStart(id, nil, "no cluster identity", "--bootstrap", "--join", "replace it")
		if _, err := datadir.Load(c.dataDir(id)); !errors.Is(err, domain.ErrNoIdentity) {
			t.Fatalf("node %d: a refused start left an identity: %v", id, err)
		}
	}
	c.start(1)
	if n := c.keyCount(ctx, 1); n != len(acked) {
		t.Fatalf("node 1 holds %d keys after restarting, want %d", n, len(acked))
	}
	if inf, err := c.info(ctx, 1); err != nil || inf["raft_role"] == "leader" {
		t.Fatalf("node 1 alone: %v %v; it must not lead by itself", inf, err)
	}
}

// A node started on another cluster's data dir (same name, same ids, other
// UUID) is refused by its peers, each saying both UUIDs; the cluster goes
// on without it and nothing of the other cluster gets in.
func TestForeignDataDirRefusedByPeers(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	acked := c.writeKeys(ctx, "home", 50)

	// Another cluster's node 3: a one-node cluster of its own.
	addrs := freeAddrs(t, 2)
	other := filepath.Join(t.TempDir(), "3")
	cmd := exec.Command(seshatd, "--id", "3", "--data-dir", other, "--listen", addrs[0], "--cluster", "3="+addrs[1],
		"--cluster-id", "e2e", "--bootstrap", "--tick", tick.String())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	foreign := waitIdentity(t, other)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	c.stop(3)
	if err := os.RemoveAll(c.dataDir(3)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, c.dataDir(3)); err != nil {
		t.Fatal(err)
	}
	c.start(3)
	for _, id := range []int{1, 2} {
		waitLog(t, c, id, 15*time.Second, "cluster UUID", foreign.ClusterID, c.uuid, "peer=3")
	}
	// The cluster takes writes without node 3, which gets none of them.
	lead := c.leader(10*time.Second, 1, 2)
	if err := c.client(lead).Set(ctx, "after", "foreign", 0).Err(); err != nil {
		t.Fatal(err)
	}
	checkAll(t, c, lead, acked)
	time.Sleep(300 * time.Millisecond)
	if n := c.keyCount(ctx, 3); n != 0 {
		t.Fatalf("the foreign node holds %d keys of the cluster", n)
	}
}

// waitIdentity waits for a node to write its identity into dir.
func waitIdentity(t *testing.T, dir string) datadir.Identity {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		id, err := datadir.Load(dir)
		if err == nil {
			return id
		}
		if time.Now().After(end) {
			t.Fatalf("no identity in %s: %v", dir, err)
		}
	}
}

// waitLog waits until node id's log has a line holding every one of want.
func waitLog(t *testing.T, c *cluster, id int, d time.Duration, want ...string) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)))
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return
			}
		}
		if time.Now().After(end) {
			t.Fatalf("node %d never logged a line with %q:\n%s", id, want, c.logTail(id))
		}
	}
}

// Quorum loss: two of three nodes are gone for good. The survivor refuses
// --force-new-cluster without the acknowledgement; with it, it becomes the
// only voter of a new cluster (new UUID) with every write it had, takes new
// writes, and keeps being that cluster across a plain restart.
func TestForceNewClusterFromSurvivor(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 90*time.Second)
	acked := c.writeKeys(ctx, "before", 300)
	lead := c.leader(10 * time.Second)
	survivor := others(3, lead)[0]
	for id := 1; id <= 3; id++ {
		if id != survivor {
			c.kill(id)
		}
	}
	c.stop(survivor)

	c.refusedAtStart(survivor, []string{"--force-new-cluster"}, "--i-understand-this-may-lose-writes", "acknowledged")
	if id, err := datadir.Load(c.dataDir(survivor)); err != nil || id.ClusterID != c.uuid {
		t.Fatalf("a refused force changed the identity: %+v %v", id, err)
	}

	c.nodeExtra = func(id int) []string {
		if id == survivor {
			return []string{"--force-new-cluster", "--i-understand-this-may-lose-writes"}
		}
		return nil
	}
	c.start(survivor)
	c.nodeExtra = nil
	if got := c.leader(10*time.Second, survivor); got != survivor {
		t.Fatalf("leader %d, want the survivor %d", got, survivor)
	}
	id, err := datadir.Load(c.dataDir(survivor))
	if err != nil || id.ClusterID == c.uuid || id.NodeID != domain.NodeID(survivor) {
		t.Fatalf("identity after the force: %+v %v (old UUID %s)", id, err, c.uuid)
	}
	checkAll(t, c, survivor, acked)
	for i := range 50 {
		k := fmt.Sprintf("after-%d", i)
		if err := c.client(survivor).Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("SET %s on the new cluster: %v", k, err)
		}
		acked[k] = k
	}
	inf, err := c.info(ctx, survivor)
	if err != nil || inf["voters"] != strconv.Itoa(survivor) {
		t.Fatalf("voters after the force: %v %v", inf["voters"], err)
	}

	// A plain restart (flag removed) keeps the new cluster as it is.
	c.stop(survivor)
	c.start(survivor)
	c.leader(10*time.Second, survivor)
	checkAll(t, c, survivor, acked)
	if again, err := datadir.Load(c.dataDir(survivor)); err != nil || again != id {
		t.Fatalf("identity after a plain restart: %+v %v, want %+v", again, err, id)
	}
}

// A member that comes back with its identity but none of its data (as a
// binary that does not refuse an empty data dir would) is reported by the
// leader, in its log and in INFO replication, instead of stalling unseen.
func TestLeaderReportsMemberThatLostItsData(t *testing.T) {
	c := newCluster(t, 3)
	ctx := ctxT(t, 60*time.Second)
	c.writeKeys(ctx, "lost", 100)
	lead := c.leader(10 * time.Second)
	victim := others(3, lead)[0]
	c.stop(victim)
	keep, err := os.ReadFile(filepath.Join(c.dataDir(victim), datadir.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(c.dataDir(victim)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.dataDir(victim), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dataDir(victim), datadir.FileName), keep, 0o644); err != nil {
		t.Fatal(err)
	}
	c.start(victim)
	lead = c.leader(10 * time.Second)
	if err := c.client(lead).Set(ctx, "more", "writes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, c, lead, 15*time.Second, "lost its data", fmt.Sprintf("follower=%d", victim))
	for {
		inf, err := c.info(ctx, lead)
		if err == nil && inf["lost_data"] == strconv.Itoa(victim) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("INFO replication of the leader: %v %v, want lost_data:%d", inf, err, victim)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

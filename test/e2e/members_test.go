package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// member is one row of SESHAT.MEMBER LIST.
type member struct {
	id           int
	role         string
	peer, client string
	match, lag   int64
}

// members runs SESHAT.MEMBER LIST on node id.
func (c *cluster) members(ctx context.Context, id int) ([]member, error) {
	v, err := c.client(id).Do(ctx, "SESHAT.MEMBER", "LIST").Slice()
	if err != nil {
		return nil, err
	}
	var out []member
	for _, r := range v {
		row, ok := r.([]any)
		if !ok || len(row) != 6 {
			return nil, fmt.Errorf("bad LIST row %v", r)
		}
		id, _ := row[0].(int64)
		m := member{id: int(id), role: fmt.Sprint(row[1]), peer: fmt.Sprint(row[2]), client: fmt.Sprint(row[3])}
		m.match, _ = row[4].(int64)
		m.lag, _ = row[5].(int64)
		out = append(out, m)
	}
	return out, nil
}

// admin runs SESHAT.MEMBER args on node id, retrying TRYAGAIN for a while.
func (c *cluster) admin(id int, args ...any) error {
	c.t.Helper()
	ctx := ctxT(c.t, 60*time.Second)
	for {
		err := c.client(id).Do(ctx, append([]any{"SESHAT.MEMBER"}, args...)...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "TRYAGAIN") || ctx.Err() != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMembers waits until node id lists exactly the voters and learners
// given (ids sorted), and returns the rows.
func (c *cluster) waitMembers(id int, timeout time.Duration, voters, learners []int) []member {
	c.t.Helper()
	want := fmt.Sprint(voters, learners)
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rows, err := c.members(ctx, id)
		cancel()
		var v, l []int
		for _, r := range rows {
			if r.role == "voter" {
				v = append(v, r.id)
			} else {
				l = append(l, r.id)
			}
		}
		if err == nil && fmt.Sprint(v, l) == want {
			return rows
		}
		last = fmt.Sprint(v, l, err)
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d lists members %s, want %s", id, last, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startJoining starts node id (a new one, with fresh addresses unless
// already chosen) with
// seshatd --join at node via's client address.
func (c *cluster) startJoining(id, via int) {
	c.t.Helper()
	for len(c.clients) < id {
		addrs := freeAddrs(c.t, 2)
		c.clients, c.peers = append(c.clients, addrs[0]), append(c.peers, addrs[1])
	}
	c.n = max(c.n, id)
	c.startCmd(id, []string{
		"--id", strconv.Itoa(id),
		"--data-dir", filepath.Join(c.dir, strconv.Itoa(id)),
		"--listen", c.clients[id-1],
		"--peer-listen", c.peers[id-1],
		"--join", c.clients[via-1],
		"--cluster-id", "e2e",
		"--tick", tick.String(),
		"--election-ticks", strconv.Itoa(electionTicks),
		"--heartbeat-ticks", "2",
		"--log-format", "console",
	})
}

// startCmd starts node id with args (and the cluster's extra flags) and
// waits for its client port, as start does.
func (c *cluster) startCmd(id int, args []string) {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(seshatd, append(args, c.extra...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs[id], c.logs[id] = p, logf
	c.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.clients[id-1], 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.done:
			c.t.Fatalf("node %d exited at start: %v\n%s", id, p.err, c.logTail(id))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d: client port not open after 60s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMembersGrowAndShrinkUnderWrites grows a 3-node cluster to 5 with two
// seshatd --join nodes, then shrinks it to 3 (a joined node and an initial
// one removed), under continuous writes; every acknowledged write is then
// on every remaining node.
func TestMembersGrowAndShrinkUnderWrites(t *testing.T) {
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	w := &writer{acked: map[string]string{}}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, c.client(1), "grow", 1<<30, 2*time.Millisecond) }()
	defer func() { stop(); <-done }()

	c.startJoining(4, 2)
	c.waitMembers(1, 30*time.Second, []int{1, 2, 3, 4}, nil)
	c.startJoining(5, 3)
	rows := c.waitMembers(1, 30*time.Second, []int{1, 2, 3, 4, 5}, nil)
	if rows[4].client != c.clients[4] || rows[4].peer != c.peers[4] {
		t.Fatalf("node 5 listed as %+v, want peer %s client %s", rows[4], c.peers[4], c.clients[4])
	}
	// The joined nodes serve reads and relay writes.
	ctx := ctxT(t, 30*time.Second)
	if err := c.client(5).Set(ctx, "via5", "x", 0).Err(); err != nil {
		t.Fatalf("SET through joined node 5: %v", err)
	}
	if v, err := c.client(4).Get(ctx, "via5").Result(); err != nil || v != "x" {
		t.Fatalf("GET via5 on node 4 = %q, %v", v, err)
	}

	if err := c.admin(3, "REMOVE", 4); err != nil {
		t.Fatalf("REMOVE 4: %v", err)
	}
	c.waitMembers(1, 30*time.Second, []int{1, 2, 3, 5}, nil)
	if err := c.admin(5, "REMOVE", 2); err != nil {
		t.Fatalf("REMOVE 2: %v", err)
	}
	c.waitMembers(1, 30*time.Second, []int{1, 3, 5}, nil)
	// Writes go on with 3 members.
	before, _ := w.snapshot()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if now, _ := w.snapshot(); len(now) >= len(before)+50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes stalled after the shrink")
		}
	}
	stop()
	<-done
	acked, errs := w.snapshot()
	t.Logf("%d writes acknowledged, %d failed during the changes", len(acked), len(errs))
	if len(errs) > 0 {
		t.Logf("first errors: %v", errs[:min(len(errs), 5)])
	}
	acked["via5"] = "x"
	for _, id := range []int{1, 3, 5} {
		checkAll(t, c, id, acked)
	}
	c.kill(4)
	c.kill(2)
}

// TestMembersReplaceWipedNode replaces a node whose data dir was deleted
// by a new node with a new id, which catches up from a snapshot and serves
// every key; the old id is refused from then on. Then the leader removes
// itself: it hands over first.
func TestMembersReplaceWipedNode(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-entries", "200", "--trailing-entries", "20")
	lead := c.leader(10 * time.Second)
	victim := others(3, lead)[1]
	ctx := ctxT(t, 120*time.Second)
	want := map[string]string{}
	for i := range 1000 {
		k, v := fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i)
		if err := c.client(lead).Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	c.kill(victim)
	if err := os.RemoveAll(filepath.Join(c.dir, strconv.Itoa(victim))); err != nil {
		t.Fatal(err)
	}
	// The replacement: REPLACE names its addresses, then it starts with
	// --join (which finds itself already added).
	addrs := freeAddrs(t, 2)
	c.clients, c.peers = append(c.clients, addrs[0]), append(c.peers, addrs[1])
	if err := c.admin(lead, "REPLACE", victim, 4, addrs[1], addrs[0]); err != nil {
		t.Fatalf("REPLACE %d 4: %v", victim, err)
	}
	c.startJoining(4, lead)
	voters := append(others(3, victim), 4)
	c.waitMembers(lead, 60*time.Second, voters, nil)
	checkAll(t, c, 4, want)
	logs, _ := os.ReadFile(filepath.Join(c.dir, "node4.log"))
	if !strings.Contains(string(logs), "snapshot") {
		t.Errorf("node 4 did not log a snapshot:\n%s", c.logTail(4))
	}

	// The old id is never accepted again, by ADD or by JOIN.
	for _, sub := range []string{"ADD", "JOIN"} {
		err := c.admin(lead, sub, victim, c.peers[victim-1], c.clients[victim-1])
		if err == nil || !strings.Contains(err.Error(), "removed") {
			t.Fatalf("%s of retired node %d: %v, want a refusal", sub, victim, err)
		}
	}

	// The leader removes itself: it hands over, then the new leader
	// removes it.
	if err := c.admin(lead, "REMOVE", lead); err != nil {
		t.Fatalf("REMOVE of the leader %d: %v", lead, err)
	}
	rest := []int{}
	for _, id := range voters {
		if id != lead {
			rest = append(rest, id)
		}
	}
	c.waitMembers(rest[0], 30*time.Second, rest, nil)
	nl := c.leader(10*time.Second, rest...)
	if nl == lead {
		t.Fatalf("removed node %d still leads", lead)
	}
	if err := c.client(rest[1]).Set(ctx, "after", "1", 0).Err(); err != nil {
		t.Fatalf("SET after removing the leader: %v", err)
	}
	want["after"] = "1"
	for _, id := range rest {
		checkAll(t, c, id, want)
	}
}

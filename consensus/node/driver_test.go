package node_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// dnode is one driver under a test's control: its stores and its two
// stage queues, which the test runs when it chooses.
type dnode struct {
	d      *node.Driver
	log    *memory.LogStore
	vote   *memory.VoteStore
	kv     *memory.KV
	logQ   []*node.LogJob
	applyQ []*node.ApplyJob
}

// dcluster is a few drivers and the messages between them, all stepped by
// hand: the tests look at what a driver asks for between two steps.
type dcluster struct {
	t     *testing.T
	nodes map[domain.NodeID]*dnode
	msgs  []domain.Message
}

func newDCluster(t *testing.T, n int, edit func(*node.DriverConfig)) *dcluster {
	t.Helper()
	c := &dcluster{t: t, nodes: map[domain.NodeID]*dnode{}}
	var peers []domain.NodeID
	for i := 1; i <= n; i++ {
		peers = append(peers, domain.NodeID(i))
	}
	for _, id := range peers {
		dn := &dnode{log: memory.NewLogStore(), vote: memory.NewVoteStore(), kv: memory.NewKV()}
		cfg := node.DriverConfig{Raft: consensus.Config{ID: id, Peers: peers, Rand: rand.New(rand.NewPCG(1, uint64(id)))}}
		if edit != nil {
			edit(&cfg)
		}
		st, err := node.LoadState(dn.log, dn.vote, dn.kv)
		if err != nil {
			t.Fatal(err)
		}
		if dn.d, err = node.NewDriver(cfg, st, 1); err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = dn
	}
	return c
}

// output takes id's output: messages to the network, jobs to the queues,
// answers delivered. It returns it for inspection.
func (c *dcluster) output(id domain.NodeID) node.Output {
	dn := c.nodes[id]
	out := dn.d.Output()
	c.msgs = append(c.msgs, out.Messages...)
	dn.logQ = append(dn.logQ, out.Log...)
	dn.applyQ = append(dn.applyQ, out.Apply...)
	for _, m := range out.Snapshots {
		c.t.Fatalf("unexpected snapshot send %v", m)
	}
	for _, a := range out.Answers {
		a.Deliver()
	}
	return out
}

// runLog runs id's first log job to completion and reports it.
func (c *dcluster) runLog(id domain.NodeID) {
	c.t.Helper()
	dn := c.nodes[id]
	j := dn.logQ[0]
	dn.logQ = dn.logQ[1:]
	if err := j.Run(dn.log, dn.vote, dn.kv); err != nil {
		c.t.Fatal(err)
	}
	dn.d.LogDone(j)
}

// runApply runs id's first apply job and reports it.
func (c *dcluster) runApply(id domain.NodeID) {
	c.t.Helper()
	dn := c.nodes[id]
	j := dn.applyQ[0]
	dn.applyQ = dn.applyQ[1:]
	if err := j.Run(dn.kv); err != nil {
		c.t.Fatal(err)
	}
	dn.d.ApplyDone(j)
}

// settle delivers messages and runs every job until nothing moves.
func (c *dcluster) settle() {
	c.t.Helper()
	for range 1000 {
		moved := false
		for id, dn := range c.nodes {
			c.output(id)
			for len(dn.logQ) > 0 {
				c.runLog(id)
				c.output(id)
				moved = true
			}
			for len(dn.applyQ) > 0 {
				c.runApply(id)
				c.output(id)
				moved = true
			}
		}
		msgs := c.msgs
		c.msgs = nil
		for _, m := range msgs {
			c.nodes[m.To].d.Step(m)
			moved = true
		}
		if !moved {
			return
		}
	}
	c.t.Fatal("the cluster did not settle")
}

// elect ticks node 1 until it leads.
func (c *dcluster) elect() *node.Driver {
	c.t.Helper()
	l := c.nodes[1].d
	for range 100 {
		l.Tick()
		c.settle()
		if l.SoftState().Role == consensus.Leader {
			return l
		}
	}
	c.t.Fatal("node 1 was not elected")
	return nil
}

func propose(d *node.Driver, cmd []byte, res *error) *node.Proposal {
	*res = errPending
	p := &node.Proposal{Cmds: [][]byte{cmd}, Done: func(_ []domain.Result, err error) { *res = err }}
	d.Propose(p)
	return p
}

var errPending = domain.ErrUnavailable

// TestDriverReplicatesWhileWriting: while the leader's log job is in
// flight, a new proposal's append goes to the followers at once, no second
// log job is issued, and the next log job writes what arrived meanwhile.
func TestDriverReplicatesWhileWriting(t *testing.T) {
	c := newDCluster(t, 3, nil)
	l := c.elect()
	var r1, r2 error
	propose(l, set("a", "1"), &r1)
	out := c.output(1)
	if len(out.Log) != 1 || len(out.Log[0].Entries) != 1 {
		t.Fatalf("first proposal: log jobs %+v", out.Log)
	}
	propose(l, set("b", "2"), &r2)
	out = c.output(1)
	if len(out.Log) != 0 {
		t.Fatalf("a second log job while the first is in flight: %+v", out.Log)
	}
	apps := 0
	for _, m := range out.Messages {
		if m.Type == domain.MsgApp && len(m.Entries) == 1 && m.Entries[0].Index == lastIndex(t, l) {
			apps++
		}
	}
	if apps != 2 {
		t.Fatalf("appends of the second proposal sent while writing: %d, want 2: %v", apps, out.Messages)
	}
	c.runLog(1)
	out = c.output(1)
	if len(out.Log) != 1 || len(out.Log[0].Entries) != 1 || out.Log[0].Entries[0].Index != lastIndex(t, l) {
		t.Fatalf("the next log job does not write the second proposal: %+v", out.Log)
	}
	c.settle()
	if r1 != nil || r2 != nil {
		t.Fatalf("proposals answered %v, %v", r1, r2)
	}
}

// lastIndex is the last index of d's log.
func lastIndex(t *testing.T, d *node.Driver) domain.Index {
	t.Helper()
	return d.Status().LastIndex
}

// TestDriverAppliesOnlyDurableCommitted: a follower hands committed
// entries to the apply stage only once the log job that wrote them is
// done, and the proposal is answered only once its entry is applied.
func TestDriverAppliesOnlyDurableCommitted(t *testing.T) {
	c := newDCluster(t, 3, nil)
	l := c.elect()
	var r error
	propose(l, set("a", "1"), &r)
	c.output(1)
	c.runLog(1)
	c.output(1)
	// The followers get the entry, write it, acknowledge.
	for _, id := range []domain.NodeID{2, 3} {
		for _, m := range c.take(id) {
			c.nodes[id].d.Step(m)
		}
		c.output(id)
		c.runLog(id)
		c.output(id)
	}
	for _, m := range c.take(1) {
		l.Step(m)
	}
	out := c.output(1) // committed: the leader applies
	if len(out.Apply) != 1 {
		t.Fatalf("leader: apply jobs after commit %+v", out.Apply)
	}
	if r != errPending {
		t.Fatalf("answered %v before the entry applied", r)
	}
	c.runApply(1)
	c.output(1)
	if r != nil {
		t.Fatalf("answered %v after the entry applied", r)
	}
	// Follower 2 hears of the commit with a new entry it must write
	// first: nothing applies until that write is done.
	var r2 error
	propose(l, set("b", "2"), &r2)
	c.output(1)
	for _, m := range c.take(2) {
		c.nodes[2].d.Step(m)
	}
	out = c.output(2)
	if len(out.Apply) != 0 {
		t.Fatalf("follower applies before its log job is done: %+v", out.Apply)
	}
	if len(out.Log) != 1 {
		t.Fatalf("follower log jobs %+v", out.Log)
	}
	c.runLog(2)
	if out = c.output(2); len(out.Apply) != 1 {
		t.Fatalf("follower: apply jobs after its write %+v", out.Apply)
	}
}

// take removes and returns the queued messages to id.
func (c *dcluster) take(to domain.NodeID) []domain.Message {
	var mine, rest []domain.Message
	for _, m := range c.msgs {
		if m.To == to {
			mine = append(mine, m)
		} else {
			rest = append(rest, m)
		}
	}
	c.msgs = rest
	return mine
}

// TestDriverCompactionSyncsBeforePurge: compaction asks the apply stage to
// sync the state machine, and purges the log only once that is done.
func TestDriverCompactionSyncsBeforePurge(t *testing.T) {
	c := newDCluster(t, 1, func(cfg *node.DriverConfig) { cfg.SnapshotEntries, cfg.TrailingEntries = 3, 1 })
	l := c.elect()
	dn := c.nodes[1]
	var r error
	for i := range 3 {
		propose(l, set("k", string(rune('a'+i))), &r)
	}
	c.output(1)
	for len(dn.logQ) > 0 || len(dn.applyQ) > 0 {
		for len(dn.logQ) > 0 {
			if dn.logQ[0].Purge != 0 {
				t.Fatalf("purge through %d before the state machine synced", dn.logQ[0].Purge)
			}
			c.runLog(1)
			c.output(1)
		}
		if len(dn.applyQ) > 0 && dn.applyQ[0].SyncStateMachine {
			break
		}
		for len(dn.applyQ) > 0 && !dn.applyQ[0].SyncStateMachine {
			c.runApply(1)
			c.output(1)
		}
	}
	if len(dn.applyQ) == 0 || !dn.applyQ[0].SyncStateMachine {
		t.Fatalf("no state machine sync asked for: %+v", dn.applyQ)
	}
	c.runApply(1)
	out := c.output(1)
	if len(out.Log) != 1 || out.Log[0].Purge == 0 {
		t.Fatalf("after the sync: log jobs %+v, want a purge", out.Log)
	}
	c.runLog(1)
	first, _ := dn.log.FirstIndex()
	if first != out.Log[0].Purge+1 {
		t.Fatalf("first index %d after purging through %d", first, out.Log[0].Purge)
	}
}

// TestDriverAnswersWhileApplyStageFull: a follower whose apply stage is
// full (MaxApplyJobs jobs out, behind a large value's apply) takes no new
// Ready but still answers its leader's heartbeats.
func TestDriverAnswersWhileApplyStageFull(t *testing.T) {
	c := newDCluster(t, 3, func(cfg *node.DriverConfig) { cfg.MaxApplyJobs = 1 })
	l := c.elect()
	var r error
	propose(l, set("a", "1"), &r)
	// Run everything but node 2's apply jobs.
	for range 100 {
		for id, dn := range c.nodes {
			c.output(id)
			for len(dn.logQ) > 0 {
				c.runLog(id)
				c.output(id)
			}
			for id != 2 && len(dn.applyQ) > 0 {
				c.runApply(id)
				c.output(id)
			}
		}
		msgs := c.msgs
		c.msgs = nil
		for _, m := range msgs {
			c.nodes[m.To].d.Step(m)
		}
		if len(msgs) == 0 {
			break
		}
	}
	if len(c.nodes[2].applyQ) != 1 {
		t.Fatalf("node 2 holds %d apply jobs, want 1 (the proposal's)", len(c.nodes[2].applyQ))
	}
	var hb *domain.Message
	for range 100 {
		l.Tick()
		c.output(1)
		for i, m := range c.msgs {
			if m.Type == domain.MsgHeartbeat && m.To == 2 {
				hb = &c.msgs[i]
			}
		}
		if hb != nil {
			break
		}
	}
	if hb == nil {
		t.Fatal("the leader sent node 2 no heartbeat")
	}
	c.nodes[2].d.Step(*hb)
	c.msgs = nil
	out := c.output(2)
	if !slices.ContainsFunc(out.Messages, func(m domain.Message) bool { return m.Type == domain.MsgHeartbeatResp && m.To == 1 }) {
		t.Fatalf("node 2, its apply stage full, did not answer the heartbeat: %v", out.Messages)
	}
}

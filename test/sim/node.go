package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/seshat-kv/seshat/consensus"
	raftnode "github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// node is one simulated server: the production driver (consensus/node's
// Driver, the same code the Node shell runs), its disk, and the two
// storage stages the simulator runs for it, each a queue of jobs whose
// writes and syncs complete late, as events of their own.
type node struct {
	id   domain.NodeID
	disk disk
	d    *raftnode.Driver
	up   bool
	inc  uint64 // incarnation: bumped by every crash
	// retired: removed from the cluster and stopped for good.
	retired bool
	period  int64 // tick period, a little different on every node

	// logQ and applyQ are the stages' jobs; the first of each is under
	// way when logBusy/applyBusy.
	logQ      []*raftnode.LogJob
	logBusy   bool
	applyQ    []*raftnode.ApplyJob
	applyBusy bool
	// smDurable is the state machine's applied index as of its last sync
	// (or restore): what a crash leaves of it. The log must never be
	// purged past it.
	smDurable domain.Index
	// written is the log job whose writes landed but are not yet synced.
	written *raftnode.LogJob
	// commit is the core's commit index as of the last check.
	commit domain.Index

	// role and term as of the last check.
	role consensus.Role
	term domain.Term
	// lcTerm, when non-zero, asks for a leader completeness check of the
	// stored log: the node became leader of lcTerm when the committed
	// prefix known anywhere ended at lcUpTo.
	lcTerm domain.Term
	lcUpTo domain.Index
	// firstCommitTerm is the last term in which this node committed as
	// leader.
	firstCommitTerm domain.Term

	touched  bool // stepped during this event: check its role
	logDirty bool // its stored log changed: check log matching
	// log caches the stored log for the log matching check.
	log      []domain.Entry
	logFirst domain.Index
}

func (n *node) live(inc uint64) bool { return n.up && n.inc == inc }

// start builds a driver from what node n's disk holds: a fresh node at
// the beginning, a restarted one after a crash.
func (s *sim) start(n *node) error {
	st, err := raftnode.LoadState(n.disk.Log(), n.disk.Votes(), n.disk.KV())
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	first, err := n.disk.Log().FirstIndex()
	if err != nil {
		return fmt.Errorf("first index: %w", err)
	}
	cfg, err := s.config(n)
	if err != nil {
		return err
	}
	d, err := raftnode.NewDriver(raftnode.DriverConfig{
		Raft:            cfg,
		SnapshotEntries: uint64(s.plan.compactEvery),
		TrailingEntries: compactTrail,
		TrailingBytes:   s.plan.trailingBytes,
		MaxApplyJobs:    s.plan.maxApplyJobs,
	}, st, first)
	if err != nil {
		return fmt.Errorf("new driver: %w", err)
	}
	n.d, n.up = d, true
	n.logQ, n.logBusy, n.applyQ, n.applyBusy = nil, false, nil, false
	n.written, n.commit = nil, 0
	n.smDurable = st.Snapshot.Index
	n.role, n.term, n.lcTerm = consensus.Follower, st.Vote.Term, 0
	n.logDirty, n.touched = true, true
	s.tr.linef(s.now, s.step, "start n%d inc=%d vote=%d/%d applied=%d/%d entries=%d",
		n.id, n.inc, st.Vote.Term, st.Vote.VotedFor, st.Snapshot.Index, st.Snapshot.Term, len(st.Entries))
	s.checkDigest(n)
	s.scheduleTick(n)
	return nil
}

func (s *sim) scheduleTick(n *node) {
	s.schedule(&event{at: s.now + n.period + s.rng.Int64N(300*usec), kind: evTick, node: n.id, inc: n.inc})
}

// crash stops node n: its unsynced writes are lost, its pending events
// (ticks, stage completions) are void, and it restarts later if
// scheduleRestart. Messages on their way to it are lost if they arrive
// while it is down; those still in flight when it is back up arrive late,
// as a network may deliver them.
func (s *sim) crash(n *node, scheduleRestart bool) {
	n.up = false
	n.inc++
	n.d, n.logQ, n.applyQ, n.lcTerm = nil, nil, nil, 0
	n.written = nil
	n.role = consensus.Follower
	if err := n.disk.Crash(); err != nil {
		s.fail("crash", "n%d: %v", n.id, err)
		return
	}
	n.logDirty = true
	// Messages it sent that are still on their way may die with it, as
	// they would in the send buffers of a machine that loses power.
	lost := 0
	for _, e := range s.q {
		if e.kind == evDeliver && e.msg.From == n.id && !e.void && s.rng.IntN(2) == 0 {
			e.void = true
			lost++
		}
	}
	s.tr.linef(s.now, s.step, "crash n%d (lost %d messages in flight)", n.id, lost)
	s.stats.crashes++
	s.clientsOnCrash(n)
	if scheduleRestart {
		s.schedule(&event{at: s.now + s.restartDelay(), kind: evRestart, node: n.id, inc: n.inc})
	}
}

// scheduleCrash makes node n's current incarnation crash at time at. A
// targeted crash (one aimed at an election or a write in progress) may
// take down one node more than a minority.
func (s *sim) scheduleCrash(n *node, at int64, targeted bool) {
	s.schedule(&event{at: at, kind: evCrash, node: n.id, inc: n.inc, ok: targeted})
}

func (s *sim) restartDelay() int64 {
	if s.rng.Float64() < s.plan.quickRestart {
		return msec + s.rng.Int64N(15*msec)
	}
	return 20*msec + s.rng.Int64N(400*msec)
}

// pump takes the driver's output after an input and does what it asks:
// messages to the network, jobs to the stages, snapshot sends, answers to
// the clients.
func (s *sim) pump(n *node) {
	n.touched = true
	if !n.up || s.viol != nil {
		return
	}
	out := n.d.Output()
	s.traceOutput(n, &out)
	for _, m := range out.Messages {
		s.send(n, m)
	}
	for _, m := range out.Snapshots {
		s.send(n, m)
	}
	if len(out.Apply) > 0 && n.d.SoftState().Role == consensus.Leader {
		s.onLeaderCommit(n)
	}
	n.logQ = append(n.logQ, out.Log...)
	n.applyQ = append(n.applyQ, out.Apply...)
	for _, a := range out.Answers {
		a.Deliver()
	}
	s.startLog(n)
	s.startApply(n)
}

// startLog starts the log stage's next job: its writes land a little
// later (evLogWrite), its sync later still (evLogDone).
func (s *sim) startLog(n *node) {
	if n.logBusy || len(n.logQ) == 0 || s.viol != nil {
		return
	}
	n.logBusy = true
	s.schedule(&event{at: s.now + s.rng.Int64N(s.plan.writeMax+1), kind: evLogWrite, node: n.id, inc: n.inc})
}

// logWrite does the writes of the log stage's current job (visible, not
// yet durable) and schedules its sync.
func (s *sim) logWrite(n *node) {
	j := n.logQ[0]
	if j.Purge > n.smDurable {
		// A crash now could leave a log that starts after the state
		// machine's durable point: the entries between are lost.
		s.fail("purge-before-sync", "n%d purges its log through %d, but its state machine is durable only through %d",
			n.id, j.Purge, n.smDurable)
		return
	}
	if err := j.Write(n.disk.Log(), n.disk.Votes(), n.disk.KV()); err != nil {
		s.fail("driver", "n%d: log job: %v", n.id, err)
		return
	}
	if j.Snapshot != nil {
		n.smDurable = j.Snapshot.Meta.Index // Restore is durable
	}
	if j.Snapshot != nil || len(j.Entries) > 0 || j.Purge != 0 {
		n.logDirty = true
	}
	if j.Snapshot != nil {
		s.stats.snapshots++
		s.checkDigest(n)
	}
	if j.Purge != 0 {
		s.stats.compactions++
	}
	if !j.Sync {
		s.logDone(n)
		return
	}
	n.written = j
	at := s.now + s.plan.fsyncMin + s.rng.Int64N(s.plan.fsyncMax-s.plan.fsyncMin+1)
	s.schedule(&event{at: at, kind: evLogDone, node: n.id, inc: n.inc})
	// Sometimes the node dies before the write is durable.
	if s.rng.Float64() < s.plan.crashInWindow {
		s.scheduleCrash(n, s.now+s.rng.Int64N(at-s.now+1), false)
	}
}

// logDone syncs the current job's writes and reports the job done.
func (s *sim) logDone(n *node) {
	j := n.logQ[0]
	n.logQ[0] = nil
	n.logQ = n.logQ[1:]
	n.logBusy = false
	n.written = nil
	if err := j.SyncLog(n.disk.Log()); err != nil {
		s.fail("driver", "n%d: sync: %v", n.id, err)
		return
	}
	if n.lcTerm != 0 {
		s.checkLeaderCompleteness(n)
	}
	n.d.LogDone(j)
	s.pump(n)
}

// startApply starts the apply stage's next job; it completes a little
// later (evApplyDone), a sync of the state machine as late as a log sync.
func (s *sim) startApply(n *node) {
	if n.applyBusy || len(n.applyQ) == 0 || s.viol != nil {
		return
	}
	n.applyBusy = true
	at := s.now + s.rng.Int64N(s.plan.applyMax+1)
	if n.applyQ[0].SyncStateMachine {
		// The state machine's sync is an fsync too, and a node may die
		// before it is done.
		at += s.plan.fsyncMin + s.rng.Int64N(s.plan.fsyncMax-s.plan.fsyncMin+1)
		if s.rng.Float64() < s.plan.crashInWindow {
			s.scheduleCrash(n, s.now+s.rng.Int64N(at-s.now+1), false)
		}
	}
	s.schedule(&event{at: at, kind: evApplyDone, node: n.id, inc: n.inc})
}

// applyDone runs the apply stage's current job, checks what it applied
// against every entry applied anywhere (state machine safety), and
// reports it done.
func (s *sim) applyDone(n *node) {
	j := n.applyQ[0]
	n.applyQ[0] = nil
	n.applyQ = n.applyQ[1:]
	n.applyBusy = false
	kv := n.disk.KV()
	meta, err := kv.Applied()
	if err != nil {
		s.fail("driver", "n%d: applied: %v", n.id, err)
		return
	}
	next := meta.Index + 1
	for _, e := range j.Entries {
		if e.Index < next {
			continue // applied before a crash and replayed: the KV skips it
		}
		if e.Index != next {
			s.fail("apply-order", "n%d applies index %d after %d", n.id, e.Index, next-1)
			return
		}
		next++
	}
	if err := j.Run(kv); err != nil {
		s.fail("driver", "n%d: apply job: %v", n.id, err)
		return
	}
	if j.SyncStateMachine {
		after, err := kv.Applied()
		if err != nil {
			s.fail("driver", "n%d: applied: %v", n.id, err)
			return
		}
		n.smDurable = after.Index
	}
	for _, e := range j.Entries {
		if e.Index <= meta.Index {
			continue
		}
		s.chk.recordApplied(s, n, e)
		if s.viol != nil {
			return
		}
	}
	if len(j.Entries) > 0 {
		s.checkDigest(n)
	}
	n.d.ApplyDone(j)
	s.pump(n)
}

// onLeaderCommit: a leader's first commit in its term is a moment where
// Raft's rules are subtle (what may a new leader commit, and when?); with
// probability plan.cutAtFirstCommit the leader is cut off right then, so
// the messages that follow its first commit go nowhere.
func (s *sim) onLeaderCommit(n *node) {
	st := n.d.Status()
	if st.Role != consensus.Leader || n.firstCommitTerm == st.Term {
		return
	}
	n.firstCommitTerm = st.Term
	if s.rng.Float64() < s.plan.cutAtFirstCommit {
		s.isolate(n.id)
	}
}

// send hands a message to the simulated network: it may be dropped by a
// partition or by chance, duplicated, and is delayed by a random amount,
// which reorders messages.
func (s *sim) send(from *node, m domain.Message) {
	if m.Type == domain.MsgSnap {
		var buf bytes.Buffer
		meta, err := from.disk.KV().Snapshot(&buf)
		if err != nil {
			s.fail("driver", "n%d: snapshot: %v", from.id, err)
			return
		}
		m.Snapshot = &domain.Snapshot{Meta: meta, Data: buf.Bytes()}
	}
	if m.To == domain.None || int(m.To) >= len(s.nodes) || m.From != from.id {
		s.fail("bad-message", "n%d sends %v", from.id, m)
		return
	}
	to := s.nodes[m.To]
	drop := ""
	switch {
	case !to.up:
		drop = "down"
	case s.blocked[m.From][m.To]:
		drop = "partition"
	case s.rng.Float64() < s.plan.loss:
		drop = "lost"
	}
	if drop != "" {
		s.tr.linef(s.now, s.step, "drop(%s) %v", drop, m)
		if m.Type == domain.MsgSnap {
			s.schedule(&event{at: s.now + s.delay(), kind: evSnapStatus, node: from.id, inc: from.inc, msg: domain.Message{To: m.To}})
		}
		return
	}
	if m.Type == domain.MsgVoteResp && !m.Reject && s.rng.Float64() < s.plan.crashOnVote {
		// A voter that dies just after voting, before the new leader's
		// first entries reach its disk.
		s.scheduleCrash(from, s.now+s.rng.Int64N(12*msec), true)
	}
	copies := 1
	if s.rng.Float64() < s.plan.dup {
		copies = 2
	}
	for range copies {
		s.schedule(&event{at: s.now + s.delay(), kind: evDeliver, node: m.To, msg: cloneMessage(m), attempt: from.inc})
	}
}

func (s *sim) delay() int64 {
	if s.rng.IntN(1000) == 0 {
		// Now and then a message arrives very late: long after its
		// sender moved on to other terms.
		return 100*msec + s.rng.Int64N(900*msec)
	}
	if s.rng.Float64() < s.plan.tailP {
		return s.plan.delayMax + s.rng.Int64N(s.plan.tailMax)
	}
	return s.plan.delayMin + s.rng.Int64N(s.plan.delayMax-s.plan.delayMin+1)
}

// deliver steps a message into its destination, unless the destination is
// down or a partition cut the link meanwhile.
func (s *sim) deliver(e *event) {
	n := s.nodes[e.node]
	m := e.msg
	snapFailed := func() {
		if m.Type == domain.MsgSnap {
			s.schedule(&event{at: s.now + s.delay(), kind: evSnapStatus, node: m.From, inc: e.attempt, msg: domain.Message{To: m.To}})
		}
	}
	if !n.up {
		// A message that arrives while its destination is down is lost; one
		// that was on its way across a crash and restart arrives late.
		s.tr.linef(s.now, s.step, "drop(down) %v", m)
		snapFailed()
		return
	}
	if s.blocked[m.From][m.To] {
		s.tr.linef(s.now, s.step, "drop(partition) %v", m)
		snapFailed()
		return
	}
	s.tr.linef(s.now, s.step, "deliver %v", m)
	n.d.Step(m)
	if m.Type == domain.MsgSnap {
		s.schedule(&event{at: s.now + s.delay(), kind: evSnapStatus, node: m.From, inc: e.attempt, msg: domain.Message{To: m.To}, ok: true})
	}
	s.pump(n)
}

// cloneMessage copies everything a message points to, as a real network
// would: sender and receiver share nothing.
func cloneMessage(m domain.Message) domain.Message {
	if m.Entries != nil {
		ents := make([]domain.Entry, len(m.Entries))
		for i, e := range m.Entries {
			e.Data = bytes.Clone(e.Data)
			ents[i] = e
		}
		m.Entries = ents
	}
	m.Context = bytes.Clone(m.Context)
	if m.Snapshot != nil {
		sn := *m.Snapshot
		sn.Meta.Membership = sn.Meta.Membership.Clone()
		sn.Data = bytes.Clone(sn.Data)
		m.Snapshot = &sn
	}
	return m
}

func (s *sim) traceOutput(n *node, out *raftnode.Output) {
	if out.Empty() {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "output n%d", n.id)
	if ss := out.SoftState; ss != nil {
		fmt.Fprintf(&b, " soft=%v/lead%d", ss.Role, ss.Lead)
	}
	for _, j := range out.Log {
		b.WriteString(" log{")
		if j.Snapshot != nil {
			fmt.Fprintf(&b, " snap=%d/%d", j.Snapshot.Meta.Index, j.Snapshot.Meta.Term)
		}
		if j.Vote != nil {
			fmt.Fprintf(&b, " vote=%d/%d", j.Vote.Term, j.Vote.VotedFor)
		}
		if k := len(j.Entries); k > 0 {
			fmt.Fprintf(&b, " ents=[%d/%d..%d/%d]", j.Entries[0].Index, j.Entries[0].Term, j.Entries[k-1].Index, j.Entries[k-1].Term)
		}
		if j.Sync {
			b.WriteString(" sync")
		}
		if j.Purge != 0 {
			fmt.Fprintf(&b, " purge=%d", j.Purge)
		}
		b.WriteString(" }")
	}
	for _, j := range out.Apply {
		if k := len(j.Entries); k > 0 {
			fmt.Fprintf(&b, " apply=[%d..%d]", j.Entries[0].Index, j.Entries[k-1].Index)
		}
		if j.SyncStateMachine {
			b.WriteString(" sm-sync")
		}
	}
	fmt.Fprintf(&b, " msgs=%d snaps=%d answers=%d", len(out.Messages), len(out.Snapshots), len(out.Answers))
	s.tr.linef(s.now, s.step, "%s", b.String())
}

package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/seshat-kv/seshat/consensus"
	raftnode "github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// node is one simulated server: a core, its disk, and the driver state
// between a Ready and its Advance.
type node struct {
	id     domain.NodeID
	disk   disk
	core   *consensus.Raft
	up     bool
	inc    uint64 // incarnation: bumped by every crash
	period int64  // tick period, a little different on every node

	// pending is the Ready whose writes wait for their fsync.
	pending *consensus.Ready
	// reads are ReadStates waiting for the state machine to catch up.
	reads []consensus.ReadState
	// compacted is the index through which the log was last compacted.
	compacted domain.Index

	// role and term as of the last check.
	role consensus.Role
	term domain.Term
	// lcTerm, when non-zero, asks for a leader completeness check at the
	// next Ready: the node became leader of lcTerm when the committed
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

// start builds a core from what node n's disk holds: a fresh node at the
// beginning, a restarted one after a crash.
func (s *sim) start(n *node) error {
	st, err := raftnode.LoadState(n.disk.Log(), n.disk.Votes(), n.disk.KV())
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	cfg, err := s.config(n)
	if err != nil {
		return err
	}
	core, err := consensus.New(cfg, st)
	if err != nil {
		return fmt.Errorf("new core: %w", err)
	}
	n.core, n.up, n.pending, n.reads = core, true, nil, nil
	n.role, n.term, n.lcTerm = consensus.Follower, st.Vote.Term, 0
	n.compacted = st.Snapshot.Index
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
// (ticks, fsyncs) are void, and it restarts later if scheduleRestart.
// Messages on their way to it are lost if they arrive while it is down;
// those still in flight when it is back up arrive late, as a network may
// deliver them.
func (s *sim) crash(n *node, scheduleRestart bool) {
	n.up = false
	n.inc++
	n.pending, n.reads, n.lcTerm = nil, nil, 0
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

// pump takes and handles Readies until one has to wait for its fsync.
func (s *sim) pump(n *node) {
	n.touched = true
	for n.up && n.pending == nil && s.viol == nil && n.core.HasReady() {
		rd := n.core.Ready()
		s.beginReady(n, rd)
	}
}

// beginReady does what a Ready asks up to the fsync: install the
// snapshot, store the vote, write the entries (visible, not yet durable)
// and send the messages that need not wait. Then it schedules the fsync's
// completion, or completes at once when nothing waits for the disk.
func (s *sim) beginReady(n *node, rd consensus.Ready) {
	s.traceReady(n, rd)
	log, kv := n.disk.Log(), n.disk.KV()
	if rd.Snapshot != nil {
		meta := rd.Snapshot.Meta
		if err := kv.Restore(meta, bytes.NewReader(rd.Snapshot.Data)); err != nil {
			s.fail("driver", "n%d: restore snapshot %d/%d: %v", n.id, meta.Index, meta.Term, err)
			return
		}
		// The snapshot replaces the whole log, as it does in the core.
		first, err := log.FirstIndex()
		s.must(n, "first index", err)
		s.must(n, "truncate", log.TruncateSuffix(first))
		s.must(n, "purge", log.Purge(meta.Index))
		n.compacted = meta.Index
		n.logDirty = true
		s.stats.snapshots++
		s.clientsOnSnapshot(n, meta.Index)
		s.checkDigest(n)
	}
	if rd.Vote != nil {
		s.must(n, "set vote", n.disk.Votes().SetVote(*rd.Vote))
	}
	if len(rd.Entries) > 0 {
		s.must(n, "truncate", log.TruncateSuffix(rd.Entries[0].Index))
		s.must(n, "append", log.Append(rd.Entries))
		n.logDirty = true
	}
	if s.viol != nil {
		return
	}
	if n.lcTerm != 0 {
		s.checkLeaderCompleteness(n)
	}
	if len(rd.CommittedEntries) > 0 && n.role == consensus.Leader {
		s.onLeaderCommit(n)
	}
	for _, m := range rd.Messages {
		s.send(n, m)
	}
	if rd.Snapshot == nil && rd.Vote == nil && len(rd.Entries) == 0 && !rd.MustSync {
		n.pending = &rd
		s.completeReady(n)
		return
	}
	n.pending = &rd
	at := s.now + s.plan.fsyncMin + s.rng.Int64N(s.plan.fsyncMax-s.plan.fsyncMin+1)
	s.schedule(&event{at: at, kind: evFsync, node: n.id, inc: n.inc})
	// Sometimes the node dies before the write is durable.
	if s.rng.Float64() < s.plan.crashInWindow {
		s.scheduleCrash(n, s.now+s.rng.Int64N(at-s.now+1), false)
	}
}

// onLeaderCommit: a leader's first commit in its term is a moment where
// Raft's rules are subtle (what may a new leader commit, and when?); with
// probability plan.cutAtFirstCommit the leader is cut off right then, so
// the messages that follow its first commit go nowhere.
func (s *sim) onLeaderCommit(n *node) {
	st := n.core.Status()
	if st.Role != consensus.Leader || n.firstCommitTerm == st.Term {
		return
	}
	n.firstCommitTerm = st.Term
	if s.rng.Float64() < s.plan.cutAtFirstCommit {
		s.isolate(n.id)
	}
}

// completeReady finishes the pending Ready once its writes are durable:
// sync, send what had to wait, apply, answer reads, Advance, compact.
func (s *sim) completeReady(n *node) {
	rd := *n.pending
	s.must(n, "sync", n.disk.Log().Sync())
	for _, m := range rd.MessagesAfterSync {
		s.send(n, m)
	}
	if len(rd.CommittedEntries) > 0 {
		s.apply(n, rd.CommittedEntries)
	}
	if s.viol != nil {
		return
	}
	n.reads = append(n.reads, rd.ReadStates...)
	s.serveReads(n)
	n.core.Advance(rd)
	n.pending = nil
	s.maybeCompact(n)
}

// must turns a storage error into a violation: the memory stores fail only
// when the driver misuses them.
func (s *sim) must(n *node, what string, err error) {
	if err != nil {
		s.fail("driver", "n%d: %s: %v", n.id, what, err)
	}
}

// apply applies committed entries and checks them against every entry
// applied anywhere at the same index (state machine safety).
func (s *sim) apply(n *node, ents []domain.Entry) {
	kv := n.disk.KV()
	meta, err := kv.Applied()
	if err != nil {
		s.fail("driver", "n%d: applied: %v", n.id, err)
		return
	}
	next := meta.Index + 1
	for _, e := range ents {
		if e.Index < next {
			continue // applied before a crash and replayed: the KV skips it
		}
		if e.Index != next {
			s.fail("apply-order", "n%d applies index %d after %d", n.id, e.Index, next-1)
			return
		}
		next++
	}
	if _, err := kv.Apply(ents); err != nil {
		s.fail("driver", "n%d: apply [%d,%d]: %v", n.id, ents[0].Index, ents[len(ents)-1].Index, err)
		return
	}
	for _, e := range ents {
		if e.Index <= meta.Index {
			continue
		}
		s.chk.recordApplied(s, n, e)
		if s.viol != nil {
			return
		}
		s.clientsOnApply(n, e)
	}
	s.checkDigest(n)
}

// maybeCompact compacts node n's log once it applied compact entries past
// its last compaction point, keeping a few entries so that a follower just
// behind still gets entries rather than a snapshot.
func (s *sim) maybeCompact(n *node) {
	kv := n.disk.KV()
	meta, err := kv.Applied()
	if err != nil || meta.Index < n.compacted+domain.Index(s.plan.compactEvery)+compactTrail {
		return
	}
	upTo := meta.Index - compactTrail
	s.must(n, "kv sync", kv.Sync())
	if err := n.core.Compact(upTo); err != nil {
		s.tr.linef(s.now, s.step, "compact n%d %d: %v", n.id, upTo, err)
		return
	}
	s.must(n, "purge", n.disk.Log().Purge(upTo))
	n.compacted = upTo
	n.logDirty = true
	s.tr.linef(s.now, s.step, "compact n%d through %d", n.id, upTo)
	s.stats.compactions++
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
	if err := n.core.Step(m); err != nil {
		s.tr.linef(s.now, s.step, "step n%d: %v", n.id, err)
	}
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

func (s *sim) traceReady(n *node, rd consensus.Ready) {
	var b strings.Builder
	fmt.Fprintf(&b, "ready n%d", n.id)
	if rd.SoftState != nil {
		fmt.Fprintf(&b, " soft=%v/lead%d", rd.SoftState.Role, rd.SoftState.Lead)
	}
	if rd.Snapshot != nil {
		fmt.Fprintf(&b, " snap=%d/%d", rd.Snapshot.Meta.Index, rd.Snapshot.Meta.Term)
	}
	if rd.Vote != nil {
		fmt.Fprintf(&b, " vote=%d/%d", rd.Vote.Term, rd.Vote.VotedFor)
	}
	if k := len(rd.Entries); k > 0 {
		fmt.Fprintf(&b, " ents=[%d/%d..%d/%d]", rd.Entries[0].Index, rd.Entries[0].Term, rd.Entries[k-1].Index, rd.Entries[k-1].Term)
	}
	if rd.MustSync {
		b.WriteString(" sync")
	}
	if k := len(rd.CommittedEntries); k > 0 {
		fmt.Fprintf(&b, " commit=[%d..%d]", rd.CommittedEntries[0].Index, rd.CommittedEntries[k-1].Index)
	}
	fmt.Fprintf(&b, " msgs=%d after=%d reads=%d", len(rd.Messages), len(rd.MessagesAfterSync), len(rd.ReadStates))
	s.tr.linef(s.now, s.step, "%s", b.String())
}

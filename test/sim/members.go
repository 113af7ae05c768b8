package main

import (
	"slices"

	"github.com/seshat-kv/seshat/consensus"
	raftnode "github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// The membership nemesis: an operator that changes the cluster's
// membership at random times while the other faults go on. It works one
// goal at a time: add a node as a learner, promote a learner, demote a
// voter, remove a learner or a voter (the leader too), or replace a voter
// (remove it, add a fresh id as a learner, promote it). It proposes each
// change through the driver of the node that leads, computed from that
// leader's membership in force, and retries every few milliseconds until
// the leader's membership shows the change, as an operator reading the
// leader's view would; so it often proposes the next change before the
// last one committed, and the core must refuse it. A new node starts with
// empty storage and no peers, and catches up by log or snapshot; a
// removed id never comes back, and its node stops for good a little after
// its removal commits.
//
// The cluster keeps at most nodes+2 members and, once a change commits, at
// least as many voters as it started with (a replace of a voter in a
// cluster at that minimum adds the new node first).

// Roles a goal asks for.
const (
	roleNone = iota
	roleLearner
	roleVoter
)

func roleOf(m domain.Membership, id domain.NodeID) int {
	switch {
	case m.IsVoter(id):
		return roleVoter
	case m.IsLearner(id):
		return roleLearner
	}
	return roleNone
}

// memberGoal is one change the operator drives to its end.
type memberGoal struct {
	kind string // add, promote, demote, remove (a replace is remove, add, promote)
	id   domain.NodeID
	role int
	next *memberGoal
}

// confRecord is a Membership entry some leader accepted: the simulator
// knows every one, since only the operator proposes them.
type confRecord struct {
	index domain.Index
	term  domain.Term
	m     domain.Membership
}

// operator is the membership nemesis's state.
type operator struct {
	goal    *memberGoal
	records []confRecord
	// retiring: ids removed (or being removed); never members again.
	retiring map[domain.NodeID]bool
	nextID   domain.NodeID
	// committed is the last membership applied anywhere, at committedAt.
	committed   domain.Membership
	committedAt domain.Index
	// gap is the seed's mean time between goals.
	gap int64
}

func (s *sim) initMembers() {
	s.op.retiring = map[domain.NodeID]bool{}
	s.op.nextID = domain.NodeID(s.opts.nodes + 1)
	s.op.committed = domain.Membership{Voters: slices.Clone(s.initial)}
	s.op.gap = 500*msec + s.rng.Int64N(1500*msec)
	s.schedule(&event{at: 200*msec + s.rng.Int64N(s.op.gap), kind: evMember})
}

func (s *sim) minVoters() int  { return s.opts.nodes }
func (s *sim) maxMembers() int { return s.opts.nodes + 2 }

// memberAct is the operator's turn: start a goal, check the one under way,
// or propose its change again.
func (s *sim) memberAct() {
	op := &s.op
	l := s.leader()
	retry := 5*msec + s.rng.Int64N(40*msec)
	if l == nil {
		s.schedule(&event{at: s.now + retry, kind: evMember})
		return
	}
	view := l.d.Status().Membership
	if op.goal == nil {
		op.goal = s.pickGoal(view)
		if op.goal == nil {
			s.schedule(&event{at: s.now + s.rng.Int64N(2*op.gap), kind: evMember})
			return
		}
		s.tr.linef(s.now, s.step, "member goal %s n%d", op.goal.kind, op.goal.id)
	}
	g := op.goal
	if roleOf(view, g.id) == g.role {
		s.tr.linef(s.now, s.step, "member done %s n%d (in force at n%d)", g.kind, g.id, l.id)
		s.stats.members++
		op.goal = g.next
		if op.goal == nil {
			retry = msec + int64(s.rng.ExpFloat64()*float64(op.gap))
		}
		s.schedule(&event{at: s.now + retry, kind: evMember})
		return
	}
	s.schedule(&event{at: s.now + retry, kind: evMember})
	want := g.role
	if want == roleVoter && roleOf(view, g.id) == roleNone {
		want = roleLearner // add first, as a learner
	}
	if want != roleNone && (int(g.id) >= len(s.nodes) || s.nodes[g.id] == nil) {
		s.addNode(g.id)
	}
	target := withRole(view, g.id, want)
	if len(target.Voters) == 0 {
		op.goal = nil
		return
	}
	s.proposeMembership(l, target)
}

// withRole returns m with id in role.
func withRole(m domain.Membership, id domain.NodeID, role int) domain.Membership {
	out := domain.Membership{}
	for _, v := range m.Voters {
		if v != id {
			out.Voters = append(out.Voters, v)
		}
	}
	for _, v := range m.Learners {
		if v != id {
			out.Learners = append(out.Learners, v)
		}
	}
	switch role {
	case roleVoter:
		out.Voters = append(out.Voters, id)
	case roleLearner:
		out.Learners = append(out.Learners, id)
	}
	return out
}

// pickGoal draws the next change from the leader's view: first any
// retiring id still in it (a removal that was lost), else a random kind
// that the bounds allow.
func (s *sim) pickGoal(view domain.Membership) *memberGoal {
	for _, id := range view.Members() {
		if s.op.retiring[id] {
			return &memberGoal{kind: "remove", id: id, role: roleNone}
		}
	}
	members := len(view.Voters) + len(view.Learners)
	canShrink := len(view.Voters) > s.minVoters()
	// The kinds the bounds allow, each as often as its weight says.
	var kinds []int
	for k, w := range []int{2, 4, 2, 2, 2} { // add, promote, demote, remove, replace
		ok := [...]bool{members < s.maxMembers(), len(view.Learners) > 0, canShrink,
			canShrink || len(view.Learners) > 0, canShrink || members < s.maxMembers()}[k]
		for range w {
			if ok {
				kinds = append(kinds, k)
			}
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	{
		switch k := kinds[s.rng.IntN(len(kinds))]; k {
		case 0: // add
			if members < s.maxMembers() {
				return &memberGoal{kind: "add", id: s.spareNode(view), role: roleLearner}
			}
		case 1: // promote
			if len(view.Learners) > 0 {
				id := view.Learners[s.rng.IntN(len(view.Learners))]
				return &memberGoal{kind: "promote", id: id, role: roleVoter}
			}
		case 2: // demote
			if canShrink {
				return &memberGoal{kind: "demote", id: s.pickVoter(view), role: roleLearner}
			}
		case 3: // remove
			if len(view.Learners) > 0 && (!canShrink || s.rng.IntN(2) == 0) {
				id := view.Learners[s.rng.IntN(len(view.Learners))]
				s.op.retiring[id] = true
				return &memberGoal{kind: "remove", id: id, role: roleNone}
			}
			if canShrink {
				id := s.pickVoter(view)
				s.op.retiring[id] = true
				return &memberGoal{kind: "remove", id: id, role: roleNone}
			}
		case 4: // replace: remove first (a failed node), or add first
			if canShrink || members < s.maxMembers() {
				id := s.pickVoter(view)
				s.op.retiring[id] = true
				fresh := s.freshID()
				remove := &memberGoal{kind: "replace-remove", id: id, role: roleNone}
				add := &memberGoal{kind: "replace-add", id: fresh, role: roleLearner,
					next: &memberGoal{kind: "replace-promote", id: fresh, role: roleVoter}}
				if canShrink {
					remove.next = add
					return remove
				}
				add.next.next = remove
				return add
			}
		}
	}
	return nil
}

// pickVoter picks a voter, the leader one time in three.
func (s *sim) pickVoter(view domain.Membership) domain.NodeID {
	if l := s.leader(); l != nil && view.IsVoter(l.id) && s.rng.IntN(3) == 0 {
		return l.id
	}
	return view.Voters[s.rng.IntN(len(view.Voters))]
}

// spareNode returns a running node that is not a member (one whose add was
// lost) or a fresh id.
func (s *sim) spareNode(view domain.Membership) domain.NodeID {
	for _, id := range s.ids {
		if !view.Contains(id) && !s.op.retiring[id] {
			return id
		}
	}
	return s.freshID()
}

func (s *sim) freshID() domain.NodeID {
	id := s.op.nextID
	s.op.nextID++
	return id
}

// addNode starts a fresh node with empty storage: it knows no peers and
// waits for a leader to contact it.
func (s *sim) addNode(id domain.NodeID) {
	for int(id) >= len(s.nodes) {
		s.nodes = append(s.nodes, nil)
	}
	for len(s.blocked) < len(s.nodes) {
		s.blocked = append(s.blocked, nil)
	}
	for i := range s.blocked {
		if i > 0 {
			s.blocked[i] = append(s.blocked[i], make([]bool, len(s.nodes)-len(s.blocked[i]))...)
		}
	}
	d, err := newDisk(s.opts.storage)
	if err != nil {
		s.fail("new-node", "n%d: %v", id, err)
		return
	}
	n := &node{id: id, disk: d, period: tickPeriod - 500*usec + s.rng.Int64N(msec)}
	s.nodes[id] = n
	s.ids = append(s.ids, id)
	slices.Sort(s.ids)
	s.tr.linef(s.now, s.step, "member new node n%d", id)
	if err := s.start(n); err != nil {
		s.fail("new-node", "n%d: %v", id, err)
	}
}

// proposeMembership proposes target at leader l through its driver. If
// the core takes it, the simulator records the entry and checks that the
// core obeyed the rules of single-server changes: an entry of the
// leader's term is committed, and no other change is uncommitted in its
// log (membership-rule).
func (s *sim) proposeMembership(l *node, target domain.Membership) {
	before := l.d.Status()
	s.tr.linef(s.now, s.step, "member propose at n%d voters=%v learners=%v", l.id, target.Voters, target.Learners)
	mc := target.Clone()
	l.d.Propose(&raftnode.Proposal{Membership: &mc, Done: func(_ []domain.Result, err error) {
		s.tr.linef(s.now, s.step, "member answer n%d: %v", l.id, err)
	}})
	after := l.d.Status()
	if after.LastIndex == before.LastIndex+1 && after.Term == before.Term && after.Role == consensus.Leader {
		idx := after.LastIndex
		s.op.records = append(s.op.records, confRecord{index: idx, term: after.Term, m: target.Clone()})
		s.tr.linef(s.now, s.step, "member accepted at n%d index %d term %d", l.id, idx, after.Term)
		if t, err := l.d.Term(before.Commit); err == nil && t != before.Term {
			s.fail("membership-rule", "n%d accepted a membership change at %d in term %d before committing an entry of its term (commit %d has term %d)",
				l.id, idx, after.Term, before.Commit, t)
		}
		for _, r := range s.op.records[:len(s.op.records)-1] {
			if r.index > before.Commit && r.index < idx {
				if t, err := l.d.Term(r.index); err == nil && t == r.term {
					s.fail("membership-rule", "n%d accepted a membership change at %d with the change at %d (term %d) not committed (commit %d): two changes in flight",
						l.id, idx, r.index, r.term, before.Commit)
				}
			}
		}
	}
	s.pump(l)
}

// membershipApplied notes a Membership entry applied for the first time
// anywhere (so committed): the nodes it removes that the operator retired
// stop for good a little later.
func (s *sim) membershipApplied(e domain.Entry) {
	m, err := domain.DecodeMembership(e.Data)
	if err != nil {
		s.fail("driver", "membership entry %d: %v", e.Index, err)
		return
	}
	s.op.committed, s.op.committedAt = m, e.Index
	s.tr.linef(s.now, s.step, "member committed index %d voters=%v learners=%v", e.Index, m.Voters, m.Learners)
	for _, id := range slices.Clone(s.ids) {
		if s.op.retiring[id] && !m.Contains(id) {
			s.schedule(&event{at: s.now + s.rng.Int64N(300*msec), kind: evRetire, node: id})
		}
	}
}

// retire stops a removed node for good.
func (s *sim) retire(id domain.NodeID) {
	n := s.nodes[id]
	i := slices.Index(s.ids, id)
	if i < 0 {
		return
	}
	s.tr.linef(s.now, s.step, "member retire n%d", id)
	s.ids = slices.Delete(s.ids, i, i+1)
	if n.up {
		n.up = false
		s.clientsOnCrash(n)
	}
	n.inc++
	n.retired = true
	n.d, n.logQ, n.applyQ, n.lcTerm, n.written = nil, nil, nil, 0, nil
}

// configAt is the membership in force at index upTo of node n's log (a
// leader's, which holds every committed entry), by the records: the last
// recorded entry its log holds there, else the initial membership.
func (s *sim) configAt(n *node, upTo domain.Index) domain.Membership {
	for i := len(s.op.records) - 1; i >= 0; i-- {
		r := s.op.records[i]
		if r.index <= upTo && s.termAt(n, r.index) == r.term {
			return r.m
		}
	}
	return domain.Membership{Voters: s.initial}
}

// termAt is the term of the entry at i in n's core, or, compacted there,
// the term applied at i anywhere (0 if unknown).
func (s *sim) termAt(n *node, i domain.Index) domain.Term {
	t, err := n.d.Term(i)
	if err == nil {
		return t
	}
	if int(i) < len(s.chk.applied) {
		return s.chk.applied[i].term
	}
	return 0
}

func sameMembership(a, b domain.Membership) bool {
	return slices.Equal(slices.Sorted(slices.Values(a.Voters)), slices.Sorted(slices.Values(b.Voters))) &&
		slices.Equal(slices.Sorted(slices.Values(a.Learners)), slices.Sorted(slices.Values(b.Learners)))
}

func quorumOf(voters int) int { return voters/2 + 1 }

// checkCommit runs when a leader's commit index moves to c (it may have
// stepped down in the same event, having committed its own removal): the
// entry at c must be held durably by a quorum of the voters of the
// membership in force at the leader, which must be the one its log says,
// and that quorum must meet every quorum of the membership committed
// before (a removed node never counts; two changes at once would let two
// quorums miss each other).
func (s *sim) checkCommit(n *node, st consensus.Status) {
	c := st.Commit
	t, err := n.d.Term(c)
	if err != nil {
		return
	}
	m := st.Membership
	if want := s.configAt(n, st.LastIndex); !sameMembership(m, want) {
		s.fail("membership-in-force", "n%d leads term %d with voters=%v learners=%v, but its log says voters=%v learners=%v",
			n.id, st.Term, m.Voters, m.Learners, want.Voters, want.Learners)
		return
	}
	held := func(voters []domain.NodeID) (k int, who []domain.NodeID) {
		for _, v := range voters {
			if s.holdsDurably(v, c, t) {
				k++
				who = append(who, v)
			}
		}
		return k, who
	}
	k, who := held(m.Voters)
	if k < quorumOf(len(m.Voters)) {
		s.fail("quorum", "n%d (term %d) committed %d/%d held durably by %v only, not a quorum of voters %v",
			n.id, st.Term, c, t, who, m.Voters)
		return
	}
	cc := s.configAt(n, min(s.chk.commitMax, st.LastIndex))
	k, who = held(cc.Voters)
	if need := len(cc.Voters) - quorumOf(len(cc.Voters)) + 1; k < need {
		s.fail("quorum", "n%d (term %d) committed %d/%d held durably by %v only of the committed voters %v: a quorum of them (%d) may not have it",
			n.id, st.Term, c, t, who, cc.Voters, quorumOf(len(cc.Voters)))
	}
}

// holdsDurably reports whether node id would still have entry (i, t) after
// a crash: in its durable state machine, or in its log, not in a write
// that is not yet synced.
func (s *sim) holdsDurably(id domain.NodeID, i domain.Index, t domain.Term) bool {
	if int(id) >= len(s.nodes) || s.nodes[id] == nil {
		return false
	}
	n := s.nodes[id]
	if n.smDurable >= i {
		return int(i) < len(s.chk.applied) && s.chk.applied[i].term == t
	}
	if n.written != nil && (n.written.Snapshot != nil || len(n.written.Entries) > 0 && n.written.Entries[0].Index <= i) {
		return false
	}
	lt, err := n.disk.Log().Term(i)
	return err == nil && lt == t
}

package consensus

import (
	"bytes"
	"slices"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestMembershipAddLearnerPromoteRemoveLeader grows a cluster by a fresh
// node (learner, then voter) and removes the leader, which steps down once
// the change commits.
func TestMembershipAddLearnerPromoteRemoveLeader(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	// A node that joins starts with no peers and does not campaign.
	j := nw.add(testConfig(4, nil), State{})
	for range 50 {
		j.Tick()
	}
	if j.role != Follower || j.HasReady() {
		t.Fatalf("joining node campaigned: %v", j.role)
	}
	m := domain.Membership{Voters: ids(3), Learners: []domain.NodeID{4}}
	idx, _, err := l.ProposeMembership(m)
	if err != nil {
		t.Fatal(err)
	}
	// The change is in force on the leader as soon as it is appended.
	if !l.membership.IsLearner(4) || l.prs[4] == nil || !l.prs[4].learner {
		t.Fatalf("leader membership %v / progress %v after proposing", l.membership, l.prs[4])
	}
	nw.stabilize()
	if l.log.committed < idx {
		t.Fatalf("membership entry %d not committed (commit %d)", idx, l.log.committed)
	}
	if got := j.Status(); got.LastIndex != l.log.lastIndex() || !got.Membership.IsLearner(4) {
		t.Fatalf("learner status %+v", got)
	}
	// A learner does not count in the quorum: with 2 and 3 down nothing
	// commits, though the learner has the entry.
	nw.isolate(2)
	nw.isolate(3)
	i, _, _ := l.Propose([]byte("x"))
	nw.stabilize()
	if l.log.committed >= i || j.log.lastIndex() < i {
		t.Fatalf("commit %d with only a learner acknowledging %d", l.log.committed, i)
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	// Promote 4.
	if _, _, err := l.ProposeMembership(domain.Membership{Voters: ids(4)}); err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	if !j.membership.IsVoter(4) || l.prs[4].learner {
		t.Fatal("4 not promoted")
	}
	// Quorum is now 3 of 4: with 3 and 4 cut off, nothing commits.
	nw.isolate(3)
	nw.isolate(4)
	i, _, _ = l.Propose([]byte("y"))
	nw.stabilize()
	if l.log.committed >= i {
		t.Fatalf("committed %d with 2 of 4 voters", i)
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	if l.log.committed < i {
		t.Fatalf("not committed after healing: %d < %d", l.log.committed, i)
	}
	// Remove the leader itself.
	idx, _, err = l.ProposeMembership(domain.Membership{Voters: []domain.NodeID{2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if l.role != Leader {
		t.Fatal("leader stepped down before its removal committed")
	}
	nw.stabilize()
	if l.role != Follower {
		t.Fatalf("removed leader still %v after commit %d >= %d", l.role, l.log.committed, idx)
	}
	for range 50 {
		l.Tick()
	}
	if l.role != Follower {
		t.Fatal("removed node campaigned")
	}
	nw.tickAll(30)
	nl := nw.leader()
	if nl == domain.None || nl == 1 {
		t.Fatalf("leader %d after removing 1", nl)
	}
	i, _, err = nw.node(nl).Propose([]byte("z"))
	if err != nil {
		t.Fatal(err)
	}
	nw.stabilize()
	for _, id := range []domain.NodeID{2, 3, 4} {
		if nw.node(id).log.committed < i {
			t.Fatalf("node %d commit %d < %d", id, nw.node(id).log.committed, i)
		}
	}
	nw.checkApplied()
}

func TestMembershipRules(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.drop = func(m domain.Message) bool { return m.Type == domain.MsgAppResp }
	l := nw.elect(1)
	add4 := domain.Membership{Voters: ids(4)}
	if _, _, err := l.ProposeMembership(add4); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("change before the first commit of the term: %v", err)
	}
	nw.drop = nil
	l.Tick()
	nw.stabilize()
	if _, _, err := l.ProposeMembership(domain.Membership{Voters: ids(5)}); !errorsIs(err, domain.ErrInvalidMembership) {
		t.Fatalf("two-node change: %v", err)
	}
	if _, _, err := l.ProposeMembership(domain.Membership{Voters: ids(3)}); !errorsIs(err, domain.ErrInvalidMembership) {
		t.Fatalf("no-op change: %v", err)
	}
	if _, _, err := l.ProposeMembership(domain.Membership{Voters: []domain.NodeID{1, 1, 2}}); !errorsIs(err, domain.ErrInvalidMembership) {
		t.Fatalf("duplicate node: %v", err)
	}
	if _, _, err := l.ProposeMembership(domain.Membership{Voters: []domain.NodeID{1, 2}, Learners: []domain.NodeID{3}}); err != nil {
		t.Fatalf("demote 3: %v", err)
	}
	if _, _, err := l.ProposeMembership(add4); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("second change while one is uncommitted: %v", err)
	}
	if _, _, err := nw.node(2).ProposeMembership(add4); !errorsIs(err, domain.ErrNotLeader) {
		t.Fatalf("change on a follower: %v", err)
	}
}

// TestMembershipFromLog: the membership in force is the last Membership
// entry of the log, committed or not; truncating it restores the previous.
func TestMembershipFromLog(t *testing.T) {
	m4 := domain.Membership{Voters: ids(4)}
	e := domain.Entry{Index: 2, Term: 1, Type: domain.EntryMembership, Data: domain.EncodeMembership(m4)}
	st := State{Vote: domain.Vote{Term: 1}, Entries: append(ents(1, 1), e)}
	r, err := New(testConfig(2, ids(3)), st)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Status().Membership.Voters, ids(4)) {
		t.Fatalf("restarted membership %v, want the log's", r.Status().Membership)
	}
	// A new leader replaces the uncommitted membership entry.
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 3, To: 2, Term: 2, Index: 1, LogTerm: 1, Entries: ents(2, 2)})
	if !slices.Equal(r.Status().Membership.Voters, ids(3)) {
		t.Fatalf("membership after truncation %v, want the peers", r.Status().Membership)
	}
	// From a snapshot's membership.
	sm := domain.Membership{Voters: []domain.NodeID{2, 5, 7}}
	r, _ = New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 1}, Snapshot: domain.SnapshotMeta{Index: 5, Term: 1, Membership: sm}})
	if got := r.Status().Membership; !slices.Equal(got.Voters, sm.Voters) {
		t.Fatalf("membership %v, want the snapshot's", got)
	}
}

// TestProposalLimits: past MaxUncommittedEntries or MaxUncommittedBytes a
// proposal is dropped and nothing is appended; commits make room.
func TestProposalLimits(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxUncommittedEntries = 3 })
	l := nw.elect(1)
	nw.isolate(1)
	if _, _, err := l.Propose([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Propose([]byte("c")); err != nil {
		t.Fatal(err)
	}
	last := l.log.lastIndex()
	if _, _, err := l.Propose([]byte("d")); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("fourth uncommitted entry: %v", err)
	}
	if l.log.lastIndex() != last {
		t.Fatal("a dropped proposal was appended")
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	if _, _, err := l.Propose([]byte("d")); err != nil {
		t.Fatalf("after commit: %v", err)
	}

	nw = newNetwork(t, 3, func(c *Config) { c.MaxUncommittedBytes = 150 })
	l = nw.elect(1)
	nw.isolate(1)
	d := bytes.Repeat([]byte("x"), 76) // Size 100
	if _, _, err := l.Propose(d); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.Propose(d); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("200 bytes with a 150 limit: %v", err)
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	if l.uncommittedBytes != 0 {
		t.Fatalf("uncommitted bytes %d after everything committed", l.uncommittedBytes)
	}
	if _, _, err := l.Propose(d); err != nil {
		t.Fatalf("after commit: %v", err)
	}
	if _, _, err := l.Propose(); err == nil {
		t.Fatal("empty proposal accepted")
	}
}

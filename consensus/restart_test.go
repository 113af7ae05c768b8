package consensus

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestRestart: a node restarted from what it persisted has its term, vote
// and log, commit = applied = the snapshot index, and catches up.
func TestRestart(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"), []byte("b"))
	nw.stabilize()
	before := nw.node(2).Status()
	nw.crash(2)
	r := nw.restart(2)
	st := r.Status()
	want := Status{ID: 2, Term: before.Term, Vote: before.Vote, Role: Follower, FirstIndex: 1,
		LastIndex: before.LastIndex, Membership: domain.Membership{Voters: ids(3)}}
	if d := diffStatus(want, st); d != "" {
		t.Fatalf("restarted status (-want +got):\n%s", d)
	}
	if r.HasReady() {
		t.Fatalf("fresh restart has a Ready: %+v", r.Ready())
	}
	l.Tick()
	nw.stabilize()
	if st := r.Status(); st.Commit != before.Commit || st.Lead != 1 {
		t.Fatalf("after a heartbeat: %+v", st)
	}
	if got := nw.stores[2].applied; len(got) != int(before.Commit) {
		t.Fatalf("replayed %d entries, want %d", len(got), before.Commit)
	}
	nw.checkApplied()
}

// TestRestartFromSnapshot: the log starts after the snapshot index.
func TestRestartFromSnapshot(t *testing.T) {
	meta := domain.SnapshotMeta{Index: 10, Term: 3, Membership: domain.Membership{Voters: ids(3)}}
	r, err := New(testConfig(1, nil), State{Vote: domain.Vote{Term: 4, VotedFor: 2}, Snapshot: meta, Entries: ents(11, 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	want := Status{ID: 1, Term: 4, Vote: 2, Role: Follower, Commit: 10, Applied: 10, FirstIndex: 11, LastIndex: 12,
		Membership: meta.Membership}
	if d := diffStatus(want, r.Status()); d != "" {
		t.Fatalf("status (-want +got):\n%s", d)
	}
	if tt, _ := r.Term(10); tt != 3 {
		t.Fatalf("term at snapshot index %d", tt)
	}
	// Its vote holds: another candidate of term 4 is refused.
	mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 3, To: 1, Term: 4, Index: 20, LogTerm: 4})
	rd := readyOf(t, r)
	if len(rd.MessagesAfterSync) != 1 || !rd.MessagesAfterSync[0].Reject {
		t.Fatalf("vote after restart: %v", rd.MessagesAfterSync)
	}
}

// TestStatus checks every field on a leader.
func TestStatus(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"))
	nw.stabilize()
	st := l.Status()
	want := Status{ID: 1, Term: l.term, Vote: 1, Lead: 1, Role: Leader, Commit: 2, Applied: 2, FirstIndex: 1,
		LastIndex: 2, Membership: domain.Membership{Voters: ids(3)},
		Progress: map[domain.NodeID]Progress{
			1: {Match: 2, Next: 3, State: ProgressReplicate, RecentActive: true},
			2: {Match: 2, Next: 3, State: ProgressReplicate, RecentActive: true},
			3: {Match: 2, Next: 3, State: ProgressReplicate, RecentActive: true},
		}}
	if d := diffStatus(want, st); d != "" {
		t.Fatalf("status (-want +got):\n%s", d)
	}
	st.Progress[2] = Progress{}
	if l.Status().Progress[2].Match != 2 {
		t.Fatal("Status shares its Progress map")
	}
	if p := nw.node(2).Status().Progress; p != nil {
		t.Fatalf("follower progress %v, want nil", p)
	}
}

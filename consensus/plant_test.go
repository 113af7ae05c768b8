package consensus

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestPlantVoteNotPersisted: with the switch on, a cast vote is not handed
// out to persist, so after a restart the node votes again in that term.
func TestPlantVoteNotPersisted(t *testing.T) {
	for _, planted := range []bool{false, true} {
		cfg := testConfig(2, ids(3))
		cfg.plant.voteNotPersisted = planted
		r, _ := New(cfg, State{Vote: domain.Vote{Term: 2}})
		mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 3})
		rd := readyOf(t, r)
		if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Reject {
			t.Fatalf("planted=%v: vote not granted: %v", planted, rd.MessagesAfterSync)
		}
		want := domain.Vote{Term: 3, VotedFor: 1}
		if planted {
			want.VotedFor = domain.None
		}
		if rd.Vote == nil || *rd.Vote != want {
			t.Fatalf("planted=%v: Ready.Vote %v, want %v", planted, rd.Vote, want)
		}
		// Restart from what was persisted; candidate 3 asks in term 3.
		r, _ = New(cfg, State{Vote: *rd.Vote})
		mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: 3})
		rd = readyOf(t, r)
		if granted := !rd.MessagesAfterSync[0].Reject; granted != planted {
			t.Fatalf("planted=%v: second vote in term 3 granted=%v", planted, granted)
		}
	}
}

// TestPlantAckBeforeSync: with the switch on, the follower's append
// acknowledgement goes out before the entries are synced.
func TestPlantAckBeforeSync(t *testing.T) {
	for _, planted := range []bool{false, true} {
		cfg := testConfig(2, ids(3))
		cfg.plant.ackBeforeSync = planted
		r, _ := New(cfg, State{Vote: domain.Vote{Term: 1}})
		mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 1, Entries: ents(1, 1)})
		rd := readyOf(t, r)
		ack := domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: 1, Index: 1}
		want := Ready{SoftState: &SoftState{Lead: 1}, Entries: ents(1, 1), MustSync: true}
		if planted {
			want.Messages = []domain.Message{ack}
		} else {
			want.MessagesAfterSync = []domain.Message{ack}
		}
		diffReady(t, want, rd)
	}
}

// TestPlantCommitByCounting is covered by TestFigure8CommitOnlyCurrentTerm;
// this checks the smallest case: a leader whose log holds an entry of an
// earlier term on a majority.
func TestPlantCommitByCounting(t *testing.T) {
	for _, planted := range []bool{false, true} {
		nw := emptyNetwork(t)
		for _, id := range ids(3) {
			cfg := testConfig(id, ids(3))
			cfg.plant.commitByCounting = planted
			nw.add(cfg, State{Vote: domain.Vote{Term: 1}, Entries: ents(1, 1)})
		}
		// Blank entries never arrive: only the old entry is on a majority.
		nw.drop = func(m domain.Message) bool { return m.Type == domain.MsgApp && len(m.Entries) > 0 }
		l := nw.elect(1)
		mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: 1})
		if got := l.log.committed == 1; got != planted {
			t.Fatalf("planted=%v: commit %d", planted, l.log.committed)
		}
	}
}

// TestPlantLeaderUnsynced: with the switch on, the leader counts its own
// entries toward the quorum once handed out to write, so one follower's
// acknowledgement commits an entry the leader has not synced.
func TestPlantLeaderUnsynced(t *testing.T) {
	for _, planted := range []bool{false, true} {
		nw := newNetwork(t, 3, func(cfg *Config) { cfg.plant.leaderUnsynced = planted })
		l := nw.elect(1)
		idx, _, err := l.Propose([]byte("a"))
		if err != nil {
			t.Fatal(err)
		}
		l.Ready() // handed out to write; never synced
		mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: idx})
		if got := l.log.committed >= idx; got != planted {
			t.Fatalf("planted=%v: commit %d with the leader's copy of %d unsynced", planted, l.log.committed, idx)
		}
	}
}

// TestPlantTwoChanges: with the switch on, a leader takes a second
// membership change while the first is not committed.
func TestPlantTwoChanges(t *testing.T) {
	for _, planted := range []bool{false, true} {
		nw := newNetwork(t, 3, func(cfg *Config) { cfg.plant.twoChanges = planted })
		l := nw.elect(1)
		nw.stabilize()
		if _, _, err := l.ProposeMembership(domain.Membership{Voters: ids(3), Learners: []domain.NodeID{4}}); err != nil {
			t.Fatal(err)
		}
		_, _, err := l.ProposeMembership(domain.Membership{Voters: ids(3), Learners: []domain.NodeID{4, 5}})
		if got := err == nil; got != planted {
			t.Fatalf("planted=%v: second change in flight accepted=%v (%v)", planted, got, err)
		}
	}
}

// TestPlantEarlyChange: with the switch on, a new leader changes the
// membership before its blank entry commits.
func TestPlantEarlyChange(t *testing.T) {
	for _, planted := range []bool{false, true} {
		nw := emptyNetwork(t)
		for _, id := range ids(3) {
			cfg := testConfig(id, ids(3))
			cfg.plant.earlyChange = planted
			nw.add(cfg, State{Vote: domain.Vote{Term: 1}})
		}
		// The blank entry never arrives, so it never commits.
		nw.drop = func(m domain.Message) bool { return m.Type == domain.MsgApp && len(m.Entries) > 0 }
		l := nw.elect(1)
		_, _, err := l.ProposeMembership(domain.Membership{Voters: ids(3), Learners: []domain.NodeID{4}})
		if got := err == nil; got != planted {
			t.Fatalf("planted=%v: change before committing in term accepted=%v (%v)", planted, got, err)
		}
	}
}

package consensus

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/domain"
)

func diffStatus(want, got Status) string { return cmp.Diff(want, got, cmpOpts...) }

func TestReplicationCommit(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	first, term, err := l.Propose([]byte("a"), []byte("b"), []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	if first != 2 || term != l.term {
		t.Fatalf("propose: first %d term %d, want 2 %d", first, term, l.term)
	}
	nw.stabilize()
	for _, id := range nw.ids {
		s := nw.stores[id]
		if len(s.applied) != 4 || string(s.applied[3].Data) != "c" {
			t.Fatalf("node %d applied %v", id, s.applied)
		}
	}
	nw.checkApplied()
}

// TestProposeOneBatch: one Propose of several entries gives one Ready
// with all of them and one MsgApp per follower.
func TestProposeOneBatch(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	if _, _, err := l.Propose([]byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	rd := l.Ready()
	if len(rd.Entries) != 2 || len(rd.Messages) != 2 {
		t.Fatalf("ready: %d entries, messages %v; want 2 entries and 2 MsgApp", len(rd.Entries), msgTypes(rd.Messages))
	}
	for _, m := range rd.Messages {
		if m.Type != domain.MsgApp || len(m.Entries) != 2 {
			t.Fatalf("message %v with %d entries, want MsgApp with 2", m, len(m.Entries))
		}
	}
	l.Advance(rd)
}

func TestProposeNotLeader(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	if _, _, err := nw.node(2).Propose([]byte("x")); !errorsIs(err, domain.ErrNotLeader) {
		t.Fatalf("propose on follower: %v, want ErrNotLeader", err)
	}
}

// TestLeaderSelfAckAfterAdvance: the leader counts itself in the quorum
// only for entries it persisted (after Advance).
func TestLeaderSelfAckAfterAdvance(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	idx, _, _ := l.Propose([]byte("x"))
	rd := l.Ready() // not advanced yet: the entry is being written
	// One follower acks: 1 of 3 holding it durably (the leader's own copy
	// does not count yet).
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: idx})
	if l.log.committed >= idx {
		t.Fatalf("committed %d before the leader persisted it", l.log.committed)
	}
	l.Advance(rd)
	if l.log.committed != idx {
		t.Fatalf("commit %d after advance, want %d", l.log.committed, idx)
	}
}

// TestFollowerAppendStepByStep: accept, ack after sync, reject with hint,
// truncate a conflicting suffix.
func TestFollowerAppendStepByStep(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 2}, Entries: ents(1, 1, 1, 2, 2)})
	// Accept two new entries after (4,2).
	newEnts := ents(5, 3, 3)
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 2, Entries: newEnts, Commit: 2})
	diffReady(t, Ready{
		SoftState:         &SoftState{Lead: 1, Role: Follower},
		Vote:              &domain.Vote{Term: 3},
		Entries:           newEnts,
		MustSync:          true,
		MessagesAfterSync: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 3, Index: 6}},
		CommittedEntries:  ents(1, 1, 1),
	}, readyOf(t, r))
	// Reject: prev (8,3) is past our end; hint our last index 6 (term 3).
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 3, Index: 8, LogTerm: 3, Commit: 2})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 3, Index: 8, Reject: true, RejectHint: 6, LogTerm: 3}},
	}, readyOf(t, r))
	// Conflict: the leader has (3,3),(4,3) after (2,1): replace 3..6.
	repl := ents(3, 3, 3)
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 3, Index: 2, LogTerm: 1, Entries: repl, Commit: 5})
	diffReady(t, Ready{
		Entries:           repl,
		MustSync:          true,
		MessagesAfterSync: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 3, Index: 4}},
		CommittedEntries:  repl,
	}, readyOf(t, r))
	if r.log.lastIndex() != 4 {
		t.Fatalf("last index %d after replacing the suffix, want 4", r.log.lastIndex())
	}
	// An empty append whose prev is durable is acknowledged at once.
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 3, Commit: 4})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 3, Index: 4}},
	}, readyOf(t, r))
	// Truncating a committed entry is a broken invariant.
	defer func() {
		if recover() == nil {
			t.Fatal("truncating a committed entry did not panic")
		}
	}()
	// An append below the commit index only gets the commit index back.
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 3, Index: 1, LogTerm: 1, Entries: ents(2, 3)})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 3, Index: 4}},
	}, readyOf(t, r))
	r.log.append(ents(2, 3)...)
}

// TestTruncationBetweenReadyAndAdvance: a conflict that arrives while a
// Ready is being handled is re-emitted from the truncation point.
func TestTruncationBetweenReadyAndAdvance(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 2}, Entries: ents(1, 1)})
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 2, Index: 1, LogTerm: 1, Entries: ents(2, 2, 2)})
	rd := r.Ready()
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 3, To: 2, Term: 3, Index: 2, LogTerm: 2, Entries: ents(3, 3)})
	r.Advance(rd)
	if r.log.persisted != 2 {
		t.Fatalf("persisted %d, want 2 (entry 3 was replaced)", r.log.persisted)
	}
	rd = readyOf(t, r)
	if d := cmp.Diff(ents(3, 3), rd.Entries); d != "" {
		t.Fatalf("entries (-want +got):\n%s", d)
	}
	if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Index != 3 {
		t.Fatalf("after sync: %v", rd.MessagesAfterSync)
	}
}

// TestFastBacktracking: a follower with a long divergent log spanning
// several terms is found with one rejection, not one per entry: the
// follower hints the last entry whose term is <= the probe's, and the
// leader skips its own entries of terms above the hint's.
func TestFastBacktracking(t *testing.T) {
	terms := func(spans ...[3]int) []domain.Entry { // [from, to, term]
		var out []domain.Entry
		for _, sp := range spans {
			for i := sp[0]; i <= sp[1]; i++ {
				out = append(out, ents(domain.Index(i), domain.Term(sp[2]))...)
			}
		}
		return out
	}
	// Leader: 1..5 term 1, 6..55 term 3, 56..105 term 5.
	leaderLog := terms([3]int{1, 5, 1}, [3]int{6, 55, 3}, [3]int{56, 105, 5})
	// Follower: 1..5 term 1, 6..105 term 2, 106..205 term 4.
	followerLog := terms([3]int{1, 5, 1}, [3]int{6, 105, 2}, [3]int{106, 205, 4})
	nw := emptyNetwork(t)
	nw.add(testConfig(1, ids(3)), State{Vote: domain.Vote{Term: 5}, Entries: leaderLog})
	nw.add(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 5}, Entries: followerLog})
	nw.add(testConfig(3, ids(3)), State{Vote: domain.Vote{Term: 5}, Entries: leaderLog})
	nw.isolate(2)
	l := nw.elect(1)
	nw.heal()
	var rejects []domain.Message
	appends := 0
	nw.drop = func(m domain.Message) bool {
		switch {
		case m.Type == domain.MsgApp && m.To == 2:
			appends++
		case m.Type == domain.MsgAppResp && m.From == 2 && m.Reject:
			rejects = append(rejects, m)
		}
		return false
	}
	l.Tick()
	nw.stabilize()
	if got, want := nw.node(2).log.lastIndex(), l.log.lastIndex(); got != want {
		t.Fatalf("follower last %d, want %d", got, want)
	}
	// The probe at (105,5) is refused with hint 105 of term 2; the leader
	// skips to its last entry of term <= 2, index 5, which matches.
	want := []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 6, Index: 105, Reject: true, RejectHint: 105, LogTerm: 2}}
	if d := diffAny(want, rejects); d != "" {
		t.Fatalf("rejections (-want +got):\n%s", d)
	}
	t.Logf("converged with %d appends and %d rejection (one per entry would be 100)", appends, len(rejects))
	nw.checkApplied()
}

// TestFigure8CommitOnlyCurrentTerm scripts Figure 8 of the Raft paper: a
// leader of term 4 that replicated an entry of term 2 on a majority must
// not commit it, since a node with a term-3 entry can still be elected
// and overwrite it. With the planted commitByCounting bug it does.
func TestFigure8CommitOnlyCurrentTerm(t *testing.T) {
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) {
			nw := emptyNetwork(t)
			cfg := func(id domain.NodeID) Config {
				c := testConfig(id, ids(5))
				c.DisablePreVote = true
				c.DisableCheckQuorum = true
				c.MaxMsgBytes = 1 // one entry per append
				c.plant.commitByCounting = planted
				return c
			}
			// (a)-(c): S1 led term 2 and wrote (2,2); S5 led term 3 and
			// wrote (2,3); both only locally.
			nw.add(cfg(1), State{Vote: domain.Vote{Term: 3}, Entries: ents(1, 1, 2)})
			nw.add(cfg(2), State{Vote: domain.Vote{Term: 3}, Entries: ents(1, 1)})
			nw.add(cfg(3), State{Vote: domain.Vote{Term: 3}, Entries: ents(1, 1)})
			nw.add(cfg(4), State{Vote: domain.Vote{Term: 3}, Entries: ents(1, 1)})
			nw.add(cfg(5), State{Vote: domain.Vote{Term: 3, VotedFor: 5}, Entries: ents(1, 1, 3)})
			// S1 is elected in term 4 (S5 refuses: its log is newer) and
			// replicates (2,2) to S2 and S3 -- but not its blank (3,4).
			probed := map[domain.NodeID]bool{}
			nw.drop = func(m domain.Message) bool {
				if m.Type != domain.MsgApp {
					return false
				}
				if m.To == 4 || m.To == 5 {
					return true
				}
				// The first probe gets its rejection; after that only
				// (2,2) gets through.
				if !probed[m.To] {
					probed[m.To] = true
					return false
				}
				return len(m.Entries) > 0 && m.Entries[0].Term == 4
			}
			l := nw.elect(1)
			if l.term != 4 {
				t.Fatalf("leader term %d, want 4", l.term)
			}
			for _, id := range []domain.NodeID{2, 3} {
				if tt, _ := nw.node(id).Term(2); tt != 2 {
					t.Fatalf("node %d term at 2 is %d, want 2", id, tt)
				}
			}
			if planted {
				if l.log.committed != 2 {
					t.Fatalf("planted: commit %d, want 2 (counted replicas of an old term)", l.log.committed)
				}
			} else if l.log.committed != 0 {
				t.Fatalf("commit %d, want 0: (2,2) is of an earlier term", l.log.committed)
			}
			// (d): S1 crashes; S5 is elected in term 5 with S2, S3, S4 and
			// overwrites index 2 with its (2,3).
			nw.drop = nil
			nw.crash(1)
			nw.queue = nil
			nw.elect(5)
			nw.stabilize()
			if tt, _ := nw.node(3).Term(2); tt != 3 {
				t.Fatalf("node 3 term at 2 is %d, want 3 (overwritten)", tt)
			}
			lost := l.log.committed >= 2
			if lost != planted {
				t.Fatalf("a committed entry was overwritten: %v, want %v", lost, planted)
			}
		})
	}
}

func errorsIs(err, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if errorsIs(e, target) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

func diffAny(want, got any) string { return cmp.Diff(want, got, cmpOpts...) }

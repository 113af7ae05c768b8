package consensus

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func TestNewValidates(t *testing.T) {
	cfg := testConfig(1, ids(3))
	cfg.Rand = nil
	if _, err := New(cfg, State{}); err == nil {
		t.Fatal("New without Rand: want error")
	}
	_, err := New(testConfig(1, ids(3)), State{Entries: ents(2, 1)})
	if !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("New with a gap: err %v, want ErrCorrupt", err)
	}
	// A snapshot installed but the term that came with it not stored yet:
	// the core takes the snapshot's term (no vote) and hands it out.
	r, err := New(testConfig(1, ids(3)), State{Vote: domain.Vote{Term: 1, VotedFor: 2},
		Snapshot: domain.SnapshotMeta{Index: 5, Term: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.Term != 3 || st.Vote != domain.None {
		t.Fatalf("status %+v, want term 3 and no vote", st)
	}
	diffReady(t, Ready{Vote: &domain.Vote{Term: 3}, MustSync: true}, readyOf(t, r))
}

func TestStepRejectsMalformed(t *testing.T) {
	r, _ := New(testConfig(1, ids(3)), State{})
	before := r.Status()
	for _, m := range []domain.Message{
		{Type: domain.MsgHeartbeat, From: 2, To: 3, Term: 5},
		{Type: domain.MessageType(99), From: 2, To: 1, Term: 5},
		{Type: domain.MsgHeartbeat, From: 0, To: 1, Term: 5},
		{Type: domain.MsgHeartbeat, From: 1, To: 1, Term: 5},
		{Type: domain.MsgSnap, From: 2, To: 1, Term: 5},
		{Type: domain.MsgApp, From: 2, To: 1, Term: 5, Index: 3, Entries: ents(5, 5)},
	} {
		if err := r.Step(m); err == nil {
			t.Errorf("Step(%v): want error", m)
		}
	}
	if r.HasReady() {
		t.Fatalf("malformed messages produced a Ready: %+v", r.Ready())
	}
	if d := diffStatus(before, r.Status()); d != "" {
		t.Fatalf("status changed: %s", d)
	}
}

// TestRandomizedElectionTimeout checks the timeout is drawn from
// [ElectionTicks, 2*ElectionTicks) and covers the range.
func TestRandomizedElectionTimeout(t *testing.T) {
	cfg := testConfig(1, ids(3))
	cfg.Rand = rand.New(rand.NewPCG(7, 7))
	r, err := New(cfg, State{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 1000 {
		r.resetTimers()
		to := r.randomizedTimeout
		if to < cfg.ElectionTicks || to >= 2*cfg.ElectionTicks {
			t.Fatalf("timeout %d outside [%d,%d)", to, cfg.ElectionTicks, 2*cfg.ElectionTicks)
		}
		seen[to] = true
	}
	if len(seen) != cfg.ElectionTicks {
		t.Fatalf("saw %d distinct timeouts, want %d", len(seen), cfg.ElectionTicks)
	}
	// A follower campaigns exactly when its timeout expires.
	r, _ = New(cfg, State{})
	to := r.randomizedTimeout
	for i := 1; i < to; i++ {
		r.Tick()
		if r.role != Follower {
			t.Fatalf("campaigned after %d ticks, timeout %d", i, to)
		}
	}
	r.Tick()
	if r.role != PreCandidate {
		t.Fatalf("role %v after %d ticks, want pre-candidate", r.role, to)
	}
}

// TestElectionStepByStep walks one pre-vote election of node 1 in a
// three-node cluster, asserting each Ready.
func TestElectionStepByStep(t *testing.T) {
	r, _ := New(testConfig(1, ids(3)), State{})
	r.campaign(false)
	// Pre-vote: no term change, no vote, pre-vote requests for term 1.
	diffReady(t, Ready{
		SoftState: &SoftState{Role: PreCandidate},
		Messages: []domain.Message{
			{Type: domain.MsgPreVote, From: 1, To: 2, Term: 1},
			{Type: domain.MsgPreVote, From: 1, To: 3, Term: 1},
		},
	}, readyOf(t, r))
	mustStep(t, r, domain.Message{Type: domain.MsgPreVoteResp, From: 2, To: 1, Term: 1})
	// Pre-vote won: a real campaign in term 1; the vote must be persisted.
	diffReady(t, Ready{
		SoftState: &SoftState{Role: Candidate},
		Vote:      &domain.Vote{Term: 1, VotedFor: 1},
		MustSync:  true,
		Messages: []domain.Message{
			{Type: domain.MsgVote, From: 1, To: 2, Term: 1},
			{Type: domain.MsgVote, From: 1, To: 3, Term: 1},
		},
	}, readyOf(t, r))
	mustStep(t, r, domain.Message{Type: domain.MsgVoteResp, From: 3, To: 1, Term: 1})
	// Elected (own durable vote + node 3): blank entry, appends sent at
	// once, in parallel with the leader's own write.
	blank := domain.Entry{Index: 1, Term: 1, Type: domain.EntryBlank}
	diffReady(t, Ready{
		SoftState: &SoftState{Lead: 1, Role: Leader},
		Entries:   []domain.Entry{blank},
		MustSync:  true,
		Messages: []domain.Message{
			{Type: domain.MsgApp, From: 1, To: 2, Term: 1, Entries: []domain.Entry{blank}},
			{Type: domain.MsgApp, From: 1, To: 3, Term: 1, Entries: []domain.Entry{blank}},
		},
	}, readyOf(t, r))
	// Commit needs a follower ack: the leader alone (persisted) is 1 of 3.
	if r.log.committed != 0 {
		t.Fatalf("commit %d, want 0", r.log.committed)
	}
	mustStep(t, r, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: 1, Index: 1})
	diffReady(t, Ready{
		CommittedEntries: []domain.Entry{blank},
		// Node 2 learns the commit index; node 3 is probed and its probe
		// is still unanswered, so nothing more goes to it.
		Messages: []domain.Message{
			{Type: domain.MsgApp, From: 1, To: 2, Term: 1, Index: 1, LogTerm: 1, Commit: 1},
		},
	}, readyOf(t, r))
	if pr := r.prs[3]; pr.state != ProgressProbe || !pr.probeSent {
		t.Fatalf("node 3 progress %+v, want a probe in flight", *pr)
	}
	if pr := r.prs[2]; pr.state != ProgressReplicate || pr.match != 1 {
		t.Fatalf("node 2 progress %+v, want replicate at match 1", *pr)
	}
}

// TestVoteResponseAfterSync: a vote is handed out to persist in the same
// Ready whose MessagesAfterSync carries the response, never in Messages.
func TestVoteResponseAfterSync(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{})
	mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 3, Index: 0, LogTerm: 0})
	diffReady(t, Ready{
		Vote:              &domain.Vote{Term: 3, VotedFor: 1},
		MustSync:          true,
		MessagesAfterSync: []domain.Message{{Type: domain.MsgVoteResp, From: 2, To: 1, Term: 3}},
	}, readyOf(t, r))
	// A second candidate of the same term is refused; no vote change.
	mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: 3})
	diffReady(t, Ready{
		MessagesAfterSync: []domain.Message{{Type: domain.MsgVoteResp, From: 2, To: 3, Term: 3, Reject: true}},
	}, readyOf(t, r))
	// The same candidate asking again gets the vote again.
	mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 3})
	diffReady(t, Ready{
		MessagesAfterSync: []domain.Message{{Type: domain.MsgVoteResp, From: 2, To: 1, Term: 3}},
	}, readyOf(t, r))
}

// TestVoteRequiresUpToDateLog: a candidate whose log is behind is refused.
func TestVoteRequiresUpToDateLog(t *testing.T) {
	st := State{Vote: domain.Vote{Term: 2}, Entries: ents(1, 1, 2)}
	for _, tc := range []struct {
		index  domain.Index
		term   domain.Term
		reject bool
	}{
		{2, 2, false}, {3, 2, false}, {1, 2, true}, {5, 1, true}, {1, 1, true}, {1, 3, false},
	} {
		r, _ := New(testConfig(2, ids(3)), st)
		mustStep(t, r, domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 3, Index: tc.index, LogTerm: tc.term})
		rd := readyOf(t, r)
		if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Reject != tc.reject {
			t.Fatalf("candidate last (%d,%d): got %v, want reject=%v", tc.index, tc.term, rd.MessagesAfterSync, tc.reject)
		}
	}
}

// TestCandidateCountsOwnVoteOnlyWhenDurable: a single-node cluster becomes
// leader only after Advance of the Ready carrying its vote.
func TestCandidateCountsOwnVoteOnlyWhenDurable(t *testing.T) {
	r, _ := New(testConfig(1, ids(1)), State{})
	r.campaign(false)
	if r.role != Candidate {
		t.Fatalf("role %v, want candidate (pre-vote of one wins at once)", r.role)
	}
	rd := r.Ready()
	if rd.Vote == nil || *rd.Vote != (domain.Vote{Term: 1, VotedFor: 1}) {
		t.Fatalf("vote %v, want {1 1}", rd.Vote)
	}
	if r.role != Candidate {
		t.Fatalf("became %v before its vote was durable", r.role)
	}
	r.Advance(rd)
	if r.role != Leader {
		t.Fatalf("role %v after advance, want leader", r.role)
	}
	rd = readyOf(t, r)
	if len(rd.Entries) != 1 || rd.Entries[0].Type != domain.EntryBlank || len(rd.CommittedEntries) != 0 {
		t.Fatalf("ready %+v: want the blank entry, nothing committed before it is persisted", rd)
	}
	rd = readyOf(t, r)
	if len(rd.CommittedEntries) != 1 {
		t.Fatalf("ready %+v: want the blank entry committed after its Advance", rd)
	}
}

func TestElection3(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.tickAll(25)
	l := nw.leader()
	if l == domain.None {
		t.Fatal("no leader after 25 ticks")
	}
	for _, id := range nw.ids {
		st := nw.node(id).Status()
		if st.Lead != l || st.Term != nw.node(l).term || st.Commit != 1 {
			t.Fatalf("node %d status %+v, want lead %d commit 1", id, st, l)
		}
	}
}

// TestPreVoteDoesNotDisrupt: a node partitioned away and back does not
// bump the term or depose the leader.
func TestPreVoteDoesNotDisrupt(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.elect(1)
	term := nw.node(1).term
	nw.isolate(3)
	for range 50 {
		nw.node(3).Tick()
		nw.stabilize()
	}
	if r := nw.node(3); r.term != term || r.role != PreCandidate {
		t.Fatalf("isolated node: term %d role %v, want term %d pre-candidate", r.term, r.role, term)
	}
	nw.heal()
	nw.tickAll(3)
	for _, id := range nw.ids {
		if r := nw.node(id); r.term != term || r.lead != 1 {
			t.Fatalf("node %d: term %d lead %d, want term %d lead 1", id, r.term, r.lead, term)
		}
	}
	// Without pre-vote the same partition disrupts the cluster.
	nw = newNetwork(t, 3, func(c *Config) { c.DisablePreVote = true; c.DisableCheckQuorum = true })
	nw.elect(1)
	nw.isolate(3)
	for range 50 {
		nw.node(3).Tick()
		nw.stabilize()
	}
	if nw.node(3).term <= term {
		t.Fatalf("without pre-vote, the isolated node's term stayed %d", nw.node(3).term)
	}
	nw.heal()
	nw.tickAll(2 * nw.cfgs[1].ElectionTicks)
	if nw.node(1).term == term {
		t.Fatal("without pre-vote, the returning node did not bump the leader's term")
	}
}

// TestPreVoteChangesNoState: a pre-vote request for term+1 changes
// neither term nor vote on the receiver.
func TestPreVoteChangesNoState(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 4}})
	mustStep(t, r, domain.Message{Type: domain.MsgPreVote, From: 1, To: 2, Term: 5})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgPreVoteResp, From: 2, To: 1, Term: 5}},
	}, readyOf(t, r))
	if r.term != 4 || r.vote != domain.None {
		t.Fatalf("term %d vote %d after pre-vote, want 4 and none", r.term, r.vote)
	}
	// A stale pre-vote is refused with our term.
	mustStep(t, r, domain.Message{Type: domain.MsgPreVote, From: 3, To: 2, Term: 3})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgPreVoteResp, From: 2, To: 3, Term: 4, Reject: true}},
	}, readyOf(t, r))
}

// TestCheckQuorumStepDown: a leader cut off from its followers steps down
// after an election timeout.
func TestCheckQuorumStepDown(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	nw.isolate(1)
	// The check runs every election timeout over what was heard since the
	// previous one: the first check still sees the election's answers.
	et := nw.cfgs[1].ElectionTicks
	for range 2*et - 1 {
		l.Tick()
	}
	if l.role != Leader {
		t.Fatal("stepped down before two election timeouts")
	}
	l.Tick()
	if l.role != Follower || l.lead != domain.None {
		t.Fatalf("role %v lead %d after an election timeout alone, want follower of nobody", l.role, l.lead)
	}
	// With followers answering, it stays.
	nw = newNetwork(t, 3, nil)
	l = nw.elect(1)
	nw.tickAll(5 * nw.cfgs[1].ElectionTicks)
	if l.role != Leader {
		t.Fatalf("healthy leader stepped down: %v", l.role)
	}
	// Without CheckQuorum it stays alone.
	nw = newNetwork(t, 3, func(c *Config) { c.DisableCheckQuorum = true })
	l = nw.elect(1)
	nw.isolate(1)
	for range 5 * nw.cfgs[1].ElectionTicks {
		l.Tick()
	}
	if l.role != Leader {
		t.Fatalf("leader without CheckQuorum stepped down: %v", l.role)
	}
}

// TestLeaderStickiness: a follower that heard from its leader within the
// election timeout ignores vote requests, even of a higher term.
func TestLeaderStickiness(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.DisablePreVote = true })
	nw.elect(1)
	f := nw.node(2)
	term := f.term
	mustStep(t, f, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: term + 1, Index: 10, LogTerm: term})
	if f.HasReady() || f.term != term {
		t.Fatalf("follower in lease answered or moved term: term %d ready %v", f.term, f.HasReady())
	}
	// Once the lease ran out it grants.
	for range nw.cfgs[2].ElectionTicks {
		f.electionElapsed++
	}
	mustStep(t, f, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: term + 1, Index: 10, LogTerm: term})
	rd := readyOf(t, f)
	if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Reject || f.term != term+1 {
		t.Fatalf("after lease: %+v term %d, want a granted vote in term %d", rd.MessagesAfterSync, f.term, term+1)
	}
	// A vote request marked as a transfer bypasses the lease.
	nw = newNetwork(t, 3, nil)
	nw.elect(1)
	f = nw.node(2)
	term = f.term
	mustStep(t, f, domain.Message{Type: domain.MsgVote, From: 3, To: 2, Term: term + 1, Index: 10, LogTerm: term, Context: []byte("transfer")})
	rd = readyOf(t, f)
	if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Reject {
		t.Fatalf("transfer vote: %+v, want granted", rd.MessagesAfterSync)
	}
}

// TestStaleLeaderStepsDown: a leader of an old term that sends an append
// gets an answer with the new term and steps down.
func TestStaleLeaderStepsDown(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 5}})
	mustStep(t, r, domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: 3})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 5}},
	}, readyOf(t, r))
	// A lower-term vote response is ignored entirely.
	mustStep(t, r, domain.Message{Type: domain.MsgVoteResp, From: 1, To: 2, Term: 3})
	if r.HasReady() {
		t.Fatal("lower-term vote response produced a Ready")
	}

	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term + 3})
	if l.role != Follower || l.term != 4 {
		t.Fatalf("leader after a higher-term answer: %v term %d", l.role, l.term)
	}
}

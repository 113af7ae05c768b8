package consensus

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// TestReadIndexLeaderStepByStep: reads share one heartbeat round; a
// quorum of acknowledgements releases them with the commit index at the
// time they were asked.
func TestReadIndexLeaderStepByStep(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	term := l.term
	if err := l.ReadIndex([]byte("r1")); err != nil {
		t.Fatal(err)
	}
	if err := l.ReadIndex([]byte("r2")); err != nil {
		t.Fatal(err)
	}
	round1 := encodeRound(1)
	diffReady(t, Ready{
		Messages: []domain.Message{
			{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: term, Commit: 1, Context: round1},
			{Type: domain.MsgHeartbeat, From: 1, To: 3, Term: term, Commit: 1, Context: round1},
		},
	}, readyOf(t, l))
	// The round's heartbeats are out: a new read starts a new round.
	l.ReadIndex([]byte("r3"))
	round2 := encodeRound(2)
	diffReady(t, Ready{
		Messages: []domain.Message{
			{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: term, Commit: 1, Context: round2},
			{Type: domain.MsgHeartbeat, From: 1, To: 3, Term: term, Commit: 1, Context: round2},
		},
	}, readyOf(t, l))
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 2, To: 1, Term: term, Context: round1})
	diffReady(t, Ready{
		ReadStates: []ReadState{{Index: 1, Context: []byte("r1")}, {Index: 1, Context: []byte("r2")}},
	}, readyOf(t, l))
	// An acknowledgement of round 2 also covers round 1 (already done).
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 3, To: 1, Term: term, Context: round2})
	diffReady(t, Ready{
		ReadStates: []ReadState{{Index: 1, Context: []byte("r3")}},
	}, readyOf(t, l))
	// Three reads took two rounds, both confirmed, none without a round.
	if d := cmp.Diff(ReadStats{Rounds: 2, Confirmed: 2}, l.Status().Reads); d != "" {
		t.Fatalf("read stats (-want +got):\n%s", d)
	}
}

// TestReadIndexBeforeCommitInTerm: a new leader queues reads until its
// blank entry commits.
func TestReadIndexBeforeCommitInTerm(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	nw.drop = func(m domain.Message) bool { return m.Type == domain.MsgAppResp }
	l := nw.elect(1)
	if l.committedInTerm() {
		t.Fatal("blank committed without acknowledgements")
	}
	l.ReadIndex([]byte("early"))
	if rd := readyOf(t, l); len(rd.Messages) != 0 || len(rd.ReadStates) != 0 {
		t.Fatalf("read before first commit: %v %v, want it queued", msgTypes(rd.Messages), rd.ReadStates)
	}
	var got []ReadState
	nw.onReady = func(id domain.NodeID, rd Ready) {
		if id == 1 {
			got = append(got, rd.ReadStates...)
		}
	}
	nw.drop = nil
	l.Tick() // a heartbeat round makes the followers answer the probes
	nw.stabilize()
	if len(got) != 1 || string(got[0].Context) != "early" || got[0].Index != 1 {
		t.Fatalf("read states %+v, want early at 1", got)
	}
}

// TestReadIndexFollower: a follower forwards to the leader and turns the
// answer into a ReadState.
func TestReadIndexFollower(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"))
	nw.stabilize()
	f := nw.node(2)
	if err := f.ReadIndex([]byte("f")); err != nil {
		t.Fatal(err)
	}
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgReadIndex, From: 2, To: 1, Term: l.term, Context: []byte("f")}},
	}, readyOf(t, f))
	mustStep(t, l, domain.Message{Type: domain.MsgReadIndex, From: 2, To: 1, Term: l.term, Context: []byte("f")})
	rd := readyOf(t, l)
	if len(rd.Messages) != 2 || rd.Messages[0].Type != domain.MsgHeartbeat {
		t.Fatalf("leader: %v, want a heartbeat round", msgTypes(rd.Messages))
	}
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 3, To: 1, Term: l.term, Context: rd.Messages[0].Context})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgReadIndexResp, From: 1, To: 2, Term: l.term, Index: 2, Context: []byte("f")}},
	}, readyOf(t, l))
	mustStep(t, f, domain.Message{Type: domain.MsgReadIndexResp, From: 1, To: 2, Term: l.term, Index: 2, Context: []byte("f")})
	diffReady(t, Ready{ReadStates: []ReadState{{Index: 2, Context: []byte("f")}}}, readyOf(t, f))

	// Through the network end to end.
	var states []ReadState
	nw.onReady = func(id domain.NodeID, rd Ready) {
		if id == 3 {
			states = append(states, rd.ReadStates...)
		}
	}
	nw.node(3).ReadIndex([]byte("g"))
	nw.stabilize()
	if len(states) != 1 || states[0].Index != 2 {
		t.Fatalf("follower read states %+v", states)
	}
}

func TestReadIndexSingleNode(t *testing.T) {
	nw := newNetwork(t, 1, nil)
	l := nw.elect(1)
	nw.stabilize()
	l.ReadIndex([]byte("x"))
	diffReady(t, Ready{ReadStates: []ReadState{{Index: 1, Context: []byte("x")}}}, readyOf(t, l))
}

func TestReadIndexErrors(t *testing.T) {
	r, _ := New(testConfig(2, ids(3)), State{})
	if err := r.ReadIndex(nil); !errorsIs(err, domain.ErrNoLeader) {
		t.Fatalf("read with no leader: %v", err)
	}
	nw := newNetwork(t, 3, func(c *Config) { c.MaxPendingReads = 2 })
	l := nw.elect(1)
	l.ReadIndex(nil)
	l.ReadIndex(nil)
	if err := l.ReadIndex(nil); !errorsIs(err, domain.ErrProposalDropped) {
		t.Fatalf("third read with MaxPendingReads 2: %v", err)
	}
	// A forwarded read over the limit is refused explicitly.
	mustStep(t, l, domain.Message{Type: domain.MsgReadIndex, From: 2, To: 1, Term: l.term, Context: []byte("c")})
	rd := readyOf(t, l)
	last := rd.Messages[len(rd.Messages)-1]
	if last.Type != domain.MsgReadIndexResp || !last.Reject {
		t.Fatalf("forwarded read over the limit: %v", last)
	}
	// Losing leadership drops the pending reads (never answered).
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term + 1})
	if n := l.reads.pending(); n != 0 {
		t.Fatalf("%d reads pending after stepping down", n)
	}
}

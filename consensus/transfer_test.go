package consensus

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestLeaderTransfer: the leader stops taking proposals, catches the
// target up, sends MsgTimeoutNow; the target wins at once, past the
// followers' leases.
func TestLeaderTransfer(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	term := l.term
	nw.isolate(3)
	l.Propose([]byte("a"))
	nw.stabilize()
	nw.heal()
	var timeoutNow []domain.Message
	nw.drop = func(m domain.Message) bool {
		if m.Type == domain.MsgTimeoutNow {
			timeoutNow = append(timeoutNow, m)
			if nw.node(3).log.lastIndex() != l.log.lastIndex() {
				t.Errorf("MsgTimeoutNow sent before the target caught up")
			}
		}
		return false
	}
	if err := l.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	_, _, err := l.Propose([]byte("b"))
	if !errorsIs(err, domain.ErrProposalDropped) || !errorsIs(err, domain.ErrTransferInProgress) {
		t.Fatalf("propose during transfer: %v", err)
	}
	nw.stabilize()
	if len(timeoutNow) != 1 {
		t.Fatalf("%d MsgTimeoutNow, want 1", len(timeoutNow))
	}
	if got := nw.leader(); got != 3 || nw.node(3).term != term+1 {
		t.Fatalf("leader %d term %d, want 3 in term %d", got, nw.node(3).term, term+1)
	}
	if l.role != Follower || l.lead != 3 {
		t.Fatalf("old leader: %v lead %d", l.role, l.lead)
	}
	nw.checkApplied()
}

// TestLeaderTransferAbort: a transfer to an unreachable target is
// abandoned after an election timeout and proposals resume.
func TestLeaderTransferAbort(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	nw.isolate(3)
	if err := l.TransferLeadership(3); err != nil {
		t.Fatal(err)
	}
	for range nw.cfgs[1].ElectionTicks - 1 {
		l.Tick()
		nw.stabilize()
	}
	if l.leadTransferee != 3 {
		t.Fatal("transfer abandoned early")
	}
	l.Tick()
	nw.stabilize()
	if l.leadTransferee != domain.None || l.role != Leader {
		t.Fatalf("transfer still on (%d) or leadership lost (%v)", l.leadTransferee, l.role)
	}
	if _, _, err := l.Propose([]byte("x")); err != nil {
		t.Fatalf("propose after abort: %v", err)
	}
}

func TestLeaderTransferErrors(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	if err := nw.node(2).TransferLeadership(3); !errorsIs(err, domain.ErrNotLeader) {
		t.Fatalf("transfer on follower: %v", err)
	}
	if err := l.TransferLeadership(9); !errorsIs(err, domain.ErrInvalidMembership) {
		t.Fatalf("transfer to non-member: %v", err)
	}
	if err := l.TransferLeadership(1); err != nil || l.leadTransferee != domain.None {
		t.Fatalf("transfer to self: %v", err)
	}
}

// TestTimeoutNowSkipsPreVote: the target campaigns at once in a new term
// with a vote request marked as a transfer.
func TestTimeoutNowSkipsPreVote(t *testing.T) {
	r, _ := New(testConfig(3, ids(3)), State{Vote: domain.Vote{Term: 2}})
	mustStep(t, r, domain.Message{Type: domain.MsgTimeoutNow, From: 1, To: 3, Term: 2})
	diffReady(t, Ready{
		SoftState: &SoftState{Role: Candidate},
		Vote:      &domain.Vote{Term: 3, VotedFor: 3},
		MustSync:  true,
		Messages: []domain.Message{
			{Type: domain.MsgVote, From: 3, To: 1, Term: 3, Context: []byte("transfer")},
			{Type: domain.MsgVote, From: 3, To: 2, Term: 3, Context: []byte("transfer")},
		},
	}, readyOf(t, r))
}

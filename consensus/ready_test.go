package consensus

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestEntriesAccessor checks the read accessors tests and drivers use.
func TestEntriesAccessor(t *testing.T) {
	r, _ := New(testConfig(1, ids(3)), State{Vote: domain.Vote{Term: 2},
		Snapshot: domain.SnapshotMeta{Index: 3, Term: 1}, Entries: ents(4, 1, 2, 2)})
	got, err := r.Entries(4, 7)
	if err != nil || len(got) != 3 || got[2].Index != 6 {
		t.Fatalf("Entries(4,7): %v %v", got, err)
	}
	if _, err := r.Entries(3, 5); !errorsIs(err, domain.ErrCompacted) {
		t.Fatalf("Entries(3,5): %v", err)
	}
	if _, err := r.Entries(5, 8); !errorsIs(err, domain.ErrUnavailable) {
		t.Fatalf("Entries(5,8): %v", err)
	}
	if _, err := r.Term(7); !errorsIs(err, domain.ErrUnavailable) {
		t.Fatalf("Term(7): %v", err)
	}
	// Appending to a returned slice never writes into the log.
	got = append(got, domain.Entry{Index: 99})
	if r.log.lastIndex() != 6 {
		t.Fatal("log changed")
	}
	if got2, _ := r.Entries(4, 7); len(got2) != 3 {
		t.Fatal("log changed")
	}
}

// TestTakeMessagesWhileWriting: between Ready and Advance the leader's
// appends for new proposals go out (TakeMessages), but its own entries
// count toward the commit only once Advance says they are durable.
func TestTakeMessagesWhileWriting(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	first, _, err := l.Propose([]byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	rd := l.Ready() // the write of "a" is under way
	second, _, err := l.Propose([]byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := l.TakeMessages()
	if got := appsTo(msgs, 2); len(got) != 1 || got[0].Entries[0].Index != second {
		t.Fatalf("appends to 2 while writing: %v", msgs)
	}
	// One follower acknowledges both: with the leader's unsynced copy
	// that would be a quorum of 3, but the leader's copy does not count.
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: second})
	if l.log.committed >= first {
		t.Fatalf("committed %d with the leader's own copy of %d not durable", l.log.committed, first)
	}
	l.Advance(rd)
	if l.log.committed != first {
		t.Fatalf("after Advance committed %d, want %d (the leader holds only %d durably)", l.log.committed, first, first)
	}
	rd = l.Ready()
	if len(rd.Entries) != 1 || rd.Entries[0].Index != second {
		t.Fatalf("the next Ready writes %v, want the entry proposed during the last write", rd.Entries)
	}
}

// TestTakeMessagesClosesReadRound: a read that arrives after a round's
// heartbeats were taken starts a round of its own, so acknowledgements
// sent before it arrived cannot confirm it.
func TestTakeMessagesClosesReadRound(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	if err := l.ReadIndex([]byte("r1")); err != nil {
		t.Fatal(err)
	}
	beats := func(msgs []domain.Message) (n int) {
		for _, m := range msgs {
			if m.Type == domain.MsgHeartbeat {
				n++
			}
		}
		return n
	}
	if n := beats(l.TakeMessages()); n != 2 {
		t.Fatalf("read round 1: %d heartbeats, want 2", n)
	}
	if err := l.ReadIndex([]byte("r2")); err != nil {
		t.Fatal(err)
	}
	if n := beats(l.TakeMessages()); n != 2 {
		t.Fatalf("read after the round's heartbeats went out: %d heartbeats, want a round of its own", n)
	}
}

// TestAppliedTo: the applied point a driver reports bounds compaction and
// may not pass what was handed out to apply.
func TestAppliedTo(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"))
	nw.stabilize()
	st := l.Status()
	if err := l.Compact(st.Applied); err != nil {
		t.Fatalf("compact through applied %d: %v", st.Applied, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("AppliedTo past the handed-out entries did not panic")
			}
		}()
		l.AppliedTo(st.Commit + 1)
	}()
}

// TestTakeReadStatesWhileWriting: a read confirmed while the leader's
// write is under way is handed out at once, not with the next Ready.
func TestTakeReadStatesWhileWriting(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"))
	rd := l.Ready() // the write is under way
	if err := l.ReadIndex([]byte("r")); err != nil {
		t.Fatal(err)
	}
	var ctx []byte
	for _, m := range l.TakeMessages() {
		if m.Type == domain.MsgHeartbeat && m.To == 2 {
			ctx = m.Context
		}
	}
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 2, To: 1, Term: l.term, Context: ctx})
	rs := l.TakeReadStates()
	if len(rs) != 1 || string(rs[0].Context) != "r" {
		t.Fatalf("read states while writing: %v", rs)
	}
	l.Advance(rd)
	if rd := l.Ready(); len(rd.ReadStates) != 0 {
		t.Fatalf("read state handed out twice: %v", rd.ReadStates)
	}
}

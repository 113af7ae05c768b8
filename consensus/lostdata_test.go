package consensus

import "testing"

// TestLeaderReportsFollowerThatLostItsData: a follower whose log and vote
// were wiped and which comes back under its id (a binary that does not
// refuse an empty data dir) answers appends with a log shorter than what
// it acknowledged. The leader flags it in Status and keeps serving; the
// flag clears once the follower acknowledges up to its old match again.
func TestLeaderReportsFollowerThatLostItsData(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"), []byte("b"))
	nw.stabilize()
	match := l.Status().Progress[3].Match
	if match == 0 || l.Status().Progress[3].LostData {
		t.Fatalf("before the wipe: %+v", l.Status().Progress[3])
	}
	nw.crash(3)
	*nw.stores[3] = memStore{} // the disk is wiped
	nw.restart(3)
	l.Propose([]byte("c"))
	nw.stabilize()
	pr := l.Status().Progress[3]
	if !pr.LostData {
		t.Fatalf("the leader did not see node 3 lose its data: %+v", pr)
	}
	if l.Status().Progress[2].LostData {
		t.Fatal("node 2 flagged")
	}
	// Heartbeats probe it once each, without a loop, and it stays flagged.
	for range 3 {
		l.Tick()
		nw.stabilize()
	}
	if !l.Status().Progress[3].LostData {
		t.Fatal("the flag went away")
	}
	if st := l.Status(); st.Role != Leader || st.Commit < match+1 {
		t.Fatalf("the leader stopped committing: %+v", st)
	}
}

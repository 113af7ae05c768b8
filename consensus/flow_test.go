package consensus

import (
	"bytes"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func appsTo(msgs []domain.Message, to domain.NodeID) []domain.Message {
	var out []domain.Message
	for _, m := range msgs {
		if m.Type == domain.MsgApp && m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// TestFlowControlProbe: in Probe one append is in flight until it is
// answered or a heartbeat response arrives.
func TestFlowControlProbe(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	l.ReportUnreachable(2)
	if pr := l.prs[2]; pr.state != ProgressProbe || pr.probeSent {
		t.Fatalf("progress %+v after ReportUnreachable, want probe", *pr)
	}
	l.Propose([]byte("a"))
	l.Propose([]byte("b"))
	rd := readyOf(t, l)
	if got := appsTo(rd.Messages, 2); len(got) != 1 || len(got[0].Entries) != 1 {
		t.Fatalf("appends to the probed follower: %v, want one with one entry", got)
	}
	if got := appsTo(rd.Messages, 3); len(got) != 2 {
		t.Fatalf("appends to the replicating follower: %d, want 2", len(got))
	}
	// A heartbeat response unblocks the probe: the rest goes in one append.
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 2, To: 1, Term: l.term})
	rd = readyOf(t, l)
	if got := appsTo(rd.Messages, 2); len(got) != 1 || len(got[0].Entries) != 2 {
		t.Fatalf("after heartbeat response: %v, want one append with both entries", got)
	}
	// An acceptance moves it to Replicate.
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: l.log.lastIndex()})
	if pr := l.prs[2]; pr.state != ProgressReplicate || pr.match != l.log.lastIndex() {
		t.Fatalf("progress %+v, want replicate at the last index", *pr)
	}
	if st := l.Status().Progress[2]; st.State != ProgressReplicate || !st.RecentActive {
		t.Fatalf("status progress %+v", st)
	}
}

// TestFlowControlInflightMsgs: in Replicate at most MaxInflightMsgs
// appends are in flight; an acknowledgement frees room.
func TestFlowControlInflightMsgs(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightMsgs = 2 })
	l := nw.elect(1)
	for _, d := range []string{"a", "b", "c", "d"} {
		if _, _, err := l.Propose([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	rd := readyOf(t, l)
	apps := appsTo(rd.Messages, 2)
	if len(apps) != 2 {
		t.Fatalf("%d appends in flight, want 2", len(apps))
	}
	if st := l.Status().Progress[2]; st.Inflight != 2 || !l.prs[2].paused() {
		t.Fatalf("progress %+v, want 2 in flight and paused", st)
	}
	first := apps[0].Entries[len(apps[0].Entries)-1].Index
	mustStep(t, l, domain.Message{Type: domain.MsgAppResp, From: 2, To: 1, Term: l.term, Index: first})
	rd = readyOf(t, l)
	apps = appsTo(rd.Messages, 2)
	if len(apps) != 1 || len(apps[0].Entries) != 2 {
		t.Fatalf("after one ack: %v, want one append with the 2 remaining entries", apps)
	}
}

// TestFlowControlInflightBytes: the window also closes on bytes.
func TestFlowControlInflightBytes(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxInflightBytes = 100 })
	l := nw.elect(1)
	big := bytes.Repeat([]byte("x"), 80)
	for range 3 {
		l.Propose(big)
	}
	rd := readyOf(t, l)
	if apps := appsTo(rd.Messages, 2); len(apps) != 1 {
		t.Fatalf("%d appends, want 1 (104 bytes fill a 100-byte window)", len(apps))
	}
}

// TestMaxMsgBytes: an append carries at most MaxMsgBytes of entries, but
// at least one entry; the window is filled with several appends.
func TestMaxMsgBytes(t *testing.T) {
	nw := newNetwork(t, 3, func(c *Config) { c.MaxMsgBytes = 200 })
	l := nw.elect(1)
	d := bytes.Repeat([]byte("x"), 76) // Size 100
	l.Propose(d, d, d, d, d)
	rd := readyOf(t, l)
	var sizes []int
	for _, m := range appsTo(rd.Messages, 2) {
		sizes = append(sizes, len(m.Entries))
	}
	if len(sizes) != 3 || sizes[0] != 2 || sizes[1] != 2 || sizes[2] != 1 {
		t.Fatalf("entries per append %v, want [2 2 1]", sizes)
	}
	huge := bytes.Repeat([]byte("x"), 1000)
	l.Propose(huge)
	rd = readyOf(t, l)
	if apps := appsTo(rd.Messages, 2); len(apps) != 1 || len(apps[0].Entries) != 1 {
		t.Fatalf("oversized entry: %v, want one append with it", apps)
	}
}

// TestHeartbeatCommit: heartbeats carry min(commit, the follower's match).
func TestHeartbeatCommit(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	nw.isolate(3)
	l.Propose([]byte("a"))
	nw.stabilize()
	l.Tick()
	rd := readyOf(t, l)
	for _, m := range rd.Messages {
		if m.Type != domain.MsgHeartbeat {
			continue
		}
		want := l.log.committed
		if m.To == 3 {
			want = 1
		}
		if m.Commit != want {
			t.Fatalf("heartbeat to %d commit %d, want %d", m.To, m.Commit, want)
		}
	}
}

// TestSnapshotSendAndInstall: a follower whose next entry was compacted
// gets a MsgSnap (metadata only; the driver adds data), installs it and
// catches up.
func TestSnapshotSendAndInstall(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	nw.isolate(3)
	for range 5 {
		l.Propose([]byte("x"))
	}
	nw.stabilize()
	applied := l.log.applied
	if applied != 6 {
		t.Fatalf("applied %d, want 6", applied)
	}
	if err := l.Compact(applied); err != nil {
		t.Fatal(err)
	}
	if st := l.Status(); st.FirstIndex != 7 {
		t.Fatalf("first index %d after compaction, want 7", st.FirstIndex)
	}
	l.Propose([]byte("y"))
	nw.stabilize()

	var snaps []domain.Message
	var installed []Ready
	nw.drop = func(m domain.Message) bool {
		if m.Type == domain.MsgSnap {
			snaps = append(snaps, m)
		}
		return false
	}
	nw.onReady = func(id domain.NodeID, rd Ready) {
		if id == 3 && rd.Snapshot != nil {
			installed = append(installed, rd)
		}
	}
	nw.heal()
	l.Tick()
	nw.stabilize()
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots sent, want 1", len(snaps))
	}
	wantMeta := domain.SnapshotMeta{Index: 6, Term: l.term, Membership: domain.Membership{Voters: ids(3)}}
	if d := diffAny(domain.Snapshot{Meta: wantMeta}, *snaps[0].Snapshot); d != "" {
		t.Fatalf("snapshot sent (-want +got):\n%s", d)
	}
	if len(installed) != 1 {
		t.Fatalf("%d installs, want 1", len(installed))
	}
	rd := installed[0]
	if rd.Snapshot.Meta.Index != 6 || string(rd.Snapshot.Data) != "image" || !rd.MustSync {
		t.Fatalf("install ready %+v", rd)
	}
	if len(rd.MessagesAfterSync) != 1 || rd.MessagesAfterSync[0].Type != domain.MsgAppResp ||
		rd.MessagesAfterSync[0].Index != 6 || len(rd.Messages) != 0 {
		t.Fatalf("install answers: %v / %v, want MsgAppResp{Index: 6} after sync", rd.Messages, rd.MessagesAfterSync)
	}
	f := nw.node(3)
	if st := f.Status(); st.Commit != 7 || st.FirstIndex != 7 || st.LastIndex != 7 || st.Applied != 7 {
		t.Fatalf("follower after install: %+v", st)
	}
	if pr := l.prs[3]; pr.state != ProgressReplicate || pr.match != 7 {
		t.Fatalf("leader's progress of 3: %+v", *pr)
	}
}

// TestSnapshotStepByStep: a follower installs, fast-forwards, or refuses
// a stale snapshot.
func TestSnapshotStepByStep(t *testing.T) {
	m := domain.Membership{Voters: ids(3)}
	snap := &domain.Snapshot{Meta: domain.SnapshotMeta{Index: 10, Term: 2, Membership: m}, Data: []byte("img")}
	r, _ := New(testConfig(2, ids(3)), State{Vote: domain.Vote{Term: 2}, Entries: ents(1, 1, 1)})
	mustStep(t, r, domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: snap})
	diffReady(t, Ready{
		SoftState:         &SoftState{Lead: 1, Role: Follower},
		Snapshot:          snap,
		MustSync:          true,
		MessagesAfterSync: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 2, Index: 10}},
	}, readyOf(t, r))
	if st := r.Status(); st.Commit != 10 || st.Applied != 10 || st.FirstIndex != 11 || st.LastIndex != 10 {
		t.Fatalf("after install: %+v", st)
	}
	// Stale: at or below commit.
	old := &domain.Snapshot{Meta: domain.SnapshotMeta{Index: 8, Term: 2, Membership: m}}
	mustStep(t, r, domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: old})
	diffReady(t, Ready{
		Messages: []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 2, Index: 10}},
	}, readyOf(t, r))
	// The log already holds the snapshot's last entry: fast-forward.
	mustStep(t, r, domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 2, Index: 10, LogTerm: 2, Entries: ents(11, 2, 2), Commit: 10})
	readyOf(t, r)
	ff := &domain.Snapshot{Meta: domain.SnapshotMeta{Index: 12, Term: 2, Membership: m}}
	mustStep(t, r, domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Term: 2, Snapshot: ff})
	diffReady(t, Ready{
		Messages:         []domain.Message{{Type: domain.MsgAppResp, From: 2, To: 1, Term: 2, Index: 12}},
		CommittedEntries: ents(11, 2, 2),
	}, readyOf(t, r))
	if st := r.Status(); st.FirstIndex != 11 || st.LastIndex != 12 {
		t.Fatalf("fast-forward kept the log? %+v", st)
	}
}

// TestReportSnapshot: a failed snapshot makes the leader probe (and send
// another snapshot); a delivered one resumes from its index.
func TestReportSnapshot(t *testing.T) {
	nw := newNetwork(t, 3, nil)
	l := nw.elect(1)
	nw.isolate(3)
	l.Propose([]byte("x"))
	nw.stabilize()
	if err := l.Compact(l.log.applied); err != nil {
		t.Fatal(err)
	}
	// Force the leader to find 3 behind the compaction point.
	l.prs[3].becomeProbe()
	l.prs[3].next = 1
	l.sendAppend(3, true)
	if pr := l.prs[3]; pr.state != ProgressSnapshot || pr.pendingSnapshot != 2 {
		t.Fatalf("progress %+v, want snapshot at 2", *pr)
	}
	readyOf(t, l)
	l.Propose([]byte("y"))
	if rd := readyOf(t, l); len(appsTo(rd.Messages, 3)) != 0 {
		t.Fatal("appends sent while a snapshot is in flight")
	}
	l.ReportSnapshot(3, false)
	if pr := l.prs[3]; pr.state != ProgressProbe || pr.next != 2 || !pr.probeSent {
		t.Fatalf("after failure: %+v, want paused probe from match+1 = 2", *pr)
	}
	mustStep(t, l, domain.Message{Type: domain.MsgHeartbeatResp, From: 3, To: 1, Term: l.term})
	rd := readyOf(t, l)
	if len(rd.Messages) != 1 || rd.Messages[0].Type != domain.MsgSnap {
		t.Fatalf("after failure and heartbeat: %v, want a new snapshot", msgTypes(rd.Messages))
	}
	l.ReportSnapshot(3, true)
	if pr := l.prs[3]; pr.state != ProgressProbe || pr.next != 3 {
		t.Fatalf("after success: %+v, want probe from 3", *pr)
	}
}

func TestCompactErrors(t *testing.T) {
	nw := newNetwork(t, 1, nil)
	l := nw.elect(1)
	l.Propose([]byte("a"))
	nw.stabilize()
	if err := l.Compact(5); !errorsIs(err, domain.ErrUnavailable) {
		t.Fatalf("compact past applied: %v", err)
	}
	if err := l.Compact(2); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(1); !errorsIs(err, domain.ErrCompacted) {
		t.Fatalf("compact below: %v", err)
	}
	if _, err := l.Term(1); !errorsIs(err, domain.ErrCompacted) {
		t.Fatalf("term at 1: %v", err)
	}
	if tt, err := l.Term(2); err != nil || tt != l.term {
		t.Fatalf("term at compaction point: %d %v", tt, err)
	}
}

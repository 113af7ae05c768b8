package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// fakeNode is a one-node "cluster" that applies proposals at once to a
// memory state machine, and can be told to fail.
type fakeNode struct {
	mu       sync.Mutex
	kv       *memory.KV
	index    domain.Index
	leader   domain.NodeID
	proposes [][]int // the number of commands of each Propose call
	reads    int
	failNext error // the next Propose fails with it
}

func newFakeNode() *fakeNode { return &fakeNode{kv: memory.NewKV(), leader: 1} }

func (f *fakeNode) ID() domain.NodeID { return 1 }
func (f *fakeNode) Leader() domain.NodeID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}
func (f *fakeNode) Status() consensus.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := consensus.Follower
	if f.leader == 1 {
		role = consensus.Leader
	}
	return consensus.Status{ID: 1, Lead: f.leader, Role: role, Commit: f.index, Applied: f.index}
}
func (f *fakeNode) Propose(_ context.Context, cmds ...[]byte) ([]domain.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return nil, err
	}
	if f.leader != 1 {
		return nil, domain.ErrNotLeader
	}
	f.proposes = append(f.proposes, []int{len(cmds)})
	ents := make([]domain.Entry, len(cmds))
	for i, c := range cmds {
		f.index++
		ents[i] = domain.Entry{Index: f.index, Term: 1, Type: domain.EntryNormal, Data: c}
	}
	return f.kv.Apply(ents)
}
func (f *fakeNode) ReadIndex(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.leader == domain.None {
		return domain.ErrNoLeader
	}
	return nil
}
func (f *fakeNode) TransferLeadership(context.Context, domain.NodeID) error { return nil }

func req(kind ports.RequestKind, kv ...string) ports.Request {
	r := ports.Request{Kind: kind}
	switch kind {
	case ports.ReqSet, ports.ReqMSet:
		for i := 0; i < len(kv); i += 2 {
			r.Keys = append(r.Keys, []byte(kv[i]))
			r.Values = append(r.Values, []byte(kv[i+1]))
		}
	default:
		for _, k := range kv {
			r.Keys = append(r.Keys, []byte(k))
		}
	}
	return r
}

var (
	ok     = ports.Reply{Kind: ports.ReplyOK}
	null   = ports.Reply{Kind: ports.ReplyNil}
	bulk   = func(s string) ports.Reply { return ports.Reply{Kind: ports.ReplyBulk, Value: []byte(s)} }
	number = func(n int64) ports.Reply { return ports.Reply{Kind: ports.ReplyInt, Int: n} }
)

func newService(t *testing.T, n Node, kv ports.KVReader, cfg Config) *Service {
	t.Helper()
	if cfg.LeaderWait == 0 {
		cfg.LeaderWait = 100 * time.Millisecond
	}
	s, err := New(n, kv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// A batch runs in order, each request seeing those before it, with the
// writes between two reads of unwritten keys proposed together.
func TestBatchInOrderWithFewProposals(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	got := s.Do(ctx, []ports.Request{
		req(ports.ReqGet, "a"),                // read: ReadIndex
		req(ports.ReqSet, "a", "1"),           // group 1
		req(ports.ReqGet, "a"),                // from group 1
		req(ports.ReqMSet, "b", "2", "c", ""), // group 1
		req(ports.ReqMGet, "a", "b", "c"),     // from group 1
		req(ports.ReqDel, "a", "zz", "a"),     // group 1
		req(ports.ReqExists, "a", "b", "b"),   // from group 1
		req(ports.ReqGet, "untouched"),        // flush group 1, ReadIndex
		req(ports.ReqGet, "b"),                // same read run
		req(ports.ReqSet, "d", "4"),           // group 2
	}, ports.DoOptions{})
	want := []ports.Reply{
		null, ok, bulk("1"), ok,
		{Kind: ports.ReplyArray, Values: [][]byte{[]byte("1"), []byte("2"), {}}},
		number(1), number(2), null, bulk("2"), ok,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("replies (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{3}, {1}}, n.proposes); d != "" {
		t.Fatalf("proposals (-want +got):\n%s", d)
	}
	if n.reads != 2 {
		t.Fatalf("%d ReadIndex calls, want 2", n.reads)
	}
	// The state is what the batch left.
	got = s.Do(ctx, []ports.Request{req(ports.ReqMGet, "a", "b", "c", "d")}, ports.DoOptions{})
	want = []ports.Reply{{Kind: ports.ReplyArray, Values: [][]byte{nil, []byte("2"), {}, []byte("4")}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("state (-want +got):\n%s", d)
	}
}

// A 1000-command pipeline of SET and GET pairs is one proposal.
func TestPipelinedPairsAreOneProposal(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	var reqs []ports.Request
	for i := range 500 {
		reqs = append(reqs, req(ports.ReqSet, fmt.Sprint(i), fmt.Sprint(i*i)), req(ports.ReqGet, fmt.Sprint(i)))
	}
	got := s.Do(context.Background(), reqs, ports.DoOptions{})
	for i := range 500 {
		if d := cmp.Diff([]ports.Reply{ok, bulk(fmt.Sprint(i * i))}, got[2*i:2*i+2]); d != "" {
			t.Fatalf("pair %d (-want +got):\n%s", i, d)
		}
	}
	if len(n.proposes) != 1 || n.reads != 0 {
		t.Fatalf("proposals %v, reads %d: want one proposal and no ReadIndex", n.proposes, n.reads)
	}
}

// A write whose outcome is unknown is reported so, and what follows it in
// the batch is not run; nothing is retried.
func TestLeadershipLostIsReportedNotRetried(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	n.failNext = fmt.Errorf("node 1: %w", domain.ErrLeadershipLost)
	got := s.Do(context.Background(), []ports.Request{
		req(ports.ReqSet, "a", "1"), req(ports.ReqGet, "a"), req(ports.ReqGet, "other"), req(ports.ReqSet, "b", "2"),
	}, ports.DoOptions{})
	for i, r := range got[:2] {
		if r.Kind != ports.ReplyErr || !errors.Is(r.Err, domain.ErrLeadershipLost) {
			t.Errorf("reply %d = %+v, want ErrLeadershipLost", i, r)
		}
	}
	for i, r := range got[2:] {
		if r.Kind != ports.ReplyErr || !errors.Is(r.Err, errNotRun) {
			t.Errorf("reply %d = %+v, want not run", i+2, r)
		}
	}
	if len(n.proposes) != 0 {
		t.Fatalf("the batch was retried: proposals %v", n.proposes)
	}
}

// A proposal dropped before anything of the batch was appended (a leader
// transfer) is retried: nothing was written.
func TestDroppedProposalIsRetried(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	n.failNext = fmt.Errorf("transfer: %w", domain.ErrProposalDropped)
	got := s.Do(context.Background(), []ports.Request{req(ports.ReqSet, "a", "1")}, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{ok}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

// No leader: reads and writes wait LeaderWait, then ErrNoLeader.
func TestNoLeader(t *testing.T) {
	n := newFakeNode()
	n.leader = domain.None
	s := newService(t, n, n.kv, Config{LeaderWait: 50 * time.Millisecond})
	start := time.Now()
	got := s.Do(context.Background(), []ports.Request{req(ports.ReqSet, "a", "1"), req(ports.ReqGet, "a")}, ports.DoOptions{})
	for i, r := range got {
		if !errors.Is(r.Err, domain.ErrNoLeader) {
			t.Errorf("reply %d = %+v, want ErrNoLeader", i, r)
		}
	}
	got = s.Do(context.Background(), []ports.Request{req(ports.ReqGet, "a")}, ports.DoOptions{})
	if !errors.Is(got[0].Err, domain.ErrNoLeader) {
		t.Errorf("read = %+v, want ErrNoLeader", got[0])
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("took %v, want about 2*LeaderWait", d)
	}
}

// A follower in redirect mode, or asked by a relaying node, answers with
// the leader's address.
func TestRedirect(t *testing.T) {
	n := newFakeNode()
	n.leader = 2
	addrs := map[domain.NodeID]string{1: "h1:1", 2: "h2:2"}
	for _, c := range []struct {
		cfg  Config
		opts ports.DoOptions
	}{{Config{ClientAddrs: addrs, Redirect: true}, ports.DoOptions{}}, {Config{ClientAddrs: addrs}, ports.DoOptions{Relayed: true}}} {
		s := newService(t, n, n.kv, c.cfg)
		got := s.Do(context.Background(), []ports.Request{req(ports.ReqSet, "a", "1")}, c.opts)
		var re *ports.RedirectError
		if !errors.As(got[0].Err, &re) || re.Addr != "h2:2" || re.Leader != 2 {
			t.Fatalf("%+v: reply %+v, want a redirect to node 2 at h2:2", c, got[0])
		}
	}
}

// A huge pipeline of writes is cut into groups the core accepts.
func TestLargeBatchIsCutIntoGroups(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	var reqs []ports.Request
	for i := range 2*maxGroupCmds + 10 {
		reqs = append(reqs, req(ports.ReqSet, fmt.Sprint(i), "v"))
	}
	reqs = append(reqs, req(ports.ReqGet, "0"), req(ports.ReqGet, fmt.Sprint(2*maxGroupCmds+9)))
	got := s.Do(context.Background(), reqs, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{bulk("v"), bulk("v")}, got[len(got)-2:]); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{maxGroupCmds}, {maxGroupCmds}, {10}}, n.proposes); d != "" {
		t.Fatalf("proposals (-want +got):\n%s", d)
	}
}

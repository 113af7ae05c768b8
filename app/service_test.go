package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// readWait, if set, is how long ReadIndex takes (the node applying
	// up to the read index); backlog is its LargeBacklog.
	readWait time.Duration
	backlog  uint64
}

func (f *fakeNode) LargeBacklog() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backlog
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
func (f *fakeNode) ReadIndex(ctx context.Context) error {
	f.mu.Lock()
	f.reads++
	leader, wait := f.leader, f.readWait
	f.mu.Unlock()
	if leader == domain.None {
		return domain.ErrNoLeader
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (f *fakeNode) TransferLeadership(context.Context, domain.NodeID) error { return nil }

// req returns the request for one command, in database 0.
func req(args ...string) ports.Request {
	call := domain.Call{}
	for _, a := range args {
		call.Args = append(call.Args, []byte(a))
	}
	return ports.Request{Call: call}
}

func value(r domain.Reply) ports.Reply { return ports.Reply{Value: r} }

var (
	ok     = value(domain.OK)
	null   = value(domain.NilReply)
	bulk   = func(s string) ports.Reply { return value(domain.StringReply(s)) }
	number = func(n int64) ports.Reply { return value(domain.IntReply(n)) }
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

// A batch runs in order, each request seeing those before it: reads before
// the first write after one ReadIndex, everything from the first write to
// the last in one proposal, and reads after the last write locally.
func TestBatchInOrderWithFewProposals(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	got := s.Do(ctx, []ports.Request{
		req("GET", "a"),                // read: ReadIndex
		req("SET", "a", "1"),           // proposed
		req("GET", "a"),                // proposed
		req("MSET", "b", "2", "c", ""), // proposed
		req("MGET", "a", "b", "c"),     // proposed
		req("DEL", "a", "zz", "a"),     // proposed
		req("EXISTS", "a", "b", "b"),   // proposed
		req("GET", "untouched"),        // proposed
		req("INCR", "d"),               // proposed (the last write)
		req("GET", "b"),                // local
		req("get", "d"),                // local
	}, ports.DoOptions{})
	want := []ports.Reply{
		null, ok, bulk("1"), ok,
		value(domain.ArrayReply(domain.StringReply("1"), domain.StringReply("2"), domain.StringReply(""))),
		number(1), number(2), null, number(1), bulk("2"), bulk("1"),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("replies (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{8}}, n.proposes); d != "" {
		t.Fatalf("proposals (-want +got):\n%s", d)
	}
	if n.reads != 1 {
		t.Fatalf("%d ReadIndex calls, want 1", n.reads)
	}
	// The state is what the batch left.
	got = s.Do(ctx, []ports.Request{req("MGET", "a", "b", "c", "d")}, ports.DoOptions{})
	want = []ports.Reply{value(domain.ArrayReply(domain.NilReply, domain.StringReply("2"), domain.StringReply(""), domain.StringReply("1")))}
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
		reqs = append(reqs, req("SET", fmt.Sprint(i), fmt.Sprint(i*i)), req("GET", fmt.Sprint(i)))
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

// Entries carry the leader's time: a key set with PX expires by the
// stamps of later entries, and reads see it gone once the clock passes.
func TestExpiryUsesStampedTime(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	got := s.Do(ctx, []ports.Request{req("SET", "k", "v", "PX", "40"), req("PTTL", "k")}, ports.DoOptions{})
	if got[1].Value.Kind != domain.ReplyInt || got[1].Value.Int <= 0 || got[1].Value.Int > 40 {
		t.Fatalf("PTTL right after SET PX 40 = %v", got[1])
	}
	time.Sleep(60 * time.Millisecond)
	got = s.Do(ctx, []ports.Request{req("GET", "k"), req("SET", "k", "w", "XX"), req("EXISTS", "k")}, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{null, null, number(0)}, got); d != "" {
		t.Fatalf("after the deadline (-want +got):\n%s", d)
	}
}

// A transaction is one entry; a watched key written since aborts it.
func TestTransactionIsOneEntry(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	tx := ports.Request{IsTx: true, Tx: []domain.Call{req("SET", "a", "1").Call, req("INCRBY", "a", "5").Call}}
	got := s.Do(ctx, []ports.Request{tx}, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{value(domain.ArrayReply(domain.OK, domain.IntReply(6)))}, got); d != "" {
		t.Fatalf("EXEC (-want +got):\n%s", d)
	}
	v, err := s.Versions(ctx, 0, [][]byte{[]byte("a"), []byte("none")})
	if err != nil || v[0] == 0 || v[1] != 0 {
		t.Fatalf("Versions = %v, %v", v, err)
	}
	s.Do(ctx, []ports.Request{req("SET", "a", "7")}, ports.DoOptions{})
	tx.Watch = []domain.Watch{{Key: []byte("a"), Version: v[0]}}
	got = s.Do(ctx, []ports.Request{tx, req("GET", "a")}, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{value(domain.Reply{Kind: domain.ReplyNilArray}), bulk("7")}, got); d != "" {
		t.Fatalf("EXEC after a watched key changed (-want +got):\n%s", d)
	}
}

// A write whose outcome is unknown is reported so, and what follows it in
// the batch is not run; nothing is retried.
func TestLeadershipLostIsReportedNotRetried(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	n.failNext = fmt.Errorf("node 1: %w", domain.ErrLeadershipLost)
	got := s.Do(context.Background(), []ports.Request{
		req("SET", "a", "1"), req("GET", "a"), req("GET", "other"), req("SET", "b", "2"), req("GET", "b"),
	}, ports.DoOptions{})
	// The four requests from the first write to the last were proposed
	// together: all are unknown.
	for i, r := range got[:4] {
		if !errors.Is(r.Err, domain.ErrLeadershipLost) {
			t.Errorf("reply %d = %+v, want ErrLeadershipLost", i, r)
		}
	}
	if r := got[4]; !errors.Is(r.Err, errNotRun) {
		t.Errorf("reply 4 = %+v, want not run", r)
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
	got := s.Do(context.Background(), []ports.Request{req("SET", "a", "1")}, ports.DoOptions{})
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
	got := s.Do(context.Background(), []ports.Request{req("SET", "a", "1"), req("GET", "a")}, ports.DoOptions{})
	for i, r := range got {
		if !errors.Is(r.Err, domain.ErrNoLeader) {
			t.Errorf("reply %d = %+v, want ErrNoLeader", i, r)
		}
	}
	got = s.Do(context.Background(), []ports.Request{req("GET", "a")}, ports.DoOptions{})
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
		got := s.Do(context.Background(), []ports.Request{req("SET", "a", "1")}, c.opts)
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
		reqs = append(reqs, req("SET", fmt.Sprint(i), "v"))
	}
	reqs = append(reqs, req("GET", "0"), req("GET", fmt.Sprint(2*maxGroupCmds+9)))
	got := s.Do(context.Background(), reqs, ports.DoOptions{})
	if d := cmp.Diff([]ports.Reply{bulk("v"), bulk("v")}, got[len(got)-2:]); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]int{{maxGroupCmds}, {maxGroupCmds}, {10}}, n.proposes); d != "" {
		t.Fatalf("proposals (-want +got):\n%s", d)
	}
}

// The leader's reaper deletes expired keys from the state (reads hid them
// already), and leaves alone a key rewritten without a deadline.
func TestReaperDeletesExpiredKeys(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{ExpiryInterval: 10 * time.Millisecond, ExpirySample: 7})
	ctx := context.Background()
	var reqs []ports.Request
	for i := range 50 {
		reqs = append(reqs, req("SET", fmt.Sprint("k", i), "v", "PX", "30"))
	}
	reqs = append(reqs, req("SET", "keep", "v", "PX", "30"), req("SET", "forever", "v"))
	s.Do(ctx, reqs, ports.DoOptions{})
	s.Do(ctx, []ports.Request{req("SET", "keep", "w")}, ports.DoOptions{})
	deadline := time.Now().Add(5 * time.Second)
	for n.kv.Len() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d keys left, want 2 (keep and forever)", n.kv.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := s.Do(ctx, []ports.Request{req("MGET", "keep", "forever", "k1")}, ports.DoOptions{})
	want := value(domain.ArrayReply(domain.StringReply("w"), domain.StringReply("v"), domain.NilReply))
	if d := cmp.Diff([]ports.Reply{want}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

// Many expired keys are reaped in repeated rounds, not one sample per tick.
func TestReaperRepeatsWhileMuchHasExpired(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{ExpiryInterval: 300 * time.Millisecond, ExpirySample: 20})
	var reqs []ports.Request
	for i := range 400 {
		reqs = append(reqs, req("SET", fmt.Sprint("k", i), "v", "PX", "1"))
	}
	s.Do(context.Background(), reqs, ports.DoOptions{})
	// One sample per tick would take 20 ticks (6 s); repeated rounds, 2.
	deadline := time.Now().Add(3 * time.Second)
	for n.kv.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 400 expired keys left after 3s", n.kv.Len())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blinkingNode leads with followers that CheckQuorum has just marked
// inactive: node 2 answers again from the fourth Status on.
type blinkingNode struct {
	*fakeNode
	calls       atomic.Int32
	transferred atomic.Uint64
}

func (b *blinkingNode) Status() consensus.Status {
	active := b.calls.Add(1) > 3
	return consensus.Status{ID: 1, Lead: b.Leader(), Role: consensus.Leader,
		Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}},
		Progress: map[domain.NodeID]consensus.Progress{
			1: {Match: 9, RecentActive: true}, 2: {Match: 9, RecentActive: active}, 3: {Match: 7},
		}}
}

func (b *blinkingNode) TransferLeadership(_ context.Context, to domain.NodeID) error {
	b.transferred.Store(uint64(to))
	b.fakeNode.mu.Lock()
	b.fakeNode.leader = to
	b.fakeNode.mu.Unlock()
	return nil
}

// TestHandOverWaitsForAnActiveFollower: a SIGTERM that falls just after
// CheckQuorum cleared the followers' activity still hands over, to the
// follower that answers, instead of leaving the cluster to an election.
func TestHandOverWaitsForAnActiveFollower(t *testing.T) {
	kv := memory.NewKV()
	n := &blinkingNode{fakeNode: &fakeNode{kv: kv, leader: 1}}
	s := newService(t, n, kv, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.HandOver(ctx); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	if got := n.transferred.Load(); got != 2 {
		t.Fatalf("transferred to %d, want 2 (the active follower)", got)
	}
}

// A read waits for this node to apply through the read index: behind a
// large entry that takes longer than the barrier's base bound, and the
// bound grows with the node's large backlog, as a write's does.
func TestReadWaitsForALargeBacklog(t *testing.T) {
	for _, c := range []struct {
		name    string
		backlog uint64
		wantErr error
	}{
		{"no backlog: cut at the barrier's bound", 0, domain.ErrNoLeader},
		{"2 MiB of backlog: waits for it", 2 << 20, nil},
	} {
		n := newFakeNode()
		n.readWait, n.backlog = 300*time.Millisecond, c.backlog
		s := newService(t, n, n.kv, Config{LeaderWait: 50 * time.Millisecond})
		got := s.Do(context.Background(), []ports.Request{req("GET", "a")}, ports.DoOptions{})
		if !errors.Is(got[0].Err, c.wantErr) {
			t.Errorf("%s: read = %+v, want error %v", c.name, got[0], c.wantErr)
		}
	}
}

package node_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// countingLog counts Syncs and Appends, can make Sync as slow as a disk's
// fsync, and can make it fail.
type countingLog struct {
	ports.LogStore
	syncs, appends atomic.Int64
	syncDelay      atomic.Int64 // nanoseconds
	failSync       atomic.Bool
}

func (l *countingLog) Append(ents []domain.Entry) error {
	l.appends.Add(1)
	return l.LogStore.Append(ents)
}

var errDisk = errors.New("test: disk on fire")

func (l *countingLog) Sync() error {
	if l.failSync.Load() {
		return errDisk
	}
	l.syncs.Add(1)
	if d := l.syncDelay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	return l.LogStore.Sync()
}

type testNode struct {
	*node.Node
	log *countingLog
	kv  *memory.KV
}

type testCluster struct {
	net   *memory.Network
	nodes []*testNode
}

// startCluster starts n nodes over memory stores and one network.
func startCluster(tb testing.TB, n int, tick time.Duration) *testCluster {
	tb.Helper()
	c := &testCluster{net: memory.NewNetwork(memory.NetworkOptions{Seed: 1})}
	peers := make([]domain.NodeID, n)
	for i := range peers {
		peers[i] = domain.NodeID(i + 1)
	}
	for i := range n {
		id := domain.NodeID(i + 1)
		tn := &testNode{log: &countingLog{LogStore: memory.NewLogStore()}, kv: memory.NewKV()}
		logger := zerolog.Nop()
		if os.Getenv("SESHAT_TEST_LOG") != "" {
			logger = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.InfoLevel).With().Timestamp().Logger()
		}
		nd, err := node.Start(node.Config{
			DriverConfig: node.DriverConfig{
				Logger: &logger,
				Raft:   consensus.Config{ID: id, Peers: peers, Rand: rand.New(rand.NewPCG(1, uint64(id)))},
			},
			Log:          tn.log,
			Vote:         memory.NewVoteStore(),
			StateMachine: tn.kv,
			Transport:    c.net.Endpoint(id),
			TickInterval: tick,
		})
		if err != nil {
			tb.Fatalf("start node %d: %v", id, err)
		}
		tn.Node = nd
		c.nodes = append(c.nodes, tn)
	}
	tb.Cleanup(func() {
		for _, tn := range c.nodes {
			tn.Stop()
		}
		c.net.Close()
	})
	return c
}

// leader waits for a leader and returns it.
func (c *testCluster) leader(tb testing.TB) *testNode {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, tn := range c.nodes {
			if tn.Status().Role == consensus.Leader {
				return tn
			}
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatal("no leader elected")
	return nil
}

func set(key, value string) []byte {
	return domain.EncodeCommand(domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: []byte(key), Value: []byte(value)}}})
}

func del(key string) []byte {
	return domain.EncodeCommand(domain.Command{Ops: []domain.Op{{Kind: domain.OpDel, Key: []byte(key)}}})
}

func TestGroupCommit(t *testing.T) {
	c := startCluster(t, 3, 5*time.Millisecond)
	l := c.leader(t)
	// A sync as slow as a fast disk's fsync: proposals arriving meanwhile
	// must share the next one.
	for _, tn := range c.nodes {
		tn.log.syncDelay.Store(int64(500 * time.Microsecond))
	}
	before, appendsBefore := l.log.syncs.Load(), l.log.appends.Load()
	const proposals = 500
	var wg sync.WaitGroup
	errs := make([]error, proposals)
	for i := range proposals {
		wg.Go(func() {
			_, errs[i] = l.Propose(context.Background(), set(fmt.Sprintf("k%d", i), "v"))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	syncs := l.log.syncs.Load() - before
	t.Logf("%d proposals, %d leader syncs, %d appends", proposals, syncs, l.log.appends.Load()-appendsBefore)
	if syncs >= proposals/2 {
		t.Fatalf("%d concurrent proposals took %d syncs: no group commit", proposals, syncs)
	}
	for i := range proposals {
		if _, err := l.kv.Get([]byte(fmt.Sprintf("k%d", i))); err != nil {
			t.Fatalf("k%d: %v", i, err)
		}
	}
}

func TestResultsInOrder(t *testing.T) {
	c := startCluster(t, 1, time.Millisecond)
	l := c.leader(t)
	res, err := l.Propose(context.Background(), set("a", "1"), del("a"), del("a"), set("b", "2"), del("b"))
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range res {
		got = append(got, r.N)
	}
	if want := []int64{1, 1, 0, 1, 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("results N = %v, want %v", got, want)
	}
	// Concurrent callers each get their own results, in their order.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			k := fmt.Sprintf("c%d", i)
			res, err := l.Propose(context.Background(), del(k), set(k, "x"), del(k))
			if err != nil {
				t.Error(err)
				return
			}
			if len(res) != 3 || res[0].N != 0 || res[1].N != 1 || res[2].N != 1 {
				t.Errorf("%s: results %+v, want N 0, 1, 1", k, res)
			}
		})
	}
	wg.Wait()
}

func TestNotLeaderNamesLeader(t *testing.T) {
	c := startCluster(t, 3, 2*time.Millisecond)
	l := c.leader(t)
	for _, tn := range c.nodes {
		if tn == l {
			continue
		}
		deadline := time.Now().Add(time.Second)
		for tn.Leader() != l.ID() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		_, err := tn.Propose(context.Background(), set("a", "b"))
		if !errors.Is(err, domain.ErrNotLeader) {
			t.Fatalf("follower %d: Propose error %v, want ErrNotLeader", tn.ID(), err)
		}
		if tn.Leader() != l.ID() {
			t.Fatalf("follower %d: Leader() = %d, want %d", tn.ID(), tn.Leader(), l.ID())
		}
		// A follower serves linearizable reads through the leader.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := tn.ReadIndex(ctx); err != nil {
			t.Fatalf("follower %d: ReadIndex: %v", tn.ID(), err)
		}
		cancel()
	}
}

func TestStopFailsWaiters(t *testing.T) {
	// Ticks long enough that the cut-off leader does not step down (check
	// quorum) before Stop.
	c := startCluster(t, 3, 20*time.Millisecond)
	l := c.leader(t)
	if _, err := l.Propose(context.Background(), set("a", "1")); err != nil {
		t.Fatal(err)
	}
	c.net.Disconnect(l.ID())
	errc := make(chan error, 2)
	go func() {
		_, err := l.Propose(context.Background(), set("b", "2"))
		errc <- err
	}()
	go func() { errc <- l.ReadIndex(context.Background()) }()
	time.Sleep(30 * time.Millisecond)
	if err := l.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, domain.ErrStopped) {
				t.Fatalf("waiter got %v, want ErrStopped", err)
			}
		case <-time.After(time.Second):
			t.Fatal("a waiter still hangs after Stop")
		}
	}
	// After Stop nothing hangs.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := l.Propose(ctx, set("c", "3")); !errors.Is(err, domain.ErrStopped) {
		t.Fatalf("Propose after Stop: %v", err)
	}
	if err := l.ReadIndex(ctx); !errors.Is(err, domain.ErrStopped) {
		t.Fatalf("ReadIndex after Stop: %v", err)
	}
	if err := l.TransferLeadership(ctx, 2); !errors.Is(err, domain.ErrStopped) {
		t.Fatalf("TransferLeadership after Stop: %v", err)
	}
	if err := l.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	_ = l.Status()
}

func TestStorageErrorStopsNode(t *testing.T) {
	c := startCluster(t, 1, time.Millisecond)
	l := c.leader(t)
	if _, err := l.Propose(context.Background(), set("a", "1")); err != nil {
		t.Fatal(err)
	}
	l.log.failSync.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := l.Propose(ctx, set("b", "2"))
	if !errors.Is(err, domain.ErrStopped) || !errors.Is(err, errDisk) {
		t.Fatalf("Propose with a failing sync: %v, want ErrStopped wrapping the disk error", err)
	}
	select {
	case <-l.Done():
	case <-time.After(time.Second):
		t.Fatal("node still runs after a storage failure")
	}
	if !errors.Is(l.Err(), errDisk) {
		t.Fatalf("Err() = %v", l.Err())
	}
	// The entry that was never synced was never applied.
	if _, err := l.kv.Get([]byte("b")); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unsynced write applied: %v", err)
	}
	if err := l.Stop(); !errors.Is(err, errDisk) {
		t.Fatalf("Stop() = %v, want the disk error", err)
	}
}

func TestProposeHonoursContext(t *testing.T) {
	c := startCluster(t, 3, 20*time.Millisecond)
	l := c.leader(t)
	c.net.Disconnect(l.ID())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Propose(ctx, set("x", "y"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Propose on a cut-off leader: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Propose returned %v after its deadline", d)
	}
}

func TestProposeMembership(t *testing.T) {
	c := startCluster(t, 3, 2*time.Millisecond)
	// Node 4 starts with no membership: it waits for a leader to call.
	kv4 := memory.NewKV()
	n4, err := node.Start(node.Config{
		DriverConfig: node.DriverConfig{Raft: consensus.Config{ID: 4, Rand: rand.New(rand.NewPCG(1, 4))}},
		Log:          memory.NewLogStore(),
		Vote:         memory.NewVoteStore(),
		StateMachine: kv4,
		Transport:    c.net.Endpoint(4),
		TickInterval: 2 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n4.Stop() })
	l := c.leader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := l.Propose(ctx, set("before", "1")); err != nil {
		t.Fatal(err)
	}
	if err := l.ProposeMembership(ctx, domain.Membership{Voters: []domain.NodeID{1, 2, 3}, Learners: []domain.NodeID{4}}); err != nil {
		t.Fatalf("add learner: %v", err)
	}
	if err := l.ProposeMembership(ctx, domain.Membership{Voters: []domain.NodeID{1, 2, 3, 4}}); err != nil {
		t.Fatalf("promote: %v", err)
	}
	if _, err := l.Propose(ctx, set("after", "2")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"before", "after"} {
		for {
			if _, err := kv4.Get([]byte(key)); err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("node 4 never applied %q", key)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if m := l.Status().Membership; len(m.Voters) != 4 {
		t.Fatalf("membership %+v, want 4 voters", m)
	}
}

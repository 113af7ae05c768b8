// Package cluster runs Raft clusters in process: N nodes started with
// node.Start over the storage StorageEnv picks and one memory.Network with
// switchable faults. Its tests check what the Raft paper says must hold,
// scenario by scenario (they follow the list of MIT 6.824's Raft lab).
//
// Every applied entry of every node is recorded: two nodes applying
// different entries at one index, or a node skipping an index, fails the
// test. Writes are sets of unique keys, so a write acknowledged to a client
// can be looked up at the end on every node.
//
// A test's random choices, the network's faults and the cores' election
// jitter come from one seed, logged when the test fails and set with
// -seed=N or SESHAT_TEST_SEED=N. Goroutine scheduling and the wall clock
// still vary, so a seed makes a failure likely to recur, not certain.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the cluster tests (0: from SESHAT_TEST_SEED, else random)")

// Timing of every test cluster. The election timeout is randomized in
// [ElectionTicks, 2*ElectionTicks) ticks.
const (
	tickInterval  = 5 * time.Millisecond
	electionTicks = 10
	// electionTimeout is comfortably more than the longest randomized
	// election timeout, like the lab's RaftElectionTimeout.
	electionTimeout = 3 * electionTicks * tickInterval
)

// Options shapes a cluster.
type Options struct {
	// N is the number of nodes (ids 1..N). Default 3.
	N int
	// Unreliable drops, delays and duplicates messages (SetUnreliable).
	Unreliable bool
	// SnapshotEntries and TrailingEntries configure compaction; zero means
	// no compaction during the test.
	SnapshotEntries, TrailingEntries uint64
	// Transport, if set, wraps node i's transport (to inject faults the
	// network has no switch for).
	Transport func(i int, t ports.Transport) ports.Transport
	// DiskFull, if set, is node i's node.Config.DiskFull.
	DiskFull func(i int) bool
	// Raft, if set, edits node i's consensus.Config (read mode, ...).
	Raft func(i int, c *consensus.Config)
	// TickInterval, if set, is node i's tick interval (clocks that drift
	// apart); default tickInterval.
	TickInterval func(i int) time.Duration
}

// Cluster is an in-process cluster. Its methods are called from the test
// goroutine, except Propose-like ones and accessors, which client
// goroutines may call too.
type Cluster struct {
	t       *testing.T
	seed    uint64
	n       int
	opts    Options
	net     *memory.Network
	storage Storage
	logger  zerolog.Logger
	rng     *rand.Rand // test goroutine only

	mu struct {
		sync.Mutex
		nodes     []*node.Node // nil while crashed
		stores    []NodeStorage
		recs      []*recorder
		connected []bool
		restarts  []uint64
		restores  []int         // snapshots installed, by node, over restarts
		crashVote []domain.Vote // term and vote when it last crashed
		// applied is every entry any node applied, by index; byData finds
		// where a command was applied first.
		applied    map[domain.Index]domain.Entry
		byData     map[string]domain.Index
		violations []string
		acked      map[string]string
		nextKey    uint64
		lastLeader int
	}
}

// testSeed returns the seed from -seed, SESHAT_TEST_SEED or the clock.
func testSeed(t testing.TB) uint64 {
	if *seedFlag != 0 {
		return *seedFlag
	}
	if s := os.Getenv("SESHAT_TEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SESHAT_TEST_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// New starts a cluster of opts.N nodes and stops it when the test ends.
func New(t *testing.T, opts Options) *Cluster {
	t.Helper()
	if opts.N == 0 {
		opts.N = 3
	}
	seed := testSeed(t)
	c := &Cluster{t: t, seed: seed, n: opts.N, opts: opts, storage: storageFromEnv(t)}
	c.rng = rand.New(rand.NewPCG(seed, 1))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed=%d storage=%s: reproduce with SESHAT_TEST_SEED=%d go test ./test/cluster -run '^%s$'",
				seed, c.storage.Name(), seed, t.Name())
		}
	})
	c.logger = zerolog.Nop()
	if lvl := os.Getenv("SESHAT_TEST_LOG"); lvl != "" {
		l, err := zerolog.ParseLevel(lvl)
		if err != nil {
			t.Fatalf("SESHAT_TEST_LOG=%q: %v", lvl, err)
		}
		c.logger = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(l).With().Timestamp().Str("test", t.Name()).Logger()
	}
	c.net = memory.NewNetwork(memory.NetworkOptions{Seed: seed})
	c.mu.nodes = make([]*node.Node, c.n)
	c.mu.stores = make([]NodeStorage, c.n)
	c.mu.recs = make([]*recorder, c.n)
	c.mu.connected = make([]bool, c.n)
	c.mu.restarts = make([]uint64, c.n)
	c.mu.restores = make([]int, c.n)
	c.mu.crashVote = make([]domain.Vote, c.n)
	c.mu.applied = map[domain.Index]domain.Entry{}
	c.mu.byData = map[string]domain.Index{}
	c.mu.acked = map[string]string{}
	t.Cleanup(c.shutdown)
	for i := range c.n {
		c.mu.stores[i] = c.storage.Open(t, c.id(i))
		c.mu.connected[i] = true
	}
	if opts.Unreliable {
		c.SetUnreliable(true)
	}
	for i := range c.n {
		c.start(i)
	}
	return c
}

func (c *Cluster) id(i int) domain.NodeID { return domain.NodeID(i + 1) }

// Seed returns the test's seed.
func (c *Cluster) Seed() uint64 { return c.seed }

// Rand returns the test's random source (test goroutine only).
func (c *Cluster) Rand() *rand.Rand { return c.rng }

// N returns the number of nodes.
func (c *Cluster) N() int { return c.n }

func (c *Cluster) start(i int) {
	c.t.Helper()
	c.mu.Lock()
	st := c.mu.stores[i]
	restarts := c.mu.restarts[i]
	c.mu.Unlock()
	peers := make([]domain.NodeID, c.n)
	for j := range peers {
		peers[j] = c.id(j)
	}
	rec := newRecorder(c, i, st.KV())
	logger := c.logger
	var tr ports.Transport = c.net.Endpoint(c.id(i))
	if c.opts.Transport != nil {
		tr = c.opts.Transport(i, tr)
	}
	rc := consensus.Config{
		ID:             c.id(i),
		Peers:          peers,
		ElectionTicks:  electionTicks,
		HeartbeatTicks: 1,
		Rand:           rand.New(rand.NewPCG(c.seed, uint64(i)<<32|restarts)),
	}
	if c.opts.Raft != nil {
		c.opts.Raft(i, &rc)
	}
	tick := tickInterval
	if c.opts.TickInterval != nil {
		tick = c.opts.TickInterval(i)
	}
	n, err := node.Start(node.Config{
		DriverConfig: node.DriverConfig{
			Raft:            rc,
			SnapshotEntries: c.snapshotEntries(),
			TrailingEntries: c.opts.TrailingEntries,
			Logger:          &logger,
		},
		Log:          st.Log(),
		Vote:         st.Vote(),
		StateMachine: rec,
		Transport:    tr,
		TickInterval: tick,
		DiskFull:     c.diskFull(i),
	})
	if err != nil {
		c.t.Fatalf("start node %d: %v", c.id(i), err)
	}
	c.mu.Lock()
	c.mu.nodes[i] = n
	c.mu.recs[i] = rec
	c.mu.Unlock()
}

func (c *Cluster) snapshotEntries() uint64 {
	if c.opts.SnapshotEntries == 0 {
		return 1 << 40
	}
	return c.opts.SnapshotEntries
}

func (c *Cluster) diskFull(i int) func() bool {
	if c.opts.DiskFull == nil {
		return nil
	}
	return func() bool { return c.opts.DiskFull(i) }
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	nodes := append([]*node.Node(nil), c.mu.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		if n != nil {
			n.Stop()
		}
	}
	c.net.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.mu.stores {
		st.Close()
	}
	for _, v := range c.mu.violations {
		c.t.Errorf("safety violation: %s", v)
	}
}

// Node returns node i (0-based), or nil while it is crashed.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.nodes[i]
}

// KV returns node i's state machine.
func (c *Cluster) KV(i int) KV {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.recs[i].kv
}

// Connected reports whether node i is connected.
func (c *Cluster) Connected(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.connected[i]
}

// Disconnect cuts node i off from every other node.
func (c *Cluster) Disconnect(i int) {
	c.mu.Lock()
	c.mu.connected[i] = false
	c.mu.Unlock()
	c.net.Disconnect(c.id(i))
}

// Reconnect undoes Disconnect.
func (c *Cluster) Reconnect(i int) {
	c.mu.Lock()
	c.mu.connected[i] = true
	c.mu.Unlock()
	c.net.Reconnect(c.id(i))
}

// Partition splits the nodes into groups (0-based indexes); nodes in no
// group are cut off. Heal undoes it.
func (c *Cluster) Partition(groups ...[]int) {
	var gs [][]domain.NodeID
	for _, g := range groups {
		var ids []domain.NodeID
		for _, i := range g {
			ids = append(ids, c.id(i))
		}
		gs = append(gs, ids)
	}
	c.net.Partition(gs...)
}

// Heal reconnects every node and lifts any partition.
func (c *Cluster) Heal() {
	c.mu.Lock()
	for i := range c.mu.connected {
		c.mu.connected[i] = true
	}
	c.mu.Unlock()
	c.net.Heal()
}

// SetUnreliable switches random drops (10%), duplicates (5%) and delays
// (up to 2 ticks, which reorders) on or off.
func (c *Cluster) SetUnreliable(on bool) {
	if on {
		c.net.SetDropRate(0.1)
		c.net.SetDuplicateRate(0.05)
		c.net.SetDelay(0, 2*tickInterval)
		return
	}
	c.net.SetDropRate(0)
	c.net.SetDuplicateRate(0)
	c.net.SetDelay(0, 0)
}

// SetLongReordering delays messages by up to an election timeout.
func (c *Cluster) SetLongReordering() {
	c.net.SetDelay(0, electionTimeout)
}

// Crash stops node i and loses whatever its stores had not synced.
func (c *Cluster) Crash(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.mu.nodes[i]
	c.mu.nodes[i] = nil
	st := c.mu.stores[i]
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.Stop()
	c.net.Endpoint(c.id(i)).Close() // messages in flight to it are lost
	st.Crash(c.t)
	s := n.Status()
	c.mu.Lock()
	c.mu.crashVote[i] = domain.Vote{Term: s.Term, VotedFor: s.Vote}
	c.mu.Unlock()
}

// Restart starts a crashed node again from what its stores kept.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.mu.Lock()
	alive := c.mu.nodes[i] != nil
	c.mu.restarts[i]++
	c.mu.Unlock()
	if alive {
		c.Crash(i)
	}
	c.start(i)
	// The term and vote must survive the crash (a node must never vote
	// twice in a term).
	c.mu.Lock()
	before := c.mu.crashVote[i]
	c.mu.Unlock()
	s := c.Node(i).Status()
	if s.Term < before.Term || (s.Term == before.Term && before.VotedFor != domain.None && s.Vote != before.VotedFor) {
		c.violation("node %d restarted in term %d with vote %d; before its crash: term %d, vote %d", c.id(i), s.Term, s.Vote, before.Term, before.VotedFor)
	}
}

// Alive reports whether node i runs.
func (c *Cluster) Alive(i int) bool { return c.Node(i) != nil }

// leaders returns, by term, the live connected nodes that think they lead.
func (c *Cluster) leaders() map[domain.Term][]int {
	out := map[domain.Term][]int{}
	for i := range c.n {
		n := c.Node(i)
		if n == nil || !c.Connected(i) {
			continue
		}
		if s := n.Status(); s.Role == consensus.Leader {
			out[s.Term] = append(out[s.Term], i)
		}
	}
	return out
}

// Leader waits until the live connected nodes have a leader and returns
// it (0-based); two leaders in one term fail the test.
func (c *Cluster) Leader(t testing.TB) int {
	t.Helper()
	deadline := time.Now().Add(20 * electionTimeout)
	for time.Now().Before(deadline) {
		time.Sleep(tickInterval)
		ls := c.leaders()
		var last domain.Term
		for term, ids := range ls {
			if len(ids) > 1 {
				t.Fatalf("term %d has %d leaders: %v", term, len(ids), ids)
			}
			last = max(last, term)
		}
		if len(ls) > 0 {
			l := ls[last][0]
			c.mu.Lock()
			c.mu.lastLeader = l
			c.mu.Unlock()
			return l
		}
	}
	t.Fatalf("no leader elected within %v", 20*electionTimeout)
	return -1
}

// NoLeader fails the test if a live connected node is leader.
func (c *Cluster) NoLeader(t testing.TB) {
	t.Helper()
	if ls := c.leaders(); len(ls) > 0 {
		t.Fatalf("expected no leader among connected nodes, got %v", ls)
	}
}

// Terms waits until the live connected nodes agree on the term and
// returns it.
func (c *Cluster) Terms(t testing.TB) domain.Term {
	t.Helper()
	deadline := time.Now().Add(10 * electionTimeout)
	var seen map[int]domain.Term
	for time.Now().Before(deadline) {
		seen = map[int]domain.Term{}
		var term domain.Term
		agree := true
		for i := range c.n {
			n := c.Node(i)
			if n == nil || !c.Connected(i) {
				continue
			}
			s := n.Status()
			if term != 0 && s.Term != term {
				agree = false
			}
			term = s.Term
			seen[i] = s.Term
		}
		if agree {
			return term
		}
		time.Sleep(tickInterval)
	}
	t.Fatalf("connected nodes disagree on the term: %v", seen)
	return 0
}

// Write is a set of a unique key.
type Write struct {
	Key, Value string
}

// Cmd returns the encoded command.
func (w Write) Cmd() []byte {
	return domain.EncodeCommand(domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: []byte(w.Key), Value: []byte(w.Value)}}})
}

// NewWrite returns a write of a key no other write of the test uses.
func (c *Cluster) NewWrite() Write {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.nextKey++
	return Write{Key: fmt.Sprintf("k%06d", c.mu.nextKey), Value: fmt.Sprintf("v%d-%d", c.mu.nextKey, c.seed%1000)}
}

// Ack records w as acknowledged: it must survive to the end.
func (c *Cluster) Ack(w Write) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.acked[w.Key] = w.Value
}

// IndexOf returns the index at which w was first applied, and whether it
// was applied at all.
func (c *Cluster) IndexOf(w Write) (domain.Index, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.mu.byData[string(w.Cmd())]
	return i, ok
}

// Applied reports whether some node applied an entry carrying cmd.
func (c *Cluster) Applied(cmd []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.mu.byData[string(cmd)]
	return ok
}

// NCommitted returns how many live nodes have applied through index.
func (c *Cluster) NCommitted(index domain.Index) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	count := 0
	for i, n := range c.mu.nodes {
		if n != nil && c.mu.recs[i].appliedIndex() >= index {
			count++
		}
	}
	return count
}

// retryable reports whether a proposal failed without being appended.
// domain.ErrStopped is not among them: a node stopped (crashed) after
// taking a proposal may have sent its entry to the others, which may
// commit it.
func retryable(err error) bool {
	return errors.Is(err, domain.ErrNotLeader) || errors.Is(err, domain.ErrProposalDropped) ||
		errors.Is(err, errNodeDown) || errors.Is(err, domain.ErrNoLeader)
}

// errNodeDown: ProposeTo found no node running at that place.
var errNodeDown = errors.New("cluster: node down")

// ProposeTo proposes w on node i with a timeout; nil means acknowledged
// (and recorded as such).
func (c *Cluster) ProposeTo(i int, w Write, timeout time.Duration) error {
	n := c.Node(i)
	if n == nil {
		return fmt.Errorf("node %d: %w", c.id(i), errNodeDown)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := n.Propose(ctx, w.Cmd())
	if err != nil {
		return err
	}
	if len(res) != 1 || res[0].Err != nil {
		c.violation("node %d: proposal %s: results %+v", c.id(i), w.Key, res)
	}
	c.Ack(w)
	return nil
}

// One replicates a new write and waits until at least expected live nodes
// applied it, trying each connected node in turn for up to 10s (like the
// lab's one()). Without retry, a proposal whose outcome is unknown is not
// proposed again. It returns the write's index.
func (c *Cluster) One(t testing.TB, expected int, retry bool) domain.Index {
	t.Helper()
	w := c.NewWrite()
	return c.OneWrite(t, w, expected, retry)
}

// OneWrite is One with a given write.
func (c *Cluster) OneWrite(t testing.TB, w Write, expected int, retry bool) domain.Index {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	c.mu.Lock()
	start := c.mu.lastLeader
	c.mu.Unlock()
	proposed := false
	for time.Now().Before(deadline) {
		for k := range c.n {
			i := (start + k) % c.n
			if !c.Alive(i) || !c.Connected(i) {
				continue
			}
			if proposed && !retry {
				break
			}
			err := c.ProposeTo(i, w, 4*electionTimeout)
			if err != nil && retryable(err) {
				continue
			}
			proposed = true
			if err == nil {
				c.mu.Lock()
				c.mu.lastLeader = i
				c.mu.Unlock()
			}
			// Acknowledged or unknown: wait for agreement.
			end := time.Now().Add(2 * time.Second)
			for time.Now().Before(end) {
				if idx, ok := c.IndexOf(w); ok && c.NCommitted(idx) >= expected {
					c.Ack(w) // applied somewhere, so committed
					return idx
				}
				time.Sleep(2 * time.Millisecond)
			}
			if !retry {
				t.Fatalf("one(%s) failed to reach agreement on %d nodes", w.Key, expected)
			}
		}
		time.Sleep(electionTimeout / 5)
	}
	t.Fatalf("one(%s) failed to reach agreement on %d nodes within 10s", w.Key, expected)
	return 0
}

// NotApplied fails the test if any node applied w.
func (c *Cluster) NotApplied(t testing.TB, w Write) {
	t.Helper()
	if idx, ok := c.IndexOf(w); ok {
		t.Fatalf("write %s was applied at index %d, but no quorum could have committed it", w.Key, idx)
	}
}

// CheckApplied waits until every live connected node has applied the same
// entries (same KV digest) and returns the common digest.
func (c *Cluster) CheckApplied(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var digests map[int]string
	for time.Now().Before(deadline) {
		digests = map[int]string{}
		var d string
		agree := true
		for i := range c.n {
			if !c.Alive(i) || !c.Connected(i) {
				continue
			}
			got := c.KV(i).Digest()
			if d != "" && got != d {
				agree = false
			}
			d = got
			digests[i] = got
		}
		if agree {
			c.checkViolations(t)
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
	var applied []domain.Index
	for i := range c.n {
		applied = append(applied, c.recorder(i).appliedIndex())
	}
	t.Fatalf("replicas did not converge: digests %v, applied %v", digests, applied)
	return ""
}

// CheckAcked checks that every acknowledged write is in the KV of every
// live connected node (call CheckApplied first) and returns how many.
func (c *Cluster) CheckAcked(t testing.TB) int {
	t.Helper()
	c.mu.Lock()
	acked := make(map[string]string, len(c.mu.acked))
	for k, v := range c.mu.acked {
		acked[k] = v
	}
	c.mu.Unlock()
	for i := range c.n {
		if !c.Alive(i) || !c.Connected(i) {
			continue
		}
		kv := c.KV(i)
		for k, v := range acked {
			got, err := kv.Get([]byte(k))
			if err != nil || string(got) != v {
				t.Fatalf("node %d lost acknowledged write %s=%s: got %q, %v", c.id(i), k, v, got, err)
			}
		}
	}
	return len(acked)
}

func (c *Cluster) recorder(i int) *recorder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.recs[i]
}

func (c *Cluster) violation(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.violations = append(c.mu.violations, fmt.Sprintf(format, args...))
}

func (c *Cluster) checkViolations(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.violations) > 0 {
		t.Fatalf("safety violations: %q", c.mu.violations)
	}
}

// recordApply checks entries node i applied against every other node's.
func (c *Cluster) recordApply(i int, ents []domain.Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range ents {
		prev, ok := c.mu.applied[e.Index]
		if !ok {
			c.mu.applied[e.Index] = domain.Entry{Index: e.Index, Term: e.Term, Type: e.Type, Data: bytes.Clone(e.Data)}
			if e.Type == domain.EntryNormal {
				if _, seen := c.mu.byData[string(e.Data)]; !seen {
					c.mu.byData[string(e.Data)] = e.Index
				}
			}
			continue
		}
		if prev.Term != e.Term || prev.Type != e.Type || !bytes.Equal(prev.Data, e.Data) {
			c.mu.violations = append(c.mu.violations, fmt.Sprintf(
				"node %d applied index %d term %d (%s), another node applied term %d (%s) there",
				c.id(i), e.Index, e.Term, e.Type, prev.Term, prev.Type))
		}
	}
}

// Restores returns how many snapshots node i installed during the test.
func (c *Cluster) Restores(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.restores[i]
}

// LogLen returns the number of entries node i's LogStore holds.
func (c *Cluster) LogLen(t testing.TB, i int) int {
	t.Helper()
	c.mu.Lock()
	st := c.mu.stores[i]
	c.mu.Unlock()
	first, err := st.Log().FirstIndex()
	if err != nil {
		t.Fatalf("node %d: first index: %v", c.id(i), err)
	}
	last, err := st.Log().LastIndex()
	if err != nil {
		t.Fatalf("node %d: last index: %v", c.id(i), err)
	}
	return int(last+1) - int(first)
}

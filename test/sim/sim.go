package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Virtual time is counted in microseconds.
const (
	usec int64 = 1
	msec       = 1000 * usec
)

// Cluster and client parameters that are not flags.
const (
	tickPeriod     = 10 * msec // each node ticks about this often
	electionTicks  = 10
	heartbeatTicks = 1
	compactTrail   = 5 // entries kept in the log below the compaction point
	numKeys        = 3
	writeTimeout   = 400 * msec // a proposed write not applied by then is unknown
	readTimeout    = 150 * msec // a read not answered by then is retried
	opDeadline     = 1500 * msec
	endOfTime      = int64(1) << 62 // the return time of an unknown outcome
)

// options are the parameters of a run; everything that changes a seed's
// events is here, so that the repro command can name it.
type options struct {
	nodes   int
	steps   int
	storage string
	// plant names the planted bug to switch on ("" for none); only
	// builds with the seshatplant tag can set it.
	plant string
	// compact is the mean number of applied entries past its last
	// compaction point that make a node compact its log; each seed draws
	// its own threshold in [compact/8, 2*compact].
	compact int
	// traceKeep is how many trace lines to keep for a dump (0: none).
	traceKeep int
	// vizDir, if set, receives porcupine's visualization of a history
	// that is not linearizable (seed-S.html).
	vizDir string
	// members switches on the membership nemesis (members.go).
	members bool
	// localReads, for a test only, serves reads from the contacted node's
	// state machine at once, without ReadIndex: stale reads that the
	// linearizability check must catch.
	localReads bool
}

// defaultOptions: 14000 events per seed. The storage stages' completions
// are events too (each log job's write and sync, each apply job), and so
// are the membership nemesis's extra nodes and catch-ups: 14000 events
// with it give about as many client operations per seed (within 15%) as
// 12000 did without it.
func defaultOptions() options {
	return options{nodes: 3, steps: 14000, storage: "memory", compact: 40, members: true}
}

// violation is one broken invariant.
type violation struct {
	seed   uint64
	step   int
	at     int64
	inv    string
	detail string
}

// stats count what happened in a run, to show that the faults and the
// protocol paths they aim at were exercised.
type stats struct {
	elections, crashes, partitions, compactions, snapshots, unknown int
	// members counts the membership changes done (in force at a leader).
	members int
}

func (a *stats) add(b stats) {
	a.elections += b.elections
	a.crashes += b.crashes
	a.partitions += b.partitions
	a.compactions += b.compactions
	a.snapshots += b.snapshots
	a.unknown += b.unknown
	a.members += b.members
}

func (a stats) String() string {
	return fmt.Sprintf("elections=%d crashes=%d partitions=%d compactions=%d snapshots-installed=%d unknown-writes=%d membership-changes=%d",
		a.elections, a.crashes, a.partitions, a.compactions, a.snapshots, a.unknown, a.members)
}

// result is what one seed's run produced.
type result struct {
	seed      uint64
	hash      uint64
	steps     int
	ops       int
	violation *violation
	// lin is porcupine's verdict: "ok", "illegal" or "unknown" (timed out).
	lin   string
	trace []string
	err   error
	stats stats
}

// faultPlan is a seed's fault schedule: drawn once from the seed, so that
// seeds range from calm to violent.
type faultPlan struct {
	loss, dup        float64 // per-message probabilities
	delayMin         int64   // message delay, uniform in [delayMin, delayMax]
	delayMax         int64
	tailP            float64 // probability of a long delay
	tailMax          int64
	fsyncMin         int64 // fsync latency, uniform in [fsyncMin, fsyncMax]
	fsyncMax         int64
	writeMax         int64   // a log job's writes land within this (uniform)
	applyMax         int64   // an apply job completes within this (uniform)
	maxApplyJobs     int     // the drivers' MaxApplyJobs
	nemesisMean      int64   // mean time between fault actions
	crashInWindow    float64 // probability that a node crashes before a write it started is synced
	crashOnVote      float64 // probability that a node crashes just after granting a vote
	crashNewLeader   float64 // probability that a new leader crashes soon
	isolateLeader    float64 // probability that a new leader is cut off soon
	cutAtFirstCommit float64 // probability that a leader is cut off at its first commit
	quickRestart     float64 // probability that a crashed node is back within a few ms
	maxMsgBytes      uint64  // the cores' MaxMsgBytes (small: one entry per MsgApp)
	maxInflight      int     // the cores' MaxInflightMsgs (0: default)
	maxUncommitted   int     // the cores' MaxUncommittedEntries (0: default)
	disablePreVote   bool
	disableCheckQ    bool
	clients          int
	compactEvery     int    // applied entries between a node's compactions
	trailingBytes    uint64 // the drivers' TrailingBytes (0: default, never reached here)
}

func (s *sim) drawPlan() faultPlan {
	r := s.rng
	p := faultPlan{
		loss:             r.Float64() * 0.05,
		dup:              r.Float64() * 0.03,
		delayMin:         100 * usec,
		delayMax:         500*usec + r.Int64N(3*msec),
		tailP:            r.Float64() * 0.04,
		tailMax:          20*msec + r.Int64N(60*msec),
		fsyncMin:         500 * usec,
		fsyncMax:         2*msec + r.Int64N(8*msec),
		writeMax:         r.Int64N(500 * usec),
		applyMax:         r.Int64N(3 * msec),
		nemesisMean:      60*msec + r.Int64N(300*msec),
		crashInWindow:    r.Float64() * 0.03,
		crashOnVote:      r.Float64() * 0.3,
		crashNewLeader:   r.Float64() * 0.3,
		isolateLeader:    0.2 + r.Float64()*0.6,
		cutAtFirstCommit: 0.2 + r.Float64()*0.5,
		quickRestart:     r.Float64() * 0.5,
		clients:          2 + r.IntN(3),
	}
	if r.IntN(4) > 0 {
		p.maxMsgBytes = 1 // one entry per MsgApp
	}
	p.compactEvery = max(1, s.opts.compact/8) + r.IntN(2*s.opts.compact)
	p.maxInflight = []int{0, 0, 1, 4}[r.IntN(4)]
	p.maxUncommitted = []int{0, 0, 0, 8}[r.IntN(4)]
	p.disablePreVote = r.IntN(4) == 0
	p.maxApplyJobs = []int{1, 2, 64}[r.IntN(3)]
	p.disableCheckQ = r.IntN(4) == 0
	// Small: compaction keeps fewer than compactTrail entries, the ones
	// it keeps holding at most this many bytes.
	p.trailingBytes = []uint64{0, 0, 0, 120, 400}[r.IntN(5)]
	return p
}

// sim is one seed's simulation. It runs in one goroutine; all randomness
// comes from rng (and the cores' own sources, seeded from the same seed).
type sim struct {
	opts options
	seed uint64
	rng  *rand.Rand
	plan faultPlan

	now  int64
	step int
	seq  uint64
	q    eventQueue

	nodes []*node // indexed by NodeID; nodes[0] is nil, and so are ids never used
	// ids are the running nodes (not retired), in order; initial the
	// voters the cluster started with.
	ids     []domain.NodeID
	initial []domain.NodeID
	op      operator

	// blocked[from][to] drops messages from one node to another.
	blocked  [][]bool
	partGen  uint64
	partDesc string

	clients []*client
	hist    history
	opsDone int
	nextCtx uint64

	chk   checker
	tr    tracer
	stats stats

	viol *violation
}

func newSim(opts options, seed uint64) (*sim, error) {
	s := &sim{
		opts: opts,
		seed: seed,
		rng:  rand.New(rand.NewPCG(seed, 0x5e5_4a7)),
		tr:   newTracer(opts.traceKeep),
	}
	s.chk.init()
	s.plan = s.drawPlan()
	s.nodes = make([]*node, opts.nodes+1)
	s.blocked = make([][]bool, opts.nodes+1)
	for i := 1; i <= opts.nodes; i++ {
		s.ids = append(s.ids, domain.NodeID(i))
		s.blocked[i] = make([]bool, opts.nodes+1)
	}
	s.initial = slices.Clone(s.ids)
	s.tr.linef(0, 0, "start seed=%d nodes=%d plant=%q plan=%+v", seed, opts.nodes, opts.plant, s.plan)
	for _, id := range s.ids {
		d, err := newDisk(opts.storage)
		if err != nil {
			return nil, err
		}
		n := &node{id: id, disk: d, period: tickPeriod - 500*usec + s.rng.Int64N(msec)}
		s.nodes[id] = n
		if err := s.start(n); err != nil {
			return nil, err
		}
	}
	for i := 0; i < s.plan.clients; i++ {
		c := &client{id: i, leader: s.ids[s.rng.IntN(len(s.ids))]}
		s.clients = append(s.clients, c)
		s.schedule(&event{at: s.rng.Int64N(50 * msec), kind: evClient, client: i})
	}
	s.schedule(&event{at: 100*msec + s.rng.Int64N(s.plan.nemesisMean), kind: evNemesis})
	if opts.members {
		s.initMembers()
	}
	return s, nil
}

func (s *sim) schedule(e *event) {
	s.seq++
	e.seq = s.seq
	s.q.push(e)
}

// run processes events until the step budget is spent or an invariant
// breaks, then checks the clients' history.
func (s *sim) run() result {
	s.loop()
	defer s.closeDisks()
	res := result{seed: s.seed, steps: s.step}
	if s.viol == nil {
		res.lin = s.checkHistory()
	}
	res.hash = s.tr.sum()
	res.ops = s.opsDone
	res.violation = s.viol
	res.trace = s.tr.lines()
	res.stats = s.stats
	return res
}

// closeDisks releases the nodes' disks that hold resources beyond memory
// (Pebble's background goroutines).
func (s *sim) closeDisks() {
	for _, n := range s.nodes {
		if n != nil {
			if c, ok := n.disk.(interface{ Close() error }); ok {
				_ = c.Close()
			}
		}
	}
}

// loop processes events until the step budget is spent or an invariant
// breaks. A panic (a core's broken invariant, most likely) is a violation
// like any other: it names the seed and step that reproduce it.
func (s *sim) loop() {
	defer func() {
		if r := recover(); r != nil {
			s.fail("panic", "%v", r)
		}
	}()
	for s.step < s.opts.steps && s.q.Len() > 0 && s.viol == nil {
		e := s.q.pop()
		s.now = e.at
		s.step++
		s.dispatch(e)
		if s.viol == nil {
			s.checkEvent(e)
		}
	}
}

// fail records the first violation of the run; the run stops after the
// current event.
func (s *sim) fail(inv, format string, args ...any) {
	if s.viol != nil {
		return
	}
	s.viol = &violation{seed: s.seed, step: s.step, at: s.now, inv: inv, detail: fmt.Sprintf(format, args...)}
	s.tr.linef(s.now, s.step, "VIOLATION %s %s", inv, s.viol.detail)
}

func (s *sim) dispatch(e *event) {
	switch e.kind {
	case evTick:
		n := s.nodes[e.node]
		if !n.live(e.inc) {
			return
		}
		s.tr.linef(s.now, s.step, "tick n%d", n.id)
		n.d.Tick()
		s.scheduleTick(n)
		s.pump(n)
	case evDeliver:
		if e.void {
			return
		}
		s.deliver(e)
	case evLogWrite, evLogDone, evApplyDone:
		n := s.nodes[e.node]
		if !n.live(e.inc) {
			return
		}
		s.tr.linef(s.now, s.step, "%v n%d", e.kind, n.id)
		switch e.kind {
		case evLogWrite:
			s.logWrite(n)
		case evLogDone:
			s.logDone(n)
		default:
			s.applyDone(n)
		}
	case evSnapStatus:
		n := s.nodes[e.node]
		if !n.live(e.inc) {
			return
		}
		s.tr.linef(s.now, s.step, "snap-status n%d to=%d ok=%v", n.id, e.msg.To, e.ok)
		var err error
		if !e.ok {
			err = errSnapLost
		}
		n.d.SnapshotSent(e.msg.To, err)
		s.pump(n)
	case evCrash:
		n := s.nodes[e.node]
		limit := s.maxDown()
		if e.ok {
			limit++
		}
		if !n.live(e.inc) || s.downCount() >= limit {
			return
		}
		s.crash(n, true)
	case evRestart:
		n := s.nodes[e.node]
		if n.up || n.inc != e.inc || n.retired {
			return
		}
		if err := s.start(n); err != nil {
			s.fail("restart", "n%d: %v", n.id, err)
		}
	case evNemesis:
		s.nemesis()
	case evMember:
		s.memberAct()
	case evRetire:
		s.retire(e.node)
	case evHeal:
		if e.attempt == s.partGen {
			s.heal()
		}
	case evIsolate:
		s.isolate(e.node)
	case evClient:
		s.clientSend(s.clients[e.client], e.attempt)
	case evClientTimer:
		s.clientTimeout(s.clients[e.client], e.attempt)
	}
}

// checkEvent runs the invariants that are checked after every event:
// election safety on every live node's role, log matching on the logs that
// changed.
func (s *sim) checkEvent(e *event) {
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.up && n.touched {
			n.touched = false
			s.checkRole(n)
		}
	}
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.logDirty {
			s.checkLogMatching(n)
			if s.viol != nil {
				return
			}
		}
	}
}

// config is the core's configuration for node n's current incarnation.
func (s *sim) config(n *node) (consensus.Config, error) {
	cfg := consensus.Config{
		ID:                    n.id,
		Peers:                 s.peers(n.id),
		ElectionTicks:         electionTicks,
		HeartbeatTicks:        heartbeatTicks,
		Rand:                  rand.New(rand.NewPCG(s.seed, uint64(n.id)<<32|n.inc)),
		DisablePreVote:        s.plan.disablePreVote,
		DisableCheckQuorum:    s.plan.disableCheckQ,
		MaxMsgBytes:           s.plan.maxMsgBytes,
		MaxInflightMsgs:       s.plan.maxInflight,
		MaxUncommittedEntries: s.plan.maxUncommitted,
	}
	if s.opts.plant != "" {
		if plantBug == nil {
			return cfg, fmt.Errorf("planted bug %q needs a build with -tags seshatplant", s.opts.plant)
		}
		if err := plantBug(&cfg, s.opts.plant); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// peers is a node's Config.Peers: the initial voters for the nodes the
// cluster started with; nothing for a node added later, which waits for a
// leader to contact it.
func (s *sim) peers(id domain.NodeID) []domain.NodeID {
	if slices.Contains(s.initial, id) {
		return slices.Clone(s.initial)
	}
	return nil
}

// errSnapLost is the transport's report of a snapshot that did not arrive.
var errSnapLost = errors.New("sim: snapshot lost")

// plantBug switches on a planted bug in a core's config. It is set only in
// builds with the seshatplant tag (plant_flag.go).
var plantBug func(cfg *consensus.Config, bug string) error

// tracer digests every trace line of a run and keeps the last few for a
// dump.
type tracer struct {
	h    uint64
	buf  []byte
	keep int
	ring []string
	next int
	full bool
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func newTracer(keep int) tracer {
	t := tracer{h: fnvOffset, keep: keep}
	if keep > 0 {
		t.ring = make([]string, keep)
	}
	return t
}

// linef adds one line to the trace: virtual time, step, then the text.
func (t *tracer) linef(at int64, step int, format string, args ...any) {
	t.buf = fmt.Appendf(t.buf[:0], "%d.%03d #%d ", at/msec, at%msec, step)
	t.buf = fmt.Appendf(t.buf, format, args...)
	t.buf = append(t.buf, '\n')
	h := t.h
	for _, c := range t.buf {
		h ^= uint64(c)
		h *= fnvPrime
	}
	t.h = h
	if t.keep > 0 {
		t.ring[t.next] = string(t.buf[:len(t.buf)-1])
		t.next++
		if t.next == t.keep {
			t.next, t.full = 0, true
		}
	}
}

func (t *tracer) sum() uint64 { return t.h }

// lines returns the kept lines, oldest first.
func (t *tracer) lines() []string {
	if t.keep == 0 {
		return nil
	}
	if !t.full {
		return slices.Clone(t.ring[:t.next])
	}
	return append(slices.Clone(t.ring[t.next:]), t.ring[:t.next]...)
}

// combineHashes folds the seeds' trace digests, in seed order, into the
// run's digest.
func combineHashes(hs []uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range hs {
		for i := range b {
			b[i] = byte(x >> (8 * i))
		}
		h.Write(b[:])
	}
	return h.Sum64()
}

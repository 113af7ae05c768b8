package node

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Node is the shell around a Driver: one goroutine (the loop) owns the
// driver and feeds it the ticker's ticks, the transport's messages and the
// callers' requests; two stage goroutines run its storage work (the log
// stage its LogJobs, the apply stage its ApplyJobs), and a goroutine per
// snapshot send builds and sends a snapshot. The exported methods talk to
// the loop over channels and are safe for concurrent use. No method blocks
// past Stop.
type Node struct {
	cfg Config
	id  domain.NodeID
	log zerolog.Logger

	propc     chan *proposal
	confc     chan *proposal
	readc     chan *Read
	transferc chan *Transfer
	snapc     chan snapResult
	stopc     chan struct{}
	stopOnce  sync.Once
	// loopDone is closed when the loop has returned; done once the
	// snapshot senders and the stages have too, and err is set.
	loopDone chan struct{}
	done     chan struct{}
	snapWG   sync.WaitGroup
	err      error // why the loop stopped; written before loopDone closes
	stopErr  error // what waiters get; likewise

	leader atomic.Uint64
	status atomic.Pointer[consensus.Status]
	// largeBacklog: see LargeBacklog (large.go); large is its loop-owned
	// list.
	largeBacklog atomic.Uint64
	large        []largeEntry

	// Loop-owned.
	d       *Driver
	logs    *stage[*LogJob]
	applies *stage[*ApplyJob]
	dirty   bool // status changed since it was last published
	batch   []*proposal
	live    []*Proposal
	readBuf []*Read
}

// proposal is a Propose call on its way to the loop.
type proposal struct {
	ctx  context.Context
	p    Proposal
	resp chan proposalResult // capacity 1
}

type proposalResult struct {
	results []domain.Result
	err     error
}

func newProposal(ctx context.Context) *proposal {
	q := &proposal{ctx: ctx, resp: make(chan proposalResult, 1)}
	q.p.Done = func(results []domain.Result, err error) {
		answerOnce(q.resp, proposalResult{results: results, err: err})
	}
	return q
}

// Propose and ReadIndex take their request (the struct, its answer channel
// and its Done closure: three allocations) from a pool, and put it back
// only once they received its answer: the driver answers a request at
// most once and keeps no use of it after, so a request whose caller gave
// up (ctx) is never reused.
var (
	proposalPool = sync.Pool{New: func() any { return newProposal(nil) }}
	readPool     = sync.Pool{New: func() any { return newReadWaiter() }}
)

func getProposal(ctx context.Context, cmds [][]byte) *proposal {
	q := proposalPool.Get().(*proposal)
	q.ctx, q.p.Cmds = ctx, cmds
	return q
}

// putProposal returns q, answered, to the pool.
func putProposal(q *proposal) {
	done := q.p.Done
	*q = proposal{resp: q.resp}
	q.p.Done = done
	proposalPool.Put(q)
}

// readWaiter is a ReadIndex call on its way to the loop.
type readWaiter struct {
	r    Read
	resp chan error // capacity 1
}

func newReadWaiter() *readWaiter {
	w := &readWaiter{resp: make(chan error, 1)}
	w.r.Done = func(err error) { answerOnce(w.resp, err) }
	return w
}

// answerOnce puts v in c (capacity 1) unless an answer is there already:
// the driver answers each request at most once (the simulator checks
// it), and a
// second answer must never block the loop.
func answerOnce[T any](c chan T, v T) {
	select {
	case c <- v:
	default:
	}
}

type snapResult struct {
	to  domain.NodeID
	err error
}

// maxStepBatch bounds the received messages stepped before the driver's
// output is handled, so that one Output serves several messages without
// starving the rest of the loop.
const maxStepBatch = 256

// Start loads the durable state (LoadState), builds the driver and starts
// the loop and the stages. The caller keeps ownership of the stores and
// the transport.
func Start(cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := LoadState(cfg.Log, cfg.Vote, cfg.StateMachine)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	first, err := cfg.Log.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("node %d: first index: %w", cfg.Raft.ID, err)
	}
	d, err := NewDriver(cfg.DriverConfig, st, first)
	if err != nil {
		return nil, err
	}
	if cfg.SnapshotDir != "" {
		stale, err := prepareSnapshotDir(cfg.SnapshotDir)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
		}
		if stale > 0 {
			cfg.Logger.Info().Uint64("node", uint64(cfg.Raft.ID)).Int("files", stale).Str("dir", cfg.SnapshotDir).
				Msg("deleted snapshot images a previous run left")
		}
	}
	n := &Node{
		cfg:       cfg,
		id:        cfg.Raft.ID,
		log:       cfg.Logger.With().Uint64("node", uint64(cfg.Raft.ID)).Logger(),
		propc:     make(chan *proposal, cfg.MaxBatch),
		confc:     make(chan *proposal),
		readc:     make(chan *Read, 1024),
		transferc: make(chan *Transfer),
		snapc:     make(chan snapResult),
		stopc:     make(chan struct{}),
		loopDone:  make(chan struct{}),
		done:      make(chan struct{}),
		d:         d,
	}
	// The log stage writes every job of a batch, then syncs once for
	// all of them.
	n.logs = newStage(func(j *LogJob) error { return j.Write(cfg.Log, cfg.Vote, cfg.StateMachine) },
		func(jobs []*LogJob) error { return syncLogJobs(cfg.Log, jobs) })
	n.applies = newStage(func(j *ApplyJob) error { return j.Run(cfg.StateMachine) }, nil)
	n.publish()
	go n.logs.run()
	go n.applies.run()
	go n.run()
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() domain.NodeID { return n.id }

// Leader returns the leader this node knows of, or domain.None.
func (n *Node) Leader() domain.NodeID { return domain.NodeID(n.leader.Load()) }

// Status returns the core's status as the loop last published it: before
// it answers any call (so a caller sees the effect of its own proposal),
// after every leader or role change, otherwise at most one tick old.
func (n *Node) Status() consensus.Status {
	s := *n.status.Load()
	s.Membership = s.Membership.Clone()
	s.Progress = maps.Clone(s.Progress)
	return s
}

// Done is closed once the node has stopped, by Stop or by a fatal error.
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why the node stopped: nil while it runs or after a clean
// Stop, the storage error that stopped it otherwise.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// Stop stops the loop and fails every waiting call with domain.ErrStopped.
// It does not close the stores or the transport. It returns the error that
// had already stopped the node, if any. Calling it again is harmless.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.done
	return n.err
}

// Propose replicates cmds (encoded domain.Commands), in order, and returns
// their results once this node has applied them. Errors: domain.ErrNotLeader
// (naming the known leader; see Leader), domain.ErrProposalDropped (nothing
// was written; retry), domain.ErrLeadershipLost (appended, but another entry
// was applied at its index or this node lost leadership before it knew the
// outcome: it may or may not apply), domain.ErrStopped, or ctx.Err() (the
// outcome is then unknown too).
//
// The entries alias cmds: the caller must not modify them after the call,
// whatever it returned (an entry may still be replicating after a ctx
// error).
func (n *Node) Propose(ctx context.Context, cmds ...[]byte) ([]domain.Result, error) {
	if len(cmds) == 0 {
		return nil, nil
	}
	q := getProposal(ctx, cmds)
	res, err, answered := n.propose(ctx, n.propc, q)
	if answered {
		putProposal(q)
	}
	return res, err
}

// ProposeMembership proposes a change of membership to m (a single-server
// change) and returns once this node applied it; errors as for Propose.
func (n *Node) ProposeMembership(ctx context.Context, m domain.Membership) error {
	mc := m.Clone()
	q := newProposal(ctx)
	q.p.Membership = &mc
	_, err, _ := n.propose(ctx, n.confc, q)
	return err
}

// propose hands p to the loop on c and waits for its answer; answered
// reports whether the answer was received (p may then be reused), or the
// loop was never handed p.
func (n *Node) propose(ctx context.Context, c chan *proposal, p *proposal) (_ []domain.Result, _ error, answered bool) {
	if err := ctx.Err(); err != nil {
		return nil, err, true
	}
	select {
	case c <- p:
	case <-ctx.Done():
		return nil, ctx.Err(), true
	case <-n.done:
		return nil, n.stopErr, true
	}
	select {
	case r := <-p.resp:
		return r.results, r.err, true
	case <-ctx.Done():
		return nil, ctx.Err(), false
	case <-n.done:
		select {
		case r := <-p.resp:
			return r.results, r.err, true
		default:
			return nil, n.stopErr, false
		}
	}
}

// ReadIndex returns once reading the local state machine is linearizable:
// the leader confirmed a read index with a quorum and this node has applied
// through it. Reads waiting together share one confirmation round. Errors:
// domain.ErrNoLeader (no leader known), domain.ErrLeadershipLost (the leader
// changed before confirming), domain.ErrProposalDropped (too many reads
// waiting), domain.ErrStopped, ctx.Err(). All are safe to retry.
func (n *Node) ReadIndex(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := readPool.Get().(*readWaiter)
	err, answered := call(ctx, n, n.readc, &w.r, w.resp)
	if answered {
		readPool.Put(w)
	}
	return err
}

// TransferLeadership asks this node, the leader, to hand leadership to the
// voter to, and waits until a leader change is seen: nil when to became
// leader, an error wrapping domain.ErrTransferFailed when another node did or the
// core gave the transfer up (after twice the election timeout), and
// domain.ErrNotLeader, domain.ErrStopped or ctx.Err() otherwise.
func (n *Node) TransferLeadership(ctx context.Context, to domain.NodeID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	resp := make(chan error, 1)
	t := &Transfer{To: to, Done: func(err error) { answerOnce(resp, err) }}
	err, _ := call(ctx, n, n.transferc, t, resp)
	return err
}

// call hands req to the loop on c and waits for its answer on resp. An
// answer the loop gave before it stopped still counts. answered reports
// whether the answer was received, or the loop was never handed req.
func call[R any](ctx context.Context, n *Node, c chan<- R, req R, resp <-chan error) (_ error, answered bool) {
	select {
	case c <- req:
	case <-ctx.Done():
		return ctx.Err(), true
	case <-n.done:
		return n.stopErr, true
	}
	select {
	case err := <-resp:
		return err, true
	case <-ctx.Done():
		return ctx.Err(), false
	case <-n.done:
		select {
		case err := <-resp:
			return err, true
		default:
			return n.stopErr, false
		}
	}
}

// run is the loop: the only goroutine that touches the driver.
func (n *Node) run() {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	// At most ElectionTicks-1 ticks at once: enough to expire any lease
	// (ElectionTicks-LeaseDriftTicks), and never two CheckQuorum rounds
	// of a leader with no message stepped between them.
	clock := newTickClock(n.cfg.TickInterval, time.Now(), max(1, n.cfg.Raft.ElectionTicks-1))
	lease := n.cfg.Raft.ReadMode == consensus.LeaseMode
	recvc := n.cfg.Transport.Receive()
	var stopErr error
	for stopErr == nil {
		select {
		case <-ticker.C:
			if n.cfg.DiskFull != nil {
				n.d.SetDiskFull(n.cfg.DiskFull())
			}
			// A leader serving lease reads counts every tick interval
			// that passed: its lease must not outlast the wall clock.
			// Every other node takes one tick per delivery: a clock that
			// runs slow when the loop runs late only delays elections
			// and CheckQuorum (liveness, and the lease's safe direction),
			// and keeps a starved machine from deposing leaders for
			// stalls of its own.
			ticks := clock.due(time.Now())
			if !lease || n.d.SoftState().Role != consensus.Leader {
				ticks = 1
			}
			if ticks == 1 {
				n.d.Tick()
			} else {
				// The loop ran late: step what arrived meanwhile (the
				// followers' answers) before the ticks that passed, so
				// that a stall of this process alone does not look like
				// silent followers to CheckQuorum.
				recvc = n.stepPending(recvc)
				n.tick(ticks)
			}
			n.drain()
			if n.dirty {
				n.publish()
			}
			continue
		case m, ok := <-recvc:
			if !ok {
				n.log.Debug().Msg("transport closed: no more messages")
				recvc = nil
				continue
			}
			// With lease reads, the ticks a stall cost go in before a
			// follower's read request (MsgReadIndex), which the lease
			// answers when it is stepped (as before a read of our own,
			// below); in order: the ticks, m, the messages behind it.
			n.tick(n.leaseMissed(lease, &clock))
			n.d.Step(m)
			recvc = n.stepPending(recvc)
		case p := <-n.propc:
			n.proposeBatch(p)
		case p := <-n.confc:
			n.proposeOne(p)
		case r := <-n.readc:
			// The ticker's delivery may wait behind this read: count the
			// ticks a stall cost before the lease answers it.
			if ticks := n.leaseMissed(lease, &clock); ticks > 0 {
				recvc = n.stepPending(recvc)
				n.tick(ticks)
			}
			n.readBatch(r)
		case t := <-n.transferc:
			n.d.Transfer(t)
		case s := <-n.snapc:
			n.d.SnapshotSent(s.to, s.err)
		case r := <-n.logs.done:
			if r.err != nil {
				stopErr = n.storageFailure(r.err)
				continue
			}
			for _, j := range r.jobs {
				n.d.LogDone(j)
			}
		case r := <-n.applies.done:
			if r.err != nil {
				stopErr = n.storageFailure(r.err)
				continue
			}
			for _, j := range r.jobs {
				n.d.ApplyDone(j)
			}
		case <-n.stopc:
			stopErr = domain.ErrStopped
			continue
		}
		n.drain()
	}
	n.stopErr = stopErr
	n.logs.stop()
	n.applies.stop()
	n.d.Fail(stopErr)
	out := n.d.Output()
	n.publish()
	for _, a := range out.Answers {
		a.Deliver()
	}
	close(n.loopDone)
	n.snapWG.Wait()
	close(n.done)
}

// leaseMissed returns, and counts as fed, the ticks a late loop missed
// (tickClock's missed) if this node leads with lease reads; 0 otherwise.
func (n *Node) leaseMissed(lease bool, clock *tickClock) int {
	if !lease || n.d.SoftState().Role != consensus.Leader {
		return 0
	}
	return clock.missed(time.Now())
}

// tick feeds the driver ticks ticks.
func (n *Node) tick(ticks int) {
	for range ticks {
		n.d.Tick()
	}
}

// stepPending steps up to maxStepBatch messages waiting on recvc, and
// returns recvc, or nil once it is closed.
func (n *Node) stepPending(recvc <-chan domain.Message) <-chan domain.Message {
	for range maxStepBatch {
		select {
		case m, ok := <-recvc:
			if !ok {
				return nil
			}
			n.d.Step(m)
		default:
			return recvc
		}
	}
	return recvc
}

// drain handles the driver's output until it has none.
func (n *Node) drain() {
	defer n.pruneLarge()
	for out := n.d.Output(); !out.Empty(); out = n.d.Output() {
		n.noteLarge(out)
		n.handle(out)
	}
}

func (n *Node) storageFailure(err error) error {
	n.log.Error().Err(err).Msg("storage failure: stopping the node")
	n.err = err
	return fmt.Errorf("%w: node %d: %w", domain.ErrStopped, n.id, err)
}

// handle does what the driver's output asks: messages out, storage work
// to the stages, snapshot sends started, then (status published first, so
// that a caller sees its effect) the answers delivered.
func (n *Node) handle(out Output) {
	for _, m := range out.Messages {
		if err := n.cfg.Transport.Send(m); err != nil {
			n.log.Debug().Err(err).Stringer("msg", m).Msg("send failed")
		}
	}
	for _, m := range out.Snapshots {
		n.sendSnapshot(m)
	}
	n.discardSnapshots(out.Discard)
	if len(out.Log) > 0 {
		n.logs.push(out.Log...)
	}
	// Every apply job goes to the stage, however small: the loop never
	// waits on the store. A small commit there can wait for seconds (on a
	// flush rotating Pebble's WAL after a large write, on a disk busy
	// with one), and a loop that waits sends no heartbeat and answers
	// none: followers elected another leader. Running small jobs on the
	// loop when the stage was idle saved two hand-offs per write, which
	// a 3-node cluster did not measurably feel (BENCHMARKS.md).
	if len(out.Apply) > 0 {
		n.applies.push(out.Apply...)
	}
	if !out.Empty() {
		n.dirty = true
	}
	if out.SoftState != nil {
		n.leader.Store(uint64(out.SoftState.Lead))
	}
	if len(out.Answers) > 0 || out.SoftState != nil {
		n.publish()
	}
	for _, a := range out.Answers {
		a.Deliver()
	}
}

// proposeBatch takes p and every proposal waiting behind it (up to
// MaxBatch commands) into one Driver.Propose: one append, one sync.
func (n *Node) proposeBatch(p *proposal) {
	batch := append(n.batch[:0], p)
	count := len(p.p.Cmds)
collect:
	for count < n.cfg.MaxBatch {
		select {
		case q := <-n.propc:
			batch = append(batch, q)
			count += len(q.p.Cmds)
		default:
			break collect
		}
	}
	live := n.live[:0]
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.resp <- proposalResult{err: err}
			continue
		}
		live = append(live, &q.p)
	}
	if len(live) > 0 {
		n.d.Propose(live...)
	}
	clear(batch)
	clear(live)
	n.batch, n.live = batch[:0], live[:0]
}

func (n *Node) proposeOne(p *proposal) {
	if err := p.ctx.Err(); err != nil {
		p.resp <- proposalResult{err: err}
		return
	}
	n.d.Propose(&p.p)
}

// readBatch hands r and every read waiting behind it to the driver: they
// share one ReadIndex request.
func (n *Node) readBatch(r *Read) {
	reads := append(n.readBuf[:0], r)
collect:
	for {
		select {
		case q := <-n.readc:
			reads = append(reads, q)
		default:
			break collect
		}
	}
	n.d.Read(reads...)
	clear(reads)
	n.readBuf = reads[:0]
}

func (n *Node) publish() {
	st := n.d.Status()
	n.status.Store(&st)
	n.dirty = false
}

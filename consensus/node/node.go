package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Node runs one Raft core: a goroutine (the loop) owns the core and every
// field documented as loop-owned; the exported methods talk to it over
// channels and are safe for concurrent use. No method blocks past Stop.
type Node struct {
	cfg Config
	id  domain.NodeID
	log zerolog.Logger

	propc     chan *proposal
	confc     chan *proposal
	readc     chan *readReq
	transferc chan *transferReq
	snapc     chan snapResult
	stopc     chan struct{}
	stopOnce  sync.Once
	// loopDone is closed when the loop has returned; done once the
	// snapshot senders have too, and err is set.
	loopDone chan struct{}
	done     chan struct{}
	snapWG   sync.WaitGroup
	err      error // why the loop stopped; written before loopDone closes
	stopErr  error // what waiters get; likewise

	leader atomic.Uint64
	status atomic.Pointer[consensus.Status]

	// Loop-owned.
	core         *consensus.Raft
	soft         consensus.SoftState
	ticks        uint64
	applied      domain.Index
	lastIndex    domain.Index // last index in the LogStore
	compactedAt  domain.Index // applied index at the last compaction
	appliedBytes uint64       // entry bytes applied since the last compaction
	purged       domain.Index // the log is purged through here
	waiting      map[domain.Index]*proposal
	reads        map[uint64]*readGroup // sent to the core, not yet confirmed
	confirmed    []*readGroup          // confirmed, waiting for applied >= index
	nextRead     uint64
	transfers    []*transferReq
	snapSending  map[domain.NodeID]bool
	dirty        bool         // status changed since it was last published
	diskFull     bool         // Config.DiskFull said so at the last tick
	answered     []*proposal  // succeeded, to answer after publishing
	served       []*readGroup // likewise
	batch        []*proposal
	data         [][]byte
}

type proposal struct {
	ctx    context.Context
	cmds   [][]byte
	member *domain.Membership
	resp   chan proposalResult // capacity 1

	// Set by the loop once appended.
	first, last domain.Index
	term        domain.Term
	results     []domain.Result
	lost        bool // an entry of another term was applied at one of its indexes
}

type proposalResult struct {
	results []domain.Result
	err     error
}

type readReq struct {
	ctx  context.Context
	resp chan error // capacity 1
}

type readGroup struct {
	waiters []*readReq
	sentAt  uint64 // tick of the last core.ReadIndex call
	index   domain.Index
}

type transferReq struct {
	to      domain.NodeID
	resp    chan error // capacity 1
	startAt uint64
}

type snapResult struct {
	to  domain.NodeID
	err error
}

// maxStepBatch bounds the received messages stepped before a Ready is
// handled, so that one sync serves several appends without starving the
// rest of the loop.
const maxStepBatch = 256

// Start loads the durable state (LoadState), builds the core and starts the
// loop. The caller keeps ownership of the stores and the transport.
func Start(cfg Config) (*Node, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := LoadState(cfg.Log, cfg.Vote, cfg.StateMachine)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	core, err := consensus.New(cfg.Raft, st)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.Raft.ID, err)
	}
	last, err := cfg.Log.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("node %d: last index: %w", cfg.Raft.ID, err)
	}
	first, err := cfg.Log.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("node %d: first index: %w", cfg.Raft.ID, err)
	}
	n := &Node{
		cfg:         cfg,
		id:          cfg.Raft.ID,
		log:         cfg.Logger.With().Uint64("node", uint64(cfg.Raft.ID)).Logger(),
		propc:       make(chan *proposal, cfg.MaxBatch),
		confc:       make(chan *proposal),
		readc:       make(chan *readReq, 1024),
		transferc:   make(chan *transferReq),
		snapc:       make(chan snapResult),
		stopc:       make(chan struct{}),
		loopDone:    make(chan struct{}),
		done:        make(chan struct{}),
		core:        core,
		applied:     st.Snapshot.Index,
		lastIndex:   last,
		compactedAt: st.Snapshot.Index,
		purged:      first - 1,
		waiting:     map[domain.Index]*proposal{},
		reads:       map[uint64]*readGroup{},
		snapSending: map[domain.NodeID]bool{},
	}
	n.publish()
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
	return n.propose(ctx, n.propc, &proposal{ctx: ctx, cmds: cmds, resp: make(chan proposalResult, 1)})
}

// ProposeMembership proposes a change of membership to m (a single-server
// change) and returns once this node applied it; errors as for Propose.
func (n *Node) ProposeMembership(ctx context.Context, m domain.Membership) error {
	mc := m.Clone()
	_, err := n.propose(ctx, n.confc, &proposal{ctx: ctx, member: &mc, resp: make(chan proposalResult, 1)})
	return err
}

func (n *Node) propose(ctx context.Context, c chan *proposal, p *proposal) ([]domain.Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case c <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		return nil, n.stopErr
	}
	select {
	case r := <-p.resp:
		return r.results, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.done:
		select {
		case r := <-p.resp:
			return r.results, r.err
		default:
			return nil, n.stopErr
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
	r := &readReq{ctx: ctx, resp: make(chan error, 1)}
	return call(ctx, n, n.readc, r, r.resp)
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
	r := &transferReq{to: to, resp: make(chan error, 1)}
	return call(ctx, n, n.transferc, r, r.resp)
}

// call hands req to the loop on c and waits for its answer on resp. An
// answer the loop gave before it stopped still counts.
func call[R any](ctx context.Context, n *Node, c chan<- R, req R, resp <-chan error) error {
	select {
	case c <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return n.stopErr
	}
	select {
	case err := <-resp:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		select {
		case err := <-resp:
			return err
		default:
			return n.stopErr
		}
	}
}

// run is the loop: the only goroutine that touches the core.
func (n *Node) run() {
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	recvc := n.cfg.Transport.Receive()
	var stopErr error
	for stopErr == nil {
		select {
		case <-ticker.C:
			n.core.Tick()
			n.ticks++
			n.expire()
			n.checkDisk()
			if n.dirty {
				n.publish()
			}
		case m, ok := <-recvc:
			if !ok {
				n.log.Debug().Msg("transport closed: no more messages")
				recvc = nil
				continue
			}
			n.step(m)
		drain:
			for range maxStepBatch {
				select {
				case m, ok := <-recvc:
					if !ok {
						recvc = nil
						break drain
					}
					n.step(m)
				default:
					break drain
				}
			}
		case p := <-n.propc:
			n.proposeBatch(p)
		case p := <-n.confc:
			n.proposeMembership(p)
		case r := <-n.readc:
			n.readBatch(r)
		case t := <-n.transferc:
			n.transfer(t)
		case s := <-n.snapc:
			delete(n.snapSending, s.to)
			if s.err != nil {
				n.log.Debug().Err(s.err).Uint64("to", uint64(s.to)).Msg("snapshot send failed")
			}
			n.core.ReportSnapshot(s.to, s.err == nil)
		case <-n.stopc:
			stopErr = domain.ErrStopped
			continue
		}
		if err := n.handleReady(); err != nil {
			n.log.Error().Err(err).Msg("storage failure: stopping the node")
			n.err = err
			stopErr = fmt.Errorf("%w: node %d: %w", domain.ErrStopped, n.id, err)
		}
	}
	n.stopErr = stopErr
	n.flushAnswers() // applied before the failure: their results stand
	n.shutdown(stopErr)
	n.publish()
	close(n.loopDone)
	n.snapWG.Wait()
	close(n.done)
}

// checkDisk runs every tick: a node whose disk is (nearly) full stops
// taking proposals and, if it leads, hands leadership to the follower
// that has most of its log, so that the cluster keeps taking writes. It
// goes on persisting what a leader sends it: the reserve DiskFull keeps is
// for that, and refusing would only stall the Ready it belongs to.
func (n *Node) checkDisk() {
	if n.cfg.DiskFull == nil {
		return
	}
	full := n.cfg.DiskFull()
	if full != n.diskFull {
		n.diskFull = full
		if full {
			n.log.Warn().Msg("disk nearly full: refusing new writes and handing leadership over")
		} else {
			n.log.Info().Msg("disk space is back: taking writes again")
		}
	}
	if !full || n.soft.Role != consensus.Leader {
		return
	}
	st := n.core.Status()
	best, bestMatch := domain.None, domain.Index(0)
	for _, id := range st.Membership.Voters {
		pr, ok := st.Progress[id]
		if id == n.id || !ok || !pr.RecentActive {
			continue
		}
		if best == domain.None || pr.Match > bestMatch || pr.Match == bestMatch && id < best {
			best, bestMatch = id, pr.Match
		}
	}
	if best == domain.None {
		return // nobody to hand over to: keep leading, refusing writes
	}
	if err := n.core.TransferLeadership(best); err != nil {
		n.log.Debug().Err(err).Uint64("to", uint64(best)).Msg("disk full: hand-over not started")
	}
}

func (n *Node) step(m domain.Message) {
	if err := n.core.Step(m); err != nil {
		n.log.Debug().Err(err).Stringer("msg", m).Msg("message refused")
	}
}

// proposeBatch takes p and every proposal waiting behind it (up to
// MaxBatch commands) into one core.Propose: one append, one sync.
func (n *Node) proposeBatch(p *proposal) {
	batch := append(n.batch[:0], p)
	count := len(p.cmds)
collect:
	for count < n.cfg.MaxBatch {
		select {
		case q := <-n.propc:
			batch = append(batch, q)
			count += len(q.cmds)
		default:
			break collect
		}
	}
	data := n.data[:0]
	live := batch[:0]
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.resp <- proposalResult{err: err}
			continue
		}
		live = append(live, q)
		data = append(data, q.cmds...)
	}
	if len(live) > 0 && n.diskFull {
		err := fmt.Errorf("node %d: disk nearly full, writes refused until space returns: %w", n.id, domain.ErrDiskFull)
		for _, q := range live {
			q.resp <- proposalResult{err: err}
		}
		live = live[:0]
	}
	if len(live) > 0 {
		first, term, err := n.core.Propose(data...)
		if err != nil {
			err = n.proposeErr(err)
			for _, q := range live {
				q.resp <- proposalResult{err: err}
			}
		} else {
			for _, q := range live {
				q.first, q.term = first, term
				q.last = first + domain.Index(len(q.cmds)) - 1
				q.results = make([]domain.Result, len(q.cmds))
				for i := q.first; i <= q.last; i++ {
					n.waiting[i] = q
				}
				first = q.last + 1
			}
		}
	}
	clear(batch)
	clear(data)
	n.batch, n.data = batch[:0], data[:0]
}

func (n *Node) proposeMembership(p *proposal) {
	if err := p.ctx.Err(); err != nil {
		p.resp <- proposalResult{err: err}
		return
	}
	idx, term, err := n.core.ProposeMembership(*p.member)
	if err != nil {
		p.resp <- proposalResult{err: n.proposeErr(err)}
		return
	}
	p.first, p.last, p.term = idx, idx, term
	p.results = make([]domain.Result, 1)
	n.waiting[idx] = p
}

func (n *Node) proposeErr(err error) error {
	if errors.Is(err, domain.ErrNotLeader) {
		return fmt.Errorf("node %d: %w (leader %d)", n.id, err, n.soft.Lead)
	}
	return fmt.Errorf("node %d: %w", n.id, err)
}

// readBatch issues one ReadIndex request for r and every read waiting
// behind it.
func (n *Node) readBatch(r *readReq) {
	g := &readGroup{waiters: []*readReq{r}}
collect:
	for {
		select {
		case q := <-n.readc:
			g.waiters = append(g.waiters, q)
		default:
			break collect
		}
	}
	n.sendRead(g)
}

func (n *Node) sendRead(g *readGroup) {
	n.nextRead++
	id := n.nextRead
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], id)
	if err := n.core.ReadIndex(ctx[:]); err != nil {
		g.fail(fmt.Errorf("node %d: read index: %w", n.id, err))
		return
	}
	g.sentAt = n.ticks
	n.reads[id] = g
}

func (g *readGroup) fail(err error) {
	for _, r := range g.waiters {
		r.resp <- err
	}
}

func (n *Node) transfer(t *transferReq) {
	if err := n.core.TransferLeadership(t.to); err != nil {
		if errors.Is(err, domain.ErrNotLeader) {
			t.resp <- fmt.Errorf("node %d: transfer: %w (leader %d)", n.id, err, n.soft.Lead)
		} else {
			t.resp <- fmt.Errorf("node %d: transfer to %d: %w", n.id, t.to, err)
		}
		return
	}
	if t.to == n.id && n.soft.Role == consensus.Leader {
		t.resp <- nil
		return
	}
	t.startAt = n.ticks
	n.transfers = append(n.transfers, t)
}

// expire runs every tick: it resends reads the core may have lost (a
// forwarded request or its answer dropped) and gives up on transfers.
func (n *Node) expire() {
	timeout := uint64(2 * n.cfg.Raft.ElectionTicks)
	for id, g := range n.reads {
		if n.ticks-g.sentAt >= timeout {
			delete(n.reads, id)
			n.sendRead(g)
		}
	}
	kept := n.transfers[:0]
	for _, t := range n.transfers {
		if n.ticks-t.startAt >= timeout {
			t.resp <- fmt.Errorf("node %d: transfer to %d not done in %d ticks: %w", n.id, t.to, timeout, domain.ErrTransferFailed)
			continue
		}
		kept = append(kept, t)
	}
	clear(n.transfers[len(kept):])
	n.transfers = kept
}

// handleReady handles every Ready the core has, in the documented order.
// An error is a storage failure: the node must stop.
func (n *Node) handleReady() error {
	for n.core.HasReady() {
		rd := n.core.Ready()
		n.dirty = true
		// Messages first: the leader's own append and sync then overlap
		// with replication.
		n.send(rd.Messages)
		if rd.Snapshot != nil {
			if err := n.installSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		if rd.Vote != nil {
			if err := n.cfg.Vote.SetVote(*rd.Vote); err != nil {
				return fmt.Errorf("set vote %+v: %w", *rd.Vote, err)
			}
		}
		if len(rd.Entries) > 0 {
			from := rd.Entries[0].Index
			if from <= n.lastIndex {
				if err := n.cfg.Log.TruncateSuffix(from); err != nil {
					return fmt.Errorf("truncate log from %d: %w", from, err)
				}
			}
			if err := n.cfg.Log.Append(rd.Entries); err != nil {
				return fmt.Errorf("append [%d,%d]: %w", from, rd.Entries[len(rd.Entries)-1].Index, err)
			}
			n.lastIndex = rd.Entries[len(rd.Entries)-1].Index
		}
		if rd.MustSync || rd.Snapshot != nil {
			if err := n.cfg.Log.Sync(); err != nil {
				return fmt.Errorf("sync log: %w", err)
			}
		}
		n.send(rd.MessagesAfterSync)
		if len(rd.CommittedEntries) > 0 {
			if err := n.apply(rd.CommittedEntries); err != nil {
				return err
			}
		}
		for _, rs := range rd.ReadStates {
			n.readState(rs)
		}
		n.serveReads()
		n.core.Advance(rd)
		if rd.SoftState != nil {
			n.softState(*rd.SoftState)
		}
	}
	n.flushAnswers()
	return n.maybeCompact()
}

func (n *Node) send(msgs []domain.Message) {
	for _, m := range msgs {
		if m.Type == domain.MsgSnap {
			n.sendSnapshot(m)
			continue
		}
		if err := n.cfg.Transport.Send(m); err != nil {
			n.log.Debug().Err(err).Stringer("msg", m).Msg("send failed")
		}
	}
}

// sendSnapshot fills m with the state machine's current image and sends
// it, off the loop: one sender per follower at a time; a request for a
// follower that already has one on its way is dropped, as the core hears
// of the one under way through ReportSnapshot.
func (n *Node) sendSnapshot(m domain.Message) {
	if n.snapSending[m.To] {
		return
	}
	n.snapSending[m.To] = true
	n.snapWG.Add(1)
	go func() {
		defer n.snapWG.Done()
		var buf bytes.Buffer
		meta, err := n.cfg.StateMachine.Snapshot(&buf)
		if err == nil {
			m.Snapshot = &domain.Snapshot{Meta: meta, Data: buf.Bytes()}
			err = n.cfg.Transport.Send(m)
		} else {
			n.log.Error().Err(err).Uint64("to", uint64(m.To)).Msg("state machine snapshot failed")
		}
		select {
		case n.snapc <- snapResult{to: m.To, err: err}:
		case <-n.loopDone:
		}
	}()
}

// installSnapshot restores the state machine from a leader's snapshot and
// empties the stored log through it. Stored entries past it are dropped
// too: the core installs a snapshot only when its log does not hold the
// snapshot's last entry, so they follow an entry the snapshot replaced,
// and LoadState could not tell them apart once the entry at the snapshot
// index is purged. Truncating before purging keeps every crash point
// recoverable.
func (n *Node) installSnapshot(s *domain.Snapshot) error {
	meta := s.Meta
	start := time.Now()
	n.log.Info().Uint64("index", uint64(meta.Index)).Uint64("term", uint64(meta.Term)).
		Int("bytes", len(s.Data)).Msg("installing snapshot from the leader")
	if err := n.cfg.StateMachine.Restore(meta, bytes.NewReader(s.Data)); err != nil {
		return fmt.Errorf("restore snapshot at %d (term %d): %w", meta.Index, meta.Term, err)
	}
	first, err := n.cfg.Log.FirstIndex()
	if err != nil {
		return fmt.Errorf("first index: %w", err)
	}
	if n.lastIndex > meta.Index && meta.Index+1 >= first {
		if err := n.cfg.Log.TruncateSuffix(meta.Index + 1); err != nil {
			return fmt.Errorf("truncate log from %d: %w", meta.Index+1, err)
		}
	}
	if err := n.cfg.Log.Purge(meta.Index); err != nil {
		return fmt.Errorf("purge log through %d: %w", meta.Index, err)
	}
	n.lastIndex = meta.Index
	n.purged = max(n.purged, meta.Index)
	n.applied = meta.Index
	n.compactedAt = meta.Index
	// Proposals at or below the snapshot cannot be told apart any more.
	for i, p := range n.waiting {
		if i <= meta.Index {
			n.resolve(p, fmt.Errorf("node %d: entry %d replaced by a snapshot: %w", n.id, i, domain.ErrLeadershipLost))
		}
	}
	n.log.Info().Uint64("index", uint64(meta.Index)).Uint64("term", uint64(meta.Term)).
		Dur("took", time.Since(start)).Msg("snapshot installed")
	return nil
}

// apply applies committed entries in one call and answers the proposals
// waiting on them: by (index, term), so an entry that replaced a proposal
// fails it.
func (n *Node) apply(ents []domain.Entry) error {
	res, err := n.cfg.StateMachine.Apply(ents)
	if err != nil {
		return fmt.Errorf("apply [%d,%d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
	}
	if len(res) != len(ents) {
		return fmt.Errorf("apply [%d,%d]: %d results for %d entries", ents[0].Index, ents[len(ents)-1].Index, len(res), len(ents))
	}
	if last := ents[len(ents)-1].Index; last > n.applied {
		n.applied = last
	}
	for _, e := range ents {
		n.appliedBytes += e.Size()
	}
	if len(n.waiting) == 0 {
		return nil
	}
	for i, e := range ents {
		p, ok := n.waiting[e.Index]
		if !ok {
			continue
		}
		if e.Term != p.term {
			p.lost = true
		} else {
			p.results[e.Index-p.first] = res[i]
		}
		if e.Index == p.last {
			if p.lost {
				n.resolve(p, fmt.Errorf("node %d: entries [%d,%d] of term %d: %w", n.id, p.first, p.last, p.term, domain.ErrLeadershipLost))
			} else {
				n.resolve(p, nil)
			}
		}
	}
	return nil
}

// resolve answers p and forgets it.
func (n *Node) resolve(p *proposal, err error) {
	for i := p.first; i <= p.last; i++ {
		if n.waiting[i] == p {
			delete(n.waiting, i)
		}
	}
	if err != nil {
		p.resp <- proposalResult{err: err}
		return
	}
	n.answered = append(n.answered, p)
}

// flushAnswers publishes the status, then answers the proposals and reads
// that succeeded, so that a caller sees its effect in Status at once.
func (n *Node) flushAnswers() {
	if len(n.answered) == 0 && len(n.served) == 0 {
		return
	}
	n.publish()
	for _, p := range n.answered {
		p.resp <- proposalResult{results: p.results}
	}
	for _, g := range n.served {
		g.fail(nil)
	}
	clear(n.answered)
	clear(n.served)
	n.answered, n.served = n.answered[:0], n.served[:0]
}

func (n *Node) readState(rs consensus.ReadState) {
	if len(rs.Context) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(rs.Context)
	g, ok := n.reads[id]
	if !ok {
		return // answered already, or resent under a new id
	}
	delete(n.reads, id)
	g.index = rs.Index
	n.confirmed = append(n.confirmed, g)
}

// serveReads answers the confirmed reads whose index is applied.
func (n *Node) serveReads() {
	kept := n.confirmed[:0]
	for _, g := range n.confirmed {
		if g.index <= n.applied {
			n.served = append(n.served, g)
			continue
		}
		kept = append(kept, g)
	}
	clear(n.confirmed[len(kept):])
	n.confirmed = kept
}

// softState reacts to a leader or role change: proposals this node can no
// longer see through fail, unconfirmed reads fail, transfers end.
func (n *Node) softState(s consensus.SoftState) {
	old := n.soft
	n.soft = s
	n.leader.Store(uint64(s.Lead))
	if old == s {
		return
	}
	st := n.core.Status()
	n.status.Store(&st)
	n.dirty = false
	if old.Lead != s.Lead || (old.Role == consensus.Leader) != (s.Role == consensus.Leader) {
		n.log.Info().Uint64("term", uint64(st.Term)).Uint64("leader", uint64(s.Lead)).
			Stringer("role", s.Role).Msg("leader changed")
	} else {
		n.log.Debug().Uint64("term", uint64(st.Term)).Stringer("role", s.Role).Msg("role changed")
	}
	if old.Role == consensus.Leader && s.Role != consensus.Leader {
		// Entries above the commit index may never commit, and this node
		// will not hear which; those at or below it will apply soon and be
		// answered by their term then.
		for i, p := range n.waiting {
			if i > st.Commit {
				n.resolve(p, fmt.Errorf("node %d: lost leadership with entries [%d,%d] uncommitted: %w", n.id, p.first, p.last, domain.ErrLeadershipLost))
			}
		}
	}
	if old.Lead != s.Lead {
		for id, g := range n.reads {
			delete(n.reads, id)
			g.fail(fmt.Errorf("node %d: leader changed from %d to %d before the read was confirmed: %w", n.id, old.Lead, s.Lead, domain.ErrLeadershipLost))
		}
		if s.Lead != domain.None {
			for _, t := range n.transfers {
				if s.Lead == t.to {
					t.resp <- nil
				} else {
					t.resp <- fmt.Errorf("node %d: transfer to %d: node %d became leader: %w", n.id, t.to, s.Lead, domain.ErrTransferFailed)
				}
			}
			clear(n.transfers)
			n.transfers = n.transfers[:0]
		}
	}
}

// maybeCompact compacts once SnapshotEntries entries (or SnapshotBytes
// bytes of entries) were applied since the last compaction: the state machine is synced first, so that a restart
// finds every entry after its durable applied point.
func (n *Node) maybeCompact() error {
	if n.applied-n.compactedAt < domain.Index(n.cfg.SnapshotEntries) && n.appliedBytes < n.cfg.SnapshotBytes {
		return nil
	}
	n.compactedAt, n.appliedBytes = n.applied, 0
	if n.applied <= domain.Index(n.cfg.TrailingEntries) {
		return nil
	}
	idx := n.applied - domain.Index(n.cfg.TrailingEntries)
	if idx <= n.purged {
		return nil
	}
	if err := n.cfg.StateMachine.Sync(); err != nil {
		return fmt.Errorf("sync state machine: %w", err)
	}
	if err := n.core.Compact(idx); err != nil {
		n.log.Debug().Err(err).Uint64("index", uint64(idx)).Msg("core refused compaction")
		return nil
	}
	if err := n.cfg.Log.Purge(idx); err != nil {
		return fmt.Errorf("purge log through %d: %w", idx, err)
	}
	n.purged = idx
	n.log.Debug().Uint64("index", uint64(idx)).Uint64("applied", uint64(n.applied)).Msg("log compacted")
	return nil
}

// shutdown fails everything waiting with err.
func (n *Node) shutdown(err error) {
	for _, p := range n.waiting {
		n.resolve(p, err)
	}
	for id, g := range n.reads {
		delete(n.reads, id)
		g.fail(err)
	}
	for _, g := range n.confirmed {
		g.fail(err)
	}
	n.confirmed = nil
	for _, t := range n.transfers {
		t.resp <- err
	}
	n.transfers = nil
}

func (n *Node) publish() {
	st := n.core.Status()
	n.status.Store(&st)
	n.dirty = false
}

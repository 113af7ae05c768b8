package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.KV = (*Service)(nil)

// Defaults of Config's fields.
const (
	DefaultLeaderWait   = time.Second
	DefaultRelayTimeout = 10 * time.Second
	// DefaultExpiryInterval and DefaultExpirySample: every 100ms the
	// leader looks at up to 200 keys of each database for expired ones.
	DefaultExpiryInterval = 100 * time.Millisecond
	DefaultExpirySample   = 200
)

// Config configures a Service. The zero value works for a single node.
type Config struct {
	// ClientAddrs maps every node's id to its client (RESP) address, for
	// relaying to the leader and for redirects. Default: none (a follower
	// then answers domain.ErrNoLeader to writes).
	ClientAddrs map[domain.NodeID]string
	// Relay carries a follower's batches with writes to the leader
	// (adapters/relay). The caller keeps ownership: Close does not close
	// it. Default none: a follower answers writes with a
	// *ports.RedirectError, as with Redirect.
	Relay ports.Relay
	// Redirect makes a follower answer writes with a *ports.RedirectError
	// instead of relaying them. Default false.
	Redirect bool
	// LeaderWait bounds how long a batch waits for a leader to be known (or
	// retries writes that were certainly not appended) before failing with
	// domain.ErrNoLeader. Default 1s; set it to about one election timeout.
	LeaderWait time.Duration
	// RelayTimeout bounds one relayed batch, from sending to the last
	// reply. Default 10s.
	RelayTimeout time.Duration
	// ExpiryInterval is how often the leader samples keys for expired ones
	// and proposes their deletion. Default 100ms; negative disables it.
	ExpiryInterval time.Duration
	// ExpirySample is how many keys of each database one round looks at
	// (the next round goes on where it stopped). Default 200.
	ExpirySample int
	// Engine runs reads; it must match the state machine's. Default: the
	// zero Engine (16 databases).
	Engine keyspace.Engine
	// Logger receives the service's logs. Default: discard.
	Logger *zerolog.Logger
	// Applied, if set, wraps the node's state machine, so that blocked
	// clients (BLPOP ...) look at their keys as soon as entries apply.
	// Default none: they look every 100ms.
	Applied *AppliedSignal
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.LeaderWait == 0 {
		c.LeaderWait = DefaultLeaderWait
	}
	if c.RelayTimeout == 0 {
		c.RelayTimeout = DefaultRelayTimeout
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = DefaultExpiryInterval
	}
	if c.ExpirySample <= 0 {
		c.ExpirySample = DefaultExpirySample
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
}

// Validate reports a configuration the service cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.LeaderWait < 0 || c.RelayTimeout < 0:
		return fmt.Errorf("app: config: negative duration (leader wait %v, relay timeout %v)", c.LeaderWait, c.RelayTimeout)
	}
	for id, a := range c.ClientAddrs {
		if id == domain.None || a == "" {
			return fmt.Errorf("app: config: bad client address %d=%q", id, a)
		}
	}
	return nil
}

// Node is what the service needs of a Raft node; *node.Node implements it
// (cmd/seshatd asserts it).
type Node interface {
	ID() domain.NodeID
	Leader() domain.NodeID
	Status() consensus.Status
	Propose(ctx context.Context, cmds ...[]byte) ([]domain.Result, error)
	ReadIndex(ctx context.Context) error
	TransferLeadership(ctx context.Context, to domain.NodeID) error
}

// Service implements ports.KV. Its methods are safe for concurrent use.
type Service struct {
	cfg    Config
	node   Node
	kv     ports.KVReader
	engine keyspace.Engine
	log    zerolog.Logger

	clockMu   sync.Mutex
	lastStamp int64

	stopReaper context.CancelFunc
	reaperDone chan struct{}

	addrs addrBook // client addresses from the replicated book (membership.go)
	// removed is set once this node saw itself retired in the book: it
	// then refuses writes (membership.go).
	removed atomic.Bool

	// gate is held shared by every Do and exclusively by HandOver.
	gate   sync.RWMutex
	mu     sync.Mutex
	closed bool

	blk blockers // blocked clients (blocking.go)
}

// New returns a service over n and its state machine's reader kv.
func New(n Node, kv ports.KVReader, cfg Config) (*Service, error) {
	cfg.EnsureDefaults()
	cfg.ClientAddrs = maps.Clone(cfg.ClientAddrs)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:    cfg,
		node:   n,
		kv:     kv,
		engine: cfg.Engine,
		log:    cfg.Logger.With().Str("component", "app").Logger(),
	}
	s.blk.init(n.ID())
	ctx, cancel := context.WithCancel(context.Background())
	s.stopReaper, s.reaperDone = cancel, make(chan struct{})
	go s.reaper(ctx)
	return s, nil
}

// Close fails every later Do with domain.ErrStopped. It stops neither the
// node nor the relay.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stopReaper()
	<-s.reaperDone
	s.closeBlocking()
}

// maxReapCalls bounds the conditional deletes of one reaper entry.
const maxReapCalls = 1000

// reaper runs on every node but acts only on the leader: it samples each
// database for keys past their deadline and proposes their deletion, each
// conditional on the deadline being unchanged (seshat.reap), so a key
// rewritten meanwhile survives. Reads already treat such keys as absent:
// this only reclaims their space.
func (s *Service) reaper(ctx context.Context) {
	defer close(s.reaperDone)
	if s.cfg.ExpiryInterval < 0 {
		return
	}
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	// The client databases, then their tombstones' (keyspace.ShadowBase),
	// then the engine's own (expired WATCH registrations).
	cursors := make([]uint64, 2*s.engine.DatabaseCount()+1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round that finds many expired keys is followed at once by
		// another (up to 10 per tick), as Redis's expiry cycle repeats
		// while a quarter of its sample has expired: deletes (and their
		// tombstones) can come faster than one sample per tick.
		for round := 0; round < 10 && s.node.Leader() == s.node.ID() && ctx.Err() == nil; round++ {
			if n := s.reapRound(ctx, cursors); n < s.cfg.ExpirySample/4 {
				break
			}
		}
	}
}

// reapRound samples every database once and proposes the deletion of the
// expired keys found; it returns how many it proposed.
func (s *Service) reapRound(ctx context.Context, cursors []uint64) int {
	calls, err := s.expired(cursors)
	if err != nil {
		s.log.Warn().Err(err).Msg("expiry: sampling keys failed")
		return 0
	}
	found := len(calls)
	for len(calls) > 0 {
		n := min(len(calls), maxReapCalls)
		cmd := domain.EncodeCommand(domain.Command{Time: s.now(), Calls: calls[:n]})
		calls = calls[n:]
		pctx, cancel := context.WithTimeout(ctx, 2*s.cfg.LeaderWait)
		_, err := s.node.Propose(pctx, cmd)
		cancel()
		if err != nil {
			s.log.Debug().Err(err).Msg("expiry: proposing deletions failed; the next round retries")
			return 0
		}
		s.log.Debug().Int("keys", n).Msg("expiry: deleted expired keys")
	}
	return found
}

// expired samples every database from its cursor and returns the
// seshat.reap calls for the expired keys found.
func (s *Service) expired(cursors []uint64) ([]domain.Call, error) {
	var calls []domain.Call
	err := s.kv.View(func(st keyspace.Store) error {
		now, err := s.readTime(st)
		if err != nil {
			return err
		}
		n := len(cursors) / 2
		for i := range cursors {
			db := i
			switch {
			case i == len(cursors)-1:
				db = keyspace.SystemDB
			case i >= n:
				db = keyspace.ShadowBase + i - n
			}
			keys, deadlines, next, err := s.engine.Expired(st, now, db, cursors[i], s.cfg.ExpirySample)
			if err != nil {
				return err
			}
			cursors[i] = next
			for i, k := range keys {
				calls = append(calls, domain.Call{Args: [][]byte{
					[]byte("seshat.reap"), []byte(strconv.Itoa(db)), k, []byte(strconv.FormatInt(deadlines[i], 10)),
				}})
			}
		}
		return nil
	})
	return calls, err
}

func (s *Service) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Status implements ports.KV.
func (s *Service) Status() ports.KVStatus {
	st := s.node.Status()
	return ports.KVStatus{
		ID:         st.ID,
		Role:       st.Role.String(),
		Leader:     st.Lead,
		LeaderAddr: func() string { a, _ := s.clientAddr(st.Lead); return a }(),
		Term:       st.Term,
		Commit:     st.Commit,
		Applied:    st.Applied,
		LastIndex:  st.LastIndex,
		Membership: st.Membership,
		LostData:   lostData(st),
	}
}

// HandOver prepares a shutdown: it waits for the batches in flight, holds
// new ones back and, if this node is the leader, transfers leadership to
// the follower with the longest matching log, waiting at most until ctx
// ends. The batches held back run once it returns (against the new
// leader). It returns the transfer's error, or nil if this node did not
// lead.
func (s *Service) HandOver(ctx context.Context) error {
	s.gate.Lock()
	defer s.gate.Unlock()
	st := s.node.Status()
	if st.Role != consensus.Leader {
		return nil
	}
	// CheckQuorum clears every follower's RecentActive once per election
	// timeout, and the next heartbeat's answer sets it again: a hand-over
	// that falls in between waits for that answer rather than give up.
	to, best := handOverTarget(st)
	for wait := time.Now().Add(handOverWait); to == domain.None && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(5 * time.Millisecond)
		if st = s.node.Status(); st.Role != consensus.Leader {
			return nil
		}
		to, best = handOverTarget(st)
	}
	if to == domain.None {
		return fmt.Errorf("app: hand over: no active follower to transfer leadership to")
	}
	s.log.Info().Uint64("to", uint64(to)).Uint64("match", uint64(best)).Msg("transferring leadership")
	if err := s.node.TransferLeadership(ctx, to); err != nil {
		return fmt.Errorf("app: hand over to %d: %w", to, err)
	}
	// Wait until this node sees the new leader, so that held-back batches
	// are relayed to it rather than refused.
	for s.node.Leader() == s.node.ID() && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// handOverWait bounds how long HandOver waits for a follower to show
// itself active: a few heartbeat intervals at seshatd's default tick.
const handOverWait = 250 * time.Millisecond

// handOverTarget is the active voting follower with the highest match
// (the lowest id among equals), or domain.None.
func handOverTarget(st consensus.Status) (to domain.NodeID, best domain.Index) {
	for id, pr := range st.Progress {
		if id == st.ID || !st.Membership.IsVoter(id) || !pr.RecentActive {
			continue
		}
		if to == domain.None || pr.Match > best || (pr.Match == best && id < to) {
			to, best = id, pr.Match
		}
	}
	return to, best
}

// A group of writes proposed together is cut at maxGroupCmds commands or
// once it holds maxGroupBytes, well below the core's bounds on uncommitted
// entries and bytes (a proposal past those is dropped).
const (
	maxGroupCmds  = 1024
	maxGroupBytes = 8 << 20
)

// errNotRun is the error of a request that was not run because an earlier
// one of its batch failed with leadership changing.
var errNotRun = fmt.Errorf("app: not run, an earlier command of the pipeline failed: %w", domain.ErrNotLeader)

// Do implements ports.KV.
func (s *Service) Do(ctx context.Context, reqs []ports.Request, opts ports.DoOptions) []ports.Reply {
	replies := make([]ports.Reply, len(reqs))
	if len(reqs) == 0 {
		return replies
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if s.isClosed() {
		fill(replies, 0, domain.ErrStopped)
		return replies
	}
	if !hasWrite(reqs) {
		s.readRun(ctx, reqs, replies, 0, len(reqs), time.Now().Add(s.cfg.LeaderWait), true)
		return replies
	}
	if s.removed.Load() {
		fill(replies, 0, errors.New("this node was removed from the cluster and takes no writes: send them to a member"))
		return replies
	}
	deadline := time.Now().Add(s.cfg.LeaderWait)
	var cause error // why the last attempt must be retried
	for {
		lead, err := s.waitLeader(ctx, deadline)
		if err != nil {
			fill(replies, 0, err)
			return replies
		}
		var retry bool
		switch {
		case lead == s.node.ID():
			retry, cause = s.execute(ctx, reqs, replies)
		case opts.Relayed || s.cfg.Redirect || s.cfg.Relay == nil:
			addr, ok := s.clientAddr(lead)
			if !ok {
				fill(replies, 0, fmt.Errorf("app: no client address for leader %d: %w", lead, domain.ErrNoLeader))
				return replies
			}
			fill(replies, 0, &ports.RedirectError{Leader: lead, Addr: addr})
			return replies
		default:
			retry, cause = s.relayBatch(ctx, lead, reqs, replies)
		}
		if !retry {
			return replies
		}
		if !time.Now().Before(deadline) {
			if errors.Is(cause, domain.ErrProposalDropped) || errors.Is(cause, domain.ErrDiskFull) {
				fill(replies, 0, fmt.Errorf("app: not run: %w", cause))
			} else {
				fill(replies, 0, fmt.Errorf("app: no leader accepted the batch within %v: %w (last: %v)", s.cfg.LeaderWait, domain.ErrNoLeader, cause))
			}
			return replies
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			fill(replies, 0, err)
			return replies
		}
	}
}

// waitLeader returns the leader this node knows of, waiting for one until
// deadline.
func (s *Service) waitLeader(ctx context.Context, deadline time.Time) (domain.NodeID, error) {
	for {
		if l := s.node.Leader(); l != domain.None {
			return l, nil
		}
		if !time.Now().Before(deadline) {
			return domain.None, fmt.Errorf("app: no leader known after %v: %w", s.cfg.LeaderWait, domain.ErrNoLeader)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return domain.None, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func hasWrite(reqs []ports.Request) bool {
	for _, r := range reqs {
		if r.IsWrite() {
			return true
		}
	}
	return false
}

func fill(replies []ports.Reply, from int, err error) {
	for i := from; i < len(replies); i++ {
		replies[i] = ports.ErrReply(err)
	}
}

// execute runs reqs on this node as the leader. Reads before the batch's
// first write are served after one ReadIndex. From the first write to the
// last, every request, reads included, is proposed together (one entry
// each, in groups of bounded size): a read between writes must see them,
// and running it in the log costs no round trip of its own. Reads after
// the last write are served from the local state once the writes have
// applied, with no ReadIndex: they were sent before the writes were
// answered, so reading just after their commit is a valid linearization.
//
// It returns true, with nothing run, when the batch must be retried (this
// node turned out not to be the leader, or the proposal was dropped,
// before any write of the batch was appended).
func (s *Service) execute(ctx context.Context, reqs []ports.Request, replies []ports.Reply) (retry bool, cause error) {
	deadline := time.Now().Add(s.cfg.LeaderWait)
	first, last := -1, -1
	for i, r := range reqs {
		if r.IsWrite() {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first > 0 {
		s.readRun(ctx, reqs, replies, 0, first, deadline, true)
	}
	for i := first; i <= last; {
		// A group, cut at maxGroupCmds or maxGroupBytes.
		var cmds [][]byte
		size := 0
		j := i
		for j <= last && len(cmds) < maxGroupCmds && size < maxGroupBytes {
			cmd := s.encode(reqs[j])
			shareLarge(reqs[j], cmd)
			cmds = append(cmds, cmd)
			size += len(cmd)
			j++
		}
		results, err := s.node.Propose(ctx, cmds...)
		if err != nil {
			if i == first && (errors.Is(err, domain.ErrNotLeader) || errors.Is(err, domain.ErrProposalDropped) || errors.Is(err, domain.ErrDiskFull)) {
				clear(replies)
				return true, err
			}
			fill(replies[:j], i, proposeError(err))
			fill(replies, j, errNotRun)
			return false, nil
		}
		for k := range results {
			replies[i+k] = ports.Reply{Value: results[k].Reply}
		}
		i = j
	}
	if last+1 < len(reqs) {
		s.readRun(ctx, reqs, replies, last+1, len(reqs), deadline, false)
	}
	return false, nil
}

// proposeError classifies a failed proposal of writes that may have been
// appended.
func proposeError(err error) error {
	switch {
	case errors.Is(err, domain.ErrLeadershipLost), errors.Is(err, domain.ErrStopped):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", domain.ErrLeadershipLost, err)
	case errors.Is(err, domain.ErrNotLeader), errors.Is(err, domain.ErrProposalDropped), errors.Is(err, domain.ErrDiskFull):
		// Not appended, but an earlier group of the batch was.
		return fmt.Errorf("app: %w: %w", errNotRun, err)
	}
	return err
}

// now returns the time stamp for an entry proposed now: the wall clock in
// Unix milliseconds, never below a stamp this service handed out before.
// (The state machine also never lets applied time go back, across leaders.)
func (s *Service) now() int64 {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	t := time.Now().UnixMilli()
	if t < s.lastStamp {
		t = s.lastStamp
	}
	s.lastStamp = t
	return t
}

// encode turns a write request into a command's wire form, stamped with
// the leader's time.
func (s *Service) encode(r ports.Request) []byte {
	c := domain.Command{Time: s.now(), Tx: r.IsTx, Watch: r.Watch}
	if r.IsTx {
		c.Calls = r.Tx
	} else {
		c.Calls = []domain.Call{r.Call}
	}
	return domain.EncodeCommand(c)
}

// readBarrier waits for a ReadIndex, retried on errors that are safe to
// retry until deadline.
func (s *Service) readBarrier(ctx context.Context, deadline time.Time) error {
	for {
		// One attempt may wait on a leader that is gone: bound it, so that
		// the batch answers ErrNoLeader rather than hang. Not by less
		// than this node's large backlog takes: ReadIndex returns once
		// this node applied through the read index, so a read on a
		// follower still writing a 256 MB entry waits for it (it was cut
		// at 2 s and answered CLUSTERDOWN with the leader up).
		actx, cancel := ports.BacklogContext(ctx, 2*s.cfg.LeaderWait, relayBytesPerSecond, s.backlog())
		err := s.node.ReadIndex(actx)
		cancel()
		if err == nil {
			return nil
		}
		retryable := errors.Is(err, domain.ErrNoLeader) || errors.Is(err, domain.ErrLeadershipLost) ||
			errors.Is(err, domain.ErrProposalDropped) || (ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded))
		if !retryable {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("app: read: %w", domain.ErrNoLeader)
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// readRun answers the reads reqs[from:to] on one view of the applied
// state, after one read barrier if barrier is set.
func (s *Service) readRun(ctx context.Context, reqs []ports.Request, replies []ports.Reply, from, to int, deadline time.Time, barrier bool) {
	if barrier {
		if err := s.readBarrier(ctx, deadline); err != nil {
			fill(replies[:to], from, err)
			return
		}
	}
	err := s.kv.View(func(st keyspace.Store) error {
		now, err := s.readTime(st)
		if err != nil {
			return err
		}
		for i := from; i < to; i++ {
			v, err := s.engine.Read(st, now, reqs[i].Call)
			if err != nil {
				return err
			}
			replies[i] = ports.Reply{Value: v}
		}
		return nil
	})
	if err != nil {
		fill(replies[:to], from, err)
	}
}

// readTime is the time a read runs at: this node's clock, or the applied
// state's if that is ahead, so a key the state machine saw expire stays
// expired here.
func (s *Service) readTime(st keyspace.Store) (int64, error) {
	applied, err := keyspace.Clock(st)
	if err != nil {
		return 0, err
	}
	return max(applied, time.Now().UnixMilli()), nil
}

// Versions implements ports.KV. A WATCH is a write (keyspace.WatchCommand):
// it registers the keys, so that a FLUSHDB can tell that it removed a
// watched key, and reads their versions at its point in the log.
func (s *Service) Versions(ctx context.Context, db int, keys [][]byte) ([]uint64, error) {
	args := append([][]byte{[]byte(keyspace.WatchCommand), []byte(strconv.Itoa(db))}, keys...)
	r := s.Do(ctx, []ports.Request{{Call: domain.Call{DB: db, Args: args}}}, ports.DoOptions{})[0]
	if r.Err != nil {
		return nil, r.Err
	}
	if r.Value.Kind != domain.ReplyArray || len(r.Value.Array) != len(keys) {
		return nil, fmt.Errorf("app: watch: unexpected reply %v", r.Value)
	}
	out := make([]uint64, len(keys))
	for i, v := range r.Value.Array {
		out[i] = uint64(v.Int)
	}
	return out, nil
}

// Keyspace implements ports.KV.
func (s *Service) Keyspace(n int) ([]ports.DBSize, error) {
	out := make([]ports.DBSize, n)
	err := s.kv.View(func(st keyspace.Store) error {
		for db := range out {
			k, e, err := st.Len(db)
			if err != nil {
				return err
			}
			out[db] = ports.DBSize{Keys: k, Expires: e}
		}
		return nil
	})
	return out, err
}

// relayBatch relays reqs to the leader lead and fills replies. It returns
// true, with nothing run, when the batch must be retried: it was not sent,
// or the node asked refused it (it no longer leads).
func (s *Service) relayBatch(ctx context.Context, lead domain.NodeID, reqs []ports.Request, replies []ports.Reply) (retry bool, cause error) {
	addr, ok := s.clientAddr(lead)
	if !ok {
		fill(replies, 0, fmt.Errorf("app: no client address for leader %d: %w", lead, domain.ErrNoLeader))
		return false, nil
	}
	rctx, cancel := s.relayContext(ctx, reqs)
	defer cancel()
	vals, err := s.cfg.Relay.Do(rctx, addr, reqs)
	switch {
	case err == nil && len(vals) != len(reqs):
		// A broken port: the outcome is unknown.
		fill(replies, 0, fmt.Errorf("app: relay to %s returned %d replies for %d requests: %w", addr, len(vals), len(reqs), domain.ErrLeadershipLost))
	case err == nil:
		for i, v := range vals {
			replies[i] = ports.Reply{Value: v}
		}
	case errors.Is(err, domain.ErrUnreachable) || errors.Is(err, domain.ErrRelayRefused):
		s.log.Debug().Err(err).Uint64("leader", uint64(lead)).Str("addr", addr).Msg("relay: not run, retrying")
		return true, err
	default:
		if errors.Is(err, domain.ErrLeadershipLost) {
			s.log.Warn().Err(err).Uint64("leader", uint64(lead)).Str("addr", addr).Msg("relay failed after sending: outcome unknown")
		}
		fill(replies, 0, err)
	}
	return false, nil
}

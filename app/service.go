package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.KV = (*Service)(nil)

// Defaults of Config's fields.
const (
	DefaultLeaderWait   = time.Second
	DefaultRelayTimeout = 10 * time.Second
	DefaultRelayIdle    = 16
	DefaultDialTimeout  = time.Second
)

// Config configures a Service. The zero value works for a single node.
type Config struct {
	// ClientAddrs maps every node's id to its client (RESP) address, for
	// relaying to the leader and for redirects. Default: none (a follower
	// then answers domain.ErrNoLeader to writes).
	ClientAddrs map[domain.NodeID]string
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
	// DialTimeout bounds dialing the leader for a relay. Default 1s.
	DialTimeout time.Duration
	// RelayIdle is the number of idle relay connections kept. Default 16.
	RelayIdle int
	// Logger receives the service's logs. Default: discard.
	Logger *zerolog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.LeaderWait == 0 {
		c.LeaderWait = DefaultLeaderWait
	}
	if c.RelayTimeout == 0 {
		c.RelayTimeout = DefaultRelayTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RelayIdle == 0 {
		c.RelayIdle = DefaultRelayIdle
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
}

// Validate reports a configuration the service cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.LeaderWait < 0 || c.RelayTimeout < 0 || c.DialTimeout < 0:
		return fmt.Errorf("app: config: negative duration (leader wait %v, relay timeout %v, dial timeout %v)", c.LeaderWait, c.RelayTimeout, c.DialTimeout)
	case c.RelayIdle < 0:
		return fmt.Errorf("app: config: RelayIdle %d < 0", c.RelayIdle)
	}
	for id, a := range c.ClientAddrs {
		if id == domain.None || a == "" {
			return fmt.Errorf("app: config: bad client address %d=%q", id, a)
		}
	}
	return nil
}

// Node is what the service needs of a Raft node; *node.Node implements it.
type Node interface {
	ID() domain.NodeID
	Leader() domain.NodeID
	Status() consensus.Status
	Propose(ctx context.Context, cmds ...[]byte) ([]domain.Result, error)
	ReadIndex(ctx context.Context) error
	TransferLeadership(ctx context.Context, to domain.NodeID) error
}

var _ Node = (*node.Node)(nil)

// Service implements ports.KV. Its methods are safe for concurrent use.
type Service struct {
	cfg   Config
	node  Node
	kv    ports.KVReader
	log   zerolog.Logger
	relay *relayPool

	// gate is held shared by every Do and exclusively by HandOver.
	gate   sync.RWMutex
	mu     sync.Mutex
	closed bool
}

// New returns a service over n and its state machine's reader kv.
func New(n Node, kv ports.KVReader, cfg Config) (*Service, error) {
	cfg.EnsureDefaults()
	cfg.ClientAddrs = maps.Clone(cfg.ClientAddrs)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Service{
		cfg:  cfg,
		node: n,
		kv:   kv,
		log:  cfg.Logger.With().Str("component", "app").Logger(),
	}
	s.relay = newRelayPool(cfg.DialTimeout, cfg.RelayIdle)
	return s, nil
}

// Close fails every later Do with domain.ErrStopped and closes the idle
// relay connections. It does not stop the node.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.relay.close()
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
		LeaderAddr: s.cfg.ClientAddrs[st.Lead],
		Term:       st.Term,
		Commit:     st.Commit,
		Applied:    st.Applied,
		LastIndex:  st.LastIndex,
		Membership: st.Membership,
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
	var to domain.NodeID
	var best domain.Index
	for id, pr := range st.Progress {
		if id == st.ID || !st.Membership.IsVoter(id) || !pr.RecentActive {
			continue
		}
		if to == domain.None || pr.Match > best || (pr.Match == best && id < to) {
			to, best = id, pr.Match
		}
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
		s.readRun(ctx, reqs, replies, 0, len(reqs), time.Now().Add(s.cfg.LeaderWait))
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
		case opts.Relayed || s.cfg.Redirect:
			addr, ok := s.cfg.ClientAddrs[lead]
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
		if r.Kind.IsWrite() {
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

// overlayValue is a key's value after the writes of the pending group.
type overlayValue struct {
	value   []byte
	present bool
}

// execute runs reqs on this node as the leader. It returns true, with
// nothing run, when the batch must be retried (this node turned out not to
// be the leader, or the proposal was dropped, before any write of the batch
// was appended).
func (s *Service) execute(ctx context.Context, reqs []ports.Request, replies []ports.Reply) (retry bool, cause error) {
	deadline := time.Now().Add(s.cfg.LeaderWait)
	overlay := map[string]overlayValue{}
	var cmds [][]byte
	var cmdReq []int      // request index of each command
	var fromOverlay []int // reads answered from overlay, valid if the group applies
	appended := false     // a write of this batch may have been appended
	groupBytes := 0

	// flush proposes the pending group; it returns false if the batch must
	// stop (the failed group's requests and the rest are answered).
	flush := func(next int) (ok bool) {
		if len(cmds) == 0 {
			clear(overlay)
			return true
		}
		results, err := s.node.Propose(ctx, cmds...)
		if err != nil {
			if !appended && (errors.Is(err, domain.ErrNotLeader) || errors.Is(err, domain.ErrProposalDropped) || errors.Is(err, domain.ErrDiskFull)) {
				retry, cause = true, err
				return false
			}
			err = proposeError(err)
			for _, i := range cmdReq {
				replies[i] = ports.ErrReply(err)
			}
			for _, i := range fromOverlay {
				replies[i] = ports.ErrReply(err)
			}
			fill(replies, next, errNotRun)
			return false
		}
		appended = true
		for k, i := range cmdReq {
			r := results[k]
			switch {
			case r.Err != nil:
				replies[i] = ports.ErrReply(r.Err)
			case reqs[i].Kind == ports.ReqDel:
				replies[i] = ports.Reply{Kind: ports.ReplyInt, Int: r.N}
			default:
				replies[i] = ports.Reply{Kind: ports.ReplyOK}
			}
		}
		cmds, cmdReq, fromOverlay = cmds[:0], cmdReq[:0], fromOverlay[:0]
		clear(overlay)
		return true
	}

	for i := 0; i < len(reqs); {
		r := reqs[i]
		if r.Kind.IsWrite() {
			if len(cmds) >= maxGroupCmds || groupBytes >= maxGroupBytes {
				if !flush(i) {
					if retry {
						clear(replies)
					}
					return retry, cause
				}
				groupBytes = 0
			}
			cmd := encode(r)
			groupBytes += len(cmd)
			cmds = append(cmds, cmd)
			cmdReq = append(cmdReq, i)
			for k, key := range r.Keys {
				if r.Kind == ports.ReqDel {
					overlay[string(key)] = overlayValue{}
				} else {
					overlay[string(key)] = overlayValue{value: r.Values[k], present: true}
				}
			}
			i++
			continue
		}
		if rep, ok := readOverlay(r, overlay); ok {
			replies[i] = rep
			fromOverlay = append(fromOverlay, i)
			i++
			continue
		}
		if !flush(i) {
			if retry {
				clear(replies)
			}
			return retry, cause
		}
		// A run of reads: every read up to the next write.
		j := i
		for j < len(reqs) && !reqs[j].Kind.IsWrite() {
			j++
		}
		s.readRun(ctx, reqs, replies, i, j, deadline)
		i = j
	}
	if !flush(len(reqs)) && retry {
		clear(replies)
	}
	return retry, cause
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

// encode turns a write request into a command's wire form.
func encode(r ports.Request) []byte {
	c := domain.Command{Ops: make([]domain.Op, len(r.Keys))}
	for k, key := range r.Keys {
		if r.Kind == ports.ReqDel {
			c.Ops[k] = domain.Op{Kind: domain.OpDel, Key: key}
		} else {
			c.Ops[k] = domain.Op{Kind: domain.OpSet, Key: key, Value: r.Values[k]}
		}
	}
	return domain.EncodeCommand(c)
}

// readOverlay answers a read from the pending writes if all its keys were
// written by them.
func readOverlay(r ports.Request, overlay map[string]overlayValue) (ports.Reply, bool) {
	if len(overlay) == 0 {
		return ports.Reply{}, false
	}
	for _, k := range r.Keys {
		if _, ok := overlay[string(k)]; !ok {
			return ports.Reply{}, false
		}
	}
	return answer(r, func(k []byte) ([]byte, bool, error) {
		v := overlay[string(k)]
		return v.value, v.present, nil
	}), true
}

// answer computes a read's reply with get.
func answer(r ports.Request, get func([]byte) ([]byte, bool, error)) ports.Reply {
	switch r.Kind {
	case ports.ReqGet:
		v, ok, err := get(r.Keys[0])
		if err != nil {
			return ports.ErrReply(err)
		}
		if !ok {
			return ports.Reply{Kind: ports.ReplyNil}
		}
		return ports.Reply{Kind: ports.ReplyBulk, Value: nonNil(v)}
	case ports.ReqExists:
		var n int64
		for _, k := range r.Keys {
			_, ok, err := get(k)
			if err != nil {
				return ports.ErrReply(err)
			}
			if ok {
				n++
			}
		}
		return ports.Reply{Kind: ports.ReplyInt, Int: n}
	case ports.ReqMGet:
		vals := make([][]byte, len(r.Keys))
		for i, k := range r.Keys {
			v, ok, err := get(k)
			if err != nil {
				return ports.ErrReply(err)
			}
			if ok {
				vals[i] = nonNil(v)
			}
		}
		return ports.Reply{Kind: ports.ReplyArray, Values: vals}
	}
	return ports.ErrReply(fmt.Errorf("app: %v is not a read", r.Kind))
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// readRun answers the reads reqs[from:to] after one ReadIndex, retried on
// errors that are safe to retry until deadline.
func (s *Service) readRun(ctx context.Context, reqs []ports.Request, replies []ports.Reply, from, to int, deadline time.Time) {
	for {
		// One attempt may wait on a leader that is gone: bound it, so that
		// the batch answers ErrNoLeader rather than hang.
		actx, cancel := context.WithTimeout(ctx, 2*s.cfg.LeaderWait)
		err := s.node.ReadIndex(actx)
		cancel()
		if err == nil {
			break
		}
		retryable := errors.Is(err, domain.ErrNoLeader) || errors.Is(err, domain.ErrLeadershipLost) ||
			errors.Is(err, domain.ErrProposalDropped) || (ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded))
		if !retryable {
			fill(replies[:to], from, err)
			return
		}
		if !time.Now().Before(deadline) {
			fill(replies[:to], from, fmt.Errorf("app: read: %w", domain.ErrNoLeader))
			return
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			fill(replies[:to], from, err)
			return
		}
	}
	get := func(k []byte) ([]byte, bool, error) {
		v, err := s.kv.Get(k)
		switch {
		case err == nil:
			return v, true, nil
		case errors.Is(err, domain.ErrNotFound):
			return nil, false, nil
		}
		return nil, false, err
	}
	for i := from; i < to; i++ {
		replies[i] = answer(reqs[i], get)
	}
}

// relayBatch relays reqs to the leader lead and fills replies. It returns
// true, with nothing run, when the batch must be retried.
func (s *Service) relayBatch(ctx context.Context, lead domain.NodeID, reqs []ports.Request, replies []ports.Reply) (retry bool, cause error) {
	addr, ok := s.cfg.ClientAddrs[lead]
	if !ok {
		fill(replies, 0, fmt.Errorf("app: no client address for leader %d: %w", lead, domain.ErrNoLeader))
		return false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RelayTimeout)
	defer cancel()
	sent, err := s.relay.do(rctx, addr, reqs, replies)
	if err != nil {
		if !sent {
			s.log.Debug().Err(err).Uint64("leader", uint64(lead)).Str("addr", addr).Msg("relay: leader unreachable")
			return true, err
		}
		s.log.Warn().Err(err).Uint64("leader", uint64(lead)).Str("addr", addr).Msg("relay failed after sending: outcome unknown")
		return false, nil
	}
	// If the leader refused the whole batch (it no longer leads), nothing
	// ran: try again with whoever leads now.
	for _, r := range replies {
		if r.Kind != ports.ReplyErr || !refusal(r.Err) {
			return false, nil
		}
	}
	cause = replies[0].Err
	clear(replies)
	return true, cause
}

// refusal reports whether a relayed error reply says the batch was not run
// because the node asked was not the leader.
func refusal(err error) bool {
	var re *ports.RemoteError
	if !errors.As(err, &re) {
		return false
	}
	return hasPrefix(re.Text, "MOVED ") || hasPrefix(re.Text, "CLUSTERDOWN ") || hasPrefix(re.Text, "TRYAGAIN ")
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

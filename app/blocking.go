package app

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// Blocking pops (BLPOP and the rest): a client blocked on a node waits
// there. Its command is first proposed as is (the engine runs it as its
// non-blocking form); if that popped nothing, the client becomes a waiter
// of this node, queued on each of its keys. Whenever entries apply (the
// AppliedSignal) and at least every blockPoll, the node's dispatcher looks
// at the keys waited on; for each that holds a collection of the awaited
// type, it wakes the oldest waiter of that type, which proposes its
// command again: an ordinary replicated write, atomic on apply, so two
// waiters (of this node or of two nodes) racing for one element get it
// exactly once, and the loser waits on. One attempt per key is in flight
// at a time, so the waiters of one key on one node are served in the
// order they blocked (Redis's order); across nodes the order is that of
// the log.

var _ ports.Blocker = (*Service)(nil)

// blockPoll is how often the dispatcher looks at the keys waited on even
// when no apply was signalled (a snapshot restored, or no AppliedSignal
// wired): a bound on a missed wake-up's delay.
const blockPoll = 100 * time.Millisecond

// AppliedSignal tells the service that entries have applied, so that
// blocked clients look at their keys at once. Wrap the state machine the
// node applies to, and pass the signal as Config.Applied.
type AppliedSignal struct {
	c chan struct{}
}

// NewAppliedSignal returns a signal for Config.Applied.
func NewAppliedSignal() *AppliedSignal {
	return &AppliedSignal{c: make(chan struct{}, 1)}
}

// Wrap returns sm, signalling a after each Apply and Restore. The cost on
// the apply path is one channel send that never waits.
func (a *AppliedSignal) Wrap(sm ports.StateMachine) ports.StateMachine {
	return signallingSM{StateMachine: sm, a: a}
}

func (a *AppliedSignal) notify() {
	select {
	case a.c <- struct{}{}:
	default:
	}
}

type signallingSM struct {
	ports.StateMachine
	a *AppliedSignal
}

func (s signallingSM) Apply(entries []domain.Entry) ([]domain.Result, error) {
	res, err := s.StateMachine.Apply(entries)
	s.a.notify()
	return res, err
}

func (s signallingSM) Restore(meta domain.SnapshotMeta, r io.Reader) error {
	err := s.StateMachine.Restore(meta, r)
	s.a.notify()
	return err
}

// waitKey is a key of a database.
type waitKey struct {
	db  int
	key string
}

// waiter is one blocked client.
type waiter struct {
	keys []waitKey
	typ  keyspace.Type
	wake chan struct{} // one token: propose again
	busy bool          // woken, its attempt not finished (blockers.mu)
}

// blockers are this node's waiters, in the order they blocked, per key.
type blockers struct {
	mu    sync.Mutex
	byKey map[waitKey][]*waiter
	kick  chan struct{} // a waiter came, went or finished an attempt
	once  sync.Once
	stop  context.CancelFunc
	done  chan struct{}
	// closed is closed by Close: blocked clients are answered ErrStopped.
	closed chan struct{}
	// tokens name attempts (keyspace.OnceCommand): a prefix unique to
	// this service, and a counter.
	prefix string
	seq    atomic.Uint64
}

func (b *blockers) token() []byte {
	return strconv.AppendUint([]byte(b.prefix), b.seq.Add(1), 36)
}

func (b *blockers) init(id domain.NodeID) {
	b.prefix = strconv.FormatUint(uint64(id), 36) + "." + strconv.FormatInt(time.Now().UnixNano(), 36) + "."
	b.byKey = map[waitKey][]*waiter{}
	b.kick = make(chan struct{}, 1)
	b.closed = make(chan struct{})
}

func (b *blockers) poke() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// waiting reports whether any of keys has waiters on this node.
func (b *blockers) waiting(keys []waitKey) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		if len(b.byKey[k]) > 0 {
			return true
		}
	}
	return false
}

func (b *blockers) add(w *waiter) {
	b.mu.Lock()
	for _, k := range w.keys {
		b.byKey[k] = append(b.byKey[k], w)
	}
	b.mu.Unlock()
	b.poke()
}

func (b *blockers) remove(w *waiter) {
	b.mu.Lock()
	for _, k := range w.keys {
		q := b.byKey[k]
		for i, x := range q {
			if x == w {
				q = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(b.byKey, k)
		} else {
			b.byKey[k] = q
		}
	}
	w.busy = false
	b.mu.Unlock()
	b.poke()
}

// finished ends w's attempt: the dispatcher may wake the next waiter.
func (b *blockers) finished(w *waiter) {
	b.mu.Lock()
	w.busy = false
	b.mu.Unlock()
	b.poke()
}

// keys returns the keys waited on by a waiter that is not busy, when no
// waiter of the key is.
func (b *blockers) idleKeys() []waitKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []waitKey
next:
	for k, q := range b.byKey {
		for _, w := range q {
			if w.busy {
				continue next
			}
		}
		out = append(out, k)
	}
	return out
}

// wakeFor wakes, for each key holding a collection of a type, its oldest
// waiter for that type, unless a waiter of the key is busy.
func (b *blockers) wakeFor(ready map[waitKey]keyspace.Type) {
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for k, t := range ready {
		q := b.byKey[k]
		for _, w := range q {
			if w.busy {
				continue next
			}
		}
		for _, w := range q {
			if w.typ == t {
				w.busy = true
				w.wake <- struct{}{}
				break
			}
		}
	}
}

// startBlocking starts the dispatcher, once.
func (s *Service) startBlocking() {
	s.blk.once.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.blk.stop, s.blk.done = cancel, make(chan struct{})
		go s.dispatch(ctx)
	})
}

// closeBlocking answers every blocked client ErrStopped and stops the
// dispatcher.
func (s *Service) closeBlocking() {
	s.blk.mu.Lock()
	select {
	case <-s.blk.closed:
	default:
		close(s.blk.closed)
	}
	s.blk.mu.Unlock()
	s.blk.once.Do(func() {})
	if s.blk.stop != nil {
		s.blk.stop()
		<-s.blk.done
	}
}

// dispatch wakes waiters whose keys hold something, after each applied
// batch, each change of the waiters, and every blockPoll.
func (s *Service) dispatch(ctx context.Context) {
	defer close(s.blk.done)
	t := time.NewTicker(blockPoll)
	defer t.Stop()
	var applied chan struct{}
	if s.cfg.Applied != nil {
		applied = s.cfg.Applied.c
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.blk.kick:
		case <-applied:
		case <-t.C:
		}
		keys := s.blk.idleKeys()
		if len(keys) == 0 {
			continue
		}
		ready := map[waitKey]keyspace.Type{}
		err := s.kv.View(func(st keyspace.Store) error {
			now, err := s.readTime(st)
			if err != nil {
				return err
			}
			for _, k := range keys {
				r, ok, err := st.Get(k.db, []byte(k.key))
				if err != nil {
					return err
				}
				if ok && (r.ExpireAt == 0 || r.ExpireAt > now) && (r.Type == keyspace.TypeList || r.Type == keyspace.TypeZSet) {
					ready[k] = r.Type
				}
			}
			return nil
		})
		if err != nil {
			s.log.Warn().Err(err).Msg("blocking: reading the keys waited on failed")
			continue
		}
		s.blk.wakeFor(ready)
	}
}

// Block implements ports.Blocker.
func (s *Service) Block(ctx context.Context, req ports.BlockRequest, unblock <-chan domain.Reply) ports.Reply {
	bc := req.Blocking
	w := &waiter{typ: bc.Type, wake: make(chan struct{}, 1)}
	for _, k := range bc.Keys {
		w.keys = append(w.keys, waitKey{db: req.Call.DB, key: string(k)})
	}
	var timeout <-chan time.Time
	if bc.Timeout > 0 {
		t := time.NewTimer(time.Duration(bc.Timeout) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	s.startBlocking()
	// The first attempt runs at once, as Redis tries the pop before
	// blocking, unless clients of this node already wait on one of the
	// keys: then it queues behind them.
	if !s.blk.waiting(w.keys) {
		if r, done := s.attempt(ctx, req, true); done {
			return r
		}
	}
	s.blk.add(w)
	defer s.blk.remove(w)
	for {
		select {
		case <-ctx.Done():
			return ports.ErrReply(ctx.Err())
		case <-s.blk.closed:
			return ports.ErrReply(domain.ErrStopped)
		case v := <-unblock:
			return ports.Reply{Value: v}
		case <-timeout:
			return ports.Reply{Value: bc.NilReply}
		case <-w.wake:
			r, done := s.attempt(ctx, req, false)
			s.blk.finished(w)
			if done {
				return r
			}
		}
	}
}

// attemptTimeout bounds one attempt of a blocked client, retries
// included: well below keyspace.TombstoneTTL, for which the engine keeps
// a pop's token.
const attemptTimeout = 30 * time.Second

// attempt proposes req's call once, under a token of its own
// (keyspace.OnceCommand) so that it pops at most once: an attempt whose
// outcome is unknown (leadership lost after it was appended, a relay
// broken after sending) or that did not run for want of a leader is
// proposed again with the same token until it is known, the element
// popped by the first reaching the client. It returns done false if the
// client must (go on) wait: nothing was popped, or (after the first
// attempt) no leader could be found.
func (s *Service) attempt(ctx context.Context, req ports.BlockRequest, first bool) (ports.Reply, bool) {
	if ctx.Err() != nil {
		return ports.ErrReply(ctx.Err()), true
	}
	args := make([][]byte, 0, len(req.Call.Args)+2)
	args = append(args, []byte(keyspace.OnceCommand), s.blk.token())
	call := domain.Call{DB: req.Call.DB, Args: append(args, req.Call.Args...)}
	// The attempt outlives the client: a pop that applies must be seen,
	// to put back what a client gone meanwhile cannot take.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
	defer cancel()
	var r ports.Reply
	for {
		r = s.Do(actx, []ports.Request{{Call: call}}, ports.DoOptions{})[0]
		var redirect *ports.RedirectError
		if r.Err == nil || errors.As(r.Err, &redirect) || errors.Is(r.Err, domain.ErrStopped) || actx.Err() != nil {
			break
		}
		s.log.Debug().Err(r.Err).Msg("blocking: pop not known to have run; proposing it again")
		if sleep(actx, 50*time.Millisecond) != nil {
			break
		}
	}
	switch {
	case r.Err != nil:
		return r, first || !errors.Is(r.Err, domain.ErrNoLeader)
	case r.Value.Kind == domain.ReplyNil || r.Value.Kind == domain.ReplyNilArray:
		return r, false
	case r.Value.Kind == domain.ReplyError:
		return r, true
	}
	if ctx.Err() != nil {
		// The client is gone: what was popped for it goes back, and the
		// answer says the client is gone, so that the connection does not
		// hand it the popped value too.
		s.pushBack(req.Call, r.Value)
		return ports.ErrReply(ctx.Err()), true
	}
	return r, true
}

// pushBack puts back what a pop for a client that has gone took: the
// popped list elements at the end they came from, in their order, or the
// popped members with their scores (unless re-added meanwhile). A move
// (BLMOVE, BRPOPLPUSH) stays done: the element is in its destination.
func (s *Service) pushBack(call domain.Call, v domain.Reply) {
	back := pushBackCall(call, v)
	if back == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	r := s.Do(ctx, []ports.Request{{Call: domain.Call{DB: call.DB, Args: back}}}, ports.DoOptions{})[0]
	if r.Err != nil || r.Value.Kind == domain.ReplyError {
		s.log.Error().Err(r.Err).Str("reply", r.Value.Str).Str("command", string(call.Args[0])).
			Msg("blocking: putting back what was popped for a client that left failed")
		return
	}
	s.log.Debug().Str("command", string(call.Args[0])).Msg("blocking: client left during its pop; put the elements back")
}

// pushBackCall returns the command that undoes the pop call answered v,
// or nil.
func pushBackCall(call domain.Call, v domain.Reply) [][]byte {
	if v.Kind != domain.ReplyArray || len(v.Array) < 2 {
		return nil
	}
	key := v.Array[0].Bulk
	name := strings.ToLower(string(call.Args[0]))
	switch name {
	case "blpop":
		return [][]byte{[]byte("lpush"), key, v.Array[1].Bulk}
	case "brpop":
		return [][]byte{[]byte("rpush"), key, v.Array[1].Bulk}
	case "bzpopmin", "bzpopmax":
		if len(v.Array) != 3 {
			return nil
		}
		return [][]byte{[]byte("zadd"), key, []byte("nx"), []byte(v.Array[2].Str), v.Array[1].Bulk}
	case "blmpop":
		n, err := strconv.Atoi(string(call.Args[2]))
		if err != nil || 3+n >= len(call.Args) {
			return nil
		}
		push := "rpush"
		if strings.EqualFold(string(call.Args[3+n]), "left") {
			push = "lpush"
		}
		out := [][]byte{[]byte(push), key}
		els := v.Array[1].Array
		for i := len(els) - 1; i >= 0; i-- {
			out = append(out, els[i].Bulk)
		}
		return out
	case "bzmpop":
		out := [][]byte{[]byte("zadd"), key, []byte("nx")}
		for _, p := range v.Array[1].Array {
			if len(p.Array) != 2 {
				return nil
			}
			out = append(out, []byte(p.Array[1].Str), p.Array[0].Bulk)
		}
		return out
	}
	return nil
}

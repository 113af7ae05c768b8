package ports

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A Backlogger reports the bytes of large writes that a write proposed
// now would be applied after (consensus/node.Node.LargeBacklog): the Raft
// log applies in order, so a small SET behind a 100 MB one waits for it to
// replicate and be written, seconds or, on a loaded machine, a minute.
// The KV of a node (app.Service) implements it.
type Backlogger interface {
	LargeBacklog() uint64
}

// backlogPoll is how often a BacklogContext samples the backlog: often
// enough to see a large entry that passes through this node's log while a
// write waits behind it.
const backlogPoll = time.Second

// BacklogContext returns a context that ends base after now, as
// context.WithTimeout would, unless a large write was queued ahead: for
// every byte of the largest backlog seen meanwhile (sampled at the start
// and every backlogPoll), it lasts 1/bytesPerSecond of a second longer.
// Its Err is context.DeadlineExceeded once it ran out. So a deadline meant
// to catch a stuck leader does not cut the writes that merely queue behind
// a large one. backlog may be nil (then it is context.WithTimeout).
func BacklogContext(parent context.Context, base time.Duration, bytesPerSecond int, backlog func() uint64) (context.Context, context.CancelFunc) {
	if backlog == nil || bytesPerSecond <= 0 {
		return context.WithTimeout(parent, base)
	}
	inner, cancel := context.WithCancelCause(parent)
	c := &backlogCtx{Context: inner, start: time.Now(), base: base, rate: bytesPerSecond, backlog: backlog, cancel: cancel}
	c.mu.Lock()
	c.maxSeen = backlog()
	c.timer = time.AfterFunc(min(base, backlogPoll), c.check)
	c.mu.Unlock()
	return c, func() {
		c.mu.Lock()
		c.timer.Stop()
		c.mu.Unlock()
		cancel(context.Canceled)
	}
}

type backlogCtx struct {
	context.Context
	start   time.Time
	base    time.Duration
	rate    int
	backlog func() uint64
	cancel  context.CancelCauseFunc

	mu      sync.Mutex
	maxSeen uint64
	timer   *time.Timer
}

// allowed is the wait granted so far.
func (c *backlogCtx) allowed() time.Duration {
	return c.base + time.Duration(c.maxSeen)*time.Second/time.Duration(c.rate)
}

func (c *backlogCtx) check() {
	if c.Context.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxSeen = max(c.maxSeen, c.backlog())
	left := c.allowed() - time.Since(c.start)
	if left <= 0 {
		c.cancel(context.DeadlineExceeded)
		return
	}
	c.timer.Reset(min(left, backlogPoll))
}

// Deadline reports the end granted so far (it may move later).
func (c *backlogCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.start.Add(c.allowed())
	if pd, ok := c.Context.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

// Err is context.DeadlineExceeded once the context ran out, as
// context.WithTimeout's.
func (c *backlogCtx) Err() error {
	err := c.Context.Err()
	if err != nil && errors.Is(context.Cause(c.Context), context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

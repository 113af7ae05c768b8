package relay

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.Relay = (*Client)(nil)

// Client relays batches to the leader over a few pipelined connections.
// It is safe for concurrent use.
type Client struct {
	opts Options
	log  zerolog.Logger
	next atomic.Uint64 // round-robin over the slots
	mu   struct {
		sync.Mutex
		addr   string // the leader's address the slots connect to
		slots  []*slot
		closed bool
	}
}

// slot holds one of the connections to the leader; its mutex is held
// while dialing, so that callers that pick it wait for one dial.
type slot struct {
	mu   sync.Mutex
	conn *conn
}

// New returns a Client; it dials nothing until the first Do.
func New(opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Client{opts: opts, log: opts.Logger.With().Str("component", "relay").Logger()}, nil
}

// Do implements ports.Relay.
func (c *Client) Do(ctx context.Context, addr string, reqs []ports.Request) ([]domain.Reply, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	cn, err := c.conn(ctx, addr)
	if err != nil {
		return nil, err
	}
	return cn.do(ctx, doCommand(reqs), len(reqs))
}

// doCommand is the SESHAT.DO command carrying reqs, in parts written out
// as they are (see ports.EncodeRequestParts): a large value is copied once
// on its way out, into its command's encoding.
func doCommand(reqs []ports.Request) [][]byte {
	parts, n := ports.EncodeRequestParts(reqs)
	head := appendCommandHead(nil, 2)
	head = appendBulkHead(head, len(Do))
	head = append(head, Do+"\r\n"...)
	head = appendBulkHead(head, n)
	out := make([][]byte, 0, len(parts)+2)
	out = append(out, head)
	out = append(out, parts...)
	return append(out, []byte("\r\n"))
}

// Close implements ports.Relay.
func (c *Client) Close() error {
	c.mu.Lock()
	c.mu.closed = true
	slots := c.mu.slots
	c.mu.slots = nil
	c.mu.Unlock()
	for _, s := range slots {
		s.mu.Lock()
		if s.conn != nil {
			s.conn.fail(fmt.Errorf("relay closed: %w", domain.ErrStopped))
		}
		s.mu.Unlock()
	}
	return nil
}

// conn returns a connection to addr, dialing one if the slot picked has
// none. A new addr (the leader changed) retires the connections to the
// old one: they take no new batches and close once their replies are in.
func (c *Client) conn(ctx context.Context, addr string) (*conn, error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("relay: %w", domain.ErrStopped)
	}
	var old []*slot
	if c.mu.addr != addr || c.mu.slots == nil {
		old, c.mu.addr = c.mu.slots, addr
		c.mu.slots = make([]*slot, c.opts.Conns)
		for i := range c.mu.slots {
			c.mu.slots[i] = &slot{}
		}
	}
	s := c.mu.slots[c.next.Add(1)%uint64(len(c.mu.slots))]
	c.mu.Unlock()
	for _, o := range old {
		go o.retire()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.conn.usable() {
		return s.conn, nil
	}
	cn, err := c.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	s.conn = cn
	c.mu.Lock()
	stale := c.mu.closed || c.mu.addr != addr
	c.mu.Unlock()
	if stale {
		// The leader changed while dialing: s is no longer in use. The
		// connection serves this batch, then closes.
		cn.retire()
	}
	return cn, nil
}

func (s *slot) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.retire()
	}
}

// dial connects to addr and says hello (AUTH, then SESHAT.RELAYED).
func (c *Client) dial(ctx context.Context, addr string) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay: dial %s: %w: %w", addr, domain.ErrUnreachable, err)
	}
	if dl, ok := dctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	var hello []byte
	n := 1
	if c.opts.Password != "" {
		hello = appendCommand(hello, []byte("AUTH"), []byte(c.opts.Password))
		n++
	}
	hello = appendCommand(hello, []byte(Hello))
	r := bufio.NewReader(nc)
	_, err = nc.Write(hello)
	for range n {
		var rep domain.Reply
		if err == nil {
			rep, err = readReply(r, c.opts.MaxReplyBytes)
		}
		if err == nil && (rep.Kind != domain.ReplyStatus || rep.Str != "OK") {
			err = fmt.Errorf("hello answered %v", rep)
		}
	}
	if err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("relay: hello to %s: %w: %w", addr, domain.ErrUnreachable, err)
	}
	_ = nc.SetDeadline(time.Time{})
	cn := &conn{
		addr:     addr,
		nc:       nc,
		r:        r,
		maxReply: c.opts.MaxReplyBytes,
		done:     make(chan struct{}),
	}
	cn.wmu.w = bufio.NewWriterSize(nc, 64<<10)
	c.log.Debug().Str("addr", addr).Msg("relay connection open")
	go cn.readLoop()
	return cn, nil
}

// A call is one batch sent on a connection, waiting for its reply.
type call struct {
	n    int
	done chan result // capacity 1: a call gets exactly one result
}

type result struct {
	replies []domain.Reply
	err     error
}

// conn is one pipelined connection: callers write their batches in turn
// (the last one waiting flushes them all), the reader goroutine matches
// each reply to the oldest call sent.
type conn struct {
	addr     string
	nc       net.Conn
	r        *bufio.Reader // the reader goroutine's
	maxReply int64
	// writers counts the callers writing or waiting to: the one that finds
	// none behind it flushes, so batches that pile up go out in one write.
	writers atomic.Int32
	wmu     struct {
		sync.Mutex
		w *bufio.Writer
	}
	done chan struct{} // closed once the connection is dead
	mu   struct {
		sync.Mutex
		pending  []*call // sent, awaiting their replies, oldest first
		inflight int     // calls admitted and not finished
		retiring bool
		err      error // why the connection died
	}
}

var errRetired = errors.New("relay: connection retired (the leader changed)")

func (cn *conn) notSent(cause error) error {
	return fmt.Errorf("relay to %s: not sent: %w: %w", cn.addr, domain.ErrUnreachable, cause)
}

func (cn *conn) unknown(cause error) error {
	return fmt.Errorf("relay to %s broke after sending: %w: %w", cn.addr, domain.ErrLeadershipLost, cause)
}

// usable reports whether new batches may go on the connection.
func (cn *conn) usable() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.mu.err == nil && !cn.mu.retiring
}

// do sends one batch (the concatenation of payload) and waits for its
// replies.
func (cn *conn) do(ctx context.Context, payload [][]byte, n int) ([]domain.Reply, error) {
	if err := ctx.Err(); err != nil {
		return nil, cn.notSent(err)
	}
	cl := &call{n: n, done: make(chan result, 1)}
	if err := cn.send(cl, payload); err != nil {
		return nil, err
	}
	select {
	case res := <-cl.done:
		return res.replies, res.err
	case <-ctx.Done():
		// The leader did not answer in time: the connection is stuck, and
		// the batches behind this one wait for the same reply.
		cn.fail(fmt.Errorf("no reply before the deadline: %w", ctx.Err()))
	}
	// The reader or fail finishes it.
	res := <-cl.done
	return res.replies, res.err
}

// send writes cl's batch, and flushes unless another caller is waiting to
// write behind it (that one flushes both). An error means it was not sent.
func (cn *conn) send(cl *call, payload [][]byte) error {
	cn.writers.Add(1)
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	last := cn.writers.Add(-1) == 0
	cn.mu.Lock()
	if err := cn.mu.err; err != nil {
		cn.mu.Unlock()
		if last {
			_ = cn.wmu.w.Flush() // what others wrote; the connection is dead anyway
		}
		return cn.notSent(err)
	}
	// Pending before written: its reply cannot come before the flush.
	cn.mu.pending = append(cn.mu.pending, cl)
	cn.mu.inflight++
	cn.mu.Unlock()
	for _, p := range payload {
		// An error sticks and Flush returns it. A part larger than the
		// buffer goes to the connection without a copy.
		_, _ = cn.wmu.w.Write(p)
	}
	if last {
		if err := cn.wmu.w.Flush(); err != nil {
			// Whatever was written may have gone out: fail reports the
			// pending calls, this one included, as of unknown outcome.
			cn.fail(err)
		}
	}
	return nil
}

// finish hands cl its result.
func (cn *conn) finish(cl *call, res result) {
	cl.done <- res
	cn.release()
}

// release forgets a finished or abandoned call; a retired connection
// closes when it has none left.
func (cn *conn) release() {
	cn.mu.Lock()
	cn.mu.inflight--
	idle := cn.mu.retiring && cn.mu.inflight == 0
	cn.mu.Unlock()
	if idle {
		cn.fail(errRetired)
	}
}

// retire takes the connection out of use; it closes once idle.
func (cn *conn) retire() {
	cn.mu.Lock()
	cn.mu.retiring = true
	idle := cn.mu.inflight == 0
	cn.mu.Unlock()
	if idle {
		cn.fail(errRetired)
	}
}

// fail kills the connection: the calls it sent get an unknown outcome.
func (cn *conn) fail(err error) {
	cn.mu.Lock()
	if cn.mu.err != nil {
		cn.mu.Unlock()
		return
	}
	cn.mu.err = err
	pending := cn.mu.pending
	cn.mu.pending = nil
	cn.mu.Unlock()
	close(cn.done)
	_ = cn.nc.Close()
	for _, cl := range pending {
		cn.finish(cl, result{err: cn.unknown(err)})
	}
}

func (cn *conn) readLoop() {
	for {
		rep, err := readReply(cn.r, cn.maxReply)
		if err != nil {
			cn.fail(err)
			return
		}
		cn.mu.Lock()
		if len(cn.mu.pending) == 0 {
			cn.mu.Unlock()
			cn.fail(fmt.Errorf("%w: a reply with no batch waiting", errBadReply))
			return
		}
		cl := cn.mu.pending[0]
		cn.mu.pending[0] = nil
		cn.mu.pending = cn.mu.pending[1:]
		cn.mu.Unlock()
		res, broken := cn.decode(rep, cl.n)
		cn.finish(cl, res)
		if broken {
			cn.fail(res.err)
			return
		}
	}
}

// decode turns the reply to a batch of n requests into its result; broken
// says the connection can no longer be trusted.
func (cn *conn) decode(rep domain.Reply, n int) (res result, broken bool) {
	switch rep.Kind {
	case domain.ReplyBulk:
		vals, refused, err := ports.DecodeReplies(rep.Bulk, n)
		switch {
		case err != nil:
			return result{err: cn.unknown(err)}, true
		case refused:
			return result{err: fmt.Errorf("relay: %s refused the batch (%s): %w", cn.addr, vals[0].Str, domain.ErrRelayRefused)}, false
		}
		return result{replies: vals}, false
	case domain.ReplyError:
		// The whole batch was refused as malformed: that is its answer.
		out := make([]domain.Reply, n)
		for i := range out {
			out[i] = rep
		}
		return result{replies: out}, false
	}
	return result{err: cn.unknown(fmt.Errorf("%w: %v", errBadReply, rep))}, true
}

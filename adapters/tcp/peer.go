package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
)

// Batching limits of a writer: it drains its queue into one buffered write
// and one Flush until the queue is empty or one of these is reached.
const (
	maxBatchMessages = 512
	maxBatchBytes    = 8 << 20
	// keepScratchBytes: a writer's encode buffer larger than this is
	// released after its batch instead of kept for the next.
	keepScratchBytes = 4 << 20
	writeBufferSize  = 64 << 10
)

// peer is one outbound destination: its queues and its writers' lifetime.
// Two lanes, each with a writer and a connection of its own: queue holds
// the control messages (heartbeats, votes, every response, timeout-now,
// read-index), bulk the MsgApps and MsgSnaps. A large append or a snapshot
// streams on the bulk connection while heartbeats go on the control one, so
// neither a big entry nor a receiver slow to take it (seconds, to allocate
// and fault in a buffer of hundreds of MB) holds a heartbeat back. Each lane
// keeps its order; across lanes a later control message may overtake an
// append, which Raft tolerates.
type peer struct {
	id    domain.NodeID
	addr  string
	queue chan domain.Message // control lane
	bulk  chan domain.Message // MsgApp, MsgSnap
	// wake, one per lane, cuts a writer's backoff short: the peer just
	// connected to us, so it is up and dialing it back should not wait.
	wake   [2]chan struct{}
	ctx    context.Context // cancelled by RemovePeer, SetPeer (new address), Close
	cancel context.CancelFunc
}

// wakeWriters cuts both writers' backoff short (see peer.wake).
func (p *peer) wakeWriters() {
	for _, c := range p.wake {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// startPeerLocked registers a peer and starts its writers. t.mu is held
// and the transport is not closed.
func (t *Transport) startPeerLocked(id domain.NodeID, addr string) {
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peer{id: id, addr: addr, queue: make(chan domain.Message, t.opts.SendQueue),
		bulk: make(chan domain.Message, t.opts.SendQueue), ctx: ctx, cancel: cancel}
	t.mu.peers[id] = p
	for _, ln := range []lane{laneControl, laneBulk} {
		p.wake[ln] = make(chan struct{}, 1)
		w := &writer{
			t:    t,
			p:    p,
			lane: ln,
			in:   p.queue,
			log:  t.log.With().Uint64("peer", uint64(id)).Str("addr", addr).Stringer("lane", ln).Logger(),
			rng:  rand.New(rand.NewPCG(t.opts.JitterSeed, uint64(id)<<1|uint64(ln))),
		}
		if ln == laneBulk {
			w.in = p.bulk
		}
		t.wg.Add(1)
		go w.run()
	}
}

// writer is the goroutine that owns one lane of a peer: its queue and its
// outbound connection.
type writer struct {
	t        *Transport
	p        *peer
	lane     lane
	in       chan domain.Message // the lane's queue
	log      zerolog.Logger
	rng      *rand.Rand
	buf      []byte // encode scratch
	large    pieces // encode scratch of a large message
	failures int    // consecutive failed connection attempts
}

// outConn is an established, handshaken outbound connection: conn (TLS
// or not) is read and written, raw (the TCP connection) closed, at once
// and without a TLS goodbye that a dead peer would make wait.
type outConn struct {
	conn, raw net.Conn
	bw        *bufio.Writer
}

func (w *writer) run() {
	defer w.t.wg.Done()
	defer w.discardQueued()
	defer w.p.cancel()
	for w.p.ctx.Err() == nil {
		// The bulk lane dials when it first has something to send: only
		// a leader sends appends and snapshots, so a follower keeps one
		// connection per peer.
		var first *domain.Message
		if w.lane == laneBulk {
			select {
			case m := <-w.in:
				first = &m
			case <-w.p.ctx.Done():
				return
			}
		}
		oc, err := w.connect()
		if err != nil {
			if first != nil {
				discardSnapshot(first)
				w.t.stats.dropped.Add(1)
			}
			if w.p.ctx.Err() != nil {
				return
			}
			w.failures++
			ev := w.log.Debug()
			if w.failures == 1 {
				ev = w.log.Warn()
			}
			ev.Err(err).Int("attempt", w.failures).Msg("cannot connect to peer")
			if !w.backoff() {
				return
			}
			continue
		}
		connected, before := time.Now(), w.failures
		w.failures = 0
		w.t.stats.connects.Add(1)
		w.log.Info().Msg("connected to peer")
		err = w.serve(oc, first)
		if w.p.ctx.Err() != nil {
			return
		}
		w.log.Warn().Err(err).Dur("lasted", time.Since(connected)).Msg("connection to peer lost")
		// A connection that fails soon after it was made (a peer that
		// accepts then cuts us) keeps the backoff growing: no hot loop.
		w.failures = 1
		if time.Since(connected) < w.t.opts.BackoffMax {
			w.failures = before + 1
		}
		if !w.backoff() {
			return
		}
	}
}

// backoff waits before the next dial: BackoffMin doubled per consecutive
// failure, capped at BackoffMax, the wait drawn uniformly from the upper half.
// Messages queued meanwhile are dropped (they would be stale by the time the
// peer is back, and Raft resends what matters). It returns false if the
// writer must stop.
func (w *writer) backoff() bool {
	timer := time.NewTimer(backoffDelay(w.t.opts.BackoffMin, w.t.opts.BackoffMax, w.failures, w.rng))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
			return true
		case <-w.p.wake[w.lane]:
			return true
		case <-w.p.ctx.Done():
			return false
		case m := <-w.in:
			discardSnapshot(&m)
			w.t.stats.dropped.Add(1)
		}
	}
}

// discardQueued removes the image files of the snapshots left in the
// queue of a writer that stops.
func (w *writer) discardQueued() {
	for {
		select {
		case m := <-w.in:
			discardSnapshot(&m)
		default:
			return
		}
	}
}

// connect dials the peer and runs the handshake, all within DialTimeout.
func (w *writer) connect() (_ *outConn, err error) {
	opts := &w.t.opts
	deadline := time.Now().Add(opts.DialTimeout)
	dctx, cancel := context.WithDeadline(w.p.ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", w.p.addr)
	if err != nil {
		return nil, fmt.Errorf("tcp: dial %s: %w", w.p.addr, err)
	}
	// Close (or RemovePeer) interrupts the handshake by closing conn.
	stop := context.AfterFunc(dctx, func() { _ = conn.Close() })
	defer func() {
		if !stop() {
			err = errors.Join(err, fmt.Errorf("tcp: handshake with %s interrupted", w.p.addr))
		}
		if err != nil {
			_ = conn.Close()
		}
	}()
	_ = conn.SetDeadline(deadline)
	boundSocketBuffer(conn, w.t.opts.SnapshotChunkBytes, false)
	rw, err := w.t.clientTLS(dctx, conn, w.p.addr)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(rw, writeBufferSize)
	if err := w.t.handshaker().dial(newFrameReader(rw, handshakeMaxBytes), bw, w.p.id, w.lane); err != nil {
		return nil, fmt.Errorf("tcp: handshake with %s: %w", w.p.addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return &outConn{conn: rw, raw: conn, bw: bw}, nil
}

// serve writes the lane's queue to oc, starting with first if it is not
// nil, until the connection fails or the writer must stop. The acceptor
// sends nothing after its ack, so a watcher goroutine's read returns only
// when the connection is closed; it then ends serve at once instead of at
// the next failed write.
func (w *writer) serve(oc *outConn, first *domain.Message) error {
	var deadErr error
	dead := make(chan struct{})
	go func() {
		var b [1]byte
		_, err := oc.conn.Read(b[:])
		if err == nil {
			err = fmt.Errorf("tcp: peer sent data on an outbound connection: %w", domain.ErrCorrupt)
		}
		deadErr = err
		close(dead)
	}()
	stop := context.AfterFunc(w.p.ctx, func() { _ = oc.raw.Close() })
	defer func() {
		stop()
		_ = oc.raw.Close()
		<-dead
	}()
	if first != nil {
		if err := w.writeBatch(oc, *first); err != nil {
			return err
		}
	}
	keepalive := time.NewTicker(max(w.t.opts.ReadTimeout/3, time.Millisecond))
	defer keepalive.Stop()
	idle := true
	for {
		select {
		case <-w.p.ctx.Done():
			return w.p.ctx.Err()
		case <-dead:
			return fmt.Errorf("tcp: connection to %s closed: %w", w.p.addr, deadErr)
		case <-keepalive.C:
			if idle {
				_ = oc.conn.SetWriteDeadline(time.Now().Add(w.t.opts.WriteTimeout))
				if err := writeFrame(oc.bw, frameKeepalive, nil); err != nil {
					return err
				}
				if err := oc.bw.Flush(); err != nil {
					return err
				}
			}
			idle = true
		case m := <-w.in:
			idle = false
			if err := w.writeBatch(oc, m); err != nil {
				return err
			}
		}
	}
}

// writeBatch writes m and whatever else is queued in the lane (up to the
// batch limits), with one Flush.
func (w *writer) writeBatch(oc *outConn, m domain.Message) error {
	_ = oc.conn.SetWriteDeadline(time.Now().Add(w.t.opts.WriteTimeout))
	var n, bytes int
	for {
		written, size, err := w.writeOne(oc, &m)
		if err != nil {
			w.t.stats.dropped.Add(uint64(n) + 1)
			return err
		}
		if written {
			n++
			bytes += size
		}
		if n >= maxBatchMessages || bytes >= maxBatchBytes {
			break
		}
		select {
		case m = <-w.in:
			continue
		default:
		}
		break
	}
	if cap(w.buf) > keepScratchBytes {
		w.buf = nil
	}
	if err := oc.bw.Flush(); err != nil {
		w.t.stats.dropped.Add(uint64(n))
		return err
	}
	w.t.stats.sent.Add(uint64(n))
	return nil
}

// writeOne buffers one message. It reports whether it did (a message that
// cannot be sent is dropped and logged) and its encoded size; an error is a
// failed connection.
func (w *writer) writeOne(oc *outConn, m *domain.Message) (bool, int, error) {
	if err := validateOutgoing(m); err != nil {
		w.drop(m, err, "invalid message dropped")
		return false, 0, nil
	}
	if m.Type == domain.MsgSnap && m.Snapshot != nil {
		return w.writeSnapshot(oc, m)
	}
	if streamed(m, w.t.opts.SnapshotChunkBytes) {
		return w.writeLarge(oc, m)
	}
	w.buf = appendMessage(w.buf[:0], m, true)
	if len(w.buf) > w.t.opts.MaxFrameBytes {
		w.drop(m, fmt.Errorf("tcp: message of %d bytes exceeds MaxFrameBytes %d", len(w.buf), w.t.opts.MaxFrameBytes),
			"message too large dropped")
		return false, 0, nil
	}
	return true, len(w.buf), writeFrame(oc.bw, frameMessage, w.buf)
}

func (w *writer) drop(m *domain.Message, err error, msg string) {
	discardSnapshot(m)
	w.t.stats.dropped.Add(1)
	w.log.Error().Err(err).Stringer("type", m.Type).Int("entries", len(m.Entries)).Msg(msg)
}

// backoffDelay is the wait after the given number of consecutive failures
// (at least 1): d = lo * 2^(failures-1) capped at hi, drawn from [d/2, d].
func backoffDelay(lo, hi time.Duration, failures int, rng *rand.Rand) time.Duration {
	d := lo
	for i := 1; i < failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(rng.Int64N(int64(d/2)+1))
}

package tcp

import (
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

var (
	_ ports.Transport  = (*Transport)(nil)
	_ ports.Backlogger = (*Transport)(nil)
)

// Transport is the TCP peer transport: one long-lived outbound connection
// per peer, written by that peer's writer goroutine, and one reader
// goroutine per inbound connection. See the package documentation.
type Transport struct {
	opts  Options
	log   zerolog.Logger
	ln    net.Listener
	inbox chan domain.Message

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport starts
	closed atomic.Bool    // set under mu, read without it by Send

	stats counters
	// receivingLarge: see LargeBacklog.
	receivingLarge atomic.Uint64

	mu struct {
		sync.RWMutex
		peers   map[domain.NodeID]*peer
		inbound map[inKey]*inConn // the newest connection per peer and lane
		// removed are the ids RemovePeer forgot (and SetPeer did not add
		// back): their handshakes are refused as a removed member's.
		removed map[domain.NodeID]bool
	}
	closeOnce sync.Once
}

// Stats are the transport's counters since New.
type Stats struct {
	// Sent counts messages written to a peer connection and flushed.
	Sent uint64
	// Dropped counts messages given to Send that were never written: unknown
	// peer, full send queue, message larger than the limits or invalid,
	// peer unreachable, or lost with a failed connection.
	Dropped uint64
	// Received counts messages delivered on the Receive channel.
	Received uint64
	// InboxDropped counts received messages dropped because the Receive
	// channel was full.
	InboxDropped uint64
	// RejectedConns counts inbound connections refused at the handshake
	// (wrong cluster, unknown peer, wrong target, no or bad handshake).
	RejectedConns uint64
	// BadConns counts connections cut after the handshake for a protocol
	// violation: bad magic or CRC, oversized frame, undecodable payload,
	// a message whose From is not the handshake's id, a broken snapshot
	// stream.
	BadConns uint64
	// Connects counts outbound connections established (handshake acked):
	// two per peer once both lanes have had something to send.
	Connects uint64
	// SnapshotsSent and SnapshotsReceived count whole MsgSnap streams.
	SnapshotsSent     uint64
	SnapshotsReceived uint64
	// LargeSent and LargeReceived count messages that travelled as
	// large-message streams (in chunks, see stream.go).
	LargeSent     uint64
	LargeReceived uint64
}

type counters struct {
	sent, dropped, received, inboxDropped, rejected, bad, connects, snapsSent, snapsReceived atomic.Uint64
	largeSent, largeReceived                                                                 atomic.Uint64
}

// New starts a transport: it listens on opts.ListenAddr and starts one
// writer per peer (which dials lazily, in the background).
func New(opts Options) (*Transport, error) {
	opts = opts.Clone()
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	stale := 0
	if opts.SpoolDir != "" {
		var err error
		if stale, err = prepareSpool(opts.SpoolDir); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", opts.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("tcp: listen on %s: %w", opts.ListenAddr, err)
	}
	t := &Transport{
		opts:  opts,
		log:   opts.Logger.With().Str("component", "tcp").Uint64("node", uint64(opts.ID)).Logger(),
		ln:    ln,
		inbox: make(chan domain.Message, opts.InboxSize),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mu.peers = map[domain.NodeID]*peer{}
	t.mu.inbound = map[inKey]*inConn{}
	t.mu.removed = map[domain.NodeID]bool{}
	t.mu.Lock()
	for id, addr := range opts.Peers {
		if id != opts.ID {
			t.startPeerLocked(id, addr)
		}
	}
	npeers := len(t.mu.peers)
	t.wg.Add(1)
	t.mu.Unlock()
	go t.acceptLoop()
	t.log.Info().Str("addr", ln.Addr().String()).Int("peers", npeers).Msg("transport listening")
	if stale > 0 {
		t.log.Info().Int("files", stale).Str("dir", opts.SpoolDir).Msg("deleted received snapshot images a previous run left")
	}
	return t, nil
}

// Addr returns the address the transport listens on.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Receive returns the channel of messages addressed to this node. Close
// closes it.
func (t *Transport) Receive() <-chan domain.Message { return t.inbox }

// Send queues m for m.To's writer and returns at once. It returns
// domain.ErrClosed after Close, and nil otherwise, also when it drops m
// (unknown peer, full queue: counted in Stats.Dropped). The transport keeps
// m, which is encoded later by the writer: the caller must not modify the
// slices m refers to (Entries, their Data, Snapshot, Context) after Send.
func (t *Transport) Send(m domain.Message) error {
	if t.closed.Load() {
		discardSnapshot(&m)
		return fmt.Errorf("tcp: send %s to %d: %w", m.Type, m.To, domain.ErrClosed)
	}
	t.mu.RLock()
	p := t.mu.peers[m.To]
	t.mu.RUnlock()
	if p == nil {
		discardSnapshot(&m)
		t.stats.dropped.Add(1)
		t.log.Debug().Uint64("peer", uint64(m.To)).Stringer("type", m.Type).Msg("send to unknown peer dropped")
		return nil
	}
	q := p.queue
	if m.Type == domain.MsgApp || m.Type == domain.MsgSnap {
		q = p.bulk
	}
	select {
	case q <- m:
	default:
		discardSnapshot(&m)
		t.stats.dropped.Add(1)
	}
	return nil
}

// SetPeer adds peer id at addr, or moves it to a new address (its queued
// messages are then dropped). The peer may connect from then on. It returns
// domain.ErrClosed after Close and ErrInvalidOptions for id 0, this node's
// id or an empty address.
func (t *Transport) SetPeer(id domain.NodeID, addr string) error {
	if id == domain.None || id == t.opts.ID || addr == "" {
		return fmt.Errorf("%w: SetPeer(%d, %q) on node %d", ErrInvalidOptions, id, addr, t.opts.ID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return fmt.Errorf("tcp: set peer %d: %w", id, domain.ErrClosed)
	}
	if p := t.mu.peers[id]; p != nil {
		if p.addr == addr {
			return nil
		}
		p.cancel()
	}
	delete(t.mu.removed, id)
	t.startPeerLocked(id, addr)
	t.log.Info().Uint64("peer", uint64(id)).Str("addr", addr).Msg("peer set")
	return nil
}

// RemovePeer forgets peer id: its writer stops (queued messages are
// dropped), its inbound connection is closed and it may no longer connect;
// its handshakes are then refused with a log line saying it was removed
// from the cluster (until SetPeer adds it back). It returns
// domain.ErrClosed after Close; removing an unknown peer only marks it
// removed.
func (t *Transport) RemovePeer(id domain.NodeID) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return fmt.Errorf("tcp: remove peer %d: %w", id, domain.ErrClosed)
	}
	t.mu.removed[id] = true
	if p := t.mu.peers[id]; p != nil {
		p.cancel()
		delete(t.mu.peers, id)
		t.log.Info().Uint64("peer", uint64(id)).Msg("peer removed")
	}
	for _, ln := range []lane{laneControl, laneBulk} {
		if c := t.mu.inbound[inKey{id, ln}]; c != nil {
			c.cancel()
			delete(t.mu.inbound, inKey{id, ln})
		}
	}
	return nil
}

// removedPeer reports whether id was removed by RemovePeer.
func (t *Transport) removedPeer(id domain.NodeID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.removed[id]
}

// knownPeer reports whether id may connect.
func (t *Transport) knownPeer(id domain.NodeID) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.peers[id] != nil
}

// Stats returns the current counters.
func (t *Transport) Stats() Stats {
	c := &t.stats
	return Stats{
		Sent: c.sent.Load(), Dropped: c.dropped.Load(), Received: c.received.Load(),
		InboxDropped: c.inboxDropped.Load(), RejectedConns: c.rejected.Load(),
		BadConns: c.bad.Load(), Connects: c.connects.Load(),
		SnapshotsSent: c.snapsSent.Load(), SnapshotsReceived: c.snapsReceived.Load(),
		LargeSent: c.largeSent.Load(), LargeReceived: c.largeReceived.Load(),
	}
}

// LargeBacklog returns the bytes of the large appends this transport is
// receiving now (streams begun and not yet whole; see stream.go). It
// implements ports.Backlogger: a follower still receiving a 100 MB entry
// has no backlog of its own yet, but a write relayed through it now will
// be applied after that entry all the same.
func (t *Transport) LargeBacklog() uint64 { return t.receivingLarge.Load() }

// Close stops the listener, the writers and the readers, waits for all of
// them, then closes the Receive channel. Messages still queued are
// dropped. It is idempotent and always returns nil.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed.Store(true)
		t.mu.Unlock()
		t.cancel()
		_ = t.ln.Close()
		t.wg.Wait()
		close(t.inbox)
		t.log.Info().Msg("transport closed")
	})
	return nil
}

func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.log.Warn().Err(err).Dur("retry_in", delay).Msg("accept failed")
			select {
			case <-time.After(delay):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		t.mu.Lock()
		if t.closed.Load() {
			t.mu.Unlock()
			_ = conn.Close()
			return
		}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serveInbound(conn)
	}
}

// deliver hands a received message to the inbox without blocking, except
// for a MsgSnap, worth waiting a little for (up to ReadTimeout).
func (t *Transport) deliver(m domain.Message) { t.deliverOrWait(m, m.Type == domain.MsgSnap) }

// deliverOrWait hands m to the inbox, waiting up to ReadTimeout for room
// if wait (a snapshot, a large message: too costly to drop). It reports
// whether m was delivered.
func (t *Transport) deliverOrWait(m domain.Message, wait bool) bool {
	select {
	case t.inbox <- m:
		t.stats.received.Add(1)
		return true
	default:
	}
	if wait {
		timer := time.NewTimer(t.opts.ReadTimeout)
		defer timer.Stop()
		select {
		case t.inbox <- m:
			t.stats.received.Add(1)
			return true
		case <-timer.C:
		case <-t.ctx.Done():
		}
	}
	t.stats.inboxDropped.Add(1)
	t.log.Debug().Stringer("type", m.Type).Uint64("peer", uint64(m.From)).Msg("inbox full, message dropped")
	return false
}

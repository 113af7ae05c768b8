package tcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// inKey names an inbound connection: a peer has one per lane.
type inKey struct {
	from domain.NodeID
	lane lane
}

// inConn is a registered inbound connection; cancel closes it.
type inConn struct {
	cancel context.CancelFunc
}

// serveInbound runs one accepted connection: the handshake, then the
// session that reads it until it fails or the transport closes.
func (t *Transport) serveInbound(conn net.Conn) {
	defer t.wg.Done()
	ctx, cancel := context.WithCancel(t.ctx)
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() {
		stop()
		cancel()
		_ = conn.Close()
	}()
	log := t.log.With().Str("remote", conn.RemoteAddr().String()).Logger()

	_ = conn.SetDeadline(time.Now().Add(t.opts.DialTimeout))
	boundSocketBuffer(conn, t.opts.SnapshotChunkBytes, true)
	rw, err := t.serverTLS(ctx, conn) // conn itself without TLS
	if err != nil {
		if ctx.Err() == nil {
			// Logged, then counted: who sees the count sees the line.
			log.Warn().Err(err).Bool("auth", true).Msg("inbound connection rejected")
			t.stats.rejected.Add(1)
		}
		return
	}
	br := bufio.NewReaderSize(rw, 64<<10)
	fr := newFrameReader(br, handshakeMaxBytes)
	bw := bufio.NewWriterSize(rw, 512)
	from, ln, err := t.handshaker().accept(fr, bw)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		ev := log.Warn().Err(err)
		if from != domain.None {
			ev = ev.Uint64("peer", uint64(from))
		}
		ev.Bool("auth", errors.Is(err, errAuth)).Msg("inbound connection rejected")
		t.stats.rejected.Add(1)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	log = log.With().Uint64("peer", uint64(from)).Stringer("lane", ln).Logger()

	// Register as the peer's connection of its lane; the newest wins (a
	// restarted peer replaces its half-dead predecessor at once).
	me, key := &inConn{cancel: cancel}, inKey{from, ln}
	t.mu.Lock()
	if t.closed.Load() || t.mu.peers[from] == nil {
		t.mu.Unlock()
		return
	}
	old := t.mu.inbound[key]
	t.mu.inbound[key] = me
	// A peer that connects to us is up: if our writers to it are backing
	// off (it was down), dial now rather than after up to BackoffMax.
	t.mu.peers[from].wakeWriters()
	t.mu.Unlock()
	if old != nil {
		old.cancel()
		log.Info().Msg("peer reconnected, older inbound connection closed")
	}
	defer func() {
		t.mu.Lock()
		if t.mu.inbound[key] == me {
			delete(t.mu.inbound, key)
		}
		t.mu.Unlock()
	}()
	log.Info().Msg("peer connected")

	fr.max = uint32(t.opts.MaxFrameBytes)
	var deadlineSet time.Time
	s := &session{
		peer:      from,
		self:      t.opts.ID,
		maxSnap:   t.opts.MaxSnapshotBytes,
		maxMsg:    t.opts.MaxMessageBytes,
		deliver:   t.deliver,
		receiving: &t.receivingLarge,
		deliverLarge: func(m domain.Message) {
			t.stats.largeReceived.Add(1)
			t.deliverOrWait(m, true)
		},
		progressEvery: time.Second,
		snapshotProgress: func(m *domain.Message, got, total uint64) {
			log.Info().Uint64("index", uint64(m.Snapshot.Meta.Index)).Uint64("received", got).
				Uint64("total", total).Msg("snapshot receive progress")
		},
		snapshotReceived: func(m *domain.Message, took time.Duration) {
			t.stats.snapsReceived.Add(1)
			log.Info().Uint64("index", uint64(m.Snapshot.Meta.Index)).Uint64("bytes", snapshotSize(m.Snapshot)).
				Str("file", m.Snapshot.File).Dur("took", took).Msg("snapshot received")
		},
		spoolDir:    t.opts.SpoolDir,
		deliverSnap: func(m domain.Message) bool { return t.deliverOrWait(m, true) },
		beforeRead: func() {
			// Keep the read deadline ReadTimeout ahead, resetting it only
			// when an eighth of it has passed (SetReadDeadline is not free).
			if now := time.Now(); now.Sub(deadlineSet) > t.opts.ReadTimeout/8 {
				_ = rw.SetReadDeadline(now.Add(t.opts.ReadTimeout))
				deadlineSet = now
			}
		},
	}
	err = s.run(fr)
	var nerr net.Error
	switch {
	case errors.Is(err, domain.ErrCorrupt):
		// Before the check of ctx: a violation read just as a newer
		// connection of the same peer replaced this one is still one.
		t.stats.bad.Add(1)
		log.Warn().Err(err).Msg("peer disconnected: protocol violation")
	case ctx.Err() != nil:
		log.Debug().Msg("inbound connection closed")
	case errors.Is(err, io.EOF):
		log.Info().Msg("peer closed the connection")
	case errors.As(err, &nerr) && nerr.Timeout():
		log.Warn().Err(err).Msg("peer disconnected: read timeout")
	default:
		log.Warn().Err(err).Msg("inbound connection failed")
	}
}

// session reads the frames of one handshaken inbound connection and turns
// them into messages: it checks that each names the handshake's node as
// From and this node as To, and reassembles snapshot streams. It does no
// I/O of its own, so tests and fuzzers drive it with any byte stream.
type session struct {
	peer, self       domain.NodeID
	maxSnap          int64
	maxMsg           int64 // largest large-message stream
	deliver          func(domain.Message)
	deliverLarge     func(domain.Message)                        // a message from a stream; may be nil
	snapshotReceived func(m *domain.Message, took time.Duration) // may be nil
	// snapshotProgress, if set, is called as a snapshot's chunks arrive,
	// at most once per progressEvery, so the receiving node's log shows a
	// long catch-up moving, not only the sender's.
	snapshotProgress func(m *domain.Message, got, total uint64)
	progressEvery    time.Duration
	beforeRead       func() // may be nil

	// spoolDir, if set, is where snapshot images are written as they
	// arrive (see spool.go); without it they are reassembled in memory.
	spoolDir string
	// deliverSnap, if set, delivers a whole MsgSnap and reports whether
	// it was taken (else its file is removed); deliver otherwise.
	deliverSnap func(domain.Message) bool

	snap  *pendingSnap  // the snapshot stream in progress, if any
	large *pendingLarge // the large-message stream in progress, if any
	// receiving, if set, counts the announced bytes of the large-message
	// streams in progress (Transport.LargeBacklog).
	receiving *atomic.Uint64

	scratch []byte // a spooled snapshot chunk, reused
}

type pendingSnap struct {
	m     domain.Message
	total uint64
	got   uint64
	data  []byte     // the image so far, without a spool
	file  *spoolFile // the image's file, with a spool
	start time.Time
	told  time.Time // when progress was last reported
}

// maxSnapPrealloc bounds what a snapshot header can make the receiver
// allocate before the data arrives.
const maxSnapPrealloc = 64 << 20

// run reads frames until an error: io.EOF when the peer closes between
// frames, an error wrapping domain.ErrCorrupt for a protocol violation, or
// the stream's error.
func (s *session) run(fr *frameReader) error {
	defer s.dropSnap() // a stream cut short leaves no partial file
	defer s.endLarge()
	for {
		if s.beforeRead != nil {
			s.beforeRead()
		}
		h, err := fr.readHeader()
		if err != nil {
			if errors.Is(err, io.EOF) && (s.snap != nil || s.large != nil) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		switch h.typ {
		case frameSnapChunk:
			if err := s.chunk(fr, h); err != nil {
				return err
			}
			continue
		case frameLargeChunk:
			if err := s.largeChunk(fr, h); err != nil {
				return err
			}
			continue
		}
		var p []byte
		if h.n > 0 {
			p = make([]byte, h.n)
		}
		if err := fr.readPayload(h, p); err != nil {
			return err
		}
		if err := s.handle(h.typ, p); err != nil {
			return err
		}
	}
}

// chunk reads a snapshot data chunk straight into the reassembly buffer.
func (s *session) chunk(fr *frameReader, h frameHeader) error {
	if s.snap == nil {
		return fmt.Errorf("tcp: snapshot chunk outside a snapshot stream: %w", domain.ErrCorrupt)
	}
	ps := s.snap
	if ps.got+uint64(h.n) > ps.total {
		return fmt.Errorf("tcp: snapshot chunk of %d bytes after %d overruns the announced %d: %w",
			h.n, ps.got, ps.total, domain.ErrCorrupt)
	}
	if ps.file != nil {
		p := s.chunkBuf(h.n)
		if err := fr.readPayload(h, p); err != nil {
			return err
		}
		if err := ps.file.write(p); err != nil {
			return err
		}
	} else {
		have := len(ps.data)
		ps.data = slices.Grow(ps.data, int(h.n))[:have+int(h.n)]
		if err := fr.readPayload(h, ps.data[have:]); err != nil {
			return err
		}
	}
	ps.got += uint64(h.n)
	if now := time.Now(); s.snapshotProgress != nil && now.Sub(ps.told) >= s.progressEvery {
		ps.told = now
		s.snapshotProgress(&ps.m, ps.got, ps.total)
	}
	return nil
}

func (s *session) handle(typ frameType, p []byte) error {
	// Inside a snapshot or large-message stream, only control messages
	// (which a node with one connection per peer interleaves) and the
	// stream's own frames may come.
	if s.snap != nil && typ != frameSnapEnd && typ != frameMessage && typ != frameKeepalive {
		return fmt.Errorf("tcp: %s frame inside a snapshot stream: %w", typ, domain.ErrCorrupt)
	}
	if s.large != nil && typ != frameMessage && typ != frameKeepalive {
		return fmt.Errorf("tcp: %s frame inside a large-message stream: %w", typ, domain.ErrCorrupt)
	}
	switch typ {
	case frameLargeHeader:
		return s.largeHeader(p)
	case frameMessage:
		m, err := DecodeMessage(p)
		if err != nil {
			return err
		}
		if err := s.check(&m); err != nil {
			return err
		}
		s.deliver(m)
	case frameSnapHeader:
		d := decoder{b: p}
		total := d.uvarint("snapshot size")
		m := d.message()
		if err := d.finish("snapshot header"); err != nil {
			return err
		}
		if m.Type != domain.MsgSnap || m.Snapshot == nil || m.Snapshot.Data != nil {
			return fmt.Errorf("tcp: snapshot header holds a %s (snapshot %v): %w", m.Type, m.Snapshot != nil, domain.ErrCorrupt)
		}
		if err := s.check(&m); err != nil {
			return err
		}
		if total > uint64(s.maxSnap) {
			return fmt.Errorf("tcp: snapshot of %d bytes exceeds MaxSnapshotBytes %d: %w", total, s.maxSnap, domain.ErrCorrupt)
		}
		s.snap = &pendingSnap{m: m, total: total, start: time.Now(), told: time.Now()}
		switch {
		case s.spoolDir != "":
			f, err := createSpoolFile(s.spoolDir)
			if err != nil {
				return err
			}
			s.snap.file = f
		case total > 0:
			s.snap.data = make([]byte, 0, min(total, maxSnapPrealloc))
		}
	case frameSnapEnd:
		if s.snap == nil {
			return fmt.Errorf("tcp: snapshot end outside a snapshot stream: %w", domain.ErrCorrupt)
		}
		if len(p) != 0 || s.snap.got != s.snap.total {
			return fmt.Errorf("tcp: snapshot stream ended after %d of %d bytes (end payload %d bytes): %w",
				s.snap.got, s.snap.total, len(p), domain.ErrCorrupt)
		}
		ps := s.snap
		if ps.file != nil {
			path, err := ps.file.finish()
			if err != nil {
				return err // finish removed the file
			}
			ps.m.Snapshot.File = path
		} else {
			ps.m.Snapshot.Data = ps.data
		}
		s.snap = nil
		if s.snapshotReceived != nil {
			s.snapshotReceived(&ps.m, time.Since(ps.start))
		}
		if s.deliverSnap != nil {
			if !s.deliverSnap(ps.m) {
				discardSnapshot(&ps.m)
			}
		} else {
			s.deliver(ps.m)
		}
	case frameKeepalive:
		if len(p) != 0 {
			return fmt.Errorf("tcp: keepalive frame with %d payload bytes: %w", len(p), domain.ErrCorrupt)
		}
	default:
		return fmt.Errorf("tcp: unexpected %s frame after the handshake: %w", typ, domain.ErrCorrupt)
	}
	return nil
}

// check enforces that a message comes from the node the handshake named
// and is addressed to this node.
func (s *session) check(m *domain.Message) error {
	if m.From != s.peer {
		return fmt.Errorf("tcp: %s from node %d on the connection of node %d: %w", m.Type, m.From, s.peer, domain.ErrCorrupt)
	}
	if m.To != s.self {
		return fmt.Errorf("tcp: %s to node %d arrived at node %d: %w", m.Type, m.To, s.self, domain.ErrCorrupt)
	}
	if m.Type == domain.MsgSnap && m.Snapshot == nil {
		return fmt.Errorf("tcp: MsgSnap without a snapshot: %w", domain.ErrCorrupt)
	}
	return nil
}

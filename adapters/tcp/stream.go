package tcp

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// Large messages. A MsgApp whose entry data exceeds Options.ChunkBytes does
// not travel as one message frame (which MaxFrameBytes would refuse) but as
// a stream on its peer's bulk connection: a large-header frame giving the
// length of the message's encoding (uvarint), then that encoding in
// large-chunk frames of at most ChunkBytes, each with its own CRC. The
// receiver delivers the message when the announced length has arrived.
// Heartbeats and votes go on the control connection meanwhile (peer.go).
//
// The sender never copies the entry data: the stream is a list of pieces,
// the small encoded fields in one scratch buffer and the entries' Data
// slices themselves, cut into chunks on the fly. The receiver reads the
// chunks straight into one buffer of the announced length (at most
// Options.MaxMessageBytes; it allocates at most maxStreamPrealloc before
// that much has arrived) and decodes the message in place: the entries'
// Data alias it.

// maxStreamPrealloc bounds what a large-header frame can make the receiver
// allocate before the data arrives; past it the buffer grows once, to the
// announced length. It is small because what it holds is copied into the
// grown buffer and then garbage: at 64 MiB, a 100 MB append cost each
// follower 164 MB of buffers instead of 100. (A peer that passed the
// handshake can still make the node allocate MaxMessageBytes, after
// sending this much.)
const maxStreamPrealloc = 4 << 20

// streamed reports whether m travels as a large-message stream: a MsgApp
// (with no snapshot) whose entry data exceeds chunk bytes.
func streamed(m *domain.Message, chunk int) bool {
	if m.Type != domain.MsgApp || m.Snapshot != nil {
		return false
	}
	n := 0
	for i := range m.Entries {
		n += len(m.Entries[i].Data)
		if n > chunk {
			return true
		}
	}
	return false
}

// pieces is the encoding of a message as a list of byte slices: the small
// fields encoded in scratch, the entry data aliased.
type pieces struct {
	scratch []byte
	// spans: a span with data == nil is scratch[lo:hi].
	spans []span
	total int
}

type span struct {
	lo, hi int
	data   []byte
}

// build encodes m (a MsgApp without snapshot) as pieces; the concatenation
// of the pieces equals appendMessage(nil, m, true).
func (p *pieces) build(m *domain.Message) {
	p.scratch, p.spans, p.total = p.scratch[:0], p.spans[:0], 0
	mark := 0
	cut := func() {
		if len(p.scratch) > mark {
			p.spans = append(p.spans, span{lo: mark, hi: len(p.scratch)})
			p.total += len(p.scratch) - mark
			mark = len(p.scratch)
		}
	}
	head := *m
	head.Entries = nil
	enc := appendMessage(p.scratch, &head, true)
	// appendMessage ends with the entry count (0, one byte) when there is
	// no snapshot: replace it with the real count.
	enc = binary.AppendUvarint(enc[:len(enc)-1], uint64(len(m.Entries)))
	p.scratch = enc
	for i := range m.Entries {
		e := &m.Entries[i]
		p.scratch = append(p.scratch, byte(e.Type))
		p.scratch = binary.AppendUvarint(p.scratch, uint64(e.Term))
		p.scratch = binary.AppendUvarint(p.scratch, uint64(e.Index))
		p.scratch = binary.AppendUvarint(p.scratch, uint64(len(e.Data)))
		if len(e.Data) > 0 {
			cut()
			p.spans = append(p.spans, span{data: e.Data})
			p.total += len(e.Data)
		}
	}
	cut()
}

// chunks calls fn with the encoding cut in chunks of at most size bytes,
// each chunk a list of slices (aliasing the pieces), in order. It stops at
// fn's first error.
func (p *pieces) chunks(size int, fn func(parts [][]byte) error) error {
	var parts [][]byte
	n := 0
	for _, s := range p.spans {
		b := s.data
		if b == nil {
			b = p.scratch[s.lo:s.hi]
		}
		for len(b) > 0 {
			k := min(len(b), size-n)
			parts = append(parts, b[:k])
			b, n = b[k:], n+k
			if n == size {
				if err := fn(parts); err != nil {
					return err
				}
				parts, n = parts[:0], 0
			}
		}
	}
	if n > 0 {
		return fn(parts)
	}
	return nil
}

// writeFrameParts writes one frame whose payload is the concatenation of
// parts, without copying them together.
func writeFrameParts(w *bufio.Writer, typ frameType, parts [][]byte) error {
	n, crc := 0, uint32(0)
	for _, b := range parts {
		n += len(b)
		crc = crc32.Update(crc, crcTable, b)
	}
	if uint64(n) > maxFrameLimit {
		return fmt.Errorf("tcp: frame payload of %d bytes does not fit a frame", n)
	}
	var h [frameHeaderSize]byte
	copy(h[:4], frameMagic)
	h[4] = frameVersion
	h[5] = byte(typ)
	binary.BigEndian.PutUint32(h[6:], uint32(n))
	binary.BigEndian.PutUint32(h[10:], crc)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for _, b := range parts {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// pendingLarge is a large message being reassembled by a session.
type pendingLarge struct {
	total uint64
	data  []byte
}

// largeHeader starts a large-message stream.
func (s *session) largeHeader(p []byte) error {
	if s.large != nil {
		return fmt.Errorf("tcp: large-message header inside a large-message stream: %w", domain.ErrCorrupt)
	}
	d := decoder{b: p}
	total := d.uvarint("message size")
	if err := d.finish("large-message header"); err != nil {
		return err
	}
	if total == 0 || total > uint64(s.maxMsg) {
		return fmt.Errorf("tcp: large message of %d bytes outside [1, MaxMessageBytes=%d]: %w", total, s.maxMsg, domain.ErrCorrupt)
	}
	s.large = &pendingLarge{total: total, data: make([]byte, 0, min(total, maxStreamPrealloc))}
	if s.receiving != nil {
		s.receiving.Add(total)
	}
	return nil
}

// endLarge forgets the large-message stream in progress, if any, whether
// it is whole or cut short.
func (s *session) endLarge() {
	if s.large != nil && s.receiving != nil {
		s.receiving.Add(-s.large.total)
	}
	s.large = nil
}

// largeChunk reads the next chunk of the large message straight into its
// buffer and delivers the message once it is whole.
func (s *session) largeChunk(fr *frameReader, h frameHeader) error {
	pl := s.large
	if pl == nil {
		return fmt.Errorf("tcp: large-message chunk outside a large-message stream: %w", domain.ErrCorrupt)
	}
	have := uint64(len(pl.data))
	if h.n == 0 || have+uint64(h.n) > pl.total {
		return fmt.Errorf("tcp: large-message chunk of %d bytes after %d overruns the announced %d: %w",
			h.n, have, pl.total, domain.ErrCorrupt)
	}
	if have+uint64(h.n) > uint64(cap(pl.data)) {
		grown := make([]byte, have, pl.total) // once: to the announced length
		copy(grown, pl.data)
		pl.data = grown
	}
	pl.data = pl.data[:have+uint64(h.n)]
	if err := fr.readPayload(h, pl.data[have:]); err != nil {
		return err
	}
	if uint64(len(pl.data)) < pl.total {
		return nil
	}
	s.endLarge()
	m, err := DecodeMessage(pl.data)
	if err != nil {
		return err
	}
	if m.Type != domain.MsgApp || m.Snapshot != nil {
		return fmt.Errorf("tcp: large-message stream holds a %s: %w", m.Type, domain.ErrCorrupt)
	}
	if err := s.check(&m); err != nil {
		return err
	}
	if s.deliverLarge != nil {
		s.deliverLarge(m)
	} else {
		s.deliver(m)
	}
	return nil
}

// writeLarge streams a MsgApp in chunks (see the top of this file),
// flushing each.
func (w *writer) writeLarge(oc *outConn, m *domain.Message) (bool, int, error) {
	opts := &w.t.opts
	p := &w.large
	p.build(m)
	defer func() {
		// Drop the references to the entries' data and big scratch.
		clear(p.spans)
		if cap(p.scratch) > keepScratchBytes {
			p.scratch = nil
		}
	}()
	if int64(p.total) > opts.MaxMessageBytes {
		w.drop(m, fmt.Errorf("tcp: message of %d bytes exceeds MaxMessageBytes %d", p.total, opts.MaxMessageBytes),
			"message too large dropped")
		return false, 0, nil
	}
	start := time.Now()
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(p.total))
	if err := writeFrame(oc.bw, frameLargeHeader, w.buf); err != nil {
		return false, 0, err
	}
	err := p.chunks(opts.SnapshotChunkBytes, func(parts [][]byte) error {
		_ = oc.conn.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
		if err := writeFrameParts(oc.bw, frameLargeChunk, parts); err != nil {
			return err
		}
		return oc.bw.Flush()
	})
	if err != nil {
		return false, 0, err
	}
	w.t.stats.largeSent.Add(1)
	w.log.Debug().Int("bytes", p.total).Uint64("index", uint64(m.Index)).Dur("took", time.Since(start)).Msg("large message sent")
	return true, p.total, nil
}

// boundSocketBuffer caps the kernel's buffer of a peer connection (the
// send buffer of an outbound one, the receive buffer of an inbound one)
// at one chunk. The kernel autotunes loopback buffers to several MB: a
// stream's writer would hand megabytes to the kernel that a slow receiver
// takes seconds to read, and a node whose peer still uses one connection
// for everything interleaves heartbeats between chunks, which only helps
// if few bytes sit queued below the writer (bounded, a heartbeat waits
// for at most about three chunks).
func boundSocketBuffer(c net.Conn, chunk int, inbound bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	n := max(chunk, 64<<10)
	if inbound {
		_ = tc.SetReadBuffer(n)
	} else {
		_ = tc.SetWriteBuffer(n)
	}
}

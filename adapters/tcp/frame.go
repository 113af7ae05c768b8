package tcp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/seshat-kv/seshat/domain"
)

// The frame: every byte that crosses a peer connection is in one.
//
//	offset size field
//	0      4    magic "SSHT"
//	4      1    version (frameVersion)
//	5      1    type (frameType)
//	6      4    payload length, big endian
//	10     4    CRC32C (Castagnoli) of the payload, big endian
//	14     n    payload
const (
	frameMagic      = "SSHT"
	frameVersion    = 1
	frameHeaderSize = 14
	// maxFrameLimit is the largest length the header can express.
	maxFrameLimit = math.MaxUint32
	// handshakeMaxBytes bounds the frames read before a connection's
	// handshake is accepted, so an unknown party cannot make the node
	// allocate MaxFrameBytes.
	handshakeMaxBytes = 1 << 10
)

type frameType uint8

const (
	// frameHandshake opens every connection, dialer to acceptor:
	// handshakePayload.
	frameHandshake frameType = iota + 1
	// frameHandshakeAck accepts it, acceptor to dialer: handshakePayload
	// with the roles swapped.
	frameHandshakeAck
	// frameReject refuses it, acceptor to dialer: a reason (text), after
	// which the acceptor closes the connection.
	frameReject
	// frameMessage carries one encoded domain.Message (EncodeMessage).
	frameMessage
	// frameSnapHeader starts a snapshot stream: uvarint data length, then
	// the MsgSnap encoded without its Snapshot.Data.
	frameSnapHeader
	// frameSnapChunk carries the next bytes of the snapshot data.
	frameSnapChunk
	// frameSnapEnd ends a snapshot stream (empty payload); the receiver
	// delivers the reassembled MsgSnap.
	frameSnapEnd
	// frameKeepalive (empty payload) keeps an idle connection under its
	// peer's ReadTimeout.
	frameKeepalive
	// frameChallenge answers a handshake when the acceptor has a peer
	// secret, acceptor to dialer: handshakePayload with the acceptor's
	// nonce and its proof (see auth.go).
	frameChallenge
	// frameProof is the dialer's answer to a challenge: handshakePayload
	// with its proof and no nonce.
	frameProof
	// frameLargeHeader starts a large-message stream (stream.go): uvarint
	// length of the message's encoding.
	frameLargeHeader
	// frameLargeChunk carries the next bytes of that encoding; the
	// receiver delivers the message when the announced length is in.
	frameLargeChunk

	frameTypeMax = frameLargeChunk
)

var frameTypeNames = [...]string{
	frameHandshake: "handshake", frameHandshakeAck: "handshake-ack",
	frameReject: "reject", frameMessage: "message",
	frameSnapHeader: "snapshot-header", frameSnapChunk: "snapshot-chunk",
	frameSnapEnd: "snapshot-end", frameKeepalive: "keepalive",
	frameChallenge: "challenge", frameProof: "proof",
	frameLargeHeader: "large-header", frameLargeChunk: "large-chunk",
}

func (t frameType) String() string {
	if t >= frameHandshake && t <= frameTypeMax {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("frameType(%d)", uint8(t))
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is a decoded, checked header.
type frameHeader struct {
	typ frameType
	n   uint32 // payload length
	crc uint32
}

// writeFrame writes one frame to w (buffered: the caller flushes).
func writeFrame(w *bufio.Writer, typ frameType, payload []byte) error {
	if uint64(len(payload)) > maxFrameLimit {
		return fmt.Errorf("tcp: frame payload of %d bytes does not fit a frame", len(payload))
	}
	var h [frameHeaderSize]byte
	copy(h[:4], frameMagic)
	h[4] = frameVersion
	h[5] = byte(typ)
	binary.BigEndian.PutUint32(h[6:], uint32(len(payload)))
	binary.BigEndian.PutUint32(h[10:], crc32.Checksum(payload, crcTable))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// frameReader reads frames from a stream. Errors: io.EOF at a clean frame
// boundary, io.ErrUnexpectedEOF in the middle of a frame, an error wrapping
// domain.ErrCorrupt for bytes that fail a check, or the reader's own error.
type frameReader struct {
	r   *bufio.Reader
	max uint32 // largest payload accepted
	hdr [frameHeaderSize]byte
}

func newFrameReader(r io.Reader, limit int) *frameReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &frameReader{r: br, max: uint32(min(uint64(max(limit, 0)), maxFrameLimit))}
}

// readHeader reads and checks one header. The length is checked against
// the limit here, before any payload is read or allocated.
func (fr *frameReader) readHeader() (frameHeader, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frameHeader{}, err
	}
	h := fr.hdr[:]
	if string(h[:4]) != frameMagic {
		return frameHeader{}, fmt.Errorf("tcp: bad frame magic %q: %w", h[:4], domain.ErrCorrupt)
	}
	if h[4] != frameVersion {
		return frameHeader{}, fmt.Errorf("tcp: unsupported frame version %d (want %d): %w", h[4], frameVersion, domain.ErrCorrupt)
	}
	fh := frameHeader{
		typ: frameType(h[5]),
		n:   binary.BigEndian.Uint32(h[6:]),
		crc: binary.BigEndian.Uint32(h[10:]),
	}
	if fh.typ < frameHandshake || fh.typ > frameTypeMax {
		return frameHeader{}, fmt.Errorf("tcp: unknown frame type %d: %w", h[5], domain.ErrCorrupt)
	}
	if fh.n > fr.max {
		return frameHeader{}, fmt.Errorf("tcp: %s frame of %d bytes exceeds the limit of %d: %w", fh.typ, fh.n, fr.max, domain.ErrCorrupt)
	}
	return fh, nil
}

// readPayload reads the payload of h into dst (which must be h.n bytes
// long) and checks its CRC.
func (fr *frameReader) readPayload(h frameHeader, dst []byte) error {
	if len(dst) != int(h.n) {
		panic(fmt.Sprintf("tcp: readPayload into %d bytes for a %d-byte payload", len(dst), h.n))
	}
	if _, err := io.ReadFull(fr.r, dst); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if got := crc32.Checksum(dst, crcTable); got != h.crc {
		return fmt.Errorf("tcp: %s frame of %d bytes: crc32c %08x, header says %08x: %w", h.typ, h.n, got, h.crc, domain.ErrCorrupt)
	}
	return nil
}

// readFrame reads one whole frame into a new payload buffer.
func (fr *frameReader) readFrame() (frameType, []byte, error) {
	h, err := fr.readHeader()
	if err != nil {
		return 0, nil, err
	}
	var p []byte
	if h.n > 0 {
		p = make([]byte, h.n)
	}
	if err := fr.readPayload(h, p); err != nil {
		return 0, nil, err
	}
	return h.typ, p, nil
}

// handshakePayload is the payload of every handshake frame (handshake,
// challenge, proof, ack): the cluster, who speaks and whom it expects to
// speak to, and for peer authentication a nonce and a proof (auth.go).
// Encoding: uvarint length and bytes of ClusterID, uvarint From, uvarint To,
// uvarint length and bytes of Nonce (0 or nonceSize), uvarint length and
// bytes of MAC (0 or macSize), then, in a dialer's handshake for its bulk
// connection only, one byte: the lane (laneBulk). A handshake without it
// opens a control connection, or the one connection of a node from before
// lanes had connections of their own, which carries both lanes.
type handshakePayload struct {
	ClusterID string
	From, To  domain.NodeID
	Nonce     []byte
	MAC       []byte
	Lane      lane
}

// lane says which of a peer's two outbound connections a connection is.
type lane uint8

const (
	// laneControl carries everything but MsgApp and MsgSnap.
	laneControl lane = iota
	// laneBulk carries MsgApp and MsgSnap.
	laneBulk
)

func (l lane) String() string {
	if l == laneBulk {
		return "bulk"
	}
	return "control"
}

func (h handshakePayload) append(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(h.ClusterID)))
	dst = append(dst, h.ClusterID...)
	dst = binary.AppendUvarint(dst, uint64(h.From))
	dst = binary.AppendUvarint(dst, uint64(h.To))
	dst = appendBytes(dst, h.Nonce)
	dst = appendBytes(dst, h.MAC)
	if h.Lane != laneControl {
		dst = append(dst, byte(h.Lane))
	}
	return dst
}

func decodeHandshake(b []byte) (handshakePayload, error) {
	d := decoder{b: b}
	cluster := d.bytes("cluster id")
	if d.err == nil && len(cluster) > MaxClusterIDLen {
		d.fail("cluster id of %d bytes", len(cluster))
	}
	h := handshakePayload{
		ClusterID: string(cluster),
		From:      domain.NodeID(d.uvarint("from")),
		To:        domain.NodeID(d.uvarint("to")),
		Nonce:     d.bytes("nonce"),
		MAC:       d.bytes("proof"),
	}
	if d.err == nil && len(h.Nonce) != 0 && len(h.Nonce) != nonceSize {
		d.fail("nonce of %d bytes, want %d", len(h.Nonce), nonceSize)
	}
	if d.err == nil && len(h.MAC) != 0 && len(h.MAC) != macSize {
		d.fail("proof of %d bytes, want %d", len(h.MAC), macSize)
	}
	if d.err == nil && d.remaining() > 0 {
		if h.Lane = lane(d.byte("lane")); h.Lane != laneBulk {
			d.fail("lane %d", h.Lane)
		}
	}
	if err := d.finish("handshake"); err != nil {
		return handshakePayload{}, err
	}
	return h, nil
}

// maxReasonLen bounds the reason text of a frameReject.
const maxReasonLen = 256

func rejectPayload(reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	return []byte(reason)
}

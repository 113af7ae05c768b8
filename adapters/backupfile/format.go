package backupfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// Version is the format version this package writes and the newest it
// reads.
const Version = 1

var (
	magic    = []byte("SESHATBK")
	endMagic = []byte("SESHATND")
)

const (
	headerLen = 8 + 4 + 8
	// trailerFixed is the trailer without its membership.
	trailerFixed = 8 + 8 + 8 + 8 + 4
	// tailLen is what follows the trailer's fields: its length, the end
	// magic and the sum.
	tailLen = 4 + 8 + sha256.Size
	// maxMembership bounds the encoded membership a reader accepts (a
	// uvarint per node id: thousands of members).
	maxMembership = 64 << 10
)

// ErrVersion: the file was written in a newer format than this build
// reads.
var ErrVersion = errors.New("backupfile: format version from the future")

// Info describes a backup: the snapshot's metadata and where it came
// from.
type Info struct {
	// Meta is the applied point of the image: index, term, and the
	// membership of the cluster it was taken from.
	Meta domain.SnapshotMeta
	// From is the node that served the backup.
	From domain.NodeID
	// Created is when the backup began.
	Created time.Time
	// BodyLen is the snapshot stream's length in bytes.
	BodyLen int64
	// Version is the file's format version.
	Version uint32
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("backupfile: %w: %s", domain.ErrCorrupt, fmt.Sprintf(format, args...))
}

func encodeHeader(created time.Time) []byte {
	b := append([]byte(nil), magic...)
	b = binary.BigEndian.AppendUint32(b, Version)
	return binary.BigEndian.AppendUint64(b, uint64(created.UnixMilli()))
}

// decodeHeader checks a file's first headerLen bytes.
func decodeHeader(b []byte) (version uint32, created time.Time, err error) {
	if len(b) < headerLen {
		return 0, time.Time{}, corrupt("%d bytes: shorter than the %d-byte header", len(b), headerLen)
	}
	if !bytes.Equal(b[:8], magic) {
		return 0, time.Time{}, corrupt("not a Seshat backup file (starts with %q, want %q)", b[:8], magic)
	}
	version = binary.BigEndian.Uint32(b[8:])
	if version == 0 {
		return 0, time.Time{}, corrupt("format version 0")
	}
	if version > Version {
		return version, time.Time{}, fmt.Errorf("%w: the file has format version %d, this seshatd reads up to %d: restore with a newer seshatd", ErrVersion, version, Version)
	}
	return version, time.UnixMilli(int64(binary.BigEndian.Uint64(b[12:]))), nil
}

func encodeTrailer(info Info) []byte {
	mem := domain.EncodeMembership(info.Meta.Membership)
	b := make([]byte, 0, trailerFixed+len(mem)+4+8)
	b = binary.BigEndian.AppendUint64(b, uint64(info.Meta.Index))
	b = binary.BigEndian.AppendUint64(b, uint64(info.Meta.Term))
	b = binary.BigEndian.AppendUint64(b, uint64(info.BodyLen))
	b = binary.BigEndian.AppendUint64(b, uint64(info.From))
	b = binary.BigEndian.AppendUint32(b, uint32(len(mem)))
	b = append(b, mem...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(b)))
	return append(b, endMagic...)
}

// decodeTrailer decodes the trailer's fields (without the length, end
// magic and sum that follow them).
func decodeTrailer(b []byte) (Info, error) {
	if len(b) < trailerFixed {
		return Info{}, corrupt("trailer of %d bytes, want at least %d", len(b), trailerFixed)
	}
	info := Info{
		Meta: domain.SnapshotMeta{
			Index: domain.Index(binary.BigEndian.Uint64(b)),
			Term:  domain.Term(binary.BigEndian.Uint64(b[8:])),
		},
		BodyLen: int64(binary.BigEndian.Uint64(b[16:])),
		From:    domain.NodeID(binary.BigEndian.Uint64(b[24:])),
	}
	n := binary.BigEndian.Uint32(b[32:])
	if uint64(n) != uint64(len(b)-trailerFixed) {
		return Info{}, corrupt("trailer membership of %d bytes in a trailer of %d", n, len(b))
	}
	if info.BodyLen < 0 {
		return Info{}, corrupt("body length %d", info.BodyLen)
	}
	mem, err := domain.DecodeMembership(b[trailerFixed:])
	if err != nil {
		return Info{}, fmt.Errorf("backupfile: trailer: %w", err)
	}
	info.Meta.Membership = mem
	return info, nil
}

// Writer writes a backup file in one pass: NewWriter writes the header,
// Write the snapshot stream, Close the trailer and the sum. It holds no
// more than the bytes of one Write.
type Writer struct {
	w       io.Writer
	sum     hash.Hash
	created time.Time
	n       int64 // body bytes written
	err     error
}

// NewWriter writes the header of a backup begun at created to w.
func NewWriter(w io.Writer, created time.Time) (*Writer, error) {
	bw := &Writer{w: w, sum: sha256.New(), created: created}
	if err := bw.out(encodeHeader(created)); err != nil {
		return nil, err
	}
	return bw, nil
}

func (bw *Writer) out(p []byte) error {
	if bw.err != nil {
		return bw.err
	}
	if _, err := bw.w.Write(p); err != nil {
		bw.err = fmt.Errorf("backupfile: write: %w", err)
		return bw.err
	}
	bw.sum.Write(p)
	return nil
}

// Write appends p to the body.
func (bw *Writer) Write(p []byte) (int, error) {
	if err := bw.out(p); err != nil {
		return 0, err
	}
	bw.n += int64(len(p))
	return len(p), nil
}

// BodyLen returns the body bytes written so far.
func (bw *Writer) BodyLen() int64 { return bw.n }

// Close writes the trailer for an image with metadata meta served by
// node from, and the sum. It does not close the underlying writer.
func (bw *Writer) Close(meta domain.SnapshotMeta, from domain.NodeID) error {
	t := encodeTrailer(Info{Meta: meta, From: from, BodyLen: bw.n})
	if err := bw.out(t); err != nil {
		return err
	}
	if _, err := bw.w.Write(bw.sum.Sum(nil)); err != nil {
		bw.err = fmt.Errorf("backupfile: write: %w", err)
		return bw.err
	}
	bw.err = errors.New("backupfile: writer closed")
	return nil
}

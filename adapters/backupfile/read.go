package backupfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Open checks the backup held by r, size bytes long, and returns its
// description and a reader of its body (the snapshot stream). It reads the
// whole file once to check its SHA-256, with bounded memory; nothing is
// returned for a file that fails any check.
func Open(r io.ReaderAt, size int64) (Info, *io.SectionReader, error) {
	if size < headerLen {
		return Info{}, nil, corrupt("%d bytes: shorter than the %d-byte header (truncated?)", size, headerLen)
	}
	head := make([]byte, headerLen)
	if _, err := r.ReadAt(head, 0); err != nil {
		return Info{}, nil, fmt.Errorf("backupfile: read header: %w", err)
	}
	version, created, err := decodeHeader(head)
	if err != nil {
		return Info{}, nil, err
	}
	if size < headerLen+trailerFixed+tailLen {
		return Info{}, nil, corrupt("%d bytes: too short to hold a trailer (truncated?)", size)
	}
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil {
		return Info{}, nil, fmt.Errorf("backupfile: read trailer: %w", err)
	}
	if !bytes.Equal(tail[4:12], endMagic) {
		return Info{}, nil, corrupt("no end marker %q at the end of the file (truncated?)", endMagic)
	}
	tlen := int64(binary.BigEndian.Uint32(tail))
	if tlen < trailerFixed || tlen > trailerFixed+maxMembership || headerLen+tlen+tailLen > size {
		return Info{}, nil, corrupt("trailer length %d in a file of %d bytes", tlen, size)
	}
	trailer := make([]byte, tlen)
	if _, err := r.ReadAt(trailer, size-tailLen-tlen); err != nil {
		return Info{}, nil, fmt.Errorf("backupfile: read trailer: %w", err)
	}
	info, err := decodeTrailer(trailer)
	if err != nil {
		return Info{}, nil, err
	}
	info.Version, info.Created = version, created
	if want := headerLen + info.BodyLen + tlen + tailLen; want != size || info.BodyLen > size {
		return Info{}, nil, corrupt("the file has %d bytes, its trailer says %d (truncated or extended)", size, want)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size-sha256.Size)); err != nil {
		return Info{}, nil, fmt.Errorf("backupfile: read: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), tail[12:]) {
		return Info{}, nil, corrupt("SHA-256 mismatch: the file was changed or damaged after it was written")
	}
	return info, io.NewSectionReader(r, headerLen, info.BodyLen), nil
}

package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// Snapshot images in files, both ways (see domain.Snapshot.File).
//
// Sending: a MsgSnap may carry its image in a file; the writer streams it
// in SnapshotChunkBytes chunks read one at a time, and the file is
// removed once the stream is written or the message dropped (discard).
//
// Receiving: with Options.SpoolDir, the session writes the chunks of a
// snapshot stream to a file there as they arrive and delivers the MsgSnap
// referring to it; the receiver of the message owns the file. A stream
// that breaks, overruns or ends short removes its partial file. Without
// a SpoolDir the image is reassembled in memory, as before.

// spoolPattern names the received image files; New deletes the ones a
// previous run left, and only those (the node's own image files, which
// may share the directory, end in .out).
const spoolPattern = "seshat-snapshot-*.in"

// prepareSpool creates dir and deletes the received image files a
// previous run left there. It returns how many it deleted.
func prepareSpool(dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("tcp: spool dir: %w", err)
	}
	stale, err := filepath.Glob(filepath.Join(dir, spoolPattern))
	if err != nil {
		return 0, fmt.Errorf("tcp: spool dir: %w", err)
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("tcp: spool dir: remove stale image: %w", err)
		}
	}
	return len(stale), nil
}

// spoolFile is a received image being written to its file.
type spoolFile struct {
	f *os.File
}

func createSpoolFile(dir string) (*spoolFile, error) {
	f, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, fmt.Errorf("tcp: spool snapshot: %w", err)
	}
	return &spoolFile{f: f}, nil
}

func (sf *spoolFile) write(p []byte) error {
	if _, err := sf.f.Write(p); err != nil {
		return fmt.Errorf("tcp: spool snapshot: %w", err)
	}
	return nil
}

// finish closes the file and returns its path; the caller owns it. No
// sync: an image lost to a crash is a stale file the next start deletes,
// and the state machine's Restore makes what it installs durable.
func (sf *spoolFile) finish() (string, error) {
	if err := sf.f.Close(); err != nil {
		_ = os.Remove(sf.f.Name())
		return "", fmt.Errorf("tcp: spool snapshot: %w", err)
	}
	return sf.f.Name(), nil
}

// abort closes and removes a partial file.
func (sf *spoolFile) abort() {
	_ = sf.f.Close()
	_ = os.Remove(sf.f.Name())
}

// dropSnap abandons the snapshot stream in progress, if any, and removes
// its partial file: the stream broke.
func (s *session) dropSnap() {
	if s.snap != nil && s.snap.file != nil {
		s.snap.file.abort()
	}
	s.snap = nil
}

// chunkBuf returns a buffer of n bytes for a spooled chunk, reused from
// one chunk to the next.
func (s *session) chunkBuf(n uint32) []byte {
	if uint32(cap(s.scratch)) < n {
		s.scratch = make([]byte, n)
	}
	return s.scratch[:n]
}

// discardSnapshot removes the image file of a message the transport
// drops, if it has one: the transport owns it (ports.Transport).
func discardSnapshot(m *domain.Message) {
	if m.Snapshot != nil && m.Snapshot.File != "" {
		_ = os.Remove(m.Snapshot.File)
	}
}

// snapshotSize is the size of s's image, in memory or in its file.
func snapshotSize(s *domain.Snapshot) uint64 {
	if s.File == "" {
		return uint64(len(s.Data))
	}
	st, err := os.Stat(s.File)
	if err != nil {
		return 0
	}
	return uint64(st.Size())
}

// image is the source of a snapshot stream: its data in memory, or its
// file read a chunk at a time.
type image struct {
	data []byte
	f    *os.File
	size int64
	buf  []byte
}

// openImage opens the image of s.
func openImage(s *domain.Snapshot) (*image, error) {
	if s.File == "" {
		return &image{data: s.Data, size: int64(len(s.Data))}, nil
	}
	f, err := os.Open(s.File)
	if err != nil {
		return nil, fmt.Errorf("tcp: snapshot image: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("tcp: snapshot image: %w", err)
	}
	return &image{f: f, size: st.Size()}, nil
}

// next returns the image's next n bytes (valid until the next call).
func (im *image) next(off int64, n int) ([]byte, error) {
	if im.f == nil {
		return im.data[off : off+int64(n)], nil
	}
	if cap(im.buf) < n {
		im.buf = make([]byte, n)
	}
	b := im.buf[:n]
	if _, err := io.ReadFull(im.f, b); err != nil {
		return nil, fmt.Errorf("tcp: snapshot image: read at %d: %w", off, err)
	}
	return b, nil
}

func (im *image) close() {
	if im.f != nil {
		_ = im.f.Close()
	}
}

// writeSnapshot streams a MsgSnap: a header frame (the message without its
// image), the image in SnapshotChunkBytes chunks, an end frame. It
// flushes, and logs progress at most every second or every 10%. An image
// held in a file is read one chunk at a time, and the file removed
// whatever the outcome.
func (w *writer) writeSnapshot(oc *outConn, m *domain.Message) (bool, int, error) {
	defer discardSnapshot(m)
	opts := &w.t.opts
	img, err := openImage(m.Snapshot)
	if err != nil {
		w.drop(m, err, "snapshot image unreadable, dropped")
		return false, 0, nil
	}
	defer img.close()
	total := img.size
	if total > opts.MaxSnapshotBytes {
		w.drop(m, fmt.Errorf("tcp: snapshot of %d bytes exceeds MaxSnapshotBytes %d", total, opts.MaxSnapshotBytes),
			"snapshot too large dropped")
		return false, 0, nil
	}
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(total))
	w.buf = appendMessage(w.buf, m, false)
	if len(w.buf) > opts.MaxFrameBytes {
		w.drop(m, fmt.Errorf("tcp: snapshot header of %d bytes exceeds MaxFrameBytes %d", len(w.buf), opts.MaxFrameBytes),
			"snapshot too large dropped")
		return false, 0, nil
	}
	log := w.log.With().Uint64("index", uint64(m.Snapshot.Meta.Index)).Uint64("term", uint64(m.Snapshot.Meta.Term)).
		Int64("total", total).Bool("file", img.f != nil).Logger()
	log.Info().Msg("snapshot send started")
	start := time.Now()
	if err := writeFrame(oc.bw, frameSnapHeader, w.buf); err != nil {
		return false, 0, err
	}
	lastLog, lastTenth := start, int64(0)
	for off := int64(0); off < total; {
		n := int(min(int64(opts.SnapshotChunkBytes), total-off))
		chunk, err := img.next(off, n)
		if err != nil {
			// The header is out: only breaking the connection tells the
			// receiver the stream is void (Raft sends a new snapshot).
			log.Error().Err(err).Msg("snapshot send aborted")
			return false, 0, err
		}
		now := time.Now()
		_ = oc.conn.SetWriteDeadline(now.Add(opts.WriteTimeout))
		if err := writeFrame(oc.bw, frameSnapChunk, chunk); err != nil {
			return false, 0, err
		}
		if err := oc.bw.Flush(); err != nil {
			return false, 0, err
		}
		off += int64(n)
		if tenth := off * 10 / total; off < total && (now.Sub(lastLog) >= time.Second || tenth > lastTenth) {
			log.Info().Int64("sent", off).Msg("snapshot send progress")
			lastLog, lastTenth = now, tenth
		}
	}
	if err := writeFrame(oc.bw, frameSnapEnd, nil); err != nil {
		return false, 0, err
	}
	if err := oc.bw.Flush(); err != nil {
		return false, 0, err
	}
	_ = oc.conn.SetWriteDeadline(time.Now().Add(opts.WriteTimeout))
	w.t.stats.snapsSent.Add(1)
	log.Info().Dur("took", time.Since(start)).Msg("snapshot sent")
	return true, int(total), nil
}

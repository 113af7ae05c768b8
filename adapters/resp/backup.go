package resp

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
)

// SESHAT.BACKUP answers with a stream, not one reply: the image in bulk
// strings of up to backupChunk bytes, in order, then an array
// [index, term, membership (domain.EncodeMembership), image bytes, node
// id]. A failure after the first bulk is an error reply in place of the
// next bulk; the client throws away what it got. `seshatd backup` is the
// client (redis-cli would show only the first bulk).
const backupChunk = 1 << 20

// backupProgress is how often a long backup logs its progress.
const backupProgress = 5 * time.Second

// bulkWriter writes each Write as one bulk string and sends it at once,
// so the server holds no more than one chunk of the image.
type bulkWriter struct {
	conn  redcon.Conn
	out   *redcon.Writer
	n     int64
	last  time.Time
	log   func(n int64)
	start time.Time
}

func (w *bulkWriter) Write(p []byte) (int, error) {
	// A state machine's chunk may exceed backupChunk (a row travels
	// whole, and a value may be 512 MiB): bulks never do.
	for rest := p; len(rest) > 0; {
		n := min(len(rest), backupChunk)
		w.conn.WriteBulk(rest[:n])
		if err := w.out.Flush(); err != nil {
			return 0, err
		}
		w.n += int64(n)
		rest = rest[n:]
	}
	if now := time.Now(); now.Sub(w.last) >= backupProgress {
		w.last = now
		w.log(w.n)
	}
	return len(p), nil
}

// backupItem answers SESHAT.BACKUP (parse refuses it inside MULTI, as
// every connection command).
func (s *Server) backupItem() item {
	if s.opts.Backup == nil {
		return errorItem("ERR backups are not served by this node")
	}
	return item{req: -1, barrier: func(c redcon.Conn) { s.backup(c) }}
}

// backup streams the image to c (see backupChunk).
func (s *Server) backup(c redcon.Conn) {
	out := redcon.BaseWriter(c)
	if out == nil {
		c.WriteError("ERR SESHAT.BACKUP needs a direct connection")
		return
	}
	log := s.log.With().Str("client", c.RemoteAddr()).Logger()
	bw := &bulkWriter{conn: c, out: out, start: time.Now()}
	bw.last = bw.start
	bw.log = func(n int64) {
		log.Info().Int64("bytes", n).Dur("elapsed", time.Since(bw.start)).Msg("backup: streaming")
	}
	log.Info().Msg("backup: started")
	buf := bufio.NewWriterSize(bw, backupChunk)
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
	defer cancel()
	meta, err := s.opts.Backup.Backup(ctx, buf)
	if err == nil {
		err = buf.Flush()
	}
	if err != nil {
		log.Warn().Err(err).Int64("bytes", bw.n).Msg("backup: failed")
		c.WriteError(ErrorText(fmt.Errorf("backup failed: %w", err)))
		return
	}
	c.WriteArray(5)
	c.WriteUint64(uint64(meta.Index))
	c.WriteUint64(uint64(meta.Term))
	c.WriteBulk(domain.EncodeMembership(meta.Membership))
	c.WriteInt64(bw.n)
	c.WriteUint64(uint64(s.kv.Status().ID))
	log.Info().Int64("bytes", bw.n).Uint64("index", uint64(meta.Index)).Dur("elapsed", time.Since(bw.start)).Msg("backup: done")
}

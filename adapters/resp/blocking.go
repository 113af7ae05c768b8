package resp

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// Blocking pops (BLPOP ...) outside MULTI run as a barrier: the commands
// before them are answered first, then the connection waits in
// ports.Blocker.Block, as a blocked Redis client does (the commands it
// pipelined behind wait too). Inside MULTI they are queued like any
// write and run as their non-blocking forms.
//
// While a client is blocked its socket is still read, so that a client
// that disconnects (or that CLIENT KILL closes) stops waiting at once:
// what arrives meanwhile is kept (up to maxStash bytes) and handed to
// redcon when the wait ends.

// blockItem is the item of a blocking command outside MULTI.
func (s *Server) blockItem(st *connState, call domain.Call) item {
	call.Args = cloneArgs(call.Args)
	return item{req: -1, barrier: func(c redcon.Conn) { s.block(c, st, call) }}
}

// blockedConn is a blocked connection's way out: CLIENT UNBLOCK sends on
// it.
type blockedConn struct {
	unblock chan domain.Reply
	nilRep  domain.Reply
}

func (s *Server) block(conn redcon.Conn, st *connState, call domain.Call) {
	bc, rep, ok := keyspace.ParseBlocking(call.Args)
	if !ok {
		writeValue(conn, st.resp3, rep)
		return
	}
	b, isBlocker := s.kv.(ports.Blocker)
	if !isBlocker {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
		r := s.kv.Do(ctx, []ports.Request{{Call: call}}, ports.DoOptions{Relayed: st.relayed})[0]
		cancel()
		writeReply(conn, st.resp3, r)
		return
	}
	// The replies before the command go out now, not once it is answered.
	if w := redcon.BaseWriter(conn); w != nil {
		_ = w.Flush()
	}
	// A blocked client is not a batch in flight: Shutdown does not wait
	// for it (closing the connection ends the wait).
	s.inflight.Add(-1)
	defer s.inflight.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := watchClose(conn, cancel)
	bl := &blockedConn{unblock: make(chan domain.Reply, 1), nilRep: bc.NilReply}
	s.blocked.Store(st.id, bl)
	s.blockedCount.Add(1)
	r := b.Block(ctx, ports.BlockRequest{Call: call, Blocking: bc}, bl.unblock)
	s.blockedCount.Add(-1)
	s.blocked.Delete(st.id)
	stop()
	if errors.Is(r.Err, context.Canceled) {
		return // the client went while it waited: nothing was taken for it
	}
	// Written even if the client has gone since its pop applied: a client
	// that half-closed still reads it; one that closed loses it, as with
	// Redis.
	writeReply(conn, st.resp3, r)
}

// clientUnblock answers CLIENT UNBLOCK id [TIMEOUT|ERROR].
func (s *Server) clientUnblock(args [][]byte) item {
	if len(args) > 2 {
		return errorItem("ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.")
	}
	id, err := strconv.ParseInt(string(args[0]), 10, 64)
	if err != nil {
		return errorItem("ERR value is not an integer or out of range")
	}
	asError := false
	if len(args) == 2 {
		switch strings.ToLower(string(args[1])) {
		case "timeout":
		case "error":
			asError = true
		default:
			return errorItem("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
		}
	}
	v, ok := s.blocked.Load(id)
	if !ok {
		return valueItem(domain.IntReply(0))
	}
	bl := v.(*blockedConn)
	rep := bl.nilRep
	if asError {
		rep = domain.ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
	}
	select {
	case bl.unblock <- rep:
		return valueItem(domain.IntReply(1))
	default:
		return valueItem(domain.IntReply(0)) // unblocked already
	}
}

// maxStash bounds what a blocked client may send before it is answered
// and still be watched for a disconnect.
const maxStash = 1 << 20

// watchClose reads conn's socket while its client is blocked and calls
// gone if the client closes it (or the read fails). stop ends the
// watching; what was read is then read first by redcon.
func watchClose(conn redcon.Conn, gone func()) (stop func()) {
	gc, ok := conn.NetConn().(*guardConn)
	if !ok {
		return func() {}
	}
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for len(gc.stash) < maxStash {
			n, err := gc.Conn.Read(buf)
			gc.stash = append(gc.stash, buf[:n]...)
			if err != nil {
				var ne net.Error
				if !stopping.Load() || !errors.As(err, &ne) || !ne.Timeout() {
					gc.stashErr = err
					gone()
				}
				return
			}
		}
	}()
	return func() {
		stopping.Store(true)
		_ = gc.Conn.SetReadDeadline(time.Now())
		<-done
		_ = gc.Conn.SetReadDeadline(time.Time{})
	}
}

// read reads what a watch stashed, then the socket.
func (c *guardConn) read(p []byte) (int, error) {
	if len(c.stash) > 0 {
		n := copy(p, c.stash)
		c.stash = c.stash[n:]
		if len(c.stash) == 0 {
			c.stash = nil
		}
		return n, nil
	}
	if c.stashErr != nil {
		return 0, c.stashErr
	}
	return c.Conn.Read(p)
}

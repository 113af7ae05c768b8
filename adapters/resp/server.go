package resp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// Defaults of Options' fields.
const (
	DefaultMaxValueBytes = 512 << 20
	DefaultMaxArgs       = 1 << 20
	DefaultBatchTimeout  = 30 * time.Second
	// RedisVersion is the Redis version INFO and HELLO report, for clients
	// that check it.
	RedisVersion = "7.2.0"
)

// Options configure a Server. The zero value works.
type Options struct {
	// MaxValueBytes bounds a value (SET, MSET) in bytes; a larger one is
	// refused with Redis's proto-max-bulk-len error. Default 512 MiB, at
	// most domain.MaxValueSize. Keys are bound by domain.MaxKeySize.
	MaxValueBytes int
	// MaxArgs bounds the arguments of one command. Default 1<<20.
	MaxArgs int
	// BatchTimeout bounds one batch's call to ports.KV.Do. Default 30s.
	BatchTimeout time.Duration
	// Version is Seshat's version, reported by INFO. Default "dev".
	Version string
	// Logger receives the server's logs. Default: discard.
	Logger *zerolog.Logger
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxArgs == 0 {
		o.MaxArgs = DefaultMaxArgs
	}
	if o.BatchTimeout == 0 {
		o.BatchTimeout = DefaultBatchTimeout
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

// Validate reports options the server cannot run with.
func (o *Options) Validate() error {
	switch {
	case o.MaxValueBytes < 1 || o.MaxValueBytes > domain.MaxValueSize:
		return fmt.Errorf("resp: MaxValueBytes %d not in [1, %d]", o.MaxValueBytes, domain.MaxValueSize)
	case o.MaxArgs < 3:
		return fmt.Errorf("resp: MaxArgs %d < 3", o.MaxArgs)
	case o.BatchTimeout < 0:
		return fmt.Errorf("resp: BatchTimeout %v < 0", o.BatchTimeout)
	}
	return nil
}

// Server serves the Redis protocol on one listener.
type Server struct {
	kv    ports.KV
	opts  Options
	log   zerolog.Logger
	srv   *redcon.Server
	ln    *drainListener
	start time.Time

	clients  atomic.Int64
	nextID   atomic.Int64
	inflight atomic.Int64
	serveErr chan error
}

// connState is a connection's state, redcon's conn context.
type connState struct {
	id      int64
	name    string
	relayed bool
}

// New returns a server calling kv.
func New(kv ports.KV, opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{kv: kv, opts: opts, log: opts.Logger.With().Str("component", "resp").Logger(), start: time.Now()}
	s.srv = redcon.NewServerNetwork("tcp", "", s.handle, s.accept, s.closed)
	return s, nil
}

// Serve serves on ln in the background; Shutdown stops it.
func (s *Server) Serve(ln net.Listener) {
	s.ln = &drainListener{Listener: ln, release: make(chan struct{})}
	s.serveErr = make(chan error, 1)
	go func() { s.serveErr <- s.srv.Serve(s.ln) }()
}

// Addr returns the address served.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting connections, waits (until ctx ends) for the
// batches in flight to be answered, then closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	s.ln.drain()
	for s.inflight.Load() > 0 && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	s.ln.stop()
	err := <-s.serveErr
	if n := s.inflight.Load(); n > 0 {
		return fmt.Errorf("resp: shutdown with %d batches in flight: %w", n, ctx.Err())
	}
	return err
}

// drainListener lets the server stop accepting (drain: the socket closes,
// new connections are refused) before redcon closes its connections
// (stop: Accept returns, and redcon closes them all).
type drainListener struct {
	net.Listener
	once, stopOnce sync.Once
	draining       atomic.Bool
	release        chan struct{}
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.draining.Load() {
		<-l.release
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *drainListener) drain() {
	l.once.Do(func() {
		l.draining.Store(true)
		_ = l.Listener.Close()
	})
}

func (l *drainListener) stop() {
	l.drain()
	l.stopOnce.Do(func() { close(l.release) })
}

func (l *drainListener) Close() error {
	l.stop()
	return nil
}

func (s *Server) accept(conn redcon.Conn) bool {
	conn.SetContext(&connState{id: s.nextID.Add(1)})
	s.clients.Add(1)
	return true
}

func (s *Server) closed(conn redcon.Conn, err error) {
	s.clients.Add(-1)
	if err != nil {
		s.log.Debug().Err(err).Str("addr", conn.RemoteAddr()).Msg("connection closed")
	}
}

// item is one command of a batch: either a reply ready to write, or the
// index of its request in the batch's ports.KV call.
type item struct {
	write func(redcon.Conn) // a reply computed locally
	req   int               // else: index into the requests, or -1
	quit  bool
}

// handle serves cmd and every command pipelined behind it as one batch.
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	st, _ := conn.Context().(*connState)
	if st == nil {
		st = &connState{id: s.nextID.Add(1)}
		conn.SetContext(st)
	}
	cmds := append([]redcon.Command{cmd}, conn.ReadPipeline()...)
	items := make([]item, 0, len(cmds))
	var reqs []ports.Request
	for _, c := range cmds {
		it, r, isKV := s.parse(st, c.Args)
		if isKV {
			it.req = len(reqs)
			reqs = append(reqs, r)
		}
		items = append(items, it)
		if it.quit {
			break
		}
	}
	var replies []ports.Reply
	if len(reqs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
		replies = s.kv.Do(ctx, reqs, ports.DoOptions{Relayed: st.relayed})
		cancel()
	}
	for _, it := range items {
		switch {
		case it.quit:
			conn.WriteString("OK")
			_ = conn.Close()
			return
		case it.write != nil:
			it.write(conn)
		default:
			writeReply(conn, replies[it.req])
		}
	}
}

func writeReply(conn redcon.Conn, r ports.Reply) {
	switch r.Kind {
	case ports.ReplyErr:
		conn.WriteError(ErrorText(r.Err))
	case ports.ReplyOK:
		conn.WriteString("OK")
	case ports.ReplyInt:
		conn.WriteInt64(r.Int)
	case ports.ReplyBulk:
		conn.WriteBulk(r.Value)
	case ports.ReplyNil:
		conn.WriteNull()
	case ports.ReplyArray:
		conn.WriteArray(len(r.Values))
		for _, v := range r.Values {
			if v == nil {
				conn.WriteNull()
			} else {
				conn.WriteBulk(v)
			}
		}
	default:
		conn.WriteError(fmt.Sprintf("ERR internal error: reply kind %d", r.Kind))
	}
}

// ErrorText returns the RESP error text (without '-') a client sees for
// err, as Redis words it where Redis has such an error.
func ErrorText(err error) string {
	var remote *ports.RemoteError
	var redirect *ports.RedirectError
	switch {
	case errors.As(err, &remote):
		return remote.Text
	case errors.As(err, &redirect):
		return "MOVED 0 " + redirect.Addr
	case errors.Is(err, domain.ErrNoLeader):
		return "CLUSTERDOWN No raft leader"
	case errors.Is(err, domain.ErrLeadershipLost), errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT write outcome unknown: " + oneLine(err.Error())
	case errors.Is(err, domain.ErrDiskFull):
		return "MISCONF disk full on the leader, writes refused until space returns: " + oneLine(err.Error())
	case errors.Is(err, domain.ErrProposalDropped):
		return "TRYAGAIN proposal dropped, command not run: " + oneLine(err.Error())
	case errors.Is(err, domain.ErrNotLeader):
		return "TRYAGAIN leadership changed, command not run"
	case errors.Is(err, domain.ErrStopped):
		return "ERR server is shutting down"
	}
	return "ERR " + oneLine(err.Error())
}

// oneLine keeps an error text on one line, as RESP requires.
func oneLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			b[i] = ' '
		}
	}
	return string(b)
}

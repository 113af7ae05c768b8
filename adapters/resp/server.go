package resp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// Defaults of Options' fields.
const (
	DefaultMaxValueBytes   = 512 << 20
	DefaultMaxArgs         = 1 << 20
	DefaultMaxCommandBytes = 1 << 30
	// maxInline bounds an inline command line, as Redis's
	// PROTO_INLINE_MAX_SIZE.
	maxInline           = 64 << 10
	DefaultBatchTimeout = 30 * time.Second
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
	// MaxCommandBytes bounds the arguments of one command together, as
	// Redis's client-query-buffer-limit. Default 1 GiB.
	MaxCommandBytes int
	// Databases is the number of databases SELECT accepts; it must match
	// the state machine's keyspace.Engine. Default 16.
	Databases int
	// BatchTimeout bounds one batch's call to ports.KV.Do. Default 30s.
	BatchTimeout time.Duration
	// Version is Seshat's version, reported by INFO. Default "dev".
	Version string
	// Logger receives the server's logs. Default: discard.
	Logger *zerolog.Logger
	// RequirePass, if set, is the password of Redis's default user: a
	// connection must AUTH (or HELLO AUTH) before any other command.
	RequirePass string
	// Redirect says the node answers MOVED rather than forwarding: the
	// server then describes the cluster (CLUSTER SLOTS, ...) as one master,
	// the leader, holding every slot, for cluster-aware clients.
	Redirect bool
	// Members, if set, runs SESHAT.MEMBER (members.go).
	Members Members
	// Backup, if set, serves SESHAT.BACKUP (backup.go); nil refuses it.
	Backup ports.Backup
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = DefaultMaxValueBytes
	}
	if o.MaxArgs == 0 {
		o.MaxArgs = DefaultMaxArgs
	}
	if o.MaxCommandBytes == 0 {
		o.MaxCommandBytes = DefaultMaxCommandBytes
	}
	if o.Databases == 0 {
		o.Databases = keyspace.DefaultDatabases
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
	case o.Databases < 1 || o.Databases > keyspace.MaxClientDatabases:
		return fmt.Errorf("resp: Databases %d not in [1, %d]", o.Databases, keyspace.MaxClientDatabases)
	case o.MaxCommandBytes < o.MaxValueBytes:
		return fmt.Errorf("resp: MaxCommandBytes %d < MaxValueBytes %d", o.MaxCommandBytes, o.MaxValueBytes)
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
	start time.Time
	// ln is the plain listener (Serve), tlsLn the TLS one (ServeTLS); either
	// may be nil. served is every listener being served, with its redcon
	// server (one per listener: redcon serves one).
	ln, tlsLn *drainListener
	served    []served

	clients  atomic.Int64
	nextID   atomic.Int64
	inflight atomic.Int64

	// conns are the live connections, by id (CLIENT LIST, CLIENT KILL).
	mu    sync.Mutex
	conns map[int64]*connState
	// Counters for INFO stats and commandstats.
	totalConns atomic.Int64
	totalCmds  atomic.Int64
	cmdStats   map[string]*cmdStat
	stats      serverStats // stats.go
	// blocked are the connections waiting in a blocking command, by id
	// (*blockedConn, blocking.go).
	blocked      sync.Map
	blockedCount atomic.Int64
	// batchCtx is the deadline small batches share (see batchContext).
	batchCtx atomic.Pointer[sharedDeadline]
}

// sharedDeadline is a context that every small batch started before
// handOut uses: a context.WithTimeout of its own cost each batch four
// allocations and a runtime timer, a tenth of a plain SET's allocations.
type sharedDeadline struct {
	ctx     context.Context
	cancel  context.CancelFunc // never called early: batches share ctx; its timer ends it
	handOut time.Time
}

// batchContext returns the context a batch that may take d runs under,
// started at now. Batches of the plain batch timeout share one context
// per 1/32 of it (at most a second), whose deadline leaves each of them
// between d and d plus two steps: the deadline only bounds a batch that
// cannot finish (no quorum), to answer TIMEOUT, so the step is no loss. A
// batch given longer (large values) gets a context of its own.
func (s *Server) batchContext(now time.Time, d time.Duration) (context.Context, context.CancelFunc) {
	step := min(s.opts.BatchTimeout/32, time.Second)
	if d > s.opts.BatchTimeout+step || step <= 0 {
		return s.deadlineContext(now, d)
	}
	if sd := s.batchCtx.Load(); sd != nil && now.Before(sd.handOut) {
		return sd.ctx, func() {}
	}
	sd := &sharedDeadline{handOut: now.Add(step)}
	sd.ctx, sd.cancel = s.deadlineContext(now, s.opts.BatchTimeout+2*step)
	s.batchCtx.Store(sd)
	return sd.ctx, func() {}
}

// connState is a connection's state, redcon's conn context.
type connState struct {
	id      int64
	name    string
	relayed bool
	db      int
	resp3   bool
	// multi: between MULTI and EXEC; queued holds the calls, txErr says a
	// queued command was refused (EXEC then aborts).
	multi  bool
	queued []domain.Call
	// Inside MULTI: txDB is the database queued calls run in (SELECT
	// changes it), txLocal the connection commands queued, at their
	// positions among all queued commands, txSelect the database a queued
	// SELECT leaves the connection in once EXEC runs (-1: none).
	txDB     int
	txLocal  []txLocal
	txCount  int
	txSelect int
	txErr    bool
	watches  []domain.Watch

	// Set on accept, read only after.
	conn    redcon.Conn
	addr    string
	laddr   string
	fd      int
	created time.Time
	// authed: the connection passed AUTH (or no password is set).
	authed  bool
	lastCmd string
	lastAt  time.Time
	libName string
	libVer  string
	// view is what other connections see of this one (CLIENT LIST),
	// published after each batch.
	view atomic.Pointer[clientView]
	// cmds, items and reqs are handle's buffers, reused from one batch to
	// the next (a connection runs one batch at a time).
	cmds  []redcon.Command
	items []item
	reqs  []ports.Request
}

// New returns a server calling kv.
func New(kv ports.KV, opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{kv: kv, opts: opts, log: opts.Logger.With().Str("component", "resp").Logger(), start: time.Now()}
	s.conns = map[int64]*connState{}
	s.cmdStats = map[string]*cmdStat{}
	for _, name := range commandNames() {
		s.cmdStats[name] = &cmdStat{name: name, container: containers[name], lat: newLatencyHist()}
	}
	s.stats.init()
	return s, nil
}

// served is one listener being served.
type served struct {
	ln  *drainListener
	err chan error // the redcon server's Serve result
}

// Serve serves plain RESP on ln in the background; Shutdown stops it. Call
// it at most once, before Shutdown.
func (s *Server) Serve(ln net.Listener) {
	s.ln = s.listener(ln, nil)
	s.serve(s.ln) // after s.ln is set: connections read it
}

// ServeTLS serves RESP over TLS on ln, a plain TCP listener, in the
// background; Shutdown stops it. Each connection's TLS handshake runs with
// cfg on its first read (cfg.GetConfigForClient or GetCertificate may hand
// out renewed certificates without a restart). It may run beside Serve,
// on another listener; call it at most once, before Shutdown.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) {
	s.tlsLn = s.listener(ln, cfg)
	s.serve(s.tlsLn)
}

func (s *Server) listener(ln net.Listener, cfg *tls.Config) *drainListener {
	return &drainListener{Listener: ln, tls: cfg, release: make(chan struct{}), limits: guardLimits{
		// A value a little over MaxValueBytes gets a command error and the
		// connection lives on; only one past 1 MiB too (Redis's smallest
		// proto-max-bulk-len) closes it before it is buffered.
		maxBulk:    int64(max(s.opts.MaxValueBytes, 1<<20)) + relayBulkHeadroom,
		maxArgs:    int64(s.opts.MaxArgs),
		maxCommand: int64(s.opts.MaxCommandBytes),
		maxInline:  maxInline,
		divert:     divertBytes,
	}}
}

// serve starts serving dl with a redcon server of its own.
func (s *Server) serve(dl *drainListener) {
	sv := served{ln: dl, err: make(chan error, 1)}
	s.served = append(s.served, sv)
	srv := redcon.NewServerNetwork("tcp", "", s.handle, s.accept, s.closed)
	go func() { sv.err <- srv.Serve(dl) }()
}

// Addr returns the plain address served, or the TLS one if there is no
// plain listener.
func (s *Server) Addr() net.Addr {
	if s.ln == nil && s.tlsLn != nil {
		return s.tlsLn.Addr()
	}
	return s.ln.Addr()
}

// TLSAddr returns the TLS address served, or nil.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Shutdown stops accepting connections, waits (until ctx ends) for the
// batches in flight to be answered, then closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	if len(s.served) == 0 {
		return nil
	}
	for _, sv := range s.served {
		sv.ln.drain()
	}
	for s.inflight.Load() > 0 && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	var errs []error
	for _, sv := range s.served {
		sv.ln.stop()
		errs = append(errs, <-sv.err)
	}
	if n := s.inflight.Load(); n > 0 {
		return fmt.Errorf("resp: shutdown with %d batches in flight: %w", n, ctx.Err())
	}
	return errors.Join(errs...)
}

// drainListener lets the server stop accepting (drain: the socket closes,
// new connections are refused) before redcon closes its connections
// (stop: Accept returns, and redcon closes them all).
type drainListener struct {
	net.Listener
	tls            *tls.Config // if set, connections speak TLS
	once, stopOnce sync.Once
	draining       atomic.Bool
	release        chan struct{}
	limits         guardLimits // checked on every connection's stream
}

func (l *drainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && l.draining.Load() {
		<-l.release
		return nil, net.ErrClosed
	}
	if err == nil {
		if l.tls != nil {
			// The guard reads the decrypted stream.
			c = tls.Server(c, l.tls)
		}
		c = &guardConn{Conn: c, lim: l.limits}
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
	s.register(conn)
	s.clients.Add(1)
	s.totalConns.Add(1)
	return true
}

func (s *Server) closed(conn redcon.Conn, err error) {
	if st, _ := conn.Context().(*connState); st != nil {
		s.mu.Lock()
		delete(s.conns, st.id)
		s.mu.Unlock()
	}
	s.clients.Add(-1)
	if err != nil {
		s.log.Debug().Err(err).Str("addr", conn.RemoteAddr()).Msg("connection closed")
	}
}

// txLocal is a connection command queued in MULTI: its reply, computed
// when EXEC has run, goes at position at of EXEC's array.
type txLocal struct {
	at    int
	reply func() domain.Reply
}

// item is one command of a batch: either a reply ready to write, or the
// index of its request in the batch's ports.KV call.
type item struct {
	write func(redcon.Conn) // a reply computed locally
	val   *domain.Reply     // else a reply computed locally, written in RESP3 if resp3
	resp3 bool              // the connection's protocol when the command was read
	tree  bool              // val holds sets (writeTree)
	req   int               // else: index into the requests, or -1
	// quit closes the connection after the reply (write, or +OK).
	quit bool
	// barrier, if set, runs once the commands before it have run and been
	// answered, and writes its own reply (WATCH).
	barrier func(redcon.Conn)
	// post, if set, rewrites the KV reply before it is written (EXEC
	// splices in the replies of the connection commands it queued).
	post func(domain.Reply) domain.Reply
	// relay, if set, is a relayed batch (SESHAT.DO's payload): it runs
	// once the commands before it have, together with the relayed
	// batches pipelined right behind it.
	relay []byte
	// stat counts the command (nil: not in the table), for its latency.
	stat *cmdStat
}

// handle serves cmd and every command pipelined behind it as one batch.
// The batch is cut only where a command needs the ones before it to have
// run (WATCH reads versions; relayed batches run together, on their own).
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	st, _ := conn.Context().(*connState)
	if st == nil {
		st = s.register(conn)
	}
	defer st.publish()
	cmds := append(append(st.cmds[:0], cmd), conn.ReadPipeline()...)
	large := 0
	if gc, ok := conn.NetConn().(*guardConn); ok && len(gc.d.ready) > 0 {
		large = gc.takeLarge(cmds)
	}
	items, reqs := st.items[:0], st.reqs[:0]
	var relays [][]byte
	// What the buffers still point to after the batch (arguments in
	// redcon's read buffer, replies' closures) lives until the next batch
	// overwrites it or the connection closes.
	defer func() {
		forgetLarge(cmds, large, items, reqs)
		st.cmds, st.items, st.reqs = cmds[:0], items[:0], reqs[:0]
	}()
	for _, c := range cmds {
		stat := s.count(st, c.Args)
		it, r, isKV := s.parse(st, c.Args)
		it.resp3, it.stat = st.resp3, stat
		if it.relay != nil {
			if len(relays) == 0 && !s.flush(conn, st, items, reqs) {
				return
			}
			items, reqs = items[:0], nil
			relays = append(relays, it.relay)
			continue
		}
		if len(relays) > 0 {
			s.relayed(conn, relays)
			relays = nil
		}
		if isKV {
			it.req = len(reqs)
			reqs = append(reqs, r)
		}
		if it.barrier != nil {
			if !s.flush(conn, st, items, reqs) {
				return
			}
			items, reqs = items[:0], reqs[:0]
			t0 := time.Now()
			it.barrier(conn)
			s.observe(it.stat, time.Since(t0))
			continue
		}
		items = append(items, it)
		if it.quit {
			break
		}
	}
	if len(relays) > 0 {
		s.relayed(conn, relays)
	}
	s.flush(conn, st, items, reqs)
}

// flush runs reqs and writes the replies of items in order. It returns
// false if the connection was closed (QUIT).
func (s *Server) flush(conn redcon.Conn, st *connState, items []item, reqs []ports.Request) bool {
	var replies []ports.Reply
	t0 := time.Now()
	if len(reqs) > 0 {
		ctx, cancel := s.batchContext(t0, s.batchTimeout(reqs))
		replies = s.kv.Do(ctx, reqs, ports.DoOptions{Relayed: st.relayed})
		cancel()
		for i, r := range replies {
			s.countReply(reqs[i], r)
		}
	}
	// Every command of the batch is answered once the batch has run: its
	// latency is the batch's.
	elapsed := time.Since(t0)
	for _, it := range items {
		s.observe(it.stat, elapsed)
		switch {
		case it.quit:
			switch {
			case it.write != nil:
				it.write(conn)
			case it.val != nil:
				writeTree(conn, it.resp3, *it.val)
			default:
				conn.WriteString("OK")
			}
			_ = conn.Close()
			return false
		case it.write != nil:
			it.write(conn)
		case it.val != nil && it.tree:
			writeTree(conn, it.resp3, *it.val)
		case it.val != nil:
			writeValue(conn, it.resp3, *it.val)
		default:
			r := replies[it.req]
			if it.post != nil && r.Err == nil {
				r.Value = it.post(r.Value)
			}
			writeReply(conn, it.resp3, r)
		}
	}
	return true
}

// watch records the current versions of keys for the connection's next
// EXEC.
func (s *Server) watch(conn redcon.Conn, st *connState, keys [][]byte) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.BatchTimeout)
	defer cancel()
	versions, err := s.kv.Versions(ctx, st.db, keys)
	if err != nil {
		conn.WriteError(ErrorText(err))
		return
	}
	for i, k := range keys {
		st.watches = append(st.watches, domain.Watch{DB: st.db, Key: bytes.Clone(k), Version: versions[i]})
	}
	conn.WriteString("OK")
}

func writeReply(conn redcon.Conn, resp3 bool, r ports.Reply) {
	if r.Err != nil {
		conn.WriteError(ErrorText(r.Err))
		return
	}
	writeValue(conn, resp3, r.Value)
}

// ErrorText returns the RESP error text (without '-') a client sees for
// err, as Redis words it where Redis has such an error.
func ErrorText(err error) string {
	var redirect *ports.RedirectError
	switch {
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

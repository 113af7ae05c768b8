// Command seshatd runs one Seshat node: a Raft member over TCP that serves
// the Redis protocol.
//
//	seshatd --id 1 --data-dir data/1 --listen 127.0.0.1:7379 \
//	  --peer-listen 127.0.0.1:7479 \
//	  --cluster 1=127.0.0.1:7479,2=127.0.0.1:7480,3=127.0.0.1:7481 \
//	  --clients 1=127.0.0.1:7379,2=127.0.0.1:7380,3=127.0.0.1:7381
//
// `seshatd backup` and `seshatd restore` copy a running cluster to a file
// and make a new cluster from one (backup.go, restore.go).
//
// Every flag falls back to an environment variable: --data-dir to
// SESHAT_DATA_DIR, and so on. Bad configuration exits with status 2 and
// one line on stderr; a failure at run time exits with status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/adapters/relay"
	"github.com/seshat-kv/seshat/adapters/resp"
	"github.com/seshat-kv/seshat/adapters/tcp"
	"github.com/seshat-kv/seshat/app"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

var _ app.Node = (*node.Node)(nil)

// snapshotSpoolDir is the directory, inside the data dir, of the snapshot
// images being sent or received (files that live only while a snapshot
// travels).
const snapshotSpoolDir = "snapshot-spool"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// config is the parsed command line.
type config struct {
	id             domain.NodeID
	dataDir        string
	listen         string
	peerListen     string
	cluster        map[domain.NodeID]string
	clients        map[domain.NodeID]string
	clusterID      string
	redirect       bool
	logLevel       zerolog.Level
	logFormat      string
	tick           time.Duration
	electionTicks  int
	heartbeatTicks int
	snapEntries    uint64
	trailEntries   uint64
	trailBytes     uint64
	maxValueBytes  int
	databases      int
	noSync         bool
	shutdownWait   time.Duration
	requirePass    string
	readMode       consensus.ReadMode
	leaseDrift     int
	metricsListen  string
	sec            securityConfig // TLS and peer authentication (security.go)
	ident          identityConfig // cluster identity: bootstrap, join, force (identity.go)
}

// engine is the keyspace settings every node of the cluster must share.
func (c config) engine() keyspace.Engine {
	return keyspace.Engine{Databases: c.databases, MaxValueBytes: c.maxValueBytes}
}

// usageError is a configuration error: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func badConfig(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	if sub := subcommands[firstArg(os.Args)]; sub != nil { // backup, restore (backup.go)
		exitSub(sub(os.Args[2:], os.Getenv))
	}
	cfg, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "seshatd: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "seshatd: node %d: %v\n", cfg.id, err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// parseFlags reads args, each flag falling back to SESHAT_<NAME> from env.
func parseFlags(args []string, env func(string) string) (config, error) {
	fs := flag.NewFlagSet("seshatd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		id         = fs.Uint64("id", 0, "this node's id (non-zero, one of --cluster's)")
		dataDir    = fs.String("data-dir", "", "directory of this node's data (created if needed)")
		listen     = fs.String("listen", "127.0.0.1:6379", "client (Redis protocol) address to listen on; empty or 0: none (TLS only, see --tls-port)")
		peer       = fs.String("peer-listen", "", "peer address to listen on (default: this node's --cluster address)")
		cluster    = fs.String("cluster", "", "peer addresses of every node: 1=host:port,2=host:port,...")
		clients    = fs.String("clients", "", "client addresses of every node, for forwarding and MOVED: 1=host:port,...")
		clusterID  = fs.String("cluster-id", "seshat", "cluster name; peers with another are refused")
		redirect   = fs.Bool("redirect", false, "answer writes on a follower with -MOVED 0 leader:port instead of forwarding them")
		level      = fs.String("log-level", "info", "log level: debug, info, warn, error")
		format     = fs.String("log-format", "console", "log format: console or json")
		tick       = fs.Duration("tick", 10*time.Millisecond, "Raft tick interval")
		election   = fs.Int("election-ticks", 50, "election timeout in ticks (randomized in [n, 2n))")
		heartbeat  = fs.Int("heartbeat-ticks", 5, "leader heartbeat interval in ticks")
		snapEnts   = fs.Uint64("snapshot-entries", node.DefaultSnapshotEntries, "compact the log after this many applied entries")
		trailEnts  = fs.Uint64("trailing-entries", node.DefaultTrailingEntries, "entries kept behind the compaction point for slow followers")
		trailBytes = fs.Uint64("trailing-bytes", node.DefaultTrailingBytes, "bytes of entries kept behind the compaction point at most (fewer entries than --trailing-entries when they are large)")
		maxValue   = fs.Int("max-value-bytes", 512<<20, "largest value a client may SET or a command may build (Redis's proto-max-bulk-len)")
		databases  = fs.Int("databases", keyspace.DefaultDatabases, "number of databases SELECT accepts (the same on every node)")
		noSync     = fs.Bool("no-sync", false, "never fsync (tests only: a crash loses acknowledged writes)")
		shutdown   = fs.Duration("shutdown-timeout", 5*time.Second, "bound on a graceful shutdown")
		reqPass    = fs.String("requirepass", "", "password clients must AUTH with (Redis's requirepass; prefer SESHAT_REQUIREPASS)")
		readMode   = fs.String("read-mode", "readindex", "how the leader confirms a linearizable read: readindex (a heartbeat round) or lease (no round trip; assumes bounded clock drift, see README)")
		leaseDrft  = fs.Int("lease-drift-ticks", 0, "with --read-mode lease: the clock-drift bound in ticks, the lease being election-ticks minus it (default election-ticks/2)")
		metricsLn  = fs.String("metrics-listen", "", "address of the HTTP server for /metrics (Prometheus), /healthz and /readyz (default: none)")
		secFlags   = addSecurityFlags(fs)
		identFlgs  = addIdentityFlags(fs)
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(os.Stdout)
			fmt.Fprintln(os.Stdout, "Usage: seshatd --id N --data-dir DIR --cluster 1=host:port,... --clients 1=host:port,... [flags]")
			fmt.Fprintln(os.Stdout, "Every flag may instead be set by SESHAT_<FLAG> (e.g. SESHAT_DATA_DIR).")
			fmt.Fprintln(os.Stdout, "Also: seshatd backup --from host:port --out FILE; seshatd restore --in FILE --data-dir DIR --id N (each with --help).")
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "SESHAT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" && !set[f.Name] && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return config{}, envErr
	}
	c := config{
		id: domain.NodeID(*id), dataDir: *dataDir, listen: *listen, peerListen: *peer,
		clusterID: *clusterID, redirect: *redirect, logFormat: *format, tick: *tick,
		electionTicks: *election, heartbeatTicks: *heartbeat, maxValueBytes: *maxValue, databases: *databases,
		snapEntries: *snapEnts, trailEntries: *trailEnts, trailBytes: *trailBytes,
		noSync: *noSync, shutdownWait: *shutdown, requirePass: *reqPass, metricsListen: *metricsLn,
	}
	var err error
	if c.readMode, err = consensus.ParseReadMode(*readMode); err != nil {
		return c, fmt.Errorf("--read-mode %q: want readindex or lease", *readMode)
	}
	if c.leaseDrift = *leaseDrft; c.leaseDrift < 0 || c.leaseDrift >= c.electionTicks {
		return c, fmt.Errorf("--lease-drift-ticks %d not in [1, --election-ticks - 1] (0: the default)", c.leaseDrift)
	}
	if c.logLevel, err = zerolog.ParseLevel(*level); err != nil || *level == "" {
		return c, fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
	}
	switch {
	case c.id == domain.None:
		return c, errors.New("--id is required and must be non-zero")
	case c.dataDir == "":
		return c, errors.New("--data-dir is required")
	case c.logFormat != "console" && c.logFormat != "json":
		return c, fmt.Errorf("--log-format %q: want console or json", c.logFormat)
	case c.tick <= 0:
		return c, fmt.Errorf("--tick %v must be positive", c.tick)
	case c.heartbeatTicks < 1 || c.electionTicks <= c.heartbeatTicks:
		return c, fmt.Errorf("need 0 < --heartbeat-ticks (%d) < --election-ticks (%d)", c.heartbeatTicks, c.electionTicks)
	case c.databases < 1 || c.databases > keyspace.MaxClientDatabases:
		return c, fmt.Errorf("--databases %d not in [1, %d]", c.databases, keyspace.MaxClientDatabases)
	case c.maxValueBytes < 1 || c.maxValueBytes > domain.MaxValueSize:
		return c, fmt.Errorf("--max-value-bytes %d not in [1, %d]", c.maxValueBytes, domain.MaxValueSize)
	}
	if *identFlgs.join != "" && *cluster == "" {
		if c.peerListen == "" {
			return c, errors.New("--join needs --peer-listen (this node's peer address, which the cluster dials)")
		}
		*cluster = fmt.Sprintf("%d=%s", c.id, c.peerListen)
	}
	if *cluster == "" {
		return c, errors.New("--cluster is required (1=host:port,... of every node, this one included)")
	}
	if c.cluster, err = parseAddrs("--cluster", *cluster); err != nil {
		return c, err
	}
	if _, ok := c.cluster[c.id]; !ok {
		return c, fmt.Errorf("--cluster does not name this node's id %d", c.id)
	}
	if *clients != "" {
		if c.clients, err = parseAddrs("--clients", *clients); err != nil {
			return c, err
		}
		for nid := range c.cluster {
			if _, ok := c.clients[nid]; !ok {
				return c, fmt.Errorf("--clients has no address for node %d of --cluster", nid)
			}
		}
		for nid := range c.clients {
			if _, ok := c.cluster[nid]; !ok {
				return c, fmt.Errorf("--clients names node %d, which --cluster does not", nid)
			}
		}
	} else if len(c.cluster) > 1 && *identFlgs.join == "" {
		return c, errors.New("--clients is required with more than one node (followers forward to the leader's client address)")
	}
	if c.ident, err = identFlgs.resolve(c.cluster); err != nil {
		return c, err
	}
	if c.peerListen == "" {
		c.peerListen = c.cluster[c.id]
	}
	if clientListenDisabled(c.listen) {
		c.listen = ""
	}
	if c.sec, err = secFlags.resolve(c.listen); err != nil {
		return c, err
	}
	switch {
	case c.listen == "" && c.sec.tlsListen == "":
		return c, errors.New("--listen and --tls-port are both off: clients could not connect")
	case c.listen == "" && len(c.cluster) > 1 && !c.redirect:
		return c, errors.New("--listen is off, but followers forward writes to the leader's plain client port (--clients): keep --listen on a private address, or use --redirect")
	}
	return c, nil
}

// parseAddrs parses "1=host:port,2=host:port".
func parseAddrs(flagName, s string) (map[domain.NodeID]string, error) {
	out := map[domain.NodeID]string{}
	seenAddr := map[string]domain.NodeID{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		idStr, addr, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q is not id=host:port", flagName, part)
		}
		n, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%s: %q: the id must be a non-zero integer", flagName, part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%s: %q: %v", flagName, part, err)
		}
		nid := domain.NodeID(n)
		if _, dup := out[nid]; dup {
			return nil, fmt.Errorf("%s: node id %d appears twice", flagName, nid)
		}
		if other, dup := seenAddr[addr]; dup {
			return nil, fmt.Errorf("%s: nodes %d and %d share the address %s", flagName, other, nid, addr)
		}
		out[nid], seenAddr[addr] = addr, nid
	}
	return out, nil
}

// prefixWriter prefixes every write (one log line each) with prefix.
type prefixWriter struct {
	mu     sync.Mutex
	prefix []byte
	w      io.Writer
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(append(p.prefix[:len(p.prefix):len(p.prefix)], b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func newLogger(cfg config) zerolog.Logger {
	var w io.Writer = os.Stderr
	if cfg.logFormat == "console" {
		// ConsoleWriter writes each formatted event with one Write.
		fi, err := os.Stderr.Stat()
		tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
		w = zerolog.ConsoleWriter{Out: &prefixWriter{prefix: []byte(fmt.Sprintf("n%d ", cfg.id)), w: os.Stderr}, TimeFormat: "15:04:05.000", NoColor: !tty}
	}
	return zerolog.New(w).Level(cfg.logLevel).With().Timestamp().Logger()
}

// run starts the node and serves until SIGTERM or SIGINT, or until the node
// fails.
func run(cfg config) (err error) {
	base := newLogger(cfg)
	log := componentLog(base, cfg.id, "seshatd")
	hup := catchHangup()
	if cfg.noSync {
		log.Warn().Msg("--no-sync: nothing is fsynced, a crash loses acknowledged writes; for tests only")
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return badConfig("data dir: %v", err)
	}
	// Listen first: an address in use is a configuration error, found
	// before anything is opened.
	clientLns, err := listenClients(cfg)
	if err != nil {
		return err
	}
	defer clientLns.close()
	obs, err := newObserver(cfg, componentLog(base, cfg.id, "metrics"))
	if err != nil {
		return err
	}
	defer obs.stop(context.Background())

	// The peer address too, before anything logs: then a bad configuration
	// gives one line on stderr. (tcp.New listens again just after.)
	if ln, err := net.Listen("tcp", cfg.peerListen); err != nil {
		return badConfig("--peer-listen %s: %v", cfg.peerListen, err)
	} else {
		_ = ln.Close()
	}
	peerCerts, peerTLSConfig, err := peerTLS(cfg)
	if err != nil {
		return err
	}
	jn, err := joinIfNew(cfg, log) // --join on an empty data dir (join.go)
	if err != nil {
		return err
	}
	ident, err := openIdentity(cfg, log)
	if err != nil {
		return err
	}
	// Pebble is chatty at info (WAL recovery, flushes): keep it to
	// warnings unless debugging.
	plog := componentLog(base, cfg.id, "pebble")
	if cfg.logLevel > zerolog.DebugLevel {
		plog = plog.Level(max(cfg.logLevel, zerolog.WarnLevel))
	}
	db, err := pebble.Open(pebble.Options{Dir: cfg.dataDir, Engine: cfg.engine(), NoSync: cfg.noSync, Logger: &plog})
	if err != nil {
		return badConfig("data dir %s: %v", cfg.dataDir, err)
	}
	defer func() {
		_ = db.LogStore().Sync()
		_ = db.StateMachine().Sync()
		if cerr := db.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if cfg.ident.forceNew {
		if ident, err = forceNewCluster(cfg, ident, db.LogStore(), db.VoteStore(), db.StateMachine(), log); err != nil {
			return err
		}
	}

	peers := map[domain.NodeID]string{}
	for nid, a := range cfg.cluster {
		if nid != cfg.id {
			peers[nid] = a
		}
	}
	if jn != nil { // what the cluster answered is fresher than --cluster
		maps.Copy(peers, jn.peers)
		cfg.clients = jn.clients
	}
	tlog := componentLog(base, cfg.id, "tcp")
	// Snapshot images travel through files of one spool directory, never
	// whole in memory: the leader writes the image it sends there, the
	// transport the one it receives (each deletes its own leftovers at
	// start).
	spool := filepath.Join(cfg.dataDir, snapshotSpoolDir)
	tr, err := tcp.New(tcp.Options{ID: cfg.id, ClusterID: cfg.clusterID, ClusterUUID: ident.ClusterID, ListenAddr: cfg.peerListen, Peers: peers,
		PeerSecret: cfg.sec.peerSecret, TLS: peerTLSConfig, SpoolDir: spool, Logger: &tlog})
	if err != nil {
		return badConfig("--peer-listen %s: %v", cfg.peerListen, err)
	}
	defer tr.Close()

	ids := make([]domain.NodeID, 0, len(cfg.cluster))
	for nid := range cfg.cluster {
		ids = append(ids, nid)
	}
	slices.Sort(ids)
	if cfg.ident.join != "" {
		ids = nil // a joining node learns its membership from the leader
	}
	nlog := componentLog(base, cfg.id, "raft")
	applied := app.NewAppliedSignal() // wakes clients blocked in BLPOP ...
	n, err := node.Start(node.Config{
		DriverConfig: node.DriverConfig{
			Raft: planted(consensus.Config{
				ID:              cfg.id,
				Peers:           ids,
				ElectionTicks:   cfg.electionTicks,
				HeartbeatTicks:  cfg.heartbeatTicks,
				ReadMode:        cfg.readMode,
				LeaseDriftTicks: cfg.leaseDrift,
			}),
			SnapshotEntries: cfg.snapEntries,
			TrailingEntries: cfg.trailEntries,
			TrailingBytes:   cfg.trailBytes,
			Logger:          &nlog,
		},
		Log:          obs.logStore(db.LogStore()),
		Vote:         db.VoteStore(),
		StateMachine: applied.Wrap(obs.stateMachine(db.StateMachine())),
		Transport:    tr,
		SnapshotDir:  spool,
		TickInterval: cfg.tick,
		DiskFull:     db.DiskFull,
	})
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	defer func() {
		if serr := n.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()

	electionTimeout := 2 * time.Duration(cfg.electionTicks) * cfg.tick
	rl, err := relay.New(relay.Options{Password: cfg.requirePass, Logger: new(componentLog(base, cfg.id, "relay"))})
	if err != nil {
		return badConfig("%v", err)
	}
	defer rl.Close()
	alog := componentLog(base, cfg.id, "app")
	svc, err := app.New(obs.appNode(n), db.StateMachine(), app.Config{
		ClientAddrs: cfg.clients,
		Relay:       rl,
		Redirect:    cfg.redirect,
		LeaderWait:  electionTimeout,
		Engine:      cfg.engine(),
		Logger:      &alog,
		Applied:     applied,
	})
	if err != nil {
		return badConfig("%v", err)
	}
	defer svc.Close()
	members := app.NewMembers(svc, n, app.MembersConfig{Peers: tr, Relay: rl, ClusterID: ident.ClusterID, StaticPeers: cfg.cluster})
	defer members.Close()
	rlog := componentLog(base, cfg.id, "resp")
	srv, err := resp.New(svc, resp.Options{MaxValueBytes: cfg.maxValueBytes, Databases: cfg.databases, Version: version, Logger: &rlog,
		RequirePass: cfg.requirePass, Redirect: cfg.redirect, Members: members,
		Backup: app.NewBackup(svc, db.StateMachine())})
	if err != nil {
		return badConfig("%v", err)
	}
	serveClients(srv, clientLns)
	obs.start(n, svc, srv, db)
	defer watchCerts(componentLog(base, cfg.id, "tls"), hup, clientLns.certs, peerCerts)()
	clientLns.logFields(log.Info()).Str("peer_listen", tr.Addr().String()).Bool("peer_secret", len(cfg.sec.peerSecret) > 0).
		Bool("peer_tls", peerCerts != nil).
		Str("data_dir", cfg.dataDir).Str("cluster_uuid", ident.ClusterID).Int("nodes", len(ids)).Str("version", version).Msg("seshatd started")
	warnInsecure(log, cfg)

	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)
	select {
	case sig := <-sigc:
		log.Info().Str("signal", sig.String()).Msg("shutting down")
	case <-n.Done():
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("raft node stopped: %w", n.Err())
	}
	// A second signal makes the shutdown quick (no hand-over).
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancel()
	go func() {
		select {
		case <-sigc:
			log.Warn().Msg("second signal: stopping now")
			cancel()
		case <-ctx.Done():
		}
	}()
	hctx, hcancel := context.WithTimeout(ctx, 2*electionTimeout)
	if err := svc.HandOver(hctx); err != nil {
		log.Warn().Err(err).Msg("leadership hand-over failed; the cluster will elect a new leader")
	}
	hcancel()
	// Keep serving briefly so that clients and relaying peers learn of the
	// new leader, then stop accepting and finish the batches in flight.
	if err := sleepCtx(ctx, 4*time.Duration(cfg.heartbeatTicks)*cfg.tick); err == nil {
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn().Err(err).Msg("client connections closed with work in flight")
		}
	} else {
		_ = srv.Shutdown(ctx)
	}
	log.Info().Msg("stopped")
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// DefaultReadyLag is the default of Options.ReadyLag: a node whose applied
// index trails its commit index by more is busy catching up (a restart
// replaying its log, a snapshot being restored) and not ready. A healthy
// node trails by one batch at most, far fewer entries than this.
const DefaultReadyLag = 1000

// Options configure a Server. Status is required; every other source is
// optional and its metrics are absent without it.
type Options struct {
	// Status is the node's Raft view, the one INFO replication shows:
	// role, term, leader, commit, applied and last index.
	Status func() ports.KVStatus
	// Replication adds what only the driver knows: the log's compaction
	// point and, on a leader, each follower's progress.
	Replication func() Replication
	// Clients are the client server's counters.
	Clients func() ports.ClientStats
	// DiskFull says whether the node refuses writes for want of space.
	DiskFull func() bool
	// Health checks the storage: nil when it answers. /healthz fails while
	// it returns an error.
	Health func() error
	// ReadyLag is the largest commit-applied gap /readyz accepts. Default
	// DefaultReadyLag.
	ReadyLag uint64
	// Logger receives the server's logs. Default: discard.
	Logger *zerolog.Logger
}

// Replication is the driver's view of the log and the followers.
type Replication struct {
	// FirstIndex is the first index still in the log: everything before
	// was compacted into the state machine.
	FirstIndex domain.Index
	// Peers are a leader's followers, in id order (none on a follower).
	Peers []Peer
	// ReadRounds and ReadRoundsConfirmed count the heartbeat rounds the
	// node started as leader to confirm ReadIndex reads, and those a
	// quorum confirmed; LeaseReads the reads it answered with no round.
	ReadRounds, ReadRoundsConfirmed, LeaseReads uint64
}

// Peer is a leader's view of one follower.
type Peer struct {
	ID domain.NodeID
	// Match is the highest index known to be in the follower's log.
	Match domain.Index
	// Active says the follower was heard from within an election timeout.
	Active bool
}

// EnsureDefaults fills zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.ReadyLag == 0 {
		o.ReadyLag = DefaultReadyLag
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
}

// Validate reports options the server cannot run with.
func (o *Options) Validate() error {
	if o.Status == nil {
		return errors.New("metrics: Options.Status is required")
	}
	return nil
}

// Server serves /metrics, /healthz and /readyz. Its storage decorators
// (LogStore, StateMachine) record into the same registry.
type Server struct {
	opts    Options
	log     zerolog.Logger
	reg     *prometheus.Registry
	storage *storageMetrics
	raft    *raftMetrics
	http    *http.Server
	done    chan error
}

// New returns a server; Serve starts it.
func New(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger.With().Str("component", "metrics").Logger(), reg: prometheus.NewRegistry()}
	s.storage, s.raft = newStorageMetrics(), newRaftMetrics()
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statusCollector{opts: &s.opts},
		&clientCollector{opts: &s.opts},
	}
	for _, c := range append(append(cs, s.storage.collectors()...), s.raft.collectors()...) {
		if err := s.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: promLogger{s.log}}))
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Handler returns the HTTP handler of the three paths.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Registry returns the registry /metrics gathers from.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Serve serves on ln in the background until Shutdown.
func (s *Server) Serve(ln net.Listener) {
	s.done = make(chan error, 1)
	go func() { s.done <- s.http.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("metrics served")
}

// Shutdown stops the server, waiting for scrapes in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.done == nil {
		return nil
	}
	err := s.http.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// healthz: the process is up and its storage answers.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.opts.Health != nil {
		if err := s.opts.Health(); err != nil {
			http.Error(w, "unhealthy: storage: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// readyz: a leader is known and the node has applied close to its commit
// index, so it can serve reads without a long wait.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := ready(s.opts.Status(), s.opts.ReadyLag); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// ready says why a node in status st is not ready, or nil.
func ready(st ports.KVStatus, maxLag uint64) error {
	if st.Leader == domain.None {
		return fmt.Errorf("no leader known (term %d)", st.Term)
	}
	if st.Commit > st.Applied && uint64(st.Commit-st.Applied) > maxLag {
		return fmt.Errorf("applied index %d trails commit index %d by more than %d", st.Applied, st.Commit, maxLag)
	}
	return nil
}

// promLogger routes promhttp's error log into zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn().Msg(fmt.Sprint(v...)) }

package main

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/adapters/metrics"
	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/adapters/resp"
	"github.com/seshat-kv/seshat/app"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// observer wires the metrics adapter (--metrics-listen) into the daemon.
// Without --metrics-listen it is nil and every method passes through, so
// run's wiring reads the same either way.
type observer struct {
	srv *metrics.Server
	ln  net.Listener
	// Set by start, read by the scrape functions (which run only after
	// start, since the listener is served from there).
	node *node.Node
	svc  *app.Service
	resp *resp.Server
	db   *pebble.DB
}

// newObserver listens on --metrics-listen, so that an address in use is
// a configuration error found before anything is opened.
func newObserver(cfg config, log zerolog.Logger) (*observer, error) {
	if cfg.metricsListen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.metricsListen)
	if err != nil {
		return nil, badConfig("--metrics-listen %s: %v", cfg.metricsListen, err)
	}
	o := &observer{ln: ln}
	o.srv, err = metrics.New(metrics.Options{
		Status:      func() ports.KVStatus { return o.svc.Status() },
		Replication: o.replication,
		Clients:     func() ports.ClientStats { return o.resp.Stats() },
		DiskFull:    func() bool { return o.db.DiskFull() },
		Health:      o.health,
		Logger:      &log,
	})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return o, nil
}

// logStore returns ls measured (fsync latency, entries per fsync).
func (o *observer) logStore(ls ports.LogStore) ports.LogStore {
	if o == nil {
		return ls
	}
	return o.srv.LogStore(ls)
}

// stateMachine returns sm measured (snapshots built and restored).
func (o *observer) stateMachine(sm ports.StateMachine) ports.StateMachine {
	if o == nil {
		return sm
	}
	return o.srv.StateMachine(sm)
}

// appNode returns the node as the service is to call it: with each
// proposal and read barrier reported to the metrics.
func (o *observer) appNode(n *node.Node) app.Node {
	if o == nil {
		return n
	}
	return measuredNode{Node: n, m: o.srv}
}

// measuredNode is a node whose Propose and ReadIndex calls are measured.
type measuredNode struct {
	*node.Node
	m *metrics.Server
}

func (n measuredNode) Propose(ctx context.Context, cmds ...[]byte) ([]domain.Result, error) {
	t0 := time.Now()
	res, err := n.Node.Propose(ctx, cmds...)
	n.m.Proposed(len(cmds), time.Since(t0), err)
	return res, err
}

func (n measuredNode) ReadIndex(ctx context.Context) error {
	t0 := time.Now()
	err := n.Node.ReadIndex(ctx)
	n.m.ReadIndexed(time.Since(t0), err)
	return err
}

// start serves /metrics, /healthz and /readyz from the running node.
func (o *observer) start(n *node.Node, svc *app.Service, srv *resp.Server, db *pebble.DB) {
	if o == nil {
		return
	}
	o.node, o.svc, o.resp, o.db = n, svc, srv, db
	o.srv.Serve(o.ln)
}

// stop stops serving; a scrape in flight may finish until ctx ends.
func (o *observer) stop(ctx context.Context) {
	if o == nil {
		return
	}
	if o.node == nil { // never started: only the listener to close
		_ = o.ln.Close()
		return
	}
	_ = o.srv.Shutdown(ctx)
}

func (o *observer) replication() metrics.Replication {
	st := o.node.Status()
	r := metrics.Replication{FirstIndex: st.FirstIndex, ReadRounds: st.Reads.Rounds,
		ReadRoundsConfirmed: st.Reads.Confirmed, LeaseReads: st.Reads.Immediate}
	for id, pr := range st.Progress {
		r.Peers = append(r.Peers, metrics.Peer{ID: id, Match: pr.Match, Active: pr.RecentActive})
	}
	slices.SortFunc(r.Peers, func(a, b metrics.Peer) int { return int(a.ID) - int(b.ID) })
	return r
}

// health: the node runs and its storage answers a read. The log's last
// index is asked, not the state machine's applied point: a read of the
// log fails once the DB has failed, as every read does, but never waits
// behind a long Apply or a snapshot Restore, which would make a probe
// time out on a node that is only busy.
func (o *observer) health() error {
	select {
	case <-o.node.Done():
		return errors.New("raft node stopped")
	default:
	}
	_, err := o.db.LogStore().LastIndex()
	return err
}

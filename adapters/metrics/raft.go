package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seshat-kv/seshat/domain"
)

// outcomes are the values of the outcome label of proposals and read
// barriers: a fixed list, so that an unexpected error cannot grow the
// label set.
var outcomes = []struct {
	name string
	err  error
}{
	{"not_leader", domain.ErrNotLeader},
	{"no_leader", domain.ErrNoLeader},
	{"dropped", domain.ErrProposalDropped},
	{"leadership_lost", domain.ErrLeadershipLost},
	{"disk_full", domain.ErrDiskFull},
	{"stopped", domain.ErrStopped},
	{"timeout", context.DeadlineExceeded},
	{"canceled", context.Canceled},
}

// outcome names err's outcome: "ok" for nil, "error" for any error not
// in outcomes.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	for _, o := range outcomes {
		if errors.Is(err, o.err) {
			return o.name
		}
	}
	return "error"
}

// raftMetrics count the calls the service makes of the Raft node.
type raftMetrics struct {
	proposals        *prometheus.CounterVec
	proposedCommands prometheus.Counter
	proposalSeconds  prometheus.Histogram
	reads            *prometheus.CounterVec
	readSeconds      prometheus.Histogram
}

// roundBuckets span a local round (tens of microseconds) to an election
// (seconds).
var roundBuckets = prometheus.ExponentialBuckets(0.00005, 2, 18)

func newRaftMetrics() *raftMetrics {
	return &raftMetrics{
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seshat_proposals_total",
			Help: "Proposals (batches of commands) made to the Raft node, by outcome: ok (committed and applied), not_leader, no_leader, dropped, leadership_lost (outcome unknown), disk_full, stopped, timeout, canceled, error.",
		}, []string{"outcome"}),
		proposedCommands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seshat_proposed_commands_total",
			Help: "Commands carried by proposals, whatever their outcome (one log entry each).",
		}),
		proposalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seshat_proposal_duration_seconds",
			Help:    "Time from a proposal to its commands applied, for proposals that succeeded.",
			Buckets: roundBuckets,
		}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seshat_read_index_requests_total",
			Help: "Linearizable read barriers (ReadIndex) asked of the Raft node, by outcome (as seshat_proposals_total's); the node serves every request waiting with one heartbeat round.",
		}, []string{"outcome"}),
		readSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "seshat_read_index_duration_seconds",
			Help:    "Time from a read barrier asked to the state machine having applied its read point, for barriers that succeeded.",
			Buckets: roundBuckets,
		}),
	}
}

func (m *raftMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.proposals, m.proposedCommands, m.proposalSeconds, m.reads, m.readSeconds}
}

// Proposed records one proposal to the Raft node: the commands it
// carried, the time to its outcome and the outcome (nil: applied).
func (s *Server) Proposed(commands int, d time.Duration, err error) {
	s.raft.proposals.WithLabelValues(outcome(err)).Inc()
	s.raft.proposedCommands.Add(float64(commands))
	if err == nil {
		s.raft.proposalSeconds.Observe(d.Seconds())
	}
}

// ReadIndexed records one read barrier (ReadIndex) asked of the Raft
// node: the time to its outcome and the outcome (nil: the read point is
// applied).
func (s *Server) ReadIndexed(d time.Duration, err error) {
	s.raft.reads.WithLabelValues(outcome(err)).Inc()
	if err == nil {
		s.raft.readSeconds.Observe(d.Seconds())
	}
}

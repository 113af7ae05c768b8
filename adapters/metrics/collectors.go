package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// roles are the values of seshat_raft_role's role label: every one is
// exported, 1 for the node's role and 0 for the others, so a query can
// count leaders with sum(seshat_raft_role{role="leader"}).
var roles = []string{"follower", "pre-candidate", "candidate", "leader"}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// statusCollector exports the node's Raft status, read at scrape time.
type statusCollector struct{ opts *Options }

var (
	descNodeID    = desc("seshat_raft_node_id", "This node's id.")
	descTerm      = desc("seshat_raft_term", "The node's current Raft term.")
	descLeader    = desc("seshat_raft_leader_id", "The leader's node id as this node knows it (0: none known).")
	descRole      = desc("seshat_raft_role", "1 for the node's current Raft role, 0 for the others.", "role")
	descCommit    = desc("seshat_raft_commit_index", "The highest log index known to be committed.")
	descApplied   = desc("seshat_raft_applied_index", "The highest log index applied to the state machine.")
	descLast      = desc("seshat_raft_log_last_index", "The last index in the node's log.")
	descFirst     = desc("seshat_raft_log_first_index", "The first index still in the log (compaction point plus one).")
	descEntries   = desc("seshat_raft_log_entries", "Entries in the log between the compaction point and the last index.")
	descVoters    = desc("seshat_raft_voters", "Voting members of the cluster.")
	descLearners  = desc("seshat_raft_learners", "Non-voting members (learners) of the cluster.")
	descPeerMatch = desc("seshat_raft_peer_match_index", "Leader only: the highest index known to be in a follower's log.", "peer")
	descPeerLag   = desc("seshat_raft_peer_lag_entries", "Leader only: entries of the leader's log a follower does not have yet.", "peer")
	descPeerUp    = desc("seshat_raft_peer_active", "Leader only: 1 if the follower was heard from within an election timeout.", "peer")
	descRounds    = desc("seshat_raft_read_rounds_total", "Heartbeat rounds a leader started to confirm ReadIndex reads (one round serves every read that joined it), by outcome (started, confirmed).", "outcome")
	descLeaseRead = desc("seshat_raft_lease_reads_total", "Reads a leader answered with no heartbeat round: under a lease (--read-mode lease) or as the only voter.")
	descDiskFull  = desc("seshat_storage_disk_full", "1 while the node refuses writes because its disk is nearly full.")
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeID, descTerm, descLeader, descRole, descCommit, descApplied,
		descLast, descFirst, descEntries, descVoters, descLearners, descPeerMatch, descPeerLag, descPeerUp, descRounds, descLeaseRead, descDiskFull} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.opts.Status()
	gauge(descNodeID, float64(st.ID))
	gauge(descTerm, float64(st.Term))
	gauge(descLeader, float64(st.Leader))
	for _, r := range roles {
		gauge(descRole, b2f(r == st.Role), r)
	}
	gauge(descCommit, float64(st.Commit))
	gauge(descApplied, float64(st.Applied))
	gauge(descLast, float64(st.LastIndex))
	gauge(descVoters, float64(len(st.Membership.Voters)))
	gauge(descLearners, float64(len(st.Membership.Learners)))
	if c.opts.Replication != nil {
		r := c.opts.Replication()
		gauge(descFirst, float64(r.FirstIndex))
		entries := 0.0
		if st.LastIndex >= r.FirstIndex {
			entries = float64(st.LastIndex - r.FirstIndex + 1)
		}
		gauge(descEntries, entries)
		ch <- prometheus.MustNewConstMetric(descRounds, prometheus.CounterValue, float64(r.ReadRounds), "started")
		ch <- prometheus.MustNewConstMetric(descRounds, prometheus.CounterValue, float64(r.ReadRoundsConfirmed), "confirmed")
		ch <- prometheus.MustNewConstMetric(descLeaseRead, prometheus.CounterValue, float64(r.LeaseReads))
		for _, p := range r.Peers {
			if p.ID == st.ID {
				continue
			}
			id := strconv.FormatUint(uint64(p.ID), 10)
			gauge(descPeerMatch, float64(p.Match), id)
			lag := 0.0
			if st.LastIndex > p.Match {
				lag = float64(st.LastIndex - p.Match)
			}
			gauge(descPeerLag, lag, id)
			gauge(descPeerUp, b2f(p.Active), id)
		}
	}
	if c.opts.DiskFull != nil {
		gauge(descDiskFull, b2f(c.opts.DiskFull()))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// clientCollector exports the client server's counters, read at scrape
// time.
type clientCollector struct{ opts *Options }

var (
	descConns      = desc("seshat_client_connections", "Open client connections.")
	descConnsTotal = desc("seshat_client_connections_accepted_total", "Client connections accepted.")
	descCommands   = desc("seshat_commands_total", "Commands received, by name (commands outside the command table as \"other\").", "command")
	descCmdLatency = desc("seshat_command_duration_seconds", "Time from a command's batch starting to its reply, replication included, by command.", "command")
	descErrors     = desc("seshat_client_errors_total", "Error replies to key-value requests, by kind (the error's first word: MOVED, CLUSTERDOWN, TIMEOUT, MISCONF, ...).", "kind")
	descRequests   = desc("seshat_requests_total", "Key-value requests, by type (read, or write: a proposal here or at the leader) and outcome (ok, error).", "type", "outcome")
)

func (c *clientCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descConnsTotal, descCommands, descCmdLatency, descErrors, descRequests} {
		ch <- d
	}
}

func (c *clientCollector) Collect(ch chan<- prometheus.Metric) {
	if c.opts.Clients == nil {
		return
	}
	cs := c.opts.Clients()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(cs.Connections))
	counter(descConnsTotal, float64(cs.ConnectionsTotal))
	for _, cmd := range cs.Commands {
		counter(descCommands, float64(cmd.Calls), cmd.Name)
		if len(cmd.Buckets) != len(cs.LatencyBounds)+1 {
			continue // a malformed source: no histogram rather than a wrong one
		}
		cum := make(map[float64]uint64, len(cs.LatencyBounds))
		var n uint64
		for i, b := range cs.LatencyBounds {
			n += cmd.Buckets[i]
			cum[b] = n
		}
		n += cmd.Buckets[len(cs.LatencyBounds)]
		ch <- prometheus.MustNewConstHistogram(descCmdLatency, n, cmd.Sum.Seconds(), cum, cmd.Name)
	}
	for kind, n := range cs.Errors {
		counter(descErrors, float64(n), kind)
	}
	counter(descRequests, float64(cs.Reads.OK), "read", "ok")
	counter(descRequests, float64(cs.Reads.Failed), "read", "error")
	counter(descRequests, float64(cs.Writes.OK), "write", "ok")
	counter(descRequests, float64(cs.Writes.Failed), "write", "error")
}

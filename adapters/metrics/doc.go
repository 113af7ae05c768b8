// Package metrics is Seshat's window for operators: an HTTP server with
// Prometheus' text format at /metrics and the probes /healthz and /readyz.
//
// It observes without being in the way. Most values are pulled when
// Prometheus scrapes, from functions the daemon wires in (Options): the
// node's Raft status (role, term, leader, commit and applied index, the
// log's first and last index, each follower's match index), the disk-full
// state and the client server's counters. What must be measured as it
// happens is measured by decorators of the storage ports: LogStore times
// every Sync (the fsync latency histogram) and counts the entries each one
// made durable, and StateMachine counts and times the snapshots built for
// followers and the snapshots restored from a leader, with their bytes;
// and the daemon reports each proposal and read barrier it makes of the
// Raft node (Proposed, ReadIndexed).
//
// Metric names follow Prometheus' conventions: a seshat_ prefix, the unit
// in the name (_seconds, _bytes), _total on counters, and label sets that
// stay bounded (the peer ids of the cluster, the commands of the command
// table with one label for any other, a fixed list of error kinds).
//
// /healthz answers 200 while the process runs and its storage answers
// (Options.Health), else 503. /readyz answers 200 when the node knows a
// leader and has applied to within Options.ReadyLag entries of its commit
// index, else 503; a load balancer sends clients only to ready nodes.
// Both bodies say why in one line of text.
package metrics

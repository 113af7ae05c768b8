// Package consensus is Seshat's Raft core: a pure, deterministic state
// machine in the manner of etcd's raft package.
//
// It does no I/O, reads no clock, starts no goroutine and draws randomness
// only from the seeded source in its Config. Time enters as Tick, network
// input as Step, client input as Propose, ReadIndex and TransferLeadership.
// What the outside world must do comes out of Ready as data: a vote and
// entries to persist, a snapshot to install, messages to send (some only
// after the persisted state is synced), committed entries to apply and
// read indexes that became safe. The driver (consensus/node in production,
// test/sim in simulation) handles a Ready in one order: install the
// snapshot, persist and sync, send, apply, then Advance.
//
// The core keeps the uncompacted suffix of the log in memory; Compact drops
// a prefix once the state machine holds it durably, so memory is bounded by
// the compaction policy rather than by the life of the cluster.
//
// What the core expects of its driver besides handling Ready in order:
// report the fate of every MsgSnap it sent with ReportSnapshot (a
// follower in snapshot state gets no appends until then), report failed
// sends with ReportUnreachable, and time out ReadIndex requests itself (a
// read lost with the leadership is never answered). A candidate counts
// its own vote only once the Ready carrying it is advanced, and a leader
// counts its own log only for entries of advanced Readies.
package consensus

// Package app is Seshat's key-value service: the implementation of the
// ports.KV inbound port over a Raft node (the Node interface, which
// consensus/node implements) and the local state machine's reader
// (ports.KVReader). It does no I/O of its own: the node, the reader and the
// ports.Relay outbound port are given to it.
//
// # Writes
//
// A write request becomes one domain.Command, stamped with the leader's
// clock, and is proposed to the node; it is answered once this node, the
// leader, has applied it (the command is computed on apply). The writes of
// one batch are proposed together, in groups of at most 1024 commands or
// 8 MiB: one append, one sync, one replication round per group.
//
// # Reads
//
// Reads are linearizable: node.ReadIndex, then the local reader (how the
// leader confirms the read point, a heartbeat round or its lease, is the
// core's consensus.Config.ReadMode). In a batch, the reads before the first
// write share one ReadIndex; the requests from the first write to the last
// are proposed together, reads included, so that those reads see the writes
// before them at no extra round trip; the reads after the last write are
// served from the local state once the writes have applied (they were sent
// before the writes were answered, so reading just after their commit is a
// valid linearization). A batch of reads only is served on any node,
// leader or not (ReadIndex works on followers).
//
// # Followers
//
// A batch with writes that reaches a follower goes whole to the leader
// through Config.Relay (adapters/relay: a few long-lived pipelined
// connections to the leader's client address), and the leader's replies
// come back as they are. The relay's error says what became of the
// batch: not sent (domain.ErrUnreachable) or refused whole by a node that
// no longer leads (domain.ErrRelayRefused) means nothing ran, and the batch
// is tried again with the leader of now; sent with no answer
// (domain.ErrLeadershipLost) means the outcome is unknown, and the batch is
// answered so, never retried. A relayed batch is run with
// ports.DoOptions.Relayed, so a node that is not the leader answers it with
// a *ports.RedirectError instead of relaying it again. With
// Config.Redirect, or with no Relay, a follower answers writes with a
// *ports.RedirectError (MOVED) itself.
//
// With no leader known, Do waits up to Config.LeaderWait for one, then
// answers domain.ErrNoLeader. A write whose outcome is unknown (leadership
// lost after it was appended, or a relayed batch sent and not answered) is
// answered with an error wrapping domain.ErrLeadershipLost and never
// retried; writes that were certainly not appended (not the leader,
// proposal dropped during a leader transfer) are retried until LeaderWait
// runs out.
//
// # Expiry
//
// On the leader, a reaper samples every database for keys past their
// deadline and proposes their deletion, each conditional on the deadline
// being unchanged; reads already treat such keys as absent.
//
// # Membership
//
// Members (membership.go) runs SESHAT.MEMBER: it writes each member's
// addresses to the replicated address book (keyspace.MemberCommand) before
// proposing the membership change, keeps the transport's peers and the
// client addresses in step with the applied book on every node, promotes
// caught-up learners on the leader, retires removed ids for good, and
// relays the commands of a follower to the leader (AdminRelay).
//
// # Shutdown
//
// HandOver waits for the batches in flight, holds new ones back, and, if
// this node leads, transfers leadership to the most up-to-date follower;
// the batches held back then run against the new leader.
package app

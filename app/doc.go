// Package app is Seshat's key-value service: the implementation of the
// ports.KV inbound port over a Raft node (consensus/node) and the local
// state machine's reader (ports.KVReader).
//
// # Writes
//
// A write request becomes one domain.Command (SET one OpSet, MSET and DEL
// one op per key, applied atomically) and is proposed to the node; it is
// answered once this node, the leader, has applied it. The writes of one
// batch are proposed in one node.Propose call: one append, one sync, one
// replication round.
//
// # Reads
//
// Reads are linearizable: node.ReadIndex, then the local reader. Within a
// batch, a read whose keys were all written earlier in the same batch is
// answered from those writes (they are contiguous entries of the log, so
// the read is placed right after them); any other read first flushes the
// writes before it, then waits for one ReadIndex shared by the run of reads
// that follows. A batch of reads only is served on any node, leader or not
// (ReadIndex works on followers).
//
// # Followers
//
// A batch with writes that reaches a follower is relayed whole to the
// leader's client address over a small pool of RESP connections, and the
// leader's replies are returned as they are (errors as ports.RemoteError).
// A relay connection first says SESHAT.RELAYED, so a node that is no longer
// the leader answers a relayed batch with a redirect instead of relaying it
// again; when every reply of a relayed batch is such a redirect, nothing
// ran and the batch is relayed again to the new leader. With
// Config.Redirect, a follower answers with a *ports.RedirectError (MOVED)
// instead of relaying.
//
// With no leader known, Do waits up to Config.LeaderWait for one, then
// answers domain.ErrNoLeader. A write whose outcome is unknown (leadership
// lost after it was appended, or a relay connection broken after it was
// sent) is answered with an error wrapping domain.ErrLeadershipLost and
// never retried; writes that were certainly not appended (not the leader,
// proposal dropped during a leader transfer) are retried until LeaderWait
// runs out.
//
// # Shutdown
//
// HandOver waits for the batches in flight, holds new ones back, and, if
// this node leads, transfers leadership to the most up-to-date follower;
// the batches held back then run against the new leader.
package app

// Package tcp is Seshat's peer transport: it carries domain.Message
// between seshatd nodes over TCP and implements ports.Transport.
//
// # Connections
//
// Send queues a message in one of a peer's two lanes (bounded queues of
// Options.SendQueue messages each; a full queue drops and counts) and
// returns at once: the bulk lane holds MsgApp and MsgSnap, the control
// lane everything else (heartbeats, votes, every response, timeout-now,
// read-index). Each lane has a writer goroutine and a long-lived outbound
// connection of its own (the bulk one dialed when it first has something
// to send), so a heartbeat never waits behind an append, however large,
// nor behind a receiver slow to read one: a follower that spent seconds
// allocating and faulting in the buffer of a 512 MiB append read nothing
// from that connection meanwhile, and when heartbeats shared it, the
// followers called an election. A writer drains its queue into one
// buffered write and one Flush per batch, and sends a keep-alive frame
// when idle. When its connection fails it redials with capped
// exponential backoff and jitter (Options.BackoffMin/BackoffMax, a seeded
// math/rand/v2 source); messages queued during the backoff are dropped
// as stale. Within a lane messages arrive in the order they were sent;
// across lanes a control message may overtake an append sent before it
// (Raft tolerates it: a heartbeat's commit index never exceeds what the
// follower acknowledged). Across reconnections some may be lost. Each
// connection's kernel buffer (send buffer outbound, receive buffer
// inbound) is held to about a chunk, so that a stream's writer learns of
// a slow receiver early rather than queueing megabytes below it.
//
// Each accepted connection is read by one goroutine that decodes frames
// and delivers messages on the Receive channel (Options.InboxSize; a full
// inbox drops and counts, except that a MsgSnap waits up to ReadTimeout).
// Traffic only flows from dialer to acceptor: a node receives on the
// connections its peers dialed, one per peer and lane (the dialer's
// handshake names the lane; a handshake that names none is a control
// connection, or the single connection of a node from before the lanes
// had connections of their own, which still carries everything and may
// interleave control messages between a stream's chunks).
//
// # Handshake
//
// A dialer's first frame is a handshake naming the cluster id, its node id
// and the node id it means to reach. The acceptor refuses (with a reject
// frame carrying the reason, then closes, and logs a warning) a different
// cluster id, a node id that is not a known peer (Options.Peers, SetPeer)
// or was removed (RemovePeer: the reason then says the node was removed
// from the cluster) and a target id that is not its own; otherwise it answers with an ack
// carrying its own identity, which the dialer checks in turn. After the
// handshake every message's From must be the handshake's node id and its
// To the acceptor's id, or the connection is cut: a connection speaks for
// one node only. A newer connection from a node replaces its older one of
// the same lane.
//
// # Peer authentication
//
// Without Options.PeerSecret the handshake guards against misconfiguration
// (a node pointed at the wrong cluster or address) only: any process that
// reaches the port and knows the cluster id and a member's id is taken for
// that member. With a secret, shared by every node, both sides prove that
// they know it before any message is read, by a challenge-response that
// never sends it:
//
//	dialer   -> handshake  {cluster, dialer id, acceptor id, nonce Nd}
//	acceptor -> challenge  {cluster, acceptor id, dialer id, nonce Na,
//	                        HMAC(secret, "a" | cluster | ids | Nd | Na)}
//	dialer   -> proof      {cluster, dialer id, acceptor id,
//	                        HMAC(secret, "d" | cluster | ids | Nd | Na)}
//	acceptor -> ack
//
// Each nonce is 32 fresh random bytes per connection, so a recorded
// exchange replayed to either side fails (the other side's nonce is new);
// the role letter makes one side's proof useless as the other's; proofs
// are compared in constant time (hmac.Equal). The dialer checks the
// acceptor's proof before it sends its own, and answers a bad one with a
// reject frame, so both sides log the refusal. A node with a secret
// refuses a peer without one, both ways; refusals are logged with
// "auth":true and counted in Stats.RejectedConns, and the reason never
// contains the secret. The secret authenticates the connection's opening,
// not its bytes: an attacker on the network path between two nodes (not
// merely able to reach the port) could still inject frames into an
// established connection.
//
// With Options.TLS every connection runs over mutual TLS first (each side
// shows a certificate the other verifies; the dialer also checks that the
// acceptor's names the host it dialed), then the handshake above, secret
// or not, inside it. That protects the bytes too. A failed TLS handshake
// is a refusal like the others ("auth":true, Stats.RejectedConns).
//
// # Frames
//
// Every byte on a connection is in a frame:
//
//	magic "SSHT" (4 bytes) | version 1 (1) | type (1) |
//	payload length (4, big endian) | CRC32C of the payload (4, big endian) |
//	payload
//
// Types: handshake, handshake-ack, reject, message (one encoded Message,
// see EncodeMessage), snapshot-header, snapshot-chunk, snapshot-end,
// keepalive, challenge, proof, large-header, large-chunk. The length is
// checked against Options.MaxFrameBytes (default 64 MiB; 1 KiB before the
// handshake is accepted) before the payload is allocated or read. A
// message other than a MsgApp whose encoding exceeds MaxFrameBytes cannot
// be sent: the writer drops and logs it. A peer that sends bad magic, an unknown version
// or type, an oversized length, a bad CRC, an undecodable payload or a
// frame out of place is disconnected with a warning naming its address; the
// node carries on.
//
// # Snapshots
//
// A MsgSnap travels as a stream on its peer's connection: a snapshot-header
// frame (the message without Snapshot.Data, and the data's length), the
// data in chunks of Options.SnapshotChunkBytes (default 1 MiB), and an end
// frame. The sender reads an image held in a file (Snapshot.File) one
// chunk at a time and removes the file once the stream is written or the
// message dropped. Both ends log progress at most every second. The
// receiver writes the chunks to a file of Options.SpoolDir as they arrive
// and delivers the MsgSnap referring to it (the consumer deletes it), or
// without a SpoolDir reassembles the image in memory; either way bounded
// by Options.MaxSnapshotBytes (1 TiB with a spool, 1 GiB without). A
// stream that breaks removes its partial file. See spool.go.
// It goes on the bulk connection: control messages go on their own, and
// appends wait behind it.
//
// # Large messages
//
// A MsgApp whose entry data exceeds SnapshotChunkBytes (a large value,
// which Raft sends alone) travels the same way: a large-header frame with
// the length of the message's encoding, then that encoding in large-chunk
// frames of at most SnapshotChunkBytes, each with its CRC. The sender
// cuts the chunks from the entries' data without copying it; the receiver
// reads them into one buffer of the announced length, bounded by
// Options.MaxMessageBytes (default 1 GiB; at most 64 MiB is allocated
// before that much has arrived), and delivers the message, which aliases
// the buffer, once it is whole. See stream.go.
//
// # Decoding
//
// DecodeMessage aliases its input; the transport gives each frame its own
// buffer, so received messages share nothing with each other. Empty byte
// strings and lists decode as nil.
package tcp

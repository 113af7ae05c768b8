// Package tcp is Seshat's peer transport: it carries domain.Message
// between seshatd nodes over TCP and implements ports.Transport.
//
// # Connections
//
// Each node keeps one long-lived outbound connection per peer, owned by a
// writer goroutine. Send queues a message for that writer in one of two
// lanes (bounded queues of Options.SendQueue messages each; a full queue
// drops and counts) and returns at once: the bulk lane holds MsgApp and
// MsgSnap, the control lane everything else (heartbeats, votes, every
// response, timeout-now, read-index). The writer serves the control lane
// first, also between two chunks of a large append or a snapshot. The writer drains its queue into one buffered write and one
// Flush per batch, and sends a keep-alive frame when idle. When the
// connection fails it redials with capped exponential backoff and jitter
// (Options.BackoffMin/BackoffMax, a seeded math/rand/v2 source); messages
// queued during the backoff are dropped as stale. Messages from one node
// to another travel on one connection; within a lane those that arrive
// arrive in the order they were sent, while a control message may overtake
// an append queued before it (Raft tolerates it: a heartbeat's commit
// index never exceeds what the follower acknowledged). Across
// reconnections some may be lost. Each connection's kernel buffer (send
// buffer outbound, receive buffer inbound) is held to about a chunk, so
// that a control message waits behind a few chunks at most, not behind
// the megabytes the kernel would queue.
//
// Each accepted connection is read by one goroutine that decodes frames
// and delivers messages on the Receive channel (Options.InboxSize; a full
// inbox drops and counts, except that a MsgSnap waits up to ReadTimeout).
// Traffic only flows from dialer to acceptor: a node receives on the
// connections its peers dialed.
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
// one node only. A newer connection from a node replaces the older one.
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
// Control messages go out between the chunks; other appends wait.
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

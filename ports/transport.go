package ports

import "github.com/seshat-kv/seshat/domain"

// Transport carries Raft messages between the nodes of one cluster.
//
// Delivery is best effort: a message may be lost, delayed, duplicated or
// reordered, and Raft recovers from all of it by retrying. Send therefore
// never waits on the network: it queues the message or drops it (a full
// queue, an unknown peer) and returns. A MsgSnap travels whole, with its
// image. Send is safe for concurrent use (the driver sends snapshots from
// their own goroutines), and the caller must not modify a message's
// slices after sending it.
//
// Snapshot images may be held in files (domain.Snapshot.File) so that
// neither end holds a whole image in memory. Send takes a MsgSnap's image
// file, whatever it returns: the transport removes it once the message is
// sent or dropped, and the caller must not touch it again. A received
// MsgSnap carries its image either in Snapshot.Data or in a file of the
// transport's spool (Snapshot.File); in the latter case the file belongs
// to whoever takes the message from Receive, who deletes it once done
// (the node: after installing the image, or when Raft refuses it). The
// transport deletes a partial file when a stream breaks; files of
// messages left unread at Close are deleted at the next start, with the
// rest of the spool.
//
// Errors: Send returns domain.ErrClosed after Close; it returns nil when it
// drops a message for any other reason (the drop is logged or counted, not
// reported, since the caller could do nothing else than Raft's retry).
type Transport interface {
	// Send queues m for delivery to m.To.
	Send(m domain.Message) error
	// Receive returns the channel on which messages addressed to this node
	// arrive. It is closed by Close.
	Receive() <-chan domain.Message
	// Close stops sending and receiving.
	Close() error
}

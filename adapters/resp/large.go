package resp

import (
	"context"
	"time"

	"github.com/seshat-kv/seshat/ports"
)

// relayBulkHeadroom is what the bulk-string limit of a connection allows
// over MaxValueBytes: a follower relays a client's command to the leader as
// one bulk string that holds the value and a little more (the command's
// encoding: its name, key, database, the batch's framing), so a value of
// exactly MaxValueBytes, sent through a follower, must still fit. A client
// value in the headroom is buffered, then refused by the command check
// (checkCall) with "string exceeds maximum allowed size"; past it, it is
// refused at its header with the protocol error, before it is buffered.
const relayBulkHeadroom = 1 << 20

// batchBytesPerSecond: a batch carrying large values gets BatchTimeout
// plus a second per this many bytes of arguments, to travel to the leader
// (when relayed), replicate and be written: 100 MB took over 30s on a
// loaded machine. The large writes queued ahead of a batch get the same
// rate (see ports.BacklogContext).
const batchBytesPerSecond = 1 << 20

// batchTimeout bounds the call to ports.KV.Do for reqs.
func (s *Server) batchTimeout(reqs []ports.Request) time.Duration {
	return s.opts.BatchTimeout + time.Duration(ports.RequestBytes(reqs))*time.Second/batchBytesPerSecond
}

// batchContext is the context of the call to ports.KV.Do for reqs:
// batchTimeout, longer by the time for the large writes queued ahead of
// them if the KV reports them (ports.Backlogger), so that small writes
// behind a large one are not cut by a deadline meant for a stuck cluster.
func (s *Server) batchContext(reqs []ports.Request) (context.Context, context.CancelFunc) {
	var backlog func() uint64
	if b, ok := s.kv.(ports.Backlogger); ok {
		backlog = b.LargeBacklog
	}
	return ports.BacklogContext(context.Background(), s.batchTimeout(reqs), batchBytesPerSecond, backlog)
}

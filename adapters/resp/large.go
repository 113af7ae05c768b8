package resp

import (
	"context"
	"time"

	"github.com/tidwall/redcon"

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

// deadlineContext is a context that ends d after now, longer by the time
// for the large writes queued ahead if the KV reports them
// (ports.Backlogger), so that small writes behind a large one are not cut
// by a deadline meant for a stuck cluster. batchContext shares one among
// the small batches of a step: they all queue behind the same backlog.
func (s *Server) deadlineContext(now time.Time, d time.Duration) (context.Context, context.CancelFunc) {
	b, ok := s.kv.(ports.Backlogger)
	if !ok {
		return context.WithDeadline(context.Background(), now.Add(d))
	}
	return ports.BacklogContext(context.Background(), d-time.Since(now), batchBytesPerSecond, b.LargeBacklog)
}

// keepBatchBytes: handle keeps its buffers (the commands, their items
// and requests) from one batch to the next as they are, unless the
// batch's commands came to this many bytes or more.
const keepBatchBytes = 1 << 20

// forgetLarge clears handle's buffers if cmds, the batch just run, were
// large (diverted: the bytes of the large bulks swapped in, divert.go).
// The buffers are reused by the connection's next batch, which
// overwrites what they point to, so until then they kept the batch's
// commands alive: a 100 MB SET's value, and the requests' arguments,
// which alias it, for as long as the connection stayed idle.
func forgetLarge(cmds []redcon.Command, diverted int, items []item, reqs []ports.Request) {
	n := diverted
	for i := range cmds {
		n += len(cmds[i].Raw)
	}
	if n < keepBatchBytes {
		return
	}
	clear(cmds[:cap(cmds)])
	clear(items[:cap(items)])
	clear(reqs[:cap(reqs)])
}

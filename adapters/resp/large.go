package resp

import (
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
// loaded machine.
const batchBytesPerSecond = 1 << 20

// batchTimeout bounds the call to ports.KV.Do for reqs.
func (s *Server) batchTimeout(reqs []ports.Request) time.Duration {
	return s.opts.BatchTimeout + time.Duration(ports.RequestBytes(reqs))*time.Second/batchBytesPerSecond
}

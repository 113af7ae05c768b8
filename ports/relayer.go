package ports

import (
	"context"

	"github.com/seshat-kv/seshat/domain"
)

// Relay is the outbound port through which a follower hands a batch with
// writes to the leader, to be run there as if the follower had served it.
// adapters/relay implements it over the leader's RESP client address.
//
// Do sends reqs to the node whose client address is addr, where they run
// as one batch with DoOptions.Relayed, and returns the replies, one per
// request in order; a request the leader failed comes back as its error
// reply (domain.ReplyError, the text a client would see). Its errors say
// what became of the batch:
//
//   - wrapping domain.ErrUnreachable: it was not sent (dial, handshake or
//     connection failure before it went out, or ctx ended first). Nothing
//     ran; retry.
//   - wrapping domain.ErrRelayRefused: the node refused all of it without
//     running any (it does not lead or knows no leader). Retry with the
//     leader of now.
//   - wrapping domain.ErrLeadershipLost: it was sent, and the connection
//     broke or ctx ended before the replies came: the outcome is unknown.
//     Never retry.
//   - wrapping domain.ErrStopped: the relay is closed.
//
// Do is safe for concurrent use; concurrent batches may share connections.
// Close fails the batches in flight (outcome unknown) and every later Do.
type Relay interface {
	Do(ctx context.Context, addr string, reqs []Request) ([]domain.Reply, error)
	Close() error
}

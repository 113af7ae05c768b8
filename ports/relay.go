package ports

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

// The relay format: how a follower hands a batch to the leader in one
// RESP argument and gets the replies back in one bulk string, so that a
// relayed batch keeps its watches, transactions and databases and its
// replies keep their exact shape. Both the relay adapter (which relays for
// a follower, through the Relay port) and the RESP adapter (which serves
// relayed batches) use it.
//
//	requests: uvarint count, then per request a uvarint length and
//	          domain.EncodeCommand of {Calls: [Call] or Tx, Tx, Watch}
//	replies:  a flag byte (1: the batch was refused, nothing ran), uvarint
//	          count, then per reply domain.AppendReply

// EncodeRequests returns the relay form of reqs.
func EncodeRequests(reqs []Request) []byte {
	parts, n := EncodeRequestParts(reqs)
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// EncodeRequestParts returns the relay form of reqs in parts, and its
// length: each request's command is encoded once, and the parts are
// written out as they are, so that a relayed 100 MB value is not copied
// again into one buffer (and that into another for the RESP framing).
func EncodeRequestParts(reqs []Request) (parts [][]byte, n int) {
	parts = make([][]byte, 0, 2*len(reqs))
	head := binary.AppendUvarint(nil, uint64(len(reqs)))
	for _, r := range reqs {
		c := domain.Command{Tx: r.IsTx, Watch: r.Watch}
		if r.IsTx {
			c.Calls = r.Tx
		} else {
			c.Calls = []domain.Call{r.Call}
		}
		e := domain.EncodeCommand(c)
		head = binary.AppendUvarint(head, uint64(len(e)))
		parts = append(parts, head, e)
		n += len(head) + len(e)
		head = nil
	}
	if len(reqs) == 0 {
		parts, n = append(parts, head), len(head)
	}
	return parts, n
}

// DecodeRequests parses EncodeRequests's form. Malformed input is an
// error wrapping domain.ErrCorrupt.
func DecodeRequests(b []byte) ([]Request, error) {
	fail := func(what string) ([]Request, error) {
		return nil, fmt.Errorf("%w: relayed requests: %s", domain.ErrCorrupt, what)
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return fail("bad count")
	}
	b = b[k:]
	reqs := make([]Request, 0, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return fail("bad length")
		}
		c, err := domain.DecodeCommand(b[k : k+int(l)])
		if err != nil {
			return nil, err
		}
		b = b[k+int(l):]
		r := Request{IsTx: c.Tx, Watch: c.Watch}
		switch {
		case c.Tx:
			r.Tx = c.Calls
		case len(c.Calls) == 1:
			r.Call = c.Calls[0]
		default:
			return fail("a request that is not a transaction must hold one call")
		}
		reqs = append(reqs, r)
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	return reqs, nil
}

// EncodeReplies returns the relay form of replies; a Reply's Err travels
// as an error reply with the text errText gives it. The form says the
// batch was refused when every reply is an error that ran nothing
// (NotRun), so the relaying node can tell without reading error texts.
func EncodeReplies(replies []Reply, errText func(error) string) []byte {
	refused := byte(1)
	for _, r := range replies {
		if !NotRun(r.Err) {
			refused = 0
		}
	}
	b := binary.AppendUvarint([]byte{refused}, uint64(len(replies)))
	for _, r := range replies {
		v := r.Value
		if r.Err != nil {
			v = domain.ErrorReply(errText(r.Err))
		}
		b = domain.AppendReply(b, v)
	}
	return b
}

// DecodeReplies parses EncodeReplies's form, expecting want replies, and
// reports whether the batch was refused. Malformed input is an error
// wrapping domain.ErrCorrupt.
func DecodeReplies(b []byte, want int) (replies []domain.Reply, refused bool, err error) {
	if len(b) == 0 || b[0] > 1 {
		return nil, false, fmt.Errorf("%w: relayed replies: bad flag", domain.ErrCorrupt)
	}
	refused = b[0] == 1
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n != uint64(want) {
		return nil, false, fmt.Errorf("%w: relayed replies: count %d, want %d", domain.ErrCorrupt, n, want)
	}
	b = b[1+k:]
	out := make([]domain.Reply, want)
	for i := range out {
		if out[i], b, err = domain.DecodeReply(b); err != nil {
			return nil, false, err
		}
	}
	if len(b) != 0 {
		return nil, false, fmt.Errorf("%w: relayed replies: trailing bytes", domain.ErrCorrupt)
	}
	return out, refused, nil
}

// NotRun reports whether err says that its request was certainly not run
// because the node asked does not lead (domain.ErrNotLeader, a
// *RedirectError, domain.ErrNoLeader) or dropped it unappended
// (domain.ErrProposalDropped). A request whose outcome is unknown
// (domain.ErrLeadershipLost) is never NotRun.
func NotRun(err error) bool {
	if err == nil || errors.Is(err, domain.ErrLeadershipLost) {
		return false
	}
	return errors.Is(err, domain.ErrNotLeader) || errors.Is(err, domain.ErrNoLeader) ||
		errors.Is(err, domain.ErrProposalDropped)
}

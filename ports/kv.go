package ports

import (
	"context"
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

// KV is the inbound port: what driving adapters (the RESP server) call to
// read and write the replicated key-value state.
//
// It is batch-oriented: Do takes the requests a client sent together (a
// pipeline) and answers each of them, in order, as if they had run one
// after the other, each seeing the effect of those before it. The service
// proposes the writes of a batch together, so a pipelined burst costs one
// replication round, not one per command.
//
// Errors are per request, in Reply.Err, matched with errors.Is / errors.As:
//   - domain.ErrNoLeader: no leader could be found in time; nothing ran.
//   - domain.ErrLeadershipLost (or a context error on a write): the write
//     may or may not have been applied; it is never retried silently.
//   - *RedirectError: this node is not the leader and answers with the
//     leader's client address instead of forwarding (redirect mode, or a
//     batch that was relayed here already); nothing ran.
//   - *RemoteError: an error reply relayed verbatim from the leader.
//   - domain.ErrStopped: the service is shutting down.
//
// Any other error is an internal failure to be reported as such.
type KV interface {
	// Do runs reqs in order and returns one Reply per request.
	Do(ctx context.Context, reqs []Request, opts DoOptions) []Reply
	// Status describes this node for monitoring (INFO).
	Status() KVStatus
}

// RequestKind is a key-value operation a client asks for.
type RequestKind uint8

const (
	// ReqGet reads Keys[0]: a ReplyBulk, or ReplyNil when absent.
	ReqGet RequestKind = iota + 1
	// ReqSet writes Values[0] at Keys[0]: ReplyOK.
	ReqSet
	// ReqDel deletes Keys: ReplyInt, the number of keys that existed.
	ReqDel
	// ReqExists counts Keys that exist (a key named twice counts twice):
	// ReplyInt.
	ReqExists
	// ReqMGet reads every key of Keys: ReplyArray, a nil element for an
	// absent key.
	ReqMGet
	// ReqMSet writes Values[i] at Keys[i], all at once: ReplyOK.
	ReqMSet
)

func (k RequestKind) String() string {
	switch k {
	case ReqGet:
		return "get"
	case ReqSet:
		return "set"
	case ReqDel:
		return "del"
	case ReqExists:
		return "exists"
	case ReqMGet:
		return "mget"
	case ReqMSet:
		return "mset"
	}
	return fmt.Sprintf("RequestKind(%d)", uint8(k))
}

// IsWrite reports whether the request changes the state.
func (k RequestKind) IsWrite() bool { return k == ReqSet || k == ReqDel || k == ReqMSet }

// Request is one client request. The adapter has checked its shape (the
// number of keys and values for its kind); the slices are the caller's and
// must not change until Do returns.
type Request struct {
	Kind   RequestKind
	Keys   [][]byte
	Values [][]byte
}

// DoOptions qualify a batch.
type DoOptions struct {
	// Relayed says the batch was relayed here by another node: if this node
	// is not the leader it must not relay it again, but answer with a
	// *RedirectError (or domain.ErrNoLeader) without running anything.
	Relayed bool
}

// ReplyKind says which field of a Reply holds the answer.
type ReplyKind uint8

const (
	// ReplyErr: Err is set.
	ReplyErr ReplyKind = iota
	// ReplyOK: a status "OK".
	ReplyOK
	// ReplyInt: Int.
	ReplyInt
	// ReplyBulk: Value (non-nil, possibly empty).
	ReplyBulk
	// ReplyNil: no value.
	ReplyNil
	// ReplyArray: Values, where a nil element means no value.
	ReplyArray
)

// Reply answers one Request.
type Reply struct {
	Kind   ReplyKind
	Int    int64
	Value  []byte
	Values [][]byte
	Err    error
}

// ErrReply returns a Reply carrying err.
func ErrReply(err error) Reply { return Reply{Kind: ReplyErr, Err: err} }

// RedirectError says the leader, at the client address Addr, must be asked.
type RedirectError struct {
	Leader domain.NodeID
	Addr   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("seshat: not the leader: ask node %d at %s", e.Leader, e.Addr)
}

// Unwrap makes a RedirectError match domain.ErrNotLeader.
func (e *RedirectError) Unwrap() error { return domain.ErrNotLeader }

// RemoteError is an error reply from the leader, relayed as it was sent:
// Text is what the client must see (without the leading '-').
type RemoteError struct {
	Text string
}

func (e *RemoteError) Error() string { return e.Text }

// KVStatus describes a node for INFO.
type KVStatus struct {
	ID         domain.NodeID
	Role       string // "leader", "follower", "candidate", "pre-candidate"
	Leader     domain.NodeID
	LeaderAddr string // the leader's client address, "" if unknown
	Term       domain.Term
	Commit     domain.Index
	Applied    domain.Index
	LastIndex  domain.Index
	Membership domain.Membership
}

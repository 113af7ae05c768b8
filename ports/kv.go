package ports

import (
	"context"
	"fmt"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
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
//   - domain.ErrStopped: the service is shutting down.
//
// Any other error is an internal failure to be reported as such.
type KV interface {
	// Do runs reqs in order and returns one Reply per request.
	Do(ctx context.Context, reqs []Request, opts DoOptions) []Reply
	// Status describes this node for monitoring (INFO).
	Status() KVStatus
	// Versions returns, after a linearizable read barrier, the version of
	// each key in db for WATCH (0: absent).
	Versions(ctx context.Context, db int, keys [][]byte) ([]uint64, error)
	// Keyspace returns the key and deadline counts of databases 0 to n-1
	// as this node has applied them (INFO keyspace; not linearizable).
	Keyspace(n int) ([]DBSize, error)
}

// DBSize counts one database's keys and the keys with a deadline.
type DBSize struct {
	Keys, Expires int64
}

// Request is one client request: a data command (Call), or a MULTI/EXEC
// transaction (Tx, its queued calls, with the keys it watched). The
// adapter has checked each call's name and arity against
// keyspace.Lookup; the slices are the caller's and must not change until
// Do returns. Do may set an element of a write's Args to other bytes
// equal to it (its own copy, in the command it encoded), so that a large
// value is not held twice while it replicates.
type Request struct {
	Call  domain.Call
	Tx    []domain.Call
	Watch []domain.Watch
	// IsTx marks a transaction (Tx may be empty: MULTI then EXEC).
	IsTx bool
}

// IsWrite reports whether the request goes through the log: a write
// command, or a transaction (which runs as one entry, so that it is
// atomic on every replica).
func (r Request) IsWrite() bool {
	if r.IsTx {
		return true
	}
	spec := keyspace.Lookup(r.Call.Args[0])
	return spec == nil || spec.Flags&keyspace.Write != 0
}

// DoOptions qualify a batch.
type DoOptions struct {
	// Relayed says the batch was relayed here by another node: if this node
	// is not the leader it must not relay it again, but answer with a
	// *RedirectError (or domain.ErrNoLeader) without running anything.
	Relayed bool
}

// Reply answers one Request: Value, or, when Err is set, a failure to run
// it (see KV).
type Reply struct {
	Value domain.Reply
	Err   error
}

// ErrReply returns a Reply carrying err.
func ErrReply(err error) Reply { return Reply{Err: err} }

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
	// LostData lists, on a leader, the followers that lost their data
	// (consensus.Progress.LostData), sorted.
	LostData []domain.NodeID
}

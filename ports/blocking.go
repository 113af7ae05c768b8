package ports

import (
	"context"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// Blocker is what a KV implements to serve Redis's blocking pops (BLPOP,
// BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP) with
// waiting. Without it, a driving adapter runs them once through Do, as
// their non-blocking forms.
type Blocker interface {
	// Block runs a blocking command outside MULTI. It proposes the call
	// (whose apply pops what there is, or nothing); if that popped
	// nothing, it waits on this node until one of the keys may hold
	// something of the awaited type, and proposes it again, until it pops
	// (the reply is the pop's), Blocking.Timeout passes (the reply is
	// Blocking.NilReply) or unblock delivers a reply (CLIENT UNBLOCK), which
	// it answers. Clients blocked on the same key of one node are served
	// first come, first served.
	//
	// ctx ending means the client is gone: Block stops waiting at once, and
	// if a pop for it applied meanwhile, it puts the popped elements back
	// (a move stays done) so that none is lost.
	Block(ctx context.Context, req BlockRequest, unblock <-chan domain.Reply) Reply
}

// BlockRequest is one blocking command.
type BlockRequest struct {
	// Call is the command as the client sent it.
	Call domain.Call
	// Blocking is its parsed form (keyspace.ParseBlocking).
	Blocking keyspace.BlockingCall
}

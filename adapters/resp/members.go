package resp

import (
	"context"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
)

// memberCommand is the membership admin command (CONTRACTS.md):
//
//	SESHAT.MEMBER LIST | ADD id peer-addr client-addr | PROMOTE id |
//	DEMOTE id | REMOVE id | REPLACE old-id new-id peer-addr client-addr |
//	JOIN id peer-addr client-addr
const memberCommand = "seshat.member"

// Members runs SESHAT.MEMBER (app.Members implements it). args are the
// subcommand and its arguments; relayed says the command came from
// another node (which must not be relayed again).
type Members interface {
	Do(ctx context.Context, args [][]byte, relayed bool) domain.Reply
}

// member answers SESHAT.MEMBER once the commands before it have run: a
// change waits for the log, and a follower relays it to the leader.
func (s *Server) member(st *connState, args [][]byte) item {
	if s.opts.Members == nil {
		return errorItem("ERR membership changes are not enabled on this node")
	}
	args = cloneArgs(args[1:])
	relayed := st.relayed
	return item{req: -1, barrier: func(c redcon.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*s.opts.BatchTimeout)
		defer cancel()
		writeValue(c, st.resp3, s.opts.Members.Do(ctx, args, relayed))
	}}
}

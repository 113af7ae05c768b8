package resp

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
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

// MemberLister is the part of Members that INFO and CLUSTER use: the
// members as this node knows them (app.Members implements it).
type MemberLister interface {
	List() []ports.MemberRow
}

// memberRows returns the members, or nil if Members cannot list them.
func (s *Server) memberRows() []ports.MemberRow {
	if l, ok := s.opts.Members.(MemberLister); ok {
		return l.List()
	}
	return nil
}

// memberFields are INFO replication's member_<id> lines: one per member,
// with its role, addresses, match index and lag (-1: unknown here, on a
// node that does not lead).
func (s *Server) memberFields() [][2]string {
	var out [][2]string
	for _, r := range s.memberRows() {
		out = append(out, [2]string{"member_" + u64(uint64(r.ID)), fmt.Sprintf("role=%s,peer=%s,client=%s,match=%d,lag=%d",
			r.Role, r.Peer, r.Client, r.Match, r.Lag)})
	}
	return out
}

// replicaLines are CLUSTER NODES's lines for the members other than the
// leader: replicas of it.
func (s *Server) replicaLines(leader, me string, term domain.Term) string {
	var b strings.Builder
	for _, r := range s.memberRows() {
		name := nodeName(r.ID)
		host, p, err := splitPort(r.Client)
		if name == leader || err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		flags := "slave"
		if name == me {
			flags = "myself,slave"
		}
		fmt.Fprintf(&b, "%s %s:%d@%d %s %s 0 0 %d connected\n", name, host, port, port+10000, flags, leader, term)
	}
	return b.String()
}

// replicaShards are CLUSTER SHARDS's node maps for the members other than
// the leader.
func (s *Server) replicaShards(leader string) []domain.Reply {
	var out []domain.Reply
	for _, r := range s.memberRows() {
		name := nodeName(r.ID)
		host, p, err := splitPort(r.Client)
		if name == leader || err != nil {
			continue
		}
		port, _ := strconv.Atoi(p)
		health := "online"
		if r.Lag < 0 {
			health = "unknown"
		}
		out = append(out, mapReply(
			domain.StringReply("id"), domain.StringReply(name),
			domain.StringReply("port"), domain.IntReply(int64(port)),
			domain.StringReply("ip"), domain.StringReply(host),
			domain.StringReply("endpoint"), domain.StringReply(host),
			domain.StringReply("role"), domain.StringReply("replica"),
			domain.StringReply("replication-offset"), domain.IntReply(max(r.Match, 0)),
			domain.StringReply("health"), domain.StringReply(health),
		))
	}
	return out
}

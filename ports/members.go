package ports

import "github.com/seshat-kv/seshat/domain"

// MemberRow is one cluster member as SESHAT.MEMBER LIST, INFO replication
// and CLUSTER NODES show it (app.Members gives them).
type MemberRow struct {
	ID           domain.NodeID
	Role         string // "voter" or "learner"
	Peer, Client string // peer (Raft) and client (RESP) addresses
	// Match is the leader's match index of the member (the leader's last
	// index for itself) and Lag how far it is behind the leader's last
	// index; both -1 where unknown (on a node that does not lead).
	Match, Lag int64
}

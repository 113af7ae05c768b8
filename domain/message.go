package domain

import "fmt"

// MessageType is the kind of a Raft message. A new RPC is a new type, never a
// new Transport method.
type MessageType uint8

const (
	// MsgApp: AppendEntries. Index/LogTerm name the entry before Entries,
	// Commit is the leader's commit index.
	MsgApp MessageType = iota + 1
	// MsgAppResp answers MsgApp and MsgSnap. On success Index is the last
	// index the follower now matches. On Reject, Index is the rejected
	// MsgApp's Index, RejectHint the follower's hint for the next probe and
	// LogTerm the term of the follower's entry at RejectHint (the
	// conflicting term, for fast backtracking).
	MsgAppResp
	// MsgVote: RequestVote. Index/LogTerm name the candidate's last entry.
	MsgVote
	// MsgVoteResp answers MsgVote; Reject means no vote.
	MsgVoteResp
	// MsgPreVote: a vote request for Term (current+1) that changes no state
	// on the receiver (thesis §9.6).
	MsgPreVote
	// MsgPreVoteResp answers MsgPreVote.
	MsgPreVoteResp
	// MsgHeartbeat: the leader's keep-alive. Commit is min(leader commit,
	// follower match); Context carries a ReadIndex round, if any.
	MsgHeartbeat
	// MsgHeartbeatResp answers MsgHeartbeat, echoing Context.
	MsgHeartbeatResp
	// MsgSnap carries a snapshot to a follower whose next entry was purged.
	MsgSnap
	// MsgTimeoutNow tells the target of a leader transfer to start an
	// election at once, without waiting for its timeout or a pre-vote.
	MsgTimeoutNow
	// MsgReadIndex forwards a follower's read request (Context) to the leader.
	MsgReadIndex
	// MsgReadIndexResp answers MsgReadIndex with the read index in Index;
	// Reject means the leader could not serve it.
	MsgReadIndexResp
)

var messageTypeNames = map[MessageType]string{
	MsgApp: "MsgApp", MsgAppResp: "MsgAppResp", MsgVote: "MsgVote",
	MsgVoteResp: "MsgVoteResp", MsgPreVote: "MsgPreVote",
	MsgPreVoteResp: "MsgPreVoteResp", MsgHeartbeat: "MsgHeartbeat",
	MsgHeartbeatResp: "MsgHeartbeatResp", MsgSnap: "MsgSnap",
	MsgTimeoutNow: "MsgTimeoutNow", MsgReadIndex: "MsgReadIndex",
	MsgReadIndexResp: "MsgReadIndexResp",
}

func (t MessageType) String() string {
	if s, ok := messageTypeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("MessageType(%d)", uint8(t))
}

// Valid reports whether t is a known message type.
func (t MessageType) Valid() bool { _, ok := messageTypeNames[t]; return ok }

// Message is the one type every Raft RPC travels as. Which fields mean
// something depends on Type; see the MessageType constants.
type Message struct {
	Type    MessageType
	From    NodeID
	To      NodeID
	Term    Term
	LogTerm Term
	Index   Index
	Entries []Entry
	Commit  Index
	Reject  bool
	// RejectHint is the follower's suggestion for the leader's next probe.
	RejectHint Index
	Snapshot   *Snapshot
	Context    []byte
}

func (m Message) String() string {
	return fmt.Sprintf("%s %d->%d t%d li%d lt%d n%d c%d rej=%v hint=%d",
		m.Type, m.From, m.To, m.Term, m.Index, m.LogTerm, len(m.Entries), m.Commit, m.Reject, m.RejectHint)
}

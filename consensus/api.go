package consensus

import "github.com/seshat-kv/seshat/domain"

// Role is a node's part in the current term.
type Role uint8

const (
	Follower Role = iota
	PreCandidate
	Candidate
	Leader
)

func (r Role) String() string {
	return [...]string{"follower", "pre-candidate", "candidate", "leader"}[r]
}

// State is what a core starts from: what the storage ports kept durable.
// consensus/node.LoadState builds it from a LogStore, a VoteStore and a
// StateMachine.
type State struct {
	// Vote is the durable term and vote.
	Vote domain.Vote
	// Snapshot is the state machine's applied point: the core treats every
	// entry up to Snapshot.Index as committed and applied, and its log
	// starts right after it. Snapshot.Membership is the membership there
	// (empty for a fresh node, which then uses Config.Peers).
	Snapshot domain.SnapshotMeta
	// Entries are the stored log entries after Snapshot.Index, contiguous.
	Entries []domain.Entry
}

// SoftState is the volatile part of a node's state worth reporting.
type SoftState struct {
	Lead domain.NodeID
	Role Role
}

// ReadState says that a read requested with Context is linearizable once
// the local state machine has applied Index.
type ReadState struct {
	Index   domain.Index
	Context []byte
}

// Ready is a batch of work for the driver. Handle it in this order, then
// call Advance with it:
//
//  1. Snapshot, if set: restore the state machine from it and purge the
//     stored log through Snapshot.Meta.Index.
//  2. Vote, if set: store it (VoteStore.SetVote is durable).
//  3. Entries: TruncateSuffix(Entries[0].Index) then Append them; Sync if
//     MustSync.
//  4. Messages may be sent at any time, even before step 1 (this is how a
//     leader writes its log in parallel with replicating it);
//     MessagesAfterSync only once steps 1-3 are durable.
//  5. CommittedEntries: apply them in order (they are all persisted by
//     step 3). ReadStates: answer each read once applied >= its Index.
//
// A MsgSnap in Messages carries only the core's view of the snapshot
// (Meta.Index is the point the log was compacted to); the driver fills in
// Snapshot with the state machine's current image (StateMachine.Snapshot)
// before sending, which is at or after that point.
type Ready struct {
	// SoftState is set when the leader or role changed.
	SoftState *SoftState
	// Vote is set when the term or vote changed and must be stored.
	Vote *domain.Vote
	// Snapshot is set when a snapshot from the leader must be installed.
	Snapshot *domain.Snapshot
	// Entries must be appended to the stored log, replacing any stored
	// entries from Entries[0].Index on.
	Entries []domain.Entry
	// MustSync says whether Vote/Entries/Snapshot must be synced before
	// MessagesAfterSync are sent.
	MustSync bool
	// Messages can be sent at once.
	Messages []domain.Message
	// MessagesAfterSync may only be sent after persisting.
	MessagesAfterSync []domain.Message
	// CommittedEntries are to be applied to the state machine, in order.
	CommittedEntries []domain.Entry
	// ReadStates are ReadIndex requests that became safe to serve.
	ReadStates []ReadState
}

// Status is a snapshot of a core's state for monitoring and tests.
type Status struct {
	ID         domain.NodeID
	Term       domain.Term
	Vote       domain.NodeID
	Lead       domain.NodeID
	Role       Role
	Commit     domain.Index
	Applied    domain.Index
	FirstIndex domain.Index
	LastIndex  domain.Index
	Membership domain.Membership
	// Progress is the leader's view of each member (nil on non-leaders).
	Progress map[domain.NodeID]Progress
	// Reads counts this node's ReadIndex work as a leader, since it
	// started.
	Reads ReadStats
}

// ReadStats counts a leader's ReadIndex work: one heartbeat round serves
// every read that joined it, so Rounds is at most the reads it served.
type ReadStats struct {
	// Rounds and Confirmed: heartbeat rounds started, and confirmed by a
	// quorum (a round abandoned on losing leadership is never confirmed).
	Rounds, Confirmed uint64
	// Immediate: reads answered with no round, under a lease or as the
	// only voter.
	Immediate uint64
}

// Progress is a leader's view of one follower.
type Progress struct {
	Match, Next domain.Index
	State       ProgressState
	Inflight    int
	// RecentActive: heard from within the last election timeout.
	RecentActive bool
	// LostData: the follower answered with a log shorter than what it had
	// acknowledged (its data was lost, yet it came back under its id):
	// replace it. Cleared once it acknowledges up to Match again.
	LostData bool
}

// ProgressState is how a leader replicates to one follower.
type ProgressState uint8

const (
	// ProgressProbe: one append at a time until the follower's match is found.
	ProgressProbe ProgressState = iota
	// ProgressReplicate: optimistic pipelining within the in-flight window.
	ProgressReplicate
	// ProgressSnapshot: a snapshot is on its way; appends wait for it.
	ProgressSnapshot
)

func (s ProgressState) String() string {
	return [...]string{"probe", "replicate", "snapshot"}[s]
}

package domain

import (
	"fmt"
	"slices"
)

// NodeID names a member of a cluster. Zero means "no node".
type NodeID uint64

// None is the NodeID that names no node (no leader known, no vote cast).
const None NodeID = 0

// Term is a Raft term. Terms only grow.
type Term uint64

// Index is the position of an entry in the replicated log. The first entry
// has index 1; index 0 stands before the log.
type Index uint64

// EntryType says what an entry's Data holds.
type EntryType uint8

const (
	// EntryNormal carries an encoded Command for the state machine.
	EntryNormal EntryType = iota
	// EntryBlank is the no-op a new leader appends so that it can commit
	// entries of earlier terms (Raft paper §5.4.2, thesis §6.4).
	EntryBlank
	// EntryMembership carries an encoded Membership. It takes effect as
	// soon as it is appended to a log, committed or not (thesis §4.1).
	EntryMembership
)

func (t EntryType) String() string {
	switch t {
	case EntryNormal:
		return "normal"
	case EntryBlank:
		return "blank"
	case EntryMembership:
		return "membership"
	}
	return fmt.Sprintf("EntryType(%d)", uint8(t))
}

// Entry is one record of the replicated log.
type Entry struct {
	Index Index
	Term  Term
	Type  EntryType
	Data  []byte
}

// Size is the entry's approximate footprint in bytes, used by every limit
// that counts bytes (append batches, in-flight windows, uncommitted data).
func (e Entry) Size() uint64 { return uint64(len(e.Data)) + 24 }

// LogID names an entry by its term and index; by the Log Matching Property
// two logs that share a LogID are identical up to it.
type LogID struct {
	Term  Term
	Index Index
}

// Vote is the durable part of a node's Raft state: its current term and
// whom it voted for in that term.
type Vote struct {
	Term     Term
	VotedFor NodeID
}

// Membership is the set of nodes of a cluster. Voters take part in
// elections and in the commit quorum; learners only receive the log.
type Membership struct {
	Voters   []NodeID
	Learners []NodeID
}

// IsVoter reports whether id is a voter.
func (m Membership) IsVoter(id NodeID) bool { return slices.Contains(m.Voters, id) }

// IsLearner reports whether id is a learner.
func (m Membership) IsLearner(id NodeID) bool { return slices.Contains(m.Learners, id) }

// Contains reports whether id is a voter or a learner.
func (m Membership) Contains(id NodeID) bool { return m.IsVoter(id) || m.IsLearner(id) }

// Members returns voters then learners, each sorted.
func (m Membership) Members() []NodeID {
	out := append(slices.Sorted(slices.Values(m.Voters)), slices.Sorted(slices.Values(m.Learners))...)
	return out
}

// Clone returns a deep copy.
func (m Membership) Clone() Membership {
	return Membership{Voters: slices.Clone(m.Voters), Learners: slices.Clone(m.Learners)}
}

// Empty reports whether the membership names no node at all.
func (m Membership) Empty() bool { return len(m.Voters) == 0 && len(m.Learners) == 0 }

// Validate checks that ids are non-zero and appear once.
func (m Membership) Validate() error {
	seen := map[NodeID]bool{}
	for _, id := range append(slices.Clone(m.Voters), m.Learners...) {
		if id == None {
			return fmt.Errorf("%w: membership names node 0", ErrInvalidMembership)
		}
		if seen[id] {
			return fmt.Errorf("%w: node %d named twice", ErrInvalidMembership, id)
		}
		seen[id] = true
	}
	return nil
}

// SnapshotMeta describes the state machine state a snapshot holds: the last
// entry it includes and the membership in force at that entry.
type SnapshotMeta struct {
	Index      Index
	Term       Term
	Membership Membership
}

// Snapshot is a state machine image with its metadata, as carried by a
// MsgSnap message. The image is opaque to Raft, which passes it through
// untouched. It is held in one of two places:
//
//   - Data: in memory (the simulator, tests, and nodes without a spool
//     directory).
//   - File: the path of a file holding the image (Data is then nil), so
//     that a snapshot of any size crosses a node in bounded memory. The
//     file belongs to whoever holds the message: the node that writes it
//     gives it to Transport.Send, which removes it once sent or dropped;
//     a transport that receives one into a file gives it to the node in
//     the delivered message, and the node removes it once installed or
//     refused. A file left behind by a crash is a stale spool file, and
//     whoever owns the spool directory deletes it at the next start.
type Snapshot struct {
	Meta SnapshotMeta
	Data []byte
	File string
}

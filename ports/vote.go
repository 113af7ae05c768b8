package ports

import "github.com/seshat-kv/seshat/domain"

// VoteStore keeps a node's current term and vote. A Raft node must never
// forget a vote it has cast (that would let it vote twice in one term), so
// SetVote is durable when it returns: votes change only at elections, so a
// sync per call is cheap.
//
// Errors: Vote returns the zero Vote and no error for a store that never
// saw SetVote. A stored vote that fails its checksum gives
// domain.ErrCorrupt. After Close both methods return domain.ErrClosed.
type VoteStore interface {
	// Vote returns the last vote stored.
	Vote() (domain.Vote, error)
	// SetVote stores v durably.
	SetVote(v domain.Vote) error
	// Close releases the store.
	Close() error
}

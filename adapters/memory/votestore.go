package memory

import (
	"fmt"
	"sync"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.VoteStore = (*VoteStore)(nil)

// VoteStore is an in-memory ports.VoteStore. SetVote is durable when it
// returns, so Crash keeps the vote.
type VoteStore struct {
	mu struct {
		sync.Mutex
		closed bool
		vote   domain.Vote
	}
}

// NewVoteStore returns a store holding the zero Vote.
func NewVoteStore() *VoteStore { return &VoteStore{} }

// Vote implements ports.VoteStore.
func (s *VoteStore) Vote() (domain.Vote, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return domain.Vote{}, fmt.Errorf("memory vote: get: %w", domain.ErrClosed)
	}
	return s.mu.vote, nil
}

// SetVote implements ports.VoteStore.
func (s *VoteStore) SetVote(v domain.Vote) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory vote: set term %d vote %d: %w", v.Term, v.VotedFor, domain.ErrClosed)
	}
	s.mu.vote = v
	return nil
}

// Close implements ports.VoteStore.
func (s *VoteStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory vote: close: %w", domain.ErrClosed)
	}
	s.mu.closed = true
	return nil
}

// Crash simulates a crash and a restart. Every SetVote was durable, so the
// vote is kept; like LogStore.Crash it reopens a closed store.
func (s *VoteStore) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = false
}

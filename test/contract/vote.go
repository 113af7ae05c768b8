package contract

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// VoteHarness is an open VoteStore that never saw SetVote, and the means to
// crash and reopen it.
type VoteHarness struct {
	// Store is the store under test.
	Store ports.VoteStore
	// Crash abandons Store without Close, as a crash would, and returns it
	// reopened. SetVote was durable, so every vote must survive.
	Crash func() ports.VoteStore
	// Reopen closes Store cleanly and returns it reopened.
	Reopen func() ports.VoteStore
}

// TestVoteStore runs the ports.VoteStore contract against the stores open
// returns.
func TestVoteStore(t *testing.T, open func(t *testing.T) VoteHarness) {
	t.Run("ZeroInitially", func(t *testing.T) {
		h := open(t)
		checkVote(t, h.Store, domain.Vote{})
		checkVote(t, h.Crash(), domain.Vote{})
	})
	t.Run("SetGet", func(t *testing.T) {
		s := open(t).Store
		for _, v := range []domain.Vote{
			{Term: 1, VotedFor: 3},
			{Term: 2, VotedFor: domain.None}, // a new term, no vote yet
			{Term: 2, VotedFor: 1},
			{Term: 1<<63 + 5, VotedFor: 1<<64 - 1},
		} {
			if err := s.SetVote(v); err != nil {
				t.Fatalf("SetVote(%+v): %v", v, err)
			}
			checkVote(t, s, v)
		}
	})
	t.Run("DurableAcrossCrash", func(t *testing.T) {
		h := open(t)
		s := h.Store
		want := domain.Vote{Term: 7, VotedFor: 2}
		if err := s.SetVote(want); err != nil {
			t.Fatalf("SetVote: %v", err)
		}
		s = h.Crash()
		checkVote(t, s, want)
		// The latest vote wins, across several restarts.
		want = domain.Vote{Term: 8, VotedFor: 3}
		if err := s.SetVote(want); err != nil {
			t.Fatalf("SetVote: %v", err)
		}
		s = h.Crash()
		checkVote(t, s, want)
		s = h.Reopen()
		checkVote(t, s, want)
	})
	t.Run("DurableAcrossReopen", func(t *testing.T) {
		h := open(t)
		want := domain.Vote{Term: 3, VotedFor: 1}
		if err := h.Store.SetVote(want); err != nil {
			t.Fatalf("SetVote: %v", err)
		}
		checkVote(t, h.Reopen(), want)
	})
	t.Run("Closed", func(t *testing.T) {
		s := open(t).Store
		if err := s.SetVote(domain.Vote{Term: 1, VotedFor: 1}); err != nil {
			t.Fatalf("SetVote: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		_, err := s.Vote()
		wantErr(t, "Vote after Close", err, domain.ErrClosed)
		wantErr(t, "SetVote after Close", s.SetVote(domain.Vote{Term: 2}), domain.ErrClosed)
		wantErr(t, "Close after Close", s.Close(), domain.ErrClosed)
	})
}

func checkVote(t *testing.T, s ports.VoteStore, want domain.Vote) {
	t.Helper()
	got, err := s.Vote()
	if err != nil || got != want {
		t.Fatalf("Vote() = %+v, %v; want %+v", got, err, want)
	}
}

package pebble

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.VoteStore = (*VoteStore)(nil)

// VoteStore keeps the node's term and vote under the raft prefix. Get it
// from DB.VoteStore.
type VoteStore struct {
	d      *DB
	closed atomic.Bool
}

// Vote implements ports.VoteStore.
func (s *VoteStore) Vote() (v domain.Vote, err error) {
	err = s.d.do(&s.closed, "vote", func() error {
		rec, ok, err := s.d.get(s.d.db, keyVote)
		if err != nil {
			return fmt.Errorf("pebble vote: %w", err)
		}
		if !ok {
			return nil
		}
		p, good := unseal(keyVote, rec)
		if !good || len(p) != 16 {
			return fmt.Errorf("pebble vote: %w: checksum mismatch", domain.ErrCorrupt)
		}
		v = domain.Vote{
			Term:     domain.Term(binary.BigEndian.Uint64(p)),
			VotedFor: domain.NodeID(binary.BigEndian.Uint64(p[8:])),
		}
		return nil
	})
	return v, err
}

// SetVote implements ports.VoteStore with one synced batch.
func (s *VoteStore) SetVote(v domain.Vote) error {
	return s.d.do(&s.closed, "set vote", func() error {
		var p [16]byte
		binary.BigEndian.PutUint64(p[:], uint64(v.Term))
		binary.BigEndian.PutUint64(p[8:], uint64(v.VotedFor))
		b := s.d.db.NewBatch()
		defer b.Close()
		if err := b.Set(keyVote, seal(keyVote, p[:]), nil); err != nil {
			return fmt.Errorf("pebble vote: set %+v: %w", v, classify(err))
		}
		if err := s.d.commit(b, true); err != nil {
			return fmt.Errorf("pebble vote: set %+v: %w", v, err)
		}
		return nil
	})
}

// Close implements ports.VoteStore. It closes this store only; DB.Close
// closes the DB. Closing twice returns domain.ErrClosed.
func (s *VoteStore) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("pebble: close: %w", domain.ErrClosed)
	}
	return nil
}

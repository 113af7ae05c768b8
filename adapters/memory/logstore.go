package memory

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.LogStore = (*LogStore)(nil)

// LogStore is an in-memory ports.LogStore that models fsync: Append,
// TruncateSuffix and Purge are visible at once, but only Sync makes them
// durable, and Crash rolls the store back to what the last Sync saw.
type LogStore struct {
	mu struct {
		sync.Mutex
		closed bool
		// cur is what readers see; durable is what a crash leaves.
		cur, durable logState
	}
}

// logState is one version of the log. Entries stored in it are never
// mutated in place (their Data is private and never written), so two
// versions may share Entry values and backing arrays; see Append and
// TruncateSuffix for how sharing stays safe.
type logState struct {
	// first is the index of entries[0], or last+1 when entries is empty.
	first   domain.Index
	entries []domain.Entry
}

func (s logState) last() domain.Index { return s.first + domain.Index(len(s.entries)) - 1 }

// NewLogStore returns an empty log: FirstIndex 1, LastIndex 0.
func NewLogStore() *LogStore {
	s := &LogStore{}
	s.mu.cur = logState{first: 1}
	s.mu.durable = s.mu.cur
	return s
}

// FirstIndex implements ports.LogStore.
func (s *LogStore) FirstIndex() (domain.Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, fmt.Errorf("memory log: first index: %w", domain.ErrClosed)
	}
	return s.mu.cur.first, nil
}

// LastIndex implements ports.LogStore.
func (s *LogStore) LastIndex() (domain.Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, fmt.Errorf("memory log: last index: %w", domain.ErrClosed)
	}
	return s.mu.cur.last(), nil
}

// Term implements ports.LogStore.
func (s *LogStore) Term(i domain.Index) (domain.Term, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return 0, fmt.Errorf("memory log: term at %d: %w", i, domain.ErrClosed)
	}
	c := s.mu.cur
	if i < c.first {
		return 0, fmt.Errorf("memory log: term at %d (first %d): %w", i, c.first, domain.ErrCompacted)
	}
	if i > c.last() {
		return 0, fmt.Errorf("memory log: term at %d (last %d): %w", i, c.last(), domain.ErrUnavailable)
	}
	return c.entries[i-c.first].Term, nil
}

// Entries implements ports.LogStore. The entries and their Data are copies
// the caller may keep and modify.
func (s *LogStore) Entries(lo, hi domain.Index, maxBytes uint64) ([]domain.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, fmt.Errorf("memory log: entries [%d,%d): %w", lo, hi, domain.ErrClosed)
	}
	if lo >= hi {
		return nil, fmt.Errorf("memory log: entries [%d,%d): empty or inverted range", lo, hi)
	}
	c := s.mu.cur
	if lo < c.first {
		return nil, fmt.Errorf("memory log: entries [%d,%d) (first %d): %w", lo, hi, c.first, domain.ErrCompacted)
	}
	if hi > c.last()+1 {
		return nil, fmt.Errorf("memory log: entries [%d,%d) (last %d): %w", lo, hi, c.last(), domain.ErrUnavailable)
	}
	src := c.entries[lo-c.first : hi-c.first]
	out := make([]domain.Entry, 0, len(src))
	var size uint64
	for _, e := range src {
		size += e.Size()
		// Stop before the entry that would pass the limit, except the
		// first: a caller must always be able to make progress.
		if maxBytes > 0 && len(out) > 0 && size > maxBytes {
			break
		}
		out = append(out, cloneEntry(e))
	}
	return out, nil
}

// Append implements ports.LogStore. It is atomic: on error nothing changed,
// and a Crash keeps the whole of an Append or none of it.
func (s *LogStore) Append(entries []domain.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory log: append: %w", domain.ErrClosed)
	}
	if len(entries) == 0 {
		return nil
	}
	next := s.mu.cur.last() + 1
	for i, e := range entries {
		if want := next + domain.Index(i); e.Index != want {
			return fmt.Errorf("memory log: append: entry %d has index %d, want %d (last %d)", i, e.Index, want, next-1)
		}
	}
	// Copy Data so that the caller may reuse its buffers. Appending may
	// write into a backing array shared with durable, but only past the
	// end of durable's slice (TruncateSuffix clips capacity so a shorter
	// cur never writes over entries durable still holds).
	for _, e := range entries {
		s.mu.cur.entries = append(s.mu.cur.entries, cloneEntry(e))
	}
	return nil
}

// TruncateSuffix implements ports.LogStore.
func (s *LogStore) TruncateSuffix(from domain.Index) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory log: truncate from %d: %w", from, domain.ErrClosed)
	}
	c := &s.mu.cur
	if from < c.first {
		return fmt.Errorf("memory log: truncate from %d (first %d): %w", from, c.first, domain.ErrCompacted)
	}
	if from > c.last() {
		return nil
	}
	// Clip the capacity: the next Append must reallocate rather than
	// overwrite entries that durable may still share.
	c.entries = slices.Clip(c.entries[:from-c.first])
	return nil
}

// Purge implements ports.LogStore.
func (s *LogStore) Purge(upTo domain.Index) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory log: purge through %d: %w", upTo, domain.ErrClosed)
	}
	c := &s.mu.cur
	switch {
	case upTo < c.first:
		// Nothing left to remove.
	case upTo >= c.last():
		c.first, c.entries = upTo+1, nil
	default:
		// Copy the rest rather than reslice so purged entries can be freed
		// once durable lets go of them too.
		c.entries = slices.Clone(c.entries[upTo+1-c.first:])
		c.first = upTo + 1
	}
	return nil
}

// Sync implements ports.LogStore: everything written so far becomes durable.
func (s *LogStore) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory log: sync: %w", domain.ErrClosed)
	}
	// Share rather than copy: see logState.
	s.mu.durable = s.mu.cur
	return nil
}

// Close implements ports.LogStore. It does not sync.
func (s *LogStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return fmt.Errorf("memory log: close: %w", domain.ErrClosed)
	}
	s.mu.closed = true
	return nil
}

// Crash simulates a crash and a restart: every write since the last Sync
// is lost and the store looks exactly as if reopened from disk. It also
// reopens a closed store, so a test can model a clean restart as Close
// followed by Crash.
func (s *LogStore) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.closed = false
	s.mu.cur = s.mu.durable
	// cur now shares durable's backing array up to its full capacity, and
	// entries past durable's end may be overwritten by a later Append;
	// durable never looks past its length, so that is harmless.
}

func cloneEntry(e domain.Entry) domain.Entry {
	e.Data = bytes.Clone(e.Data)
	return e
}

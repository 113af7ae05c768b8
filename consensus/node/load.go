package node

import (
	"errors"
	"fmt"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// LoadState reads what the stores kept durable and returns the state a core
// restarts from. The state machine's applied point is the base: the core's
// log starts right after it. Stored entries at or below it are committed
// and applied already; stored entries after it are kept when the stored
// entry at the base has the base's term, and dropped otherwise (they would
// follow an entry the snapshot replaced, which can happen when a crash
// falls between restoring a snapshot and purging the log).
//
// It returns an error wrapping domain.ErrCorrupt when the log was purged
// past the applied point: then entries the state machine needs are gone.
func LoadState(log ports.LogStore, vote ports.VoteStore, sm ports.StateMachine) (consensus.State, error) {
	var st consensus.State
	var err error
	if st.Vote, err = vote.Vote(); err != nil {
		return st, fmt.Errorf("load state: vote: %w", err)
	}
	if st.Snapshot, err = sm.Applied(); err != nil {
		return st, fmt.Errorf("load state: applied: %w", err)
	}
	base := st.Snapshot.Index
	first, err := log.FirstIndex()
	if err != nil {
		return st, fmt.Errorf("load state: first index: %w", err)
	}
	last, err := log.LastIndex()
	if err != nil {
		return st, fmt.Errorf("load state: last index: %w", err)
	}
	if first > base+1 {
		return st, fmt.Errorf("load state: %w: log starts at %d but the state machine has applied only %d", domain.ErrCorrupt, first, base)
	}
	if last <= base {
		// Everything stored is applied; start with an empty log after base.
		if err := log.Purge(base); err != nil {
			return st, fmt.Errorf("load state: purge through %d: %w", base, err)
		}
		return st, nil
	}
	if base >= first {
		t, err := log.Term(base)
		if err != nil {
			return st, fmt.Errorf("load state: term at %d: %w", base, err)
		}
		if t != st.Snapshot.Term {
			// The stored suffix follows a different entry at base: drop it.
			if err := log.TruncateSuffix(base + 1); err != nil {
				return st, fmt.Errorf("load state: truncate from %d: %w", base+1, err)
			}
			if err := log.Purge(base); err != nil {
				return st, fmt.Errorf("load state: purge through %d: %w", base, err)
			}
			return st, nil
		}
	}
	st.Entries, err = log.Entries(base+1, last+1, 0)
	if err != nil {
		return st, fmt.Errorf("load state: entries (%d,%d]: %w", base, last, err)
	}
	if len(st.Entries) == 0 || st.Entries[0].Index != base+1 || st.Entries[len(st.Entries)-1].Index != last {
		return st, errors.Join(domain.ErrCorrupt, fmt.Errorf("load state: log entries (%d,%d] not contiguous", base, last))
	}
	return st, nil
}

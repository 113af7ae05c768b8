package node

import (
	"fmt"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// LogJob is work for the log stage, in the order of the Ready contract:
// install Snapshot, store Vote, write Entries, Sync, then Purge. Write
// does the writes and SyncLog the sync; a runner may run them apart (the
// simulator completes the sync later), but reports the job with LogDone
// only once both are done.
type LogJob struct {
	// Snapshot, if set, is a leader's snapshot to install: the state
	// machine is restored from it and the log emptied through it.
	Snapshot *domain.Snapshot
	// Vote, if set, is stored.
	Vote *domain.Vote
	// Entries are appended, replacing the stored entries from
	// Entries[0].Index on if Truncate.
	Entries  []domain.Entry
	Truncate bool
	// Sync: the log must be synced before the job is done.
	Sync bool
	// Purge, if non-zero, purges the log through it (compaction).
	Purge domain.Index

	lastStored domain.Index // the log's last index before a snapshot install
	ready      *readyJob
}

func (j *LogJob) empty() bool {
	return j.Snapshot == nil && j.Vote == nil && len(j.Entries) == 0 && !j.Sync && j.Purge == 0
}

// Run does the whole job: Write, then SyncLog.
func (j *LogJob) Run(log ports.LogStore, vote ports.VoteStore, sm ports.StateMachine) error {
	if err := j.Write(log, vote, sm); err != nil {
		return err
	}
	return j.SyncLog(log)
}

// Write does the job's writes, without the log's sync.
func (j *LogJob) Write(log ports.LogStore, vote ports.VoteStore, sm ports.StateMachine) error {
	if j.Snapshot != nil {
		if err := installSnapshot(log, sm, j.Snapshot, j.lastStored); err != nil {
			return err
		}
	}
	if j.Vote != nil {
		if err := vote.SetVote(*j.Vote); err != nil {
			return fmt.Errorf("set vote %+v: %w", *j.Vote, err)
		}
	}
	if len(j.Entries) > 0 {
		from := j.Entries[0].Index
		if j.Truncate {
			if err := log.TruncateSuffix(from); err != nil {
				return fmt.Errorf("truncate log from %d: %w", from, err)
			}
		}
		if err := log.Append(j.Entries); err != nil {
			return fmt.Errorf("append [%d,%d]: %w", from, j.Entries[len(j.Entries)-1].Index, err)
		}
	}
	if j.Purge != 0 {
		if err := log.Purge(j.Purge); err != nil {
			return fmt.Errorf("purge log through %d: %w", j.Purge, err)
		}
	}
	return nil
}

// SyncLog syncs the log if the job asks for it.
func (j *LogJob) SyncLog(log ports.LogStore) error {
	if !j.Sync {
		return nil
	}
	if err := log.Sync(); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	return nil
}

// syncLogJobs syncs the log once for a batch of jobs that the log stage
// wrote in order, if any of them asks for it: a sync makes every write
// before it durable, so it counts for each of them.
func syncLogJobs(log ports.LogStore, jobs []*LogJob) error {
	for _, j := range jobs {
		if j.Sync {
			return j.SyncLog(log)
		}
	}
	return nil
}

// installSnapshot restores the state machine from a leader's snapshot (from
// its file, if it has one, which it then deletes) and empties the stored
// log through it. Stored entries past it are dropped
// too: the core installs a snapshot only when its log does not hold the
// snapshot's last entry, so they follow an entry the snapshot replaced,
// and LoadState could not tell them apart once the entry at the snapshot
// index is purged. Truncating before purging keeps every crash point
// recoverable.
func installSnapshot(log ports.LogStore, sm ports.StateMachine, s *domain.Snapshot, lastStored domain.Index) error {
	meta := s.Meta
	if err := restoreSnapshot(sm, s); err != nil {
		return fmt.Errorf("restore snapshot at %d (term %d): %w", meta.Index, meta.Term, err)
	}
	first, err := log.FirstIndex()
	if err != nil {
		return fmt.Errorf("first index: %w", err)
	}
	if lastStored > meta.Index && meta.Index+1 >= first {
		if err := log.TruncateSuffix(meta.Index + 1); err != nil {
			return fmt.Errorf("truncate log from %d: %w", meta.Index+1, err)
		}
	}
	if err := log.Purge(meta.Index); err != nil {
		return fmt.Errorf("purge log through %d: %w", meta.Index, err)
	}
	return nil
}

// ApplyJob is work for the apply stage: apply Entries (committed, in
// order) and fill in Results, then sync the state machine if
// SyncStateMachine.
type ApplyJob struct {
	Entries          []domain.Entry
	Results          []domain.Result
	SyncStateMachine bool

	syncedAt domain.Index // the index compaction purges through once synced
}

// Run applies the job's entries to sm and syncs it if asked.
func (j *ApplyJob) Run(sm ports.StateMachine) error {
	if len(j.Entries) > 0 {
		ents := j.Entries
		res, err := sm.Apply(ents)
		if err != nil {
			return fmt.Errorf("apply [%d,%d]: %w", ents[0].Index, ents[len(ents)-1].Index, err)
		}
		if len(res) != len(ents) {
			return fmt.Errorf("apply [%d,%d]: %d results for %d entries", ents[0].Index, ents[len(ents)-1].Index, len(res), len(ents))
		}
		j.Results = res
	}
	if j.SyncStateMachine {
		if err := sm.Sync(); err != nil {
			return fmt.Errorf("sync state machine: %w", err)
		}
	}
	return nil
}

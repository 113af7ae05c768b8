package node

import (
	"github.com/seshat-kv/seshat/domain"
)

// compaction is the driver's compaction bookkeeping. Compacting takes two
// steps on two stages: the apply stage syncs the state machine (an
// ApplyJob with SyncStateMachine), and only once that is done does the
// log stage purge the log (a LogJob with Purge), so that a restart finds
// every entry after the state machine's durable applied point.
type compaction struct {
	at      domain.Index // applied index when the last compaction started
	bytes   uint64       // entry bytes applied since then
	purged  domain.Index // the log is purged through here (or will be)
	syncing bool         // a sync for compaction is on the apply stage
}

// maybeCompact starts a compaction once SnapshotEntries entries (or
// SnapshotBytes bytes of entries) were applied since the last one.
func (d *Driver) maybeCompact() {
	c := &d.compact
	if c.syncing || d.applied-c.at < domain.Index(d.cfg.SnapshotEntries) && c.bytes < d.cfg.SnapshotBytes {
		return
	}
	c.at, c.bytes = d.applied, 0
	if d.applied <= domain.Index(d.cfg.TrailingEntries) {
		return
	}
	idx := d.applied - domain.Index(d.cfg.TrailingEntries)
	if idx <= c.purged {
		return
	}
	c.syncing = true
	d.applying++
	d.out.Apply = append(d.out.Apply, &ApplyJob{SyncStateMachine: true, syncedAt: idx})
	if d.plant.purgeUnsynced {
		// Planted bug: purge at once, without waiting for the sync.
		d.purge(idx)
	}
}

// stateMachineSynced: the state machine is durable through idx at least;
// the log may be purged through it.
func (d *Driver) stateMachineSynced(idx domain.Index) {
	d.compact.syncing = false
	if idx <= d.compact.purged {
		return
	}
	d.purge(idx)
}

func (d *Driver) purge(idx domain.Index) {
	if err := d.core.Compact(idx); err != nil {
		d.log.Debug().Err(err).Uint64("index", uint64(idx)).Msg("core refused compaction")
		return
	}
	d.compact.purged = idx
	d.out.Log = append(d.out.Log, &LogJob{Purge: idx})
	d.log.Debug().Uint64("index", uint64(idx)).Uint64("applied", uint64(d.applied)).Msg("log compacted")
}

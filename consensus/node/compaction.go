package node

import (
	"cmp"
	"slices"

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
	// applied are the applied entries not purged yet, in index order,
	// each with the bytes applied through it (for TrailingBytes).
	applied []appliedBytes
}

// appliedBytes is an applied entry's index and size, and the running
// total of the bytes of applied entries through it.
type appliedBytes struct {
	index       domain.Index
	size, total uint64
}

// sized records applied entries for TrailingBytes.
func (c *compaction) sized(ents []domain.Entry) {
	var total uint64
	if n := len(c.applied); n > 0 {
		total = c.applied[n-1].total
	}
	for i := range ents {
		if n := len(c.applied); n > 0 && ents[i].Index <= c.applied[n-1].index {
			continue // applied again (a planted bug): counted once
		}
		size := ents[i].Size()
		total += size
		c.applied = append(c.applied, appliedBytes{ents[i].Index, size, total})
	}
}

// dropSized forgets the applied entries through idx (purged, or under an
// installed snapshot).
func (c *compaction) dropSized(idx domain.Index) {
	n, _ := slices.BinarySearchFunc(c.applied, idx+1, func(a appliedBytes, i domain.Index) int {
		return cmp.Compare(a.index, i)
	})
	c.applied = slices.Delete(c.applied, 0, n)
}

// bytesStart is how far compaction must purge at least for the applied
// entries it keeps to hold at most limit bytes: 0 if they all fit.
func (c *compaction) bytesStart(limit uint64) domain.Index {
	if len(c.applied) == 0 {
		return 0
	}
	first, last := c.applied[0], c.applied[len(c.applied)-1].total
	if last-(first.total-first.size) <= limit {
		return 0
	}
	// Purging through a keeps last-a.total bytes, less as a moves on: the
	// first a that keeps at most limit (the last one keeps nothing).
	p, _ := slices.BinarySearchFunc(c.applied, limit, func(a appliedBytes, lim uint64) int {
		if last-a.total > lim {
			return -1
		}
		return 1
	})
	return c.applied[p].index
}

// maybeCompact starts a compaction once SnapshotEntries entries (or
// SnapshotBytes bytes of entries) were applied since the last one. It
// keeps TrailingEntries applied entries in the log, or fewer if they hold
// more than TrailingBytes.
func (d *Driver) maybeCompact() {
	c := &d.compact
	if c.syncing || d.applied-c.at < domain.Index(d.cfg.SnapshotEntries) && c.bytes < d.cfg.SnapshotBytes {
		return
	}
	c.at, c.bytes = d.applied, 0
	var idx domain.Index
	if d.applied > domain.Index(d.cfg.TrailingEntries) {
		idx = d.applied - domain.Index(d.cfg.TrailingEntries)
	}
	idx = max(idx, c.bytesStart(d.cfg.TrailingBytes))
	if idx == 0 || idx <= c.purged {
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
	d.compact.dropSized(idx)
	d.out.Log = append(d.out.Log, &LogJob{Purge: idx})
	d.log.Debug().Uint64("index", uint64(idx)).Uint64("applied", uint64(d.applied)).Msg("log compacted")
}

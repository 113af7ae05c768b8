package node

import (
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// SetDiskFull tells the driver whether the node's disk is (nearly) full;
// the runner asks Config.DiskFull once per tick, before Tick.
//
// A node whose disk is full refuses new proposals and, if it leads, hands
// leadership to the follower that has most of its log, so that the
// cluster keeps taking writes. It goes on persisting what a leader sends
// it: the reserve DiskFull keeps is for that, and refusing would only
// stall the Ready it belongs to.
func (d *Driver) SetDiskFull(full bool) {
	if full == d.diskFull {
		return
	}
	d.diskFull = full
	if full {
		d.log.Warn().Msg("disk nearly full: refusing new writes and handing leadership over")
	} else {
		d.log.Info().Msg("disk space is back: taking writes again")
	}
}

// diskFullTick runs every tick: a full leader tries to hand over.
func (d *Driver) diskFullTick() {
	if !d.diskFull || d.soft.Role != consensus.Leader {
		return
	}
	st := d.core.Status()
	best, bestMatch := domain.None, domain.Index(0)
	for _, id := range st.Membership.Voters {
		pr, ok := st.Progress[id]
		if id == d.id || !ok || !pr.RecentActive {
			continue
		}
		if best == domain.None || pr.Match > bestMatch || pr.Match == bestMatch && id < best {
			best, bestMatch = id, pr.Match
		}
	}
	if best == domain.None {
		return // nobody to hand over to: keep leading, refusing writes
	}
	if err := d.core.TransferLeadership(best); err != nil {
		d.log.Debug().Err(err).Uint64("to", uint64(best)).Msg("disk full: hand-over not started")
	}
}

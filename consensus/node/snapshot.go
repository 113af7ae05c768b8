package node

import (
	"github.com/seshat-kv/seshat/domain"
)

// snapshotSends tracks the snapshot sends under way: one per follower at
// a time.
type snapshotSends struct {
	sending map[domain.NodeID]bool
}

func (s *snapshotSends) init() { s.sending = map[domain.NodeID]bool{} }

// sendSnapshot asks the runner to fill m with the state machine's current
// image and send it (Output.Snapshots). A request for a follower that
// already has one on its way is dropped, as the core hears of the one
// under way through SnapshotSent.
func (d *Driver) sendSnapshot(m domain.Message) {
	if d.snaps.sending[m.To] {
		return
	}
	d.snaps.sending[m.To] = true
	d.out.Snapshots = append(d.out.Snapshots, m)
}

// SnapshotSent reports the fate of a snapshot send asked for in
// Output.Snapshots: err nil if the transport took it.
func (d *Driver) SnapshotSent(to domain.NodeID, err error) {
	delete(d.snaps.sending, to)
	if err != nil {
		d.log.Debug().Err(err).Uint64("to", uint64(to)).Msg("snapshot send failed")
	}
	d.core.ReportSnapshot(to, err == nil)
}

// snapshotInstalled updates the driver once a leader's snapshot is
// installed: the state machine is at meta.Index, and proposals at or below
// it cannot be told apart any more.
func (d *Driver) snapshotInstalled(meta domain.SnapshotMeta) {
	d.applied = meta.Index
	d.issued, d.issuedAll = meta.Index, meta.Index
	d.compact.at = meta.Index
	d.compact.bytes = 0
	d.compact.purged = max(d.compact.purged, meta.Index)
	d.proposalsReplaced(meta.Index)
	d.serveReads()
}

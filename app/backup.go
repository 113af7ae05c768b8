package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// Snapshotter is what a backup needs of the state machine:
// ports.StateMachine's Snapshot.
type Snapshotter interface {
	Snapshot(w io.Writer) (domain.SnapshotMeta, error)
}

// Backup implements ports.Backup over a service and its node's state
// machine: a read barrier, then the state machine's own snapshot, which
// is consistent (Pebble's is a Pebble snapshot) and streamed, so neither
// side ever holds the whole state.
type Backup struct {
	svc *Service
	sm  Snapshotter
}

var _ ports.Backup = (*Backup)(nil)

// NewBackup returns the backup side of svc, reading sm: the state machine
// svc's reads go to.
func NewBackup(svc *Service, sm Snapshotter) *Backup { return &Backup{svc: svc, sm: sm} }

// Backup implements ports.Backup. The barrier (ReadIndex) returns once this
// node has applied everything committed when it began, and the image is
// taken after it, so the image holds every write acknowledged before the
// call, on whichever node it runs.
func (b *Backup) Backup(ctx context.Context, w io.Writer) (domain.SnapshotMeta, error) {
	if b.svc.isClosed() {
		return domain.SnapshotMeta{}, domain.ErrStopped
	}
	if err := b.svc.readBarrier(ctx, time.Now().Add(b.svc.cfg.LeaderWait)); err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("app: backup: read barrier: %w", err)
	}
	meta, err := b.sm.Snapshot(w)
	if err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("app: backup: %w", err)
	}
	b.svc.log.Info().Uint64("index", uint64(meta.Index)).Uint64("term", uint64(meta.Term)).Msg("backup image written")
	return meta, nil
}

package ports

import (
	"context"
	"io"

	"github.com/seshat-kv/seshat/domain"
)

// Backup is the inbound port of an online backup: what a driving adapter
// (the RESP server's SESHAT.BACKUP) calls to copy the replicated state out
// of a running node.
//
// Errors: domain.ErrNoLeader if no leader confirmed the read barrier in
// time; domain.ErrStopped once the service is closing; an error of w's
// aborts the image (what w got is then incomplete and must be thrown
// away); any other error is the state machine's (domain.ErrCorrupt for
// stored data failing its checks).
type Backup interface {
	// Backup writes to w a consistent image of the applied state, in the
	// form StateMachine.Snapshot writes (StateMachine.Restore reads it
	// back), and returns its metadata. It first passes a linearizable read
	// barrier, so every write acknowledged before Backup was called is in
	// the image. Writes go on meanwhile; they are in the image or not.
	Backup(ctx context.Context, w io.Writer) (domain.SnapshotMeta, error)
}

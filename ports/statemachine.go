package ports

import (
	"io"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// StateMachine applies committed entries. It is the replicated state: every
// node applies the same entries in the same order and must end in the same
// state, so Apply may depend on nothing but the entries (no clock, no
// randomness, no map order).
//
// Apply is idempotent: an entry whose index is not above Applied().Index is
// ignored (its Result is the zero Result), so a node may replay its log
// after a restart. Data and the applied point change together, atomically.
//
// Applied state need not be durable when Apply returns; Sync makes it so.
// A crash may roll the state back to its last Sync (or Restore), never to
// a mix of two points. The driver Syncs before it purges the log up to the
// applied index, so a replay always finds the entries it needs.
//
// Errors: a Normal entry whose command cannot be decoded is an error
// wrapping domain.ErrCorrupt; an application-level failure (a type
// mismatch, say) is not an error but goes into that entry's Result.Err.
// Restore from a stream that fails its checks returns domain.ErrCorrupt and
// leaves the previous state in place. After Close every method returns
// domain.ErrClosed.
type StateMachine interface {
	// Apply applies entries in index order (Normal, Blank and Membership
	// ones; Blank only advances the applied point, Membership also records
	// the new membership) and returns one Result per entry.
	Apply(entries []domain.Entry) ([]domain.Result, error)
	// Applied returns the last applied entry's index and term and the
	// membership in force there. A new state machine returns the zero meta.
	Applied() (domain.SnapshotMeta, error)
	// Sync makes all applied state durable.
	Sync() error
	// Snapshot writes a consistent image of the applied state to w and
	// returns its metadata. Apply may run concurrently. It streams: w may
	// be a file, and the image is never whole in memory.
	Snapshot(w io.Writer) (domain.SnapshotMeta, error)
	// Restore replaces the whole state with the image read from r, which
	// Snapshot wrote with metadata meta. It is durable when it returns.
	// It reads r as a stream (r is often a file of the transport's
	// spool): an adapter that keeps its state on disk holds a bounded
	// part of the image in memory at a time, whatever its size (the
	// in-memory adapter's state is memory anyway).
	Restore(meta domain.SnapshotMeta, r io.Reader) error
	// Close releases the state machine.
	Close() error
}

// KVReader reads the applied key-value state. Reads are local: whoever
// calls them has made them linearizable first (ReadIndex) if it needs to.
type KVReader interface {
	// Get returns the value at key in database 0, or domain.ErrNotFound,
	// whatever its deadline: the raw stored value, for tests and tools.
	Get(key []byte) ([]byte, error)
	// View calls fn with a read-only keyspace.Store over the applied
	// state, which no Apply changes until fn returns, so that a command
	// reading several keys sees one point. Put, Delete, FlushDB and SwapDB
	// on it fail. fn's error is View's.
	View(fn func(keyspace.Store) error) error
}

package ports

import "github.com/seshat-kv/seshat/domain"

// LogStore is the durable Raft log.
//
// Indexes are contiguous from FirstIndex to LastIndex. A new, empty store
// has FirstIndex 1 and LastIndex 0. Writes (Append, TruncateSuffix, Purge)
// may be buffered: only Sync makes them durable, and a crash may lose any
// write made since the last Sync returned (but never an earlier one, and
// never part of one Append: an Append is kept whole or not at all).
//
// Errors: Entries and Term return an error wrapping domain.ErrCompacted for
// an index below FirstIndex and domain.ErrUnavailable for one above
// LastIndex. Stored bytes that fail their checksum give domain.ErrCorrupt,
// naming the index. Any other error is an I/O failure the caller must treat
// as fatal. After Close every method returns domain.ErrClosed.
type LogStore interface {
	// FirstIndex returns the index of the first stored entry, or
	// LastIndex()+1 when the log is empty.
	FirstIndex() (domain.Index, error)
	// LastIndex returns the index of the last stored entry; after a Purge
	// past the end of the log, the purged index.
	LastIndex() (domain.Index, error)
	// Term returns the term of the entry at i.
	Term(i domain.Index) (domain.Term, error)
	// Entries returns the entries in [lo, hi), stopping early once their
	// total Size passes maxBytes but always returning at least one entry
	// (maxBytes 0 means no limit). It requires lo < hi.
	Entries(lo, hi domain.Index, maxBytes uint64) ([]domain.Entry, error)
	// Append adds entries, which must be contiguous and start at
	// LastIndex()+1 (after a TruncateSuffix when replacing a conflict).
	// Anything else is an error and changes nothing.
	Append(entries []domain.Entry) error
	// TruncateSuffix removes every entry with index >= from. Removing past
	// the end is a no-op; from must be >= FirstIndex.
	TruncateSuffix(from domain.Index) error
	// Purge removes every entry with index <= upTo: compaction after a
	// snapshot. If upTo >= LastIndex the log becomes empty with FirstIndex
	// upTo+1 and LastIndex upTo. Purging below FirstIndex is a no-op.
	Purge(upTo domain.Index) error
	// Sync makes every write so far durable.
	Sync() error
	// Close releases the store; it does not sync.
	Close() error
}

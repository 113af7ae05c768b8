package pebble

import (
	"github.com/seshat-kv/seshat/domain/keyspace"

	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// Defaults for Options fields left at their zero value.
const (
	// DefaultCacheSize is the block cache size. Every write reads its key
	// first (the engine's conditions and the key counts), and a read that
	// misses the cache reads and decompresses an index, a filter and a
	// data block: at 64 MiB a load of a million 100-byte values spent 48
	// us of CPU per SET, a third of it there, at 256 MiB 33 us
	// (BenchmarkLoad1M, see BENCHMARKS.md). Pebble allocates the cache as
	// blocks arrive, so a small node pays only for what it holds.
	DefaultCacheSize = 256 << 20
	// DefaultRecordCacheSize bounds the records the state machine keeps
	// in memory, of the keys recent Applies read or wrote, so that the
	// read before each write and a GET of a hot key skip Pebble (see
	// recordCache).
	DefaultRecordCacheSize = 32 << 20
	// DefaultSnapshotChunkSize bounds one chunk of a snapshot stream, and so
	// the memory that Snapshot and Restore hold at once.
	DefaultSnapshotChunkSize = 1 << 20
	// DefaultMemTableSize is Pebble's memtable size. Pebble commits a batch
	// of half this size or more as its own flushable table, so it must stay
	// well above DefaultRestoreBatchSize and the largest apply batch.
	DefaultMemTableSize = 32 << 20
	// DefaultRestoreBatchSize is how many bytes Restore writes per Pebble
	// batch; bigger batches are faster to commit but hold more memory.
	DefaultRestoreBatchSize = 4 << 20
	// DefaultMinFreeBytes is the free space below which DB.DiskFull
	// reports true: a reserve for what a node must still persist (the
	// leader's appends, votes) after it stops taking new writes.
	DefaultMinFreeBytes = 64 << 20
)

// maxSnapshotChunkSize keeps a configured chunk size sane; a single pair
// larger than the chunk size still travels (in a chunk of its own).
const maxSnapshotChunkSize = 64 << 20

// Options configure Open. The zero value with Dir set works.
type Options struct {
	// Dir is the directory holding the Pebble DB. Required.
	Dir string
	// Engine runs the state machine's commands. Every node of a cluster
	// must use the same settings. Default: the zero keyspace.Engine.
	Engine keyspace.Engine
	// FS is the filesystem. Default vfs.Default (the OS). Tests and the
	// simulator pass vfs.NewCrashableMem() and crash with CrashClone.
	FS vfs.FS
	// CacheSize is Pebble's block cache size in bytes. Default
	// DefaultCacheSize (256 MiB).
	CacheSize int64
	// RecordCacheSize bounds the state machine's record cache in bytes
	// (keys, values and an estimate of the overhead). Default
	// DefaultRecordCacheSize (32 MiB); negative: no cache.
	RecordCacheSize int
	// MemTableSize is Pebble's memtable size in bytes. Default
	// DefaultMemTableSize (32 MiB).
	MemTableSize uint64
	// NoSync skips every fsync: LogStore.Sync, KV.Sync, SetVote and Restore
	// return without making anything durable. Only for tests and
	// benchmarks; Open logs a warning when it is set. Default false.
	NoSync bool
	// Logger receives this package's logs and Pebble's own. Default
	// zerolog.Nop().
	Logger *zerolog.Logger
	// SnapshotChunkSize is the payload size of one snapshot stream chunk in
	// bytes. Default DefaultSnapshotChunkSize (1 MiB).
	SnapshotChunkSize int
	// RestoreBatchSize is the number of bytes Restore writes per Pebble
	// batch. Default DefaultRestoreBatchSize (4 MiB).
	RestoreBatchSize int
	// MinFreeBytes is the free space on Dir's filesystem below which
	// DB.DiskFull reports true. Default DefaultMinFreeBytes (64 MiB).
	MinFreeBytes uint64
}

// Clone returns a copy of o.
func (o Options) Clone() Options { return o }

// EnsureDefaults fills every zero field with its default and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.RecordCacheSize == 0 {
		o.RecordCacheSize = DefaultRecordCacheSize
	}
	if o.Logger == nil {
		nop := zerolog.Nop()
		o.Logger = &nop
	}
	if o.SnapshotChunkSize == 0 {
		o.SnapshotChunkSize = DefaultSnapshotChunkSize
	}
	if o.RestoreBatchSize == 0 {
		o.RestoreBatchSize = DefaultRestoreBatchSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	return o
}

// Validate reports the first field that makes no sense.
func (o *Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("pebble options: Dir is required")
	case o.CacheSize < 0:
		return fmt.Errorf("pebble options: CacheSize %d is negative", o.CacheSize)
	case o.SnapshotChunkSize < 0 || o.SnapshotChunkSize > maxSnapshotChunkSize:
		return fmt.Errorf("pebble options: SnapshotChunkSize %d not in [1, %d]", o.SnapshotChunkSize, maxSnapshotChunkSize)
	case o.RestoreBatchSize < 0:
		return fmt.Errorf("pebble options: RestoreBatchSize %d is negative", o.RestoreBatchSize)
	}
	return nil
}

package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// Key prefixes standing in for column families; see the package comment.
const (
	prefixLog  byte = 0x01
	prefixRaft byte = 0x02
	prefixData byte = 0x03
	prefixMeta byte = 0x04
	prefixSnap byte = 0x05
)

var (
	keyVote     = []byte{prefixRaft, 'v', 'o', 't', 'e'}
	keyLogFirst = []byte{prefixRaft, 'l', 'o', 'g', 'f', 'i', 'r', 's', 't'}
	keyApplied  = []byte{prefixMeta, 'a', 'p', 'p', 'l', 'i', 'e', 'd'}
	keyRestore  = []byte{prefixSnap, 'r', 'e', 's', 't', 'o', 'r', 'e'}
	logLower    = []byte{prefixLog}
	logUpper    = []byte{prefixLog + 1}
	dataLower   = []byte{prefixData}
	dataUpper   = []byte{prefixData + 1}
)

func logKey(i domain.Index) []byte {
	k := make([]byte, 9)
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], uint64(i))
	return k
}

// dataPrefix is the start of generation gen's user data; dataPrefix(gen+1)
// is its end.
func dataPrefix(gen uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], gen)
	return k
}

// slotPrefix is the start of one database's keys in generation gen: each
// database lives in a slot (see dbTable), so that FLUSHDB and SWAPDB
// change a mapping instead of rewriting keys.
func slotPrefix(gen uint64, slot uint32) []byte {
	k := make([]byte, 13, 13+8+32)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], gen)
	binary.BigEndian.PutUint32(k[9:], slot)
	return k
}

// dataKey is where key of the database in slot lives: after the slot
// prefix, the key's keyspace.Hash and the key, so that a database iterates
// in SCAN's (hash, key) order.
func dataKey(gen uint64, slot uint32, key []byte) []byte {
	k := slotPrefix(gen, slot)
	k = binary.BigEndian.AppendUint64(k, keyspace.Hash(key))
	return append(k, key...)
}

// dataKeyLen is the length of dataKey's prefix before the user key.
const dataKeyLen = 21

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal returns the stored form of payload under key: a CRC-32C of key and
// payload, then payload.
func seal(key, payload []byte) []byte {
	out := make([]byte, 4+len(payload))
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(out, crc)
	copy(out[4:], payload)
	return out
}

// unseal checks rec, stored under key, and returns its payload (aliasing
// rec).
func unseal(key, rec []byte) ([]byte, bool) {
	if len(rec) < 4 {
		return nil, false
	}
	payload := rec[4:]
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload)
	return payload, binary.LittleEndian.Uint32(rec) == crc
}

// DB is one node's Pebble database, holding its Raft log, vote and state
// machine. Its stores are safe for concurrent use.
type DB struct {
	opts Options
	log  zerolog.Logger
	db   *pebble.DB

	// life guards closing: every operation holds it for reading, Close for
	// writing, so Pebble is never used after its Close.
	life   sync.RWMutex
	closed bool

	// fatal is the first write or sync failure. Once set, every operation
	// returns it: see the package comment on why nothing is retried.
	fatal atomic.Pointer[error]

	// written counts unsynced writes that completed; synced is the value of
	// written covered by the last WAL sync. Sync is free when they match.
	written atomic.Uint64
	synced  atomic.Uint64

	// largeCommits counts the large batches committed that dropLarge has
	// not yet flushed out of Pebble's memory (see releaseLarge).
	largeCommits atomic.Int64

	// ingestDir and tableOpts are where and how writeTable writes its
	// tables (see ingestBytes); tables numbers them.
	ingestDir string
	tableOpts sstable.WriterOptions
	tables    atomic.Uint64
	// ingested counts the bytes of the pairs ingested since Open, before
	// compression (Pebble's own count is of compressed tables, and waits
	// for a flush when an ingestion overlaps a memtable).
	ingested atomic.Uint64

	logStore *LogStore
	votes    *VoteStore
	kv       *KV
}

// Open opens (creating if needed) the DB in opts.Dir.
func Open(opts Options) (d *DB, err error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	d = &DB{opts: opts, log: opts.Logger.With().Str("store", "pebble").Str("dir", opts.Dir).Logger()}
	if opts.NoSync {
		d.log.Warn().Msg("NoSync is set: nothing is ever fsynced, a crash loses acknowledged writes; for tests and benchmarks only")
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		FS:    opts.FS,
		Cache: cache,
		// Pebble's default (4 MiB) flushes often under a steady stream of
		// log appends and applies.
		MemTableSize:                opts.MemTableSize,
		MemTableStopWritesThreshold: stopWritesThreshold(opts.MemTableSize),
		Logger:                      pebbleLogger{d},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				d.log.Error().Err(err).Msg("pebble background error")
			},
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				d.log.Error().Str("path", info.Path).Err(info.Details).Msg("pebble data corruption")
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				d.log.Warn().Str("path", info.Path).Dur("duration", info.Duration).Msg("pebble disk slow")
			},
			// Every write of the node waits meanwhile, the Raft log's
			// included: an operator looking at slow commits wants to see
			// it.
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				d.log.Warn().Str("reason", info.Reason).Msg("pebble write stall: writes wait for flushes or compactions")
			},
			WriteStallEnd: func() {
				d.log.Info().Msg("pebble write stall over")
			},
		},
	}
	// Bloom filters on every level: each write reads its key first (the
	// engine's conditions and the key counts), and most of those reads are
	// for keys that do not exist, which without a filter search every
	// level's index.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	defer func() {
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			d, err = nil, fmt.Errorf("pebble: open %s: %w", opts.Dir, fp.err)
		}
	}()
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("pebble: open %s: %w", opts.Dir, classify(err))
	}
	d.db = db
	if err := d.openIngest(po); err != nil {
		_ = db.Close()
		return nil, err
	}
	d.logStore = &LogStore{d: d}
	d.votes = &VoteStore{d: d}
	d.kv = &KV{d: d, engine: opts.Engine, cache: newRecordCache(opts.RecordCacheSize)}
	if err := d.logStore.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := d.kv.load(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return d, nil
}

// DiskFull reports whether the free space on the DB's filesystem is below
// Options.MinFreeBytes, so that the node stops taking writes before Pebble
// meets ENOSPC (which it cannot survive: see the package doc). A
// filesystem that cannot report its usage is never full.
func (d *DB) DiskFull() bool {
	u, err := d.opts.FS.GetDiskUsage(d.opts.Dir)
	if err != nil {
		return false
	}
	return u.AvailBytes < d.opts.MinFreeBytes
}

// LogStore returns the node's Raft log.
func (d *DB) LogStore() *LogStore { return d.logStore }

// VoteStore returns the node's vote.
func (d *DB) VoteStore() *VoteStore { return d.votes }

// StateMachine returns the node's key-value state machine.
func (d *DB) StateMachine() *KV { return d.kv }

// Close closes the DB and with it every store. It promises no durability
// (Pebble happens to flush its WAL buffer, but only a Sync counts). After
// Close every store method, and Close, returns domain.ErrClosed.
func (d *DB) Close() (err error) {
	d.life.Lock()
	defer d.life.Unlock()
	if d.closed {
		return fmt.Errorf("pebble: close: %w", domain.ErrClosed)
	}
	d.closed = true
	defer func() {
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("pebble: close: %w", fp.err)
		}
	}()
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("pebble: close: %w", classify(err))
	}
	return nil
}

// do runs f as operation op of a store whose own Close sets closed: it
// refuses to run on a closed store or a failed DB, and turns the panic of a
// fatal Pebble failure (see pebbleLogger.Fatalf) back into an error.
func (d *DB) do(closed *atomic.Bool, op string, f func() error) (err error) {
	d.life.RLock()
	defer d.life.RUnlock()
	if d.closed || (closed != nil && closed.Load()) {
		return fmt.Errorf("pebble: %s: %w", op, domain.ErrClosed)
	}
	if p := d.fatal.Load(); p != nil {
		return fmt.Errorf("pebble: %s: storage failed earlier, the node must stop: %w", op, *p)
	}
	defer func() {
		if r := recover(); r != nil {
			fp, ok := r.(fatalPanic)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("pebble: %s: %w", op, fp.err)
		}
	}()
	return f()
}

// commit applies b, synced if sync is set (and Options.NoSync is not).
func (d *DB) commit(b *pebble.Batch, sync bool) error {
	if !sync || d.opts.NoSync {
		if err := d.db.Apply(b, pebble.NoSync); err != nil {
			return classify(err)
		}
		d.written.Add(1)
		return nil
	}
	// Everything written before this batch entered the WAL is synced with
	// it, since the WAL is one ordered file.
	w := d.written.Load()
	if err := d.db.Apply(b, pebble.Sync); err != nil {
		return classify(err)
	}
	d.advanceSynced(w)
	return nil
}

// sync makes every completed write durable with one WAL sync, or does
// nothing if no write completed since the last sync.
func (d *DB) sync() error {
	if d.opts.NoSync {
		return nil
	}
	w := d.written.Load()
	if d.synced.Load() >= w {
		return nil
	}
	// LogData(nil) is the smallest batch that is not empty (Pebble commits
	// an empty batch without touching the WAL): it writes one WAL record
	// and, with Sync, fsyncs the WAL up to it.
	if err := d.db.LogData(nil, pebble.Sync); err != nil {
		return classify(err)
	}
	d.advanceSynced(w)
	return nil
}

func (d *DB) advanceSynced(w uint64) {
	for {
		s := d.synced.Load()
		if s >= w || d.synced.CompareAndSwap(s, w) {
			return
		}
	}
}

// reader is what the stores read through: the DB, a batch or a
// snapshot.
type reader interface {
	Get(key []byte) (value []byte, closer io.Closer, err error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

// get returns a copy of the value at key; ok is false if there is none.
func (d *DB) get(r reader, key []byte) (val []byte, ok bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, classify(err)
	}
	val = append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, false, classify(err)
	}
	return val, true, nil
}

// classify wraps a Pebble error in the domain sentinel that names its
// kind, if there is one.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w", domain.ErrDiskFull, err)
	case pebble.IsCorruptionError(err):
		return fmt.Errorf("%w: %w", domain.ErrCorrupt, err)
	}
	return err
}

// fatalPanic carries a fatal Pebble failure from pebbleLogger.Fatalf to
// the DB.do that called into Pebble.
type fatalPanic struct{ err error }

// pebbleLogger routes Pebble's logging into zerolog.
type pebbleLogger struct{ d *DB }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.d.log.Info().Msgf(format, args...)
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.d.log.Error().Msgf(format, args...)
}

// Fatalf is how Pebble reports a failure it cannot recover from, above all
// a failed WAL write or sync, after which its commit pipeline is wedged.
// Pebble's default logger exits the process. This one poisons the DB, so
// that every later call fails at once, and panics; DB.do recovers the
// panic and returns the error. The error in args, if any, is kept whole so
// that errors.Is still finds ENOSPC in it.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	var cause error
	for _, a := range args {
		if e, ok := a.(error); ok {
			cause = e
			break
		}
	}
	var err error
	if cause != nil {
		err = fmt.Errorf("%s: %w", msg, classify(cause))
	} else {
		err = errors.New(msg)
	}
	l.d.fatal.CompareAndSwap(nil, &err)
	l.d.log.Error().Err(err).Msg("pebble fatal error: storage stopped")
	panic(fatalPanic{err})
}

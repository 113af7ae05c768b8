package pebble

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

var (
	_ ports.StateMachine = (*KV)(nil)
	_ ports.KVReader     = (*KV)(nil)
)

// KV is the replicated key-value state machine. It runs commands with a
// keyspace.Engine over user data kept under the data prefix, the current
// generation (see Restore) and each database's slot (see dbTable). The
// applied point and the database table live under the meta prefix and
// change in the same batch as the data. Get it from DB.StateMachine.
type KV struct {
	d      *DB
	engine keyspace.Engine
	closed atomic.Bool
	// cache mirrors recent committed records (see recordCache): written
	// holding write and mu, read holding write (Apply) or mu (a View).
	cache recordCache
	// filter knows which record keys are certainly absent (see
	// keyFilter): used and changed only holding write.
	filter keyFilter
	// chunked knows which collections may hold chunked elements (see
	// chunkedInsts): used and changed only holding write.
	chunked chunkedInsts

	// write serializes Apply and Restore, the only writers of the state
	// and of mu's fields: holding it, they read mu's fields without mu.
	write sync.Mutex
	// mu guards the cached applied point, generation and database table.
	// A writer takes it only to commit its batch and publish what the
	// batch changed, so that Pebble's state and these fields always match;
	// a reader (Get, View, Snapshot) takes it for reading only to copy
	// them and take its Pebble snapshot (or make its one point read). So a
	// read never waits for a whole Apply's commands, and an Apply never
	// waits for a whole read.
	mu struct {
		sync.RWMutex
		meta domain.SnapshotMeta
		gen  uint64
		// dbs is never changed once published: an Apply changes a copy
		// and publishes it, so a read takes the pointer, not a copy of
		// the table (5 KiB, which every GET's View used to copy).
		dbs *dbTable
	}
}

// dbTable maps each database to the slot its keys live in, and counts its
// keys and deadlines. FLUSHDB moves a database to a fresh slot (the old
// one is range-deleted), SWAPDB swaps two slots: both are constant work.
type dbTable struct {
	slot     [domain.MaxDatabases]uint32
	keys     [domain.MaxDatabases]int64
	expires  [domain.MaxDatabases]int64
	nextSlot uint32
}

// total returns the keys of every database, the engine's own included.
func (t *dbTable) total() int64 {
	var n int64
	for _, k := range t.keys {
		n += k
	}
	return n
}

func newDBTable() dbTable {
	var t dbTable
	for i := range t.slot {
		t.slot[i] = uint32(i)
	}
	t.nextSlot = domain.MaxDatabases
	return t
}

// appendTo appends the table's non-default rows: the next slot, then per
// such database its number, slot, key and deadline counts (uvarints).
func (t *dbTable) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(t.nextSlot))
	n := 0
	for i := range t.slot {
		if t.slot[i] != uint32(i) || t.keys[i] != 0 || t.expires[i] != 0 {
			n++
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i := range t.slot {
		if t.slot[i] != uint32(i) || t.keys[i] != 0 || t.expires[i] != 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendUvarint(b, uint64(t.slot[i]))
			b = binary.AppendUvarint(b, uint64(t.keys[i]))
			b = binary.AppendUvarint(b, uint64(t.expires[i]))
		}
	}
	return b
}

func decodeDBTable(b []byte) (dbTable, []byte, bool) {
	t := newDBTable()
	var bad bool
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	next := uv()
	count := uv()
	if bad || next > 1<<32-1 || count > domain.MaxDatabases {
		return t, nil, false
	}
	t.nextSlot = uint32(next)
	for range count {
		db, slot, keys, exp := uv(), uv(), uv(), uv()
		if bad || db >= domain.MaxDatabases || slot > 1<<32-1 || keys > 1<<62 || exp > keys {
			return t, nil, false
		}
		t.slot[db], t.keys[db], t.expires[db] = uint32(slot), int64(keys), int64(exp)
	}
	return t, b, true
}

// metaVersion 2 added the database table; a directory written by version
// 1 (before databases and records existed) is refused, not misread.
const metaVersion = 2

// meta payload: version, index, term, generation (8 bytes each, big
// endian, after the version byte), the uvarint-length-prefixed membership,
// then the database table.
func encodeMeta(m domain.SnapshotMeta, gen uint64, dbs *dbTable) []byte {
	p := make([]byte, 25, 128)
	p[0] = metaVersion
	binary.BigEndian.PutUint64(p[1:], uint64(m.Index))
	binary.BigEndian.PutUint64(p[9:], uint64(m.Term))
	binary.BigEndian.PutUint64(p[17:], gen)
	mb := domain.EncodeMembership(m.Membership)
	p = binary.AppendUvarint(p, uint64(len(mb)))
	p = append(p, mb...)
	p = dbs.appendTo(p)
	return seal(keyApplied, p)
}

func decodeMeta(key, rec []byte) (domain.SnapshotMeta, uint64, dbTable, error) {
	p, ok := unseal(key, rec)
	if !ok || len(p) < 25 {
		return domain.SnapshotMeta{}, 0, dbTable{}, fmt.Errorf("pebble kv: meta record %q: %w: checksum mismatch", key, domain.ErrCorrupt)
	}
	if p[0] != metaVersion {
		return domain.SnapshotMeta{}, 0, dbTable{}, fmt.Errorf("pebble kv: meta record %q has format %d, this build reads %d: %w", key, p[0], metaVersion, domain.ErrCorrupt)
	}
	rest := p[25:]
	l, n := binary.Uvarint(rest)
	if n <= 0 || l > uint64(len(rest)-n) {
		return domain.SnapshotMeta{}, 0, dbTable{}, fmt.Errorf("pebble kv: meta record %q: %w: bad membership", key, domain.ErrCorrupt)
	}
	mem, err := domain.DecodeMembership(rest[n : n+int(l)])
	if err != nil {
		return domain.SnapshotMeta{}, 0, dbTable{}, fmt.Errorf("pebble kv: meta record %q: %w", key, err)
	}
	dbs, tail, ok := decodeDBTable(rest[n+int(l):])
	if !ok || len(tail) != 0 {
		return domain.SnapshotMeta{}, 0, dbTable{}, fmt.Errorf("pebble kv: meta record %q: %w: bad database table", key, domain.ErrCorrupt)
	}
	m := domain.SnapshotMeta{
		Index:      domain.Index(binary.BigEndian.Uint64(p[1:])),
		Term:       domain.Term(binary.BigEndian.Uint64(p[9:])),
		Membership: mem,
	}
	return m, binary.BigEndian.Uint64(p[17:]), dbs, nil
}

// load reads the applied point and deletes what an interrupted Restore
// left behind: a restore marker and rows of any generation but the
// current one.
func (kv *KV) load() error {
	d := kv.d
	rec, ok, err := d.get(d.db, keyApplied)
	if err != nil {
		return fmt.Errorf("pebble kv: read applied: %w", err)
	}
	dbs := newDBTable()
	if ok {
		if kv.mu.meta, kv.mu.gen, dbs, err = decodeMeta(keyApplied, rec); err != nil {
			return err
		}
	}
	kv.mu.dbs = &dbs
	b := d.db.NewBatch()
	defer b.Close()
	if _, ok, err := d.get(d.db, keyRestore); err != nil {
		return fmt.Errorf("pebble kv: read restore marker: %w", err)
	} else if ok {
		d.log.Warn().Uint64("applied", uint64(kv.mu.meta.Index)).Msg("discarding the rows of a restore interrupted by a crash")
		_ = b.Delete(keyRestore, nil)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: dataLower, UpperBound: dataUpper})
	if err != nil {
		return fmt.Errorf("pebble kv: %w", classify(err))
	}
	defer it.Close()
	genOf := func(k []byte) uint64 {
		if len(k) < 9 {
			return 0
		}
		return binary.BigEndian.Uint64(k[1:9])
	}
	gen := kv.mu.gen
	if it.First() && genOf(it.Key()) != gen {
		_ = b.DeleteRange(dataLower, dataPrefix(gen), nil)
	}
	if it.Last() && genOf(it.Key()) != gen {
		_ = b.DeleteRange(dataPrefix(gen+1), dataUpper, nil)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebble kv: %w", classify(err))
	}
	if !b.Empty() {
		// Not synced: if this is lost in a crash, the next Open does it again.
		if err := d.commit(b, false); err != nil {
			return fmt.Errorf("pebble kv: clean up stale generations: %w", err)
		}
	}
	// The key filter's scan (0.6 s for a million keys) runs here, before
	// the node serves, rather than in its first Apply.
	return kv.filter.build(d.db, kv.mu.gen, kv.mu.dbs.total())
}

// Apply implements ports.StateMachine. The entries' changes and the new
// applied point go into one indexed Pebble batch (commands read their own
// batch's writes), committed without a sync (the log holds the entries
// durably and Apply is idempotent). If any entry is corrupt, or the first
// new entry does not follow the applied index, nothing is applied.
func (kv *KV) Apply(entries []domain.Entry) (results []domain.Result, err error) {
	err = kv.d.do(&kv.closed, "apply", func() error {
		kv.write.Lock()
		defer kv.write.Unlock()
		results = make([]domain.Result, len(entries))
		meta := kv.mu.meta
		if live := kv.mu.dbs.total(); kv.filter.stale(kv.mu.gen, live) {
			if err := kv.filter.build(kv.d.db, kv.mu.gen, live); err != nil {
				return err
			}
		}
		if kv.chunked.stale(kv.mu.gen) {
			if err := kv.chunked.build(kv.d.db, kv.mu.gen); err != nil {
				return err
			}
		}
		if err := kv.d.drainLarge(entries); err != nil {
			return fmt.Errorf("pebble kv: apply: %w", err)
		}
		b := newApplyBatch(kv.d.db, entries)
		dbs := *kv.mu.dbs // the batch's own copy, published at the commit
		st := &batchStore{kv: kv, r: b, w: b, gen: kv.mu.gen, dbs: &dbs}
		// st.w from here: a large record may move the writes to a batch
		// of their own size (batchStore.room).
		defer func() { st.w.Close() }()
		applied := false
		for k, e := range entries {
			if e.Index <= meta.Index {
				continue
			}
			if e.Index != meta.Index+1 {
				return fmt.Errorf("pebble kv: apply entry %d after %d: entries must be contiguous", e.Index, meta.Index)
			}
			switch e.Type {
			case domain.EntryNormal:
				cmd, err := domain.DecodeCommand(e.Data)
				if err != nil {
					return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
				}
				res, err := kv.engine.Apply(st, uint64(e.Index), cmd)
				if err != nil {
					return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
				}
				results[k] = res
			case domain.EntryBlank:
			case domain.EntryMembership:
				m, err := domain.DecodeMembership(e.Data)
				if err != nil {
					return fmt.Errorf("pebble kv: apply entry %d: %w", e.Index, err)
				}
				meta.Membership = m
			default:
				return fmt.Errorf("pebble kv: apply entry %d: unknown type %s: %w", e.Index, e.Type, domain.ErrCorrupt)
			}
			meta.Index, meta.Term = e.Index, e.Term
			applied = true
		}
		if !applied {
			return nil
		}
		b = st.w
		known := st.known
		if b.Count() != st.puts {
			known = nil // writes not through Put or Delete: see recordCache.commit
		}
		if err := b.Set(keyApplied, encodeMeta(meta, kv.mu.gen, st.dbs), nil); err != nil {
			return fmt.Errorf("pebble kv: apply: %w", classify(err))
		}
		size := len(b.Repr()) + st.deferredBytes()
		var tbl table
		ingest := ingestApply(entries, size, st.moved || len(st.deferred) > 0)
		if ingest {
			t, ok, err := kv.d.batchTable(b, st.deferred)
			if err != nil {
				return fmt.Errorf("pebble kv: apply up to %d: %w", meta.Index, err)
			}
			tbl, ingest = t, ok
			if ok {
				defer kv.d.dropTables([]table{tbl}) // if not ingested
			}
		}
		if !ingest && len(st.deferred) > 0 {
			// Committed as a batch after all: the chunks go in it.
			if err := st.settleAll(); err != nil {
				return fmt.Errorf("pebble kv: apply up to %d: %w", meta.Index, err)
			}
			b = st.w
			size = len(b.Repr())
		}
		kv.mu.Lock()
		defer kv.mu.Unlock()
		var werr error
		if ingest {
			werr = kv.d.ingestTable(tbl)
		} else {
			werr = kv.d.commit(b, false)
		}
		if werr != nil {
			return fmt.Errorf("pebble kv: apply up to %d: %w", meta.Index, werr)
		}
		if !ingest {
			kv.d.releaseLarge(entries, size, st.moved)
		}
		kv.mu.meta = meta
		kv.mu.dbs = st.dbs
		return kv.cache.commit(b, known)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// Applied implements ports.StateMachine.
func (kv *KV) Applied() (m domain.SnapshotMeta, err error) {
	err = kv.d.do(&kv.closed, "applied", func() error {
		kv.mu.RLock()
		defer kv.mu.RUnlock()
		m = kv.mu.meta
		m.Membership = m.Membership.Clone()
		return nil
	})
	return m, err
}

// Get implements ports.KVReader. A stored record failing its checksum is
// an error wrapping domain.ErrCorrupt naming the key. Its one point read
// holds the read lock (an Apply's commit waits for it, and it for one).
func (kv *KV) Get(key []byte) (val []byte, err error) {
	err = kv.d.do(&kv.closed, "get", func() error {
		kv.mu.RLock()
		defer kv.mu.RUnlock()
		st := &batchStore{kv: kv, r: kv.d.db, gen: kv.mu.gen, dbs: kv.mu.dbs}
		r, ok, err := st.Get(0, key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("pebble kv: get %q: %w", key, domain.ErrNotFound)
		}
		val = r.Value
		return nil
	})
	return val, err
}

// View implements ports.KVReader. fn's first point reads run under the
// read lock, straight on the DB (a GET pays for no snapshot, and holds up
// an Apply's commit, never its commands, for one read); its first scan, or
// its maxLockedReads+1st read, takes a Pebble snapshot of the same point
// and lets the lock go, so a long View (KEYS, a large MGET, the reaper's
// scans) holds up no Apply.
func (kv *KV) View(fn func(keyspace.Store) error) error {
	return kv.d.do(&kv.closed, "view", func() error {
		kv.mu.RLock()
		st := &batchStore{kv: kv, r: kv.d.db, gen: kv.mu.gen, dbs: kv.mu.dbs, view: viewLock{locked: true}}
		defer st.endView()
		return fn(st)
	})
}

// maxLockedReads is how many point reads a View makes under the read lock
// before it moves to a snapshot.
const maxLockedReads = 32

// viewLock is a View's hold on the point it reads.
type viewLock struct {
	locked bool // a View's store that holds kv.mu for reading
	reads  int
	snap   *pebble.Snapshot // once the View has moved to a snapshot
}

// beforeRead runs before each read of a View's store (a scan if scan):
// it moves the store to a snapshot if the View has read enough under the
// lock.
func (s *batchStore) beforeRead(scan bool) {
	v := &s.view
	if !v.locked {
		return
	}
	v.reads++
	if !scan && v.reads <= maxLockedReads {
		return
	}
	v.snap = s.kv.d.db.NewSnapshot()
	s.r = v.snap
	v.locked = false
	s.kv.mu.RUnlock()
}

// chunkReader returns the reader a chunked value's chunks are read from.
// A View moves to its snapshot first, as for a scan (the snapshot, taken
// under the lock, shows what the value's head was read from): reading
// hundreds of MB under the lock held up every Apply's commit for as long,
// and with it the Raft loop when it applied a small write itself; a
// 256 MiB GET cost the leader its leadership that way.
func (s *batchStore) chunkReader() reader {
	s.beforeRead(true)
	return s.r
}

// endView releases what the View holds.
func (s *batchStore) endView() {
	if s.view.locked {
		s.view.locked = false
		s.kv.mu.RUnlock()
	}
	if s.view.snap != nil {
		_ = s.view.snap.Close()
	}
}

// Sync implements ports.StateMachine with one WAL sync (shared with the
// log), or none if nothing was written since the last. An error is fatal.
func (kv *KV) Sync() error {
	return kv.d.do(&kv.closed, "kv sync", func() error {
		if err := kv.d.sync(); err != nil {
			return fmt.Errorf("pebble kv: sync: %w", err)
		}
		return nil
	})
}

// Close implements ports.StateMachine. It closes this store only; DB.Close
// closes the DB. Closing twice returns domain.ErrClosed.
func (kv *KV) Close() error {
	if kv.closed.Swap(true) {
		return fmt.Errorf("pebble: close: %w", domain.ErrClosed)
	}
	return nil
}

package memory

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

var (
	_ ports.StateMachine = (*KV)(nil)
	_ ports.KVReader     = (*KV)(nil)
)

// KV is an in-memory ports.StateMachine over maps of byte keys, one per
// database, running commands with a keyspace.Engine, and the
// ports.KVReader of its applied state.
//
// It models durability like a store that writes without syncing: Apply
// changes the state at once, Sync (and Restore) make it durable, and Crash
// rolls back to the last durable point as a whole.
type KV struct {
	engine keyspace.Engine
	mu     struct {
		sync.Mutex
		closed bool
		dbs    map[int]map[string]keyspace.Record
		elems  keyspace.Elems // collections' elements, by instance
		meta   domain.SnapshotMeta
		// undo holds, for each key changed since the last durable point,
		// the record it had then; durableMeta is the applied point then.
		// Keeping an undo record rather than a second copy of the maps
		// makes Sync cost O(keys changed), not O(all keys).
		undo        map[dbKey]undoValue
		elemUndo    map[elemKey]elemUndo
		durableMeta domain.SnapshotMeta
	}
}

type dbKey struct {
	db  int
	key string
}

type undoValue struct {
	rec     keyspace.Record
	present bool
}

type elemKey struct {
	inst uint64
	sub  string
}

type elemUndo struct {
	val     []byte
	present bool
}

// NewKV returns an empty state machine with the zero applied point and
// the default engine settings.
func NewKV() *KV { return NewKVWith(keyspace.Engine{}) }

// NewKVWith returns an empty state machine running commands with e.
func NewKVWith(e keyspace.Engine) *KV {
	k := &KV{engine: e}
	k.mu.dbs = map[int]map[string]keyspace.Record{}
	k.mu.elems = keyspace.Elems{}
	k.mu.undo = map[dbKey]undoValue{}
	k.mu.elemUndo = map[elemKey]elemUndo{}
	return k
}

// decoded is an entry checked and decoded before anything is applied, so
// that a bad batch changes nothing.
type decoded struct {
	entry      domain.Entry
	skip       bool
	cmd        domain.Command
	membership *domain.Membership
}

// Apply implements ports.StateMachine. Entries at or below the applied
// index are ignored (zero Result). An entry past applied+1 is a gap, a
// driver bug, and an error; so is an entry that fails to decode
// (domain.ErrCorrupt). Either error leaves the state unchanged: the whole
// batch is checked before any of it is applied.
func (k *KV) Apply(entries []domain.Entry) ([]domain.Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return nil, fmt.Errorf("memory kv: apply: %w", domain.ErrClosed)
	}
	batch := make([]decoded, len(entries))
	applied := k.mu.meta.Index
	for i, e := range entries {
		batch[i].entry = e
		if e.Index <= applied {
			batch[i].skip = true
			continue
		}
		if e.Index != applied+1 {
			return nil, fmt.Errorf("memory kv: apply: entry %d follows applied index %d: gap", e.Index, applied)
		}
		switch e.Type {
		case domain.EntryNormal:
			cmd, err := domain.DecodeCommand(e.Data)
			if err != nil {
				return nil, fmt.Errorf("memory kv: apply entry %d: %w", e.Index, err)
			}
			batch[i].cmd = cmd
		case domain.EntryBlank:
		case domain.EntryMembership:
			m, err := domain.DecodeMembership(e.Data)
			if err != nil {
				return nil, fmt.Errorf("memory kv: apply entry %d: %w", e.Index, err)
			}
			batch[i].membership = &m
		default:
			return nil, fmt.Errorf("memory kv: apply entry %d: unknown type %s: %w", e.Index, e.Type, domain.ErrCorrupt)
		}
		applied = e.Index
	}

	results := make([]domain.Result, len(entries))
	st := writeStore{k}
	for i, d := range batch {
		if d.skip {
			continue
		}
		if d.entry.Type == domain.EntryNormal {
			res, err := k.engine.Apply(st, uint64(d.entry.Index), d.cmd)
			if err != nil {
				// The maps cannot fail; an error here is an engine bug.
				return nil, fmt.Errorf("memory kv: apply entry %d: %w", d.entry.Index, err)
			}
			results[i] = res
		}
		k.mu.meta.Index, k.mu.meta.Term = d.entry.Index, d.entry.Term
		if d.membership != nil {
			k.mu.meta.Membership = *d.membership
		}
	}
	return results, nil
}

// saveUndo records key's durable value the first time it changes after a
// durable point.
func (k *KV) saveUndo(db int, key string) {
	dk := dbKey{db, key}
	if _, ok := k.mu.undo[dk]; ok {
		return
	}
	r, ok := k.mu.dbs[db][key]
	k.mu.undo[dk] = undoValue{rec: r, present: ok}
}

// Applied implements ports.StateMachine.
func (k *KV) Applied() (domain.SnapshotMeta, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: applied: %w", domain.ErrClosed)
	}
	return cloneMeta(k.mu.meta), nil
}

// Sync implements ports.StateMachine.
func (k *KV) Sync() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: sync: %w", domain.ErrClosed)
	}
	k.markDurable()
	return nil
}

// saveElemUndo is saveUndo for an element.
func (k *KV) saveElemUndo(inst uint64, sub string) {
	ek := elemKey{inst, sub}
	if _, ok := k.mu.elemUndo[ek]; ok {
		return
	}
	v, ok := k.mu.elems[inst][sub]
	k.mu.elemUndo[ek] = elemUndo{val: v, present: ok}
}

func (k *KV) markDurable() {
	if len(k.mu.undo) > 0 {
		k.mu.undo = map[dbKey]undoValue{}
	}
	if len(k.mu.elemUndo) > 0 {
		k.mu.elemUndo = map[elemKey]elemUndo{}
	}
	k.mu.durableMeta = cloneMeta(k.mu.meta)
}

// Crash simulates a crash and a restart: the state rolls back to the last
// Sync or Restore, as a whole. It also reopens a closed KV.
func (k *KV) Crash() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mu.closed = false
	for dk, u := range k.mu.undo {
		if u.present {
			k.db(dk.db)[dk.key] = u.rec
		} else {
			delete(k.mu.dbs[dk.db], dk.key)
		}
	}
	for ek, u := range k.mu.elemUndo {
		if u.present {
			k.mu.elems.Put(ek.inst, []byte(ek.sub), u.val)
		} else {
			k.mu.elems.Delete(ek.inst, []byte(ek.sub))
		}
	}
	k.mu.meta = cloneMeta(k.mu.durableMeta)
	k.mu.undo = map[dbKey]undoValue{}
	k.mu.elemUndo = map[elemKey]elemUndo{}
}

// Close implements ports.StateMachine. It does not sync.
func (k *KV) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: close: %w", domain.ErrClosed)
	}
	k.mu.closed = true
	return nil
}

// Get implements ports.KVReader. The value returned is the caller's.
func (k *KV) Get(key []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return nil, fmt.Errorf("memory kv: get %q: %w", key, domain.ErrClosed)
	}
	r, ok := k.mu.dbs[0][string(key)]
	if !ok {
		return nil, fmt.Errorf("memory kv: get %q: %w", key, domain.ErrNotFound)
	}
	return bytes.Clone(r.Value), nil
}

// View implements ports.KVReader.
func (k *KV) View(fn func(keyspace.Store) error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: view: %w", domain.ErrClosed)
	}
	return fn(readStore{k})
}

// Len returns the number of keys in every client database (tombstones
// and the engine's own state not counted).
func (k *KV) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for db, m := range k.mu.dbs {
		if db < keyspace.ShadowBase {
			n += len(m)
		}
	}
	return n
}

// db returns database n's map, creating it.
func (k *KV) db(n int) map[string]keyspace.Record {
	m := k.mu.dbs[n]
	if m == nil {
		m = map[string]keyspace.Record{}
		k.mu.dbs[n] = m
	}
	return m
}

// sortedDBs returns the numbers of the non-empty databases, ascending.
func (k *KV) sortedDBs() []int {
	var out []int
	for db, m := range k.mu.dbs {
		if len(m) > 0 {
			out = append(out, db)
		}
	}
	slices.Sort(out)
	return out
}

// Digest returns a hash of every database, key and record and of the
// applied index, for tests that compare replicas: two KVs that applied the
// same entries have the same Digest. It does not depend on map order.
func (k *KV) Digest() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	h := fnv.New64a()
	var buf []byte
	buf = binary.BigEndian.AppendUint64(buf, uint64(k.mu.meta.Index))
	for _, db := range k.sortedDBs() {
		m := k.mu.dbs[db]
		for _, key := range slices.Sorted(maps.Keys(m)) {
			buf = binary.AppendUvarint(buf, uint64(db))
			buf = binary.AppendUvarint(buf, uint64(len(key)))
			buf = append(buf, key...)
			rec := keyspace.EncodeRecord(m[key])
			buf = binary.AppendUvarint(buf, uint64(len(rec)))
			buf = append(buf, rec...)
			buf = appendElems(buf, k.mu.elems[m[key].Inst])
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum64()
}

// The snapshot image:
//
//	magic "SKV2"
//	uvarint index, uvarint term, uvarint len + EncodeMembership bytes
//	uvarint key count
//	per key, in ascending (database, key) order: uvarint database,
//	  uvarint len + key, uvarint len + keyspace.EncodeRecord bytes,
//	  uvarint element count, and per element of the key's instance (none
//	  for a string) in ascending sub-key order: uvarint len + sub-key,
//	  uvarint len + value
//	crc32c (Castagnoli) of everything above, 4 bytes big-endian
//
// Sorted keys make the image a function of the state alone, so two
// replicas at the same point write identical images.
const snapshotMagic = "SKV3"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type imageRow struct {
	db    int
	key   string
	rec   keyspace.Record
	elems []byte // appendElems of the key's elements
}

// appendElems appends a count and the pairs of m in sub-key order.
func appendElems(b []byte, m map[string][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	for _, sub := range slices.Sorted(maps.Keys(m)) {
		b = binary.AppendUvarint(b, uint64(len(sub)))
		b = append(b, sub...)
		b = binary.AppendUvarint(b, uint64(len(m[sub])))
		b = append(b, m[sub]...)
	}
	return b
}

// Snapshot implements ports.StateMachine. It copies the state's shape under
// the lock and writes without it, so Apply may run meanwhile: stored
// records are never modified in place, only replaced.
func (k *KV) Snapshot(w io.Writer) (domain.SnapshotMeta, error) {
	k.mu.Lock()
	if k.mu.closed {
		k.mu.Unlock()
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot: %w", domain.ErrClosed)
	}
	meta := cloneMeta(k.mu.meta)
	var rows []imageRow
	for _, db := range k.sortedDBs() {
		m := k.mu.dbs[db]
		for _, key := range slices.Sorted(maps.Keys(m)) {
			// Elements change in place: they are copied now.
			rows = append(rows, imageRow{db, key, m[key], appendElems(nil, k.mu.elems[m[key].Inst])})
		}
	}
	k.mu.Unlock()

	crc := crc32.New(castagnoli)
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	var buf []byte
	buf = append(buf, snapshotMagic...)
	buf = binary.AppendUvarint(buf, uint64(meta.Index))
	buf = binary.AppendUvarint(buf, uint64(meta.Term))
	mb := domain.EncodeMembership(meta.Membership)
	buf = binary.AppendUvarint(buf, uint64(len(mb)))
	buf = append(buf, mb...)
	buf = binary.AppendUvarint(buf, uint64(len(rows)))
	bw.Write(buf)
	for _, r := range rows {
		buf = binary.AppendUvarint(buf[:0], uint64(r.db))
		buf = binary.AppendUvarint(buf, uint64(len(r.key)))
		buf = append(buf, r.key...)
		rec := keyspace.EncodeRecord(r.rec)
		buf = binary.AppendUvarint(buf, uint64(len(rec)))
		buf = append(buf, rec...)
		buf = append(buf, r.elems...)
		bw.Write(buf)
	}
	// bufio.Writer remembers the first write error and returns it here.
	if err := bw.Flush(); err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot at %d: %w", meta.Index, err)
	}
	if _, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return domain.SnapshotMeta{}, fmt.Errorf("memory kv: snapshot at %d: %w", meta.Index, err)
	}
	return meta, nil
}

// Restore implements ports.StateMachine. The image is checked whole
// (checksum, structure, sorted keys, metadata equal to meta) before it
// replaces anything, so a bad image returns domain.ErrCorrupt and leaves
// the state as it was. A restored state is durable.
func (k *KV) Restore(meta domain.SnapshotMeta, r io.Reader) error {
	k.mu.Lock()
	closed := k.mu.closed
	k.mu.Unlock()
	if closed {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, domain.ErrClosed)
	}
	image, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("memory kv: restore at %d: read: %w", meta.Index, err)
	}
	dbs, elems, got, err := decodeImage(image)
	if err != nil {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, err)
	}
	if !metaEqual(got, meta) {
		return fmt.Errorf("memory kv: restore: %w: image is at index %d term %d membership %v, want index %d term %d membership %v",
			domain.ErrCorrupt, got.Index, got.Term, got.Membership, meta.Index, meta.Term, meta.Membership)
	}

	k.mu.Lock()
	defer k.mu.Unlock()
	if k.mu.closed {
		return fmt.Errorf("memory kv: restore at %d: %w", meta.Index, domain.ErrClosed)
	}
	k.mu.dbs = dbs
	k.mu.elems = elems
	k.mu.meta = got
	k.markDurable()
	return nil
}

// decodeImage parses and checks a snapshot image. Every failure wraps
// domain.ErrCorrupt.
func decodeImage(b []byte) (map[int]map[string]keyspace.Record, keyspace.Elems, domain.SnapshotMeta, error) {
	fail := func(format string, args ...any) (map[int]map[string]keyspace.Record, keyspace.Elems, domain.SnapshotMeta, error) {
		return nil, nil, domain.SnapshotMeta{}, fmt.Errorf("%w: snapshot image: %s", domain.ErrCorrupt, fmt.Sprintf(format, args...))
	}
	if len(b) < len(snapshotMagic)+4 {
		return fail("%d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return fail("checksum %08x, want %08x", got, sum)
	}
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return fail("bad magic %q", body[:len(snapshotMagic)])
	}
	body = body[len(snapshotMagic):]
	var bad bool
	uvarint := func() uint64 {
		v, n := binary.Uvarint(body)
		if n <= 0 {
			bad = true
			return 0
		}
		body = body[n:]
		return v
	}
	readBytes := func(limit uint64) []byte {
		l := uvarint()
		if bad || l > limit || l > uint64(len(body)) {
			bad = true
			return nil
		}
		out := body[:l]
		body = body[l:]
		return out
	}
	var meta domain.SnapshotMeta
	meta.Index = domain.Index(uvarint())
	meta.Term = domain.Term(uvarint())
	mb := readBytes(uint64(len(body)))
	if bad {
		return fail("bad header")
	}
	m, err := domain.DecodeMembership(mb)
	if err != nil {
		return nil, nil, domain.SnapshotMeta{}, fmt.Errorf("snapshot image: %w", err)
	}
	meta.Membership = m
	count := uvarint()
	// Each key takes at least three bytes (a database and two lengths).
	if bad || count > uint64(len(body))/3 {
		return fail("bad key count")
	}
	dbs := map[int]map[string]keyspace.Record{}
	elems := keyspace.Elems{}
	prevDB, prev := -1, []byte(nil)
	for i := uint64(0); i < count; i++ {
		db := uvarint()
		key := readBytes(domain.MaxKeySize)
		raw := readBytes(domain.MaxValueSize + 64)
		if bad || db >= domain.MaxDatabases {
			return fail("bad key %d of %d", i, count)
		}
		if int(db) < prevDB || (int(db) == prevDB && bytes.Compare(prev, key) >= 0) {
			return fail("key %d out of order", i)
		}
		rec, err := keyspace.DecodeRecord(raw)
		if err != nil {
			return nil, nil, domain.SnapshotMeta{}, fmt.Errorf("snapshot image: key %d: %w", i, err)
		}
		n := uvarint()
		if bad || n > uint64(len(body))/2 || (n > 0) != (rec.Inst != 0 && rec.Count > 0) || elems[rec.Inst] != nil {
			return fail("bad elements of key %d", i)
		}
		var prevSub []byte
		for j := uint64(0); j < n; j++ {
			sub := readBytes(domain.MaxValueSize + 16)
			val := readBytes(domain.MaxValueSize)
			if bad || (j > 0 && bytes.Compare(prevSub, sub) >= 0) {
				return fail("bad element %d of key %d", j, i)
			}
			prevSub = sub
			elems.Put(rec.Inst, sub, val)
		}
		rec.Value = bytes.Clone(rec.Value)
		prevDB, prev = int(db), key
		if dbs[int(db)] == nil {
			dbs[int(db)] = map[string]keyspace.Record{}
		}
		dbs[int(db)][string(key)] = rec
	}
	if len(body) != 0 {
		return fail("%d trailing bytes", len(body))
	}
	return dbs, elems, meta, nil
}

func metaEqual(a, b domain.SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term &&
		slices.Equal(a.Membership.Voters, b.Membership.Voters) &&
		slices.Equal(a.Membership.Learners, b.Membership.Learners)
}

func cloneMeta(m domain.SnapshotMeta) domain.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}

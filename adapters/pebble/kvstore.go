package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// batchStore is a keyspace.Store over Pebble: inside Apply it reads and
// writes an indexed batch (w set), for View it reads one point of the DB
// (w nil: every change fails). dbs is the database table: in Apply the
// batch's own copy, which Apply stores with the batch and publishes; in a
// View the published one, which nothing changes.
type batchStore struct {
	kv  *KV
	r   reader
	w   *pebble.Batch
	gen uint64
	dbs *dbTable
	// known caches, within one Apply, what Get found or Put and Delete
	// left at a key (its record, nil if absent): the engine reads a key
	// before it writes it, and Put and Delete need the old record for the
	// counts, so most writes then cost no second read.
	known map[string]cachedRecord
	// view is a View's hold on the point it reads (see KV.View), unused
	// elsewhere.
	view viewLock
	// puts counts the batch writes made by Put and Delete: if the batch
	// holds others, known may not say what a key holds, and the record
	// cache, which mirrors the committed state, is not read (see cacheOK).
	puts uint32
	// keyBuf holds the stored key of the string paths' last Get, Put or
	// Delete: Pebble copies what it keeps, so one buffer serves them all.
	keyBuf []byte
	elem   elemScratch // see elements.go
	// moved says that room moved the writes to a batch of their own size
	// for a large record.
	moved bool
	// deferred holds the values of ingestBytes or more that Put wrote the
	// heads of, not the chunks (see deferredValue).
	deferred []deferredValue
}

// deferredValue is a large value whose chunks Put left out of the batch:
// if the apply is ingested, they go from the value (which aliases the
// entry being applied) straight into the table, and the batch never holds
// a copy (see batchTable). Nothing in the batch writes or reads the
// chunks after they are deferred: a write that would (WriteAt, FlushDB)
// first settles them into the batch, and one that replaces them all (Put,
// Delete) drops them; reads of the value are answered from known, which
// holds it whole (SwapDB moves no stored key, so neither). So a deferred
// chunk overrides whatever the batch wrote to its key before.
type deferredValue struct {
	k     []byte // the record's stored key
	seed  uint32
	value []byte
}

// deferValue reports whether Put defers the chunks of a value of n bytes
// at the stored key k.
func deferValue(k []byte, n int) bool { return n >= ingestBytes && chunkedRecord(k, n) }

// deferredAt returns the index of k's deferred value, or -1.
func (s *batchStore) deferredAt(k []byte) int {
	if len(s.deferred) == 0 { // every Put and Delete asks
		return -1
	}
	return slices.IndexFunc(s.deferred, func(d deferredValue) bool { return bytes.Equal(d.k, k) })
}

// dropDeferred forgets k's deferred value, if any: the caller replaces
// or deletes every one of its chunks.
func (s *batchStore) dropDeferred(k []byte) {
	if i := s.deferredAt(k); i >= 0 {
		s.deferred = slices.Delete(s.deferred, i, i+1)
	}
}

// settle writes k's deferred chunks, if any, into the batch.
func (s *batchStore) settle(k []byte) error {
	i := s.deferredAt(k)
	if i < 0 {
		return nil
	}
	d := s.deferred[i]
	s.deferred = slices.Delete(s.deferred, i, i+1)
	if err := s.room(len(d.value)); err != nil {
		return err
	}
	n, err := putChunks(s.w, chunkBase(d.k), d.seed, d.value)
	s.puts += uint32(n)
	return classify(err)
}

// settleAll writes every deferred chunk into the batch.
func (s *batchStore) settleAll() error {
	for len(s.deferred) > 0 {
		if err := s.settle(s.deferred[0].k); err != nil {
			return err
		}
	}
	return nil
}

// deferredBytes is what the deferred values hold.
func (s *batchStore) deferredBytes() int {
	n := 0
	for _, d := range s.deferred {
		n += len(d.value)
	}
	return n
}

// room makes sure that a value of n bytes (a record's, an element's, or
// the chunks a WriteAt changes) fits in the batch without growing it.
// Pebble grows a batch by doubling it and copying it over in one move,
// which the Go scheduler cannot preempt: a command that makes a large
// value from a stored one (APPEND, SETRANGE, SETBIT, COPY, RENAME, LSET,
// LMOVE) carries none of it in its entry, so its batch, sized for the
// entry (newApplyBatch), grew by doubling to twice the value and copied
// up to the value's size at once. A SETRANGE of 2 bytes into a
// 512 MiB value took 10.9 s, raised every node's peak RSS by 2 GB and cost
// the leader its leadership. Short of room, the batch's writes move to a
// batch sized for them and the value (one copy of what is written so
// far, small next to the value).
func (s *batchStore) room(n int) error {
	if n < sizedBatchBytes {
		return nil
	}
	need := n + chunkCount(n)*chunkSlack + batchSlack
	repr := s.w.Repr()
	if cap(repr)-len(repr) >= need {
		return nil
	}
	nb := s.kv.d.db.NewIndexedBatchWithSize(len(repr) + need)
	_ = nb.LogData(nil, nil) // as in newApplyBatch: the buffer in place
	if err := nb.Apply(s.w, nil); err != nil {
		nb.Close()
		return classify(err)
	}
	s.w.Close()
	s.w, s.r, s.moved = nb, nb, true
	return nil
}

var _ keyspace.Store = (*batchStore)(nil)

var errReadOnlyView = errors.New("pebble kv: write through a read-only view")

func (s *batchStore) key(db int, key []byte) ([]byte, error) {
	if db < 0 || db >= domain.MaxDatabases {
		return nil, fmt.Errorf("pebble kv: database %d out of range", db)
	}
	return dataKey(s.gen, s.dbs.slot[db], key), nil
}

// tempKey is key's stored form in s.keyBuf, valid until the next call.
func (s *batchStore) tempKey(db int, key []byte) ([]byte, error) {
	if db < 0 || db >= domain.MaxDatabases {
		return nil, fmt.Errorf("pebble kv: database %d out of range", db)
	}
	if cap(s.keyBuf) < dataKeyLen+len(key) {
		s.keyBuf = make([]byte, 0, dataKeyLen+max(len(key), 64))
	}
	k := append(s.keyBuf[:0], prefixData)
	k = binary.BigEndian.AppendUint64(k, s.gen)
	k = binary.BigEndian.AppendUint32(k, s.dbs.slot[db])
	k = binary.BigEndian.AppendUint64(k, keyspace.Hash(key))
	s.keyBuf = append(k, key...)
	return s.keyBuf, nil
}

// Get implements keyspace.Store; the record is the caller's.
func (s *batchStore) Get(db int, key []byte) (keyspace.Record, bool, error) {
	k, err := s.tempKey(db, key)
	if err != nil {
		return keyspace.Record{}, false, err
	}
	e, err := s.lookup(k, true)
	return e.r, e.ok, err
}

// Stat implements keyspace.Store: a chunked value's head is read, not its
// chunks.
func (s *batchStore) Stat(db int, key []byte) (keyspace.Record, int, bool, error) {
	k, err := s.tempKey(db, key)
	if err != nil {
		return keyspace.Record{}, 0, false, err
	}
	e, err := s.lookup(k, false)
	r := e.r
	r.Value = nil
	return r, e.size(), e.ok, err
}

// lookup returns what the stored key k holds: with whole, its record
// with its value; without, a chunked value may be left unread (partial).
// It looks in known first, then in the record cache, then in Pebble.
func (s *batchStore) lookup(k []byte, whole bool) (cachedRecord, error) {
	if s.known != nil { // a View has none: no hashing of the key for it
		if e, ok := s.known[string(k)]; ok {
			if whole && e.partial {
				// The head is known, the chunks are in the batch or the DB.
				return s.read(k, true)
			}
			return e, nil
		}
	}
	if s.w != nil && s.kv.filter.absent(s.gen, k) {
		// A new key: no read (see keyFilter).
		s.remember(k, cachedRecord{})
		return cachedRecord{}, nil
	}
	s.beforeRead(false)
	if s.cacheOK() {
		// Not a chunked value's: the cache does not keep its head, which
		// WriteAt needs.
		if e, known := s.kv.cache.get(k); known && !chunkedRecord(k, len(e.r.Value)) {
			s.remember(k, e)
			return e, nil
		}
	}
	return s.read(k, whole)
}

// read reads the record at the stored key k from Pebble, as lookup.
func (s *batchStore) read(k []byte, whole bool) (cachedRecord, error) {
	rec, ok, err := s.kv.d.get(s.r, k)
	if err != nil || !ok {
		if err == nil {
			s.remember(k, cachedRecord{})
		}
		return cachedRecord{}, err
	}
	e, err := openRecord(s.chunkReader, k, rec, whole)
	if err != nil {
		return cachedRecord{}, err
	}
	s.remember(k, e)
	return e, nil
}

// cacheOK reports whether the record cache holds what this store would
// read from Pebble for a key known does not hold: in Apply, while every
// write of the batch went through Put or Delete (so known has them all);
// in a View, while it reads under the lock (the cache changes only under
// the write lock, with the commit).
func (s *batchStore) cacheOK() bool {
	if s.w != nil {
		return s.w.Count() == s.puts
	}
	return s.view.locked
}

// remember caches e (e.ok false: absent) at the stored key k, in a write
// batch. e.r.Value is kept as it is: it is a copy Get made, or what the
// engine put (which aliases the entry being applied), both valid for the
// whole Apply this store lives in, and never changed in place by the
// engine.
func (s *batchStore) remember(k []byte, e cachedRecord) {
	if s.w == nil {
		return
	}
	if s.known == nil {
		s.known = map[string]cachedRecord{}
	}
	s.known[string(k)] = e
}

// putRecord sets seal(k, keyspace.AppendRecord(nil, r)) under k in b,
// encoding it in the batch itself: a large value is copied once, not
// twice. A value of more than chunkSize bytes is stored in chunks (see
// chunkedRecord), its id r's version, and the head says so. It returns
// how many pairs it set and what the head says.
func putRecord(b *pebble.Batch, k []byte, r keyspace.Record) (int, *chunkHead, error) {
	var hb [4 + 3 + 8*binary.MaxVarintLen64]byte
	value := r.Value
	r.Value = nil
	if chunkedRecord(k, len(value)) {
		h, err := putRecordHead(b, k, r, len(value))
		if err != nil {
			return 0, h, err
		}
		n, err := putChunks(b, chunkBase(k), h.seed, value)
		return 1 + n, h, err
	}
	head := keyspace.AppendRecord(hb[:0], r)
	op := b.SetDeferred(len(k), 4+len(head)+len(value))
	copy(op.Key, k)
	copy(op.Value[4:], head)
	crc := crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, head)
	binary.LittleEndian.PutUint32(op.Value, copyCRC(crc, op.Value[4+len(head):], value))
	return 1, nil, op.Finish()
}

// putRecordHead writes under k the head of a new chunked record r whose
// value has n bytes, and returns it; the chunks are the caller's to write
// (putRecord) or to defer (batchStore.Put).
func putRecordHead(b *pebble.Batch, k []byte, r keyspace.Record, n int) (*chunkHead, error) {
	h := &chunkHead{n: n, id: r.Version, seed: idSeed(r.Version), patchable: true}
	return h, putChunkedHead(b, k, r, *h)
}

// putChunkedHead writes under k the head of a chunked record r (r.Value
// left out) whose value h describes (recordPatchable's form).
func putChunkedHead(b *pebble.Batch, k []byte, r keyspace.Record, h chunkHead) error {
	var hb [4 + 3 + 10*binary.MaxVarintLen64]byte
	r.Value = nil
	p := append(hb[:0], 0, 0, 0, 0, recordPatchable)
	p = binary.AppendUvarint(p, uint64(h.n))
	p = binary.AppendUvarint(p, h.id)
	p = keyspace.AppendRecord(p, r)
	crc := crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, p[4:])
	binary.LittleEndian.PutUint32(p, crc)
	return b.Set(k, p, nil)
}

// openRecord checks and decodes the record stored under k as rec, reading
// a chunked record's value from chunks() if whole (else the value is left
// out and the result is partial); an inline value aliases rec.
func openRecord(chunks func() reader, k, rec []byte, whole bool) (cachedRecord, error) {
	p, good := unseal(k, rec)
	if !good {
		return cachedRecord{}, fmt.Errorf("pebble kv: key %q: %w: checksum mismatch", k[dataKeyLen:], domain.ErrCorrupt)
	}
	h, head, err := chunkedHead(k, p, binary.LittleEndian.Uint32(rec))
	if err != nil {
		return cachedRecord{}, err
	}
	if head != nil {
		p = head
	}
	out, err := keyspace.DecodeRecord(p)
	if err != nil {
		return cachedRecord{}, fmt.Errorf("pebble kv: key %q: %w", k[dataKeyLen:], err)
	}
	if head == nil {
		return cachedRecord{r: out, ok: true}, nil
	}
	if len(out.Value) != 0 {
		return cachedRecord{}, fmt.Errorf("pebble kv: key %q: %w: chunked head holds a value", k[dataKeyLen:], domain.ErrCorrupt)
	}
	e := cachedRecord{r: out, ok: true, head: &h, partial: true}
	if whole {
		e.r.Value, e.partial = make([]byte, h.n), false
		if err := readChunks(chunks(), chunkBase(k), h.seed, e.r.Value, fmt.Sprintf("pebble kv: key %q", k[dataKeyLen:])); err != nil {
			return cachedRecord{}, err
		}
	}
	return e, nil
}

// dropChunks deletes chunks [from, to) of the chunked record at k, and
// returns how many deletions it wrote.
func dropChunks(b *pebble.Batch, k []byte, from, to int) (int, error) {
	if from >= to {
		return 0, nil
	}
	if err := deleteChunks(b, chunkBase(k), from, to); err != nil {
		return 0, err
	}
	return to - from, nil
}

// recordChunks is how many chunks the record at k holding a value of n
// bytes has: 0 if it is stored whole.
func recordChunks(k []byte, n int) int {
	if !chunkedRecord(k, n) {
		return 0
	}
	return chunkCount(n)
}

// forWrite returns key's stored form in db (s.keyBuf) and what it holds,
// its value left out if chunked, for a write.
func (s *batchStore) forWrite(db int, key []byte) ([]byte, cachedRecord, error) {
	if s.w == nil {
		return nil, cachedRecord{}, errReadOnlyView
	}
	k, err := s.tempKey(db, key)
	if err != nil {
		return nil, cachedRecord{}, err
	}
	old, err := s.lookup(k, false)
	return k, old, err
}

// Put implements keyspace.Store.
func (s *batchStore) Put(db int, key []byte, r keyspace.Record) error {
	k, old, err := s.forWrite(db, key)
	if err != nil {
		return err
	}
	s.dropDeferred(k) // every chunk is overwritten or dropped below
	var h *chunkHead
	if deferValue(k, len(r.Value)) {
		if h, err = putRecordHead(s.w, k, r, len(r.Value)); err != nil {
			return classify(err)
		}
		s.puts++
		s.deferred = append(s.deferred, deferredValue{k: bytes.Clone(k), seed: h.seed, value: r.Value})
	} else {
		if err := s.room(len(r.Value)); err != nil {
			return err
		}
		var n int
		n, h, err = putRecord(s.w, k, r)
		s.puts += uint32(n)
		if err != nil {
			return classify(err)
		}
	}
	if old.ok {
		// The old value's chunks past the new value's: the new ones
		// overwrite the rest.
		n, err := dropChunks(s.w, k, recordChunks(k, len(r.Value)), recordChunks(k, old.size()))
		s.puts += uint32(n)
		if err != nil {
			return classify(err)
		}
	}
	s.remember(k, cachedRecord{r: r, ok: true, head: h})
	s.count(db, k, old, r)
	return nil
}

// count updates db's counts for the record r written at the stored key k
// over old.
func (s *batchStore) count(db int, k []byte, old cachedRecord, r keyspace.Record) {
	if !old.ok {
		s.kv.filter.add(s.gen, k)
		s.dbs.keys[db]++
	} else if old.r.ExpireAt != 0 {
		s.dbs.expires[db]--
	}
	if r.ExpireAt != 0 {
		s.dbs.expires[db]++
	}
}

// Delete implements keyspace.Store.
func (s *batchStore) Delete(db int, key []byte) error {
	k, old, err := s.forWrite(db, key)
	if err != nil || !old.ok {
		return err
	}
	s.dropDeferred(k) // every chunk is dropped below
	if err := s.w.Delete(k, nil); err != nil {
		return classify(err)
	}
	s.puts++
	n, err := dropChunks(s.w, k, 0, recordChunks(k, old.size()))
	s.puts += uint32(n)
	if err != nil {
		return classify(err)
	}
	s.remember(k, cachedRecord{})
	s.dbs.keys[db]--
	if old.r.ExpireAt != 0 {
		s.dbs.expires[db]--
	}
	return nil
}

// Scan implements keyspace.Store.
func (s *batchStore) Scan(db int, from uint64, fn func([]byte, keyspace.Record) bool) error {
	if db < 0 || db >= domain.MaxDatabases {
		return fmt.Errorf("pebble kv: database %d out of range", db)
	}
	slot := s.dbs.slot[db]
	s.beforeRead(true)
	lower := binary.BigEndian.AppendUint64(slotPrefix(s.gen, slot), from)
	it, err := s.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: slotPrefix(s.gen, slot+1)})
	if err != nil {
		return classify(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		v, err := it.ValueAndErr()
		if err != nil {
			return classify(err)
		}
		e, err := openRecord(s.chunkReader, k, v, false)
		if err != nil {
			return err
		}
		e.r.Value = nil
		if !fn(k[dataKeyLen:], e.r) {
			break
		}
	}
	return classify(it.Error())
}

// FlushDB implements keyspace.Store: db moves to a fresh, empty slot and
// the old one is range-deleted.
func (s *batchStore) FlushDB(db int) error {
	if s.w == nil {
		return errReadOnlyView
	}
	if db < 0 || db >= domain.MaxDatabases {
		return fmt.Errorf("pebble kv: database %d out of range", db)
	}
	// The range deletions below must take them (see deferredValue).
	if err := s.settleAll(); err != nil {
		return err
	}
	old := s.dbs.slot[db]
	if err := s.w.DeleteRange(slotPrefix(s.gen, old), slotPrefix(s.gen, old+1), nil); err != nil {
		return classify(err)
	}
	if err := s.dropElemSlot(old); err != nil {
		return err
	}
	lo, hi := slotPrefix(s.gen, old|chunkSlotBit), slotPrefix(s.gen, (old+1)|chunkSlotBit)
	if err := s.w.DeleteRange(lo, hi, nil); err != nil {
		return classify(err)
	}
	// Cached keys are by slot, and db's next slot is new: nothing cached
	// can be wrong, but drop it all rather than reason about it. That is
	// safe only because the range deletions turn cacheOK off for the rest
	// of the batch: the keys known forgets are read from the batch, not
	// from the record cache (see SwapDB).
	s.known = nil
	s.dbs.slot[db] = s.dbs.nextSlot
	s.dbs.nextSlot++
	s.dbs.keys[db], s.dbs.expires[db] = 0, 0
	return nil
}

// SwapDB implements keyspace.Store.
func (s *batchStore) SwapDB(a, b int) error {
	if s.w == nil {
		return errReadOnlyView
	}
	if a < 0 || b < 0 || a >= domain.MaxDatabases || b >= domain.MaxDatabases {
		return fmt.Errorf("pebble kv: database %d or %d out of range", a, b)
	}
	// No record moves: a's records stay at their stored keys, whose slot
	// now belongs to b. So known, which is by stored key, stays right and
	// is kept, as are the deferred values. It must be: cacheOK would still
	// let a read of a key this batch wrote find the record committed
	// before it in the record cache, and SWAPDB then touches the watched
	// keys it changes by rewriting what it reads, undoing the batch's write.
	t := s.dbs
	t.slot[a], t.slot[b] = t.slot[b], t.slot[a]
	t.keys[a], t.keys[b] = t.keys[b], t.keys[a]
	t.expires[a], t.expires[b] = t.expires[b], t.expires[a]
	return nil
}

// Len implements keyspace.Store.
func (s *batchStore) Len(db int) (int64, int64, error) {
	if db < 0 || db >= domain.MaxDatabases {
		return 0, 0, fmt.Errorf("pebble kv: database %d out of range", db)
	}
	return s.dbs.keys[db], s.dbs.expires[db], nil
}

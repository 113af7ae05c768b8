package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
)

// Collections' elements live in the database's element slot: the same
// slot number as its keys with the top bit set, under the same data
// generation, so that
//
//	element key = prefixData | generation | slot|elemSlotBit | instance | sub-key
//
// FLUSHDB range-deletes it with the keys' slot, SWAPDB moves it with the
// slot, a restore's generation switch replaces it, and a database's keys
// (below elemSlotBit) never iterate into it. Each value is sealed with a
// CRC over its key, as a record is.
const elemSlotBit = 1 << 31

// elemPointDeletes is the largest collection whose elements DropElems
// deletes one by one; a larger one is one range deletion, whatever its
// size (a few range tombstones are cheaper to read past than many point
// deletes are to write, and a huge collection's would be unbounded).
const elemPointDeletes = 16

func elemPrefix(gen uint64, slot uint32, inst uint64) []byte {
	k := slotPrefix(gen, slot|elemSlotBit)
	return binary.BigEndian.AppendUint64(k, inst)
}

// elemPrefixLen is the length of an element key before its sub-key.
const elemPrefixLen = 21

func (s *batchStore) elemKey(db int, inst uint64, sub []byte) ([]byte, error) {
	if db < 0 || db >= domain.MaxDatabases {
		return nil, fmt.Errorf("pebble kv: database %d out of range", db)
	}
	return append(elemPrefix(s.gen, s.dbs.slot[db], inst), sub...), nil
}

// elemScratch holds a buffer a batchStore reuses for element keys: Pebble
// copies keys into the batch, and a read uses the key only during the
// call, so one element write or read allocates nothing for it.
type elemScratch struct{ key []byte }

// scratchKey is elemKey built in the scratch buffer, valid until the
// next element call.
func (s *batchStore) scratchKey(db int, inst uint64, sub []byte) ([]byte, error) {
	if db < 0 || db >= domain.MaxDatabases {
		return nil, fmt.Errorf("pebble kv: database %d out of range", db)
	}
	k := append(s.elem.key[:0], prefixData)
	k = binary.BigEndian.AppendUint64(k, s.gen)
	k = binary.BigEndian.AppendUint32(k, s.dbs.slot[db]|elemSlotBit)
	k = binary.BigEndian.AppendUint64(k, inst)
	s.elem.key = append(k, sub...)
	return s.elem.key, nil
}

// Chunked elements. An element's value of more than chunkSize bytes (a
// hash field's value, a list element) is stored as records' are (see
// "Chunked values" in large.go): a head under the element's key giving
// the value's length, and chunk pairs written by putChunks in the same
// batch. The chunks live in the element chunk slot, both top bits of the
// slot set, keyed by instance, sub-key length and sub-key:
//
//	chunk base = prefixData | generation | slot|elemSlotBit|chunkSlotBit
//	             | instance (8) | sub-key length (4 bytes, big endian) | sub-key
//
// so that no scan of an instance's elements (nor of keys) meets them,
// FLUSHDB and DropElems range-delete them beside the elements' own range,
// SWAPDB moves them with the slot, and a restore's generation switch
// replaces them. A set's or sorted set's member is a sub-key, not a
// value: it is stored whole, as a key of any size is.
//
// An inline value's bytes are arbitrary, so no tag can tell a head from
// one: a head's CRC is instead the sealed CRC (of the key and the head's
// payload, the value's length as a uvarint) XORed with elemChunkMark. An
// inline value never passes the head's check, nor a head the inline one,
// and values stored before chunks existed read as before.
const elemChunkMark = 0x6b6e6863 // "chnk"

// An element key has a record key's shape, a 21-byte prefix then the
// sub-key where a record has its user key, so chunkedRecord and chunkBase
// serve elements as they are: a long sub-key keeps its value whole, as a
// long user key does (every chunk key repeats it), and chunkBase adds
// chunkSlotBit to a slot that already has elemSlotBit. This line stops
// the build if the two prefixes ever differ.
var _ = [1]struct{}{}[dataKeyLen-elemPrefixLen]

// elemName names the element at the stored key k in errors.
func elemName(k []byte) string {
	return fmt.Sprintf("element %q of instance %d", k[elemPrefixLen:], binary.BigEndian.Uint64(k[13:elemPrefixLen]))
}

// elemHead checks the stored value rec of the element at k: an inline
// value is returned (aliasing rec); a chunked one's length is returned as
// n. Anything else is domain.ErrCorrupt.
func elemHead(k, rec []byte) (inline []byte, n int, err error) {
	if p, good := unseal(k, rec); good {
		return p, 0, nil
	}
	if len(rec) < 4 {
		return nil, 0, fmt.Errorf("pebble kv: %s: %w: checksum mismatch", elemName(k), domain.ErrCorrupt)
	}
	p := rec[4:]
	crc := crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, p) ^ elemChunkMark
	if binary.LittleEndian.Uint32(rec) != crc {
		return nil, 0, fmt.Errorf("pebble kv: %s: %w: checksum mismatch", elemName(k), domain.ErrCorrupt)
	}
	v, m := binary.Uvarint(p)
	if m != len(p) || v <= chunkSize || v > 1<<40 {
		return nil, 0, fmt.Errorf("pebble kv: %s: %w: bad chunked head", elemName(k), domain.ErrCorrupt)
	}
	return nil, int(v), nil
}

// openElem returns the value of the element stored at k as rec, reading
// a chunked one's chunks from r into a new buffer (an inline value
// aliases rec), and how many chunks it has.
func openElem(chunks func() reader, k, rec []byte) ([]byte, int, error) {
	inline, n, err := elemHead(k, rec)
	if err != nil || n == 0 {
		return inline, 0, err
	}
	out := make([]byte, n)
	if err := readChunks(chunks(), chunkBase(k), chunkSeed(binary.LittleEndian.Uint32(rec)), out, "pebble kv: "+elemName(k)); err != nil {
		return nil, 0, err
	}
	return out, chunkCount(n), nil
}

// putElem sets val under the element key k in b, in chunks if it is
// large (see chunkedRecord), encoding it in the batch itself, and returns
// how many chunks it wrote.
func putElem(b *pebble.Batch, k, val []byte) (int, error) {
	if chunkedRecord(k, len(val)) {
		var hb [4 + binary.MaxVarintLen64]byte
		p := binary.AppendUvarint(hb[:4], uint64(len(val)))
		crc := crc32.Update(crc32.Checksum(k, castagnoli), castagnoli, p[4:]) ^ elemChunkMark
		binary.LittleEndian.PutUint32(p, crc)
		if err := b.Set(k, p, nil); err != nil {
			return 0, err
		}
		return putChunks(b, chunkBase(k), chunkSeed(crc), val)
	}
	op := b.SetDeferred(len(k), 4+len(val))
	copy(op.Key, k)
	crc := crc32.Checksum(k, castagnoli)
	binary.LittleEndian.PutUint32(op.Value, copyCRC(crc, op.Value[4:], val))
	return 0, op.Finish()
}

// chunkedInsts knows, for one generation, which collection instances may
// hold a chunked element: every other instance's element writes skip the
// read of the old value's head that finding its chunks takes (it made
// RPUSH, which writes new positions blind, four times slower). Instances
// are added when a chunked element is written and never removed (one
// deleted or shrunk since only costs that read), until it is built again:
// for another generation (a restore), or once adds since its build
// outnumber twice what it found then. Used and changed only holding
// KV.write, as the key filter.
type chunkedInsts struct {
	gen         uint64
	valid       bool
	insts       map[uint64]struct{}
	adds, built int
}

// none reports whether instance inst of generation gen certainly has no
// chunked element.
func (c *chunkedInsts) none(gen, inst uint64) bool {
	if !c.valid || c.gen != gen {
		return false
	}
	_, ok := c.insts[inst]
	return !ok
}

// add records that instance inst of generation gen may hold a chunked
// element now.
func (c *chunkedInsts) add(gen, inst uint64) {
	if !c.valid || c.gen != gen {
		return
	}
	if _, ok := c.insts[inst]; !ok {
		c.insts[inst] = struct{}{}
		c.adds++
	}
}

// stale reports whether the set must be built (again) before Apply uses
// it for generation gen.
func (c *chunkedInsts) stale(gen uint64) bool {
	return !c.valid || c.gen != gen || c.adds > 2*c.built+1024
}

// build finds every instance of generation gen in r with chunks stored:
// one seek per such instance, past its chunks.
func (c *chunkedInsts) build(r pebble.Reader, gen uint64) error {
	*c = chunkedInsts{gen: gen, insts: map[uint64]struct{}{}}
	lower := slotPrefix(gen, elemSlotBit|chunkSlotBit)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: dataPrefix(gen + 1)})
	if err != nil {
		return fmt.Errorf("pebble kv: find chunked elements: %w", classify(err))
	}
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < elemPrefixLen {
			ok = it.Next()
			continue
		}
		inst := binary.BigEndian.Uint64(k[13:elemPrefixLen])
		c.insts[inst] = struct{}{}
		if inst == ^uint64(0) { // no next instance to seek to
			ok = it.Next()
			continue
		}
		ok = it.SeekGE(binary.BigEndian.AppendUint64(bytes.Clone(k[:13]), inst+1))
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		*c = chunkedInsts{}
		return fmt.Errorf("pebble kv: find chunked elements: %w", classify(err))
	}
	c.valid, c.built = true, len(c.insts)
	return nil
}

// storedElemChunks returns how many chunks the element stored at k has
// (0 if it has none, or is absent), reading its head unless its instance
// has no chunked element (see chunkedInsts); only Apply's store calls it.
// A value that reads as neither form is domain.ErrCorrupt: its chunks, if
// any, could not be found.
func (s *batchStore) storedElemChunks(k []byte) (int, error) {
	inst := binary.BigEndian.Uint64(k[13:elemPrefixLen])
	if s.kv.chunked.none(s.gen, inst) {
		return 0, nil
	}
	v, closer, err := s.r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, classify(err)
	}
	_, n, err := elemHead(k, v)
	if cerr := closer.Close(); err == nil && cerr != nil {
		err = classify(cerr)
	}
	if err != nil || n == 0 {
		return 0, err
	}
	return chunkCount(n), nil
}

// ElemGet implements keyspace.Store; the value is the caller's.
func (s *batchStore) ElemGet(db int, inst uint64, sub []byte) ([]byte, bool, error) {
	k, err := s.scratchKey(db, inst, sub)
	if err != nil {
		return nil, false, err
	}
	rec, ok, err := s.kv.d.get(s.r, k)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, nil
	}
	v, _, err := openElem(s.chunkReader, k, rec)
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// ElemPut implements keyspace.Store. The old value's chunks past the new
// value's are deleted (the new value's overwrite the rest).
func (s *batchStore) ElemPut(db int, inst uint64, sub, val []byte) error {
	if s.w == nil {
		return errReadOnlyView
	}
	k, err := s.scratchKey(db, inst, sub)
	if err != nil {
		return err
	}
	old, err := s.storedElemChunks(k)
	if err != nil {
		return err
	}
	// A value LSET, LMOVE or COPY makes from a stored one is not in the
	// entry the batch was sized for (see room).
	if err := s.room(len(val)); err != nil {
		return err
	}
	n, err := putElem(s.w, k, val)
	if err != nil {
		return classify(err)
	}
	if n > 0 {
		s.kv.chunked.add(s.gen, inst)
	}
	if old > n {
		return classify(deleteChunks(s.w, chunkBase(k), n, old))
	}
	return nil
}

// ElemDelete implements keyspace.Store.
func (s *batchStore) ElemDelete(db int, inst uint64, sub []byte) error {
	if s.w == nil {
		return errReadOnlyView
	}
	k, err := s.scratchKey(db, inst, sub)
	if err != nil {
		return err
	}
	old, err := s.storedElemChunks(k)
	if err != nil {
		return err
	}
	if err := s.w.Delete(k, nil); err != nil {
		return classify(err)
	}
	if old > 0 {
		return classify(deleteChunks(s.w, chunkBase(k), 0, old))
	}
	return nil
}

// ElemScan implements keyspace.Store.
func (s *batchStore) ElemScan(db int, inst uint64, from []byte, reverse bool, fn func(sub, val []byte) bool) error {
	lower, err := s.elemKey(db, inst, nil)
	if err != nil {
		return err
	}
	upper := elemPrefix(s.gen, s.dbs.slot[db], inst+1)
	opts := &pebble.IterOptions{LowerBound: lower, UpperBound: upper}
	if from != nil {
		start := append(append([]byte(nil), lower...), from...)
		if reverse {
			// Inclusive of from: the bound is its immediate successor.
			opts.UpperBound = append(start, 0)
		} else {
			opts.LowerBound = start
		}
	}
	// A scan, as Scan's: a View moves to its snapshot (a long LRANGE or
	// a large element would otherwise hold up Apply's commits).
	s.beforeRead(true)
	r := s.r
	chunks := func() reader { return r }
	it, err := r.NewIter(opts)
	if err != nil {
		return classify(err)
	}
	defer it.Close()
	step := it.Next
	ok := it.First()
	if reverse {
		step, ok = it.Prev, it.Last()
	}
	for ; ok; ok = step() {
		k := it.Key()
		rec, err := it.ValueAndErr()
		if err != nil {
			return classify(err)
		}
		v, _, err := openElem(chunks, k, rec)
		if err != nil {
			return err
		}
		if !fn(k[elemPrefixLen:], v) {
			break
		}
	}
	return classify(it.Error())
}

// DropElems implements keyspace.Store: a small collection's elements (and
// their chunks) are deleted one by one, a larger one's with one range
// deletion of its elements and one of their chunks (O(1) on the write
// path; Pebble reclaims the space in compactions).
func (s *batchStore) DropElems(db int, inst uint64, count int64) error {
	if s.w == nil {
		return errReadOnlyView
	}
	lower, err := s.elemKey(db, inst, nil)
	if err != nil {
		return err
	}
	upper := elemPrefix(s.gen, s.dbs.slot[db], inst+1)
	if count > elemPointDeletes {
		return s.dropElemRange(lower, upper)
	}
	it, err := s.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return classify(err)
	}
	type doomed struct {
		key    []byte
		chunks int
	}
	var keys []doomed
	heads := !s.kv.chunked.none(s.gen, inst) // else no value needs reading
	unreadable := false
	for ok := it.First(); ok && len(keys) <= elemPointDeletes; ok = it.Next() {
		n := 0
		if heads {
			rec, err := it.ValueAndErr()
			if err != nil {
				_ = it.Close()
				return classify(err)
			}
			if _, n, err = elemHead(it.Key(), rec); err != nil {
				// Its chunks, if any, cannot be counted: the range
				// deletions take them whatever they are.
				unreadable = true
				break
			}
		}
		keys = append(keys, doomed{append([]byte(nil), it.Key()...), chunkCount(n)})
	}
	if err := it.Close(); err != nil {
		return classify(err)
	}
	if unreadable || len(keys) > elemPointDeletes { // the hint was wrong: still O(1)
		return s.dropElemRange(lower, upper)
	}
	for _, d := range keys {
		if err := s.w.Delete(d.key, nil); err != nil {
			return classify(err)
		}
		if d.chunks > 0 {
			if err := deleteChunks(s.w, chunkBase(d.key), 0, d.chunks); err != nil {
				return classify(err)
			}
		}
	}
	return nil
}

// dropElemRange range-deletes the elements in [lower, upper) (element
// keys of whole instances) and their chunks.
func (s *batchStore) dropElemRange(lower, upper []byte) error {
	if err := s.w.DeleteRange(lower, upper, nil); err != nil {
		return classify(err)
	}
	return classify(s.w.DeleteRange(elemChunkBound(lower), elemChunkBound(upper), nil))
}

// elemChunkBound is the element key (or prefix) k with the chunk bit set
// in its slot: the instance bounds of k's range become those of their
// chunks' range.
func elemChunkBound(k []byte) []byte {
	out := bytes.Clone(k)
	binary.BigEndian.PutUint32(out[9:13], binary.BigEndian.Uint32(k[9:13])|chunkSlotBit)
	return out
}

// dropElemSlot range-deletes the element slot of slot and its chunks
// (FLUSHDB).
func (s *batchStore) dropElemSlot(slot uint32) error {
	return s.dropElemRange(slotPrefix(s.gen, slot|elemSlotBit), slotPrefix(s.gen, (slot+1)|elemSlotBit))
}

package pebble

import (
	"encoding/binary"
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

// elemScratch holds buffers a batchStore reuses for element keys and
// sealed values: Pebble copies both into the batch, and a read uses the
// key only during the call, so one element write or read allocates
// nothing for them.
type elemScratch struct{ key, val []byte }

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

// scratchSeal is seal(key, payload) built in the scratch buffer.
func (s *batchStore) scratchSeal(key, payload []byte) []byte {
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, payload)
	v := binary.LittleEndian.AppendUint32(s.elem.val[:0], crc)
	s.elem.val = append(v, payload...)
	return s.elem.val
}

// ElemGet implements keyspace.Store; the value is the caller's.
func (s *batchStore) ElemGet(db int, inst uint64, sub []byte) ([]byte, bool, error) {
	k, err := s.scratchKey(db, inst, sub)
	if err != nil {
		return nil, false, err
	}
	rec, ok, err := s.kv.d.get(s.r, k)
	if err != nil || !ok {
		return nil, false, err
	}
	v, good := unseal(k, rec)
	if !good {
		return nil, false, fmt.Errorf("pebble kv: element %q of instance %d: %w: checksum mismatch", sub, inst, domain.ErrCorrupt)
	}
	return v, true, nil
}

// ElemPut implements keyspace.Store.
func (s *batchStore) ElemPut(db int, inst uint64, sub, val []byte) error {
	if s.w == nil {
		return errReadOnlyView
	}
	k, err := s.scratchKey(db, inst, sub)
	if err != nil {
		return err
	}
	return classify(s.w.Set(k, s.scratchSeal(k, val), nil))
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
	return classify(s.w.Delete(k, nil))
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
	it, err := s.r.NewIter(opts)
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
		v, good := unseal(k, rec)
		if !good {
			return fmt.Errorf("pebble kv: element %q of instance %d: %w: checksum mismatch", k[elemPrefixLen:], inst, domain.ErrCorrupt)
		}
		if !fn(k[elemPrefixLen:], v) {
			break
		}
	}
	return classify(it.Error())
}

// DropElems implements keyspace.Store: a small collection's elements are
// deleted one by one, a larger one's with one range deletion (O(1) on the
// write path; Pebble reclaims the space in compactions).
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
		return classify(s.w.DeleteRange(lower, upper, nil))
	}
	it, err := s.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return classify(err)
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) <= elemPointDeletes; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return classify(err)
	}
	if len(keys) > elemPointDeletes { // the hint was wrong: still O(1)
		return classify(s.w.DeleteRange(lower, upper, nil))
	}
	for _, k := range keys {
		if err := s.w.Delete(k, nil); err != nil {
			return classify(err)
		}
	}
	return nil
}

// dropElemSlot range-deletes the element slot of slot (FLUSHDB).
func (s *batchStore) dropElemSlot(slot uint32) error {
	lo := slotPrefix(s.gen, slot|elemSlotBit)
	hi := slotPrefix(s.gen, (slot+1)|elemSlotBit)
	return classify(s.w.DeleteRange(lo, hi, nil))
}

package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain/keyspace"
)

// recordCache mirrors the committed records of the keys the last Applies
// read or wrote, by stored key, so that the read each write makes first
// (and a GET) is a map lookup instead of a Pebble read, whose memtable
// seek alone was a tenth of a leader's CPU under SET load. It holds only
// what Apply's commit tells it (under KV.mu's write lock), and any key a
// batch wrote that its store did not see through Put or Delete is
// dropped, so it is never ahead of or behind Pebble for a key it holds.
// Its values are never changed in place: a reader may keep one.
type recordCache struct {
	max, bytes int
	m          map[string]cacheEntry
}

// cacheEntry is what the record cache keeps of a cachedRecord: not the
// head of a chunked value (lookup reads a chunked record's head from
// Pebble), so that the map's entries stay as small as they were before
// heads (8 bytes less an entry measured 5-10% on BenchmarkView).
type cacheEntry struct {
	r  keyspace.Record
	ok bool
}

// cachedRecord is what a stored key holds: in the record cache, and in
// a batch store's known.
type cachedRecord struct {
	r  keyspace.Record
	ok bool // false: the key is absent
	// partial: r.Value is left out (nil), which only a batch store's
	// known holds: a chunked value that a command read the head of (Stat)
	// or changed in part (WriteAt).
	partial bool
	// head is a chunked value's head, nil for a value stored whole (most
	// of them) or one the record cache gave.
	head *chunkHead
}

// size is the length of the record's value.
func (e *cachedRecord) size() int {
	if e.head != nil {
		return e.head.n
	}
	return len(e.r.Value)
}

// cacheEntryOverhead is what a cached record costs beyond its key and
// value bytes (map slot, headers), roughly.
const cacheEntryOverhead = 64

func newRecordCache(max int) recordCache {
	return recordCache{max: max, m: map[string]cacheEntry{}}
}

// get returns what k holds, and whether the cache knows k at all.
func (c *recordCache) get(k []byte) (cachedRecord, bool) {
	e, ok := c.m[string(k)]
	return cachedRecord{r: e.r, ok: e.ok}, ok
}

// commit brings the cache to the state b's commit left: every key b
// touched is dropped unless known says what it now holds (known is the
// batch store's view of the keys it read and wrote, nil if b holds writes
// that the store did not make through Put or Delete, so that known may be
// stale); a range deletion clears the cache.
func (c *recordCache) commit(b *pebble.Batch, known map[string]cachedRecord) error {
	if c.max <= 0 {
		return nil
	}
	rd := b.Reader()
	for {
		kind, k, _, ok, err := rd.Next()
		if err != nil {
			return fmt.Errorf("pebble kv: read back the applied batch: %w", err)
		}
		if !ok {
			break
		}
		if kind == pebble.InternalKeyKindLogData {
			continue // newApplyBatch's empty WAL-only record
		}
		if kind == pebble.InternalKeyKindRangeDelete {
			c.clear()
			continue
		}
		if _, ok := known[string(k)]; !ok {
			c.drop(k)
		}
	}
	for k, e := range known {
		c.put(k, e)
	}
	return nil
}

// put caches e (e.ok false: k is absent) at k, with a copy of its value.
// A value of more than a tenth of the budget is not kept (k is dropped):
// its copy would cost as much as the whole cache, and evict it. Nor is a
// partial one: the cache answers Get.
func (c *recordCache) put(k string, e cachedRecord) {
	if e.partial || (e.ok && len(e.r.Value) > c.max/10) {
		c.drop([]byte(k))
		return
	}
	if old, ok := c.m[k]; ok {
		c.bytes -= len(k) + len(old.r.Value) + cacheEntryOverhead
	}
	if e.ok {
		e.r.Value = bytes.Clone(e.r.Value)
	}
	c.m[k] = cacheEntry{r: e.r, ok: e.ok}
	c.bytes += len(k) + len(e.r.Value) + cacheEntryOverhead
	if c.bytes <= c.max {
		return
	}
	// Over budget: drop entries in the map's (random) order until a
	// tenth of the budget is free, so the next batches need not.
	for kk, old := range c.m {
		if c.bytes <= c.max-c.max/10 {
			break
		}
		delete(c.m, kk)
		c.bytes -= len(kk) + len(old.r.Value) + cacheEntryOverhead
	}
}

func (c *recordCache) drop(k []byte) {
	if old, ok := c.m[string(k)]; ok {
		c.bytes -= len(k) + len(old.r.Value) + cacheEntryOverhead
		delete(c.m, string(k))
	}
}

func (c *recordCache) clear() {
	clear(c.m)
	c.bytes = 0
}

// keyFilter is a Bloom filter over the stored keys of the records of one
// generation: a key it says is absent is absent, so a write to a new key
// (a bulk load's SETs, a new collection) needs no Pebble read to learn
// that it creates the key, and the counts, the expiry bookkeeping and the
// old collection's elements come out the same as with the read (there are
// none). A key it says may be present is read as before. Deleted keys
// stay in it (a Bloom filter cannot forget): they only cost that read,
// and the filter is built anew once its adds reach twice the live keys.
//
// It is local to the node and never decides a result, only whether the
// result needs a read: nodes with different filters (one just restarted)
// apply identically. Only Apply (holding KV.write) uses it: views read as
// before.
type keyFilter struct {
	gen   uint64
	valid bool // false: not built for gen yet (every key may be present)
	segs  []filterSeg
	adds  int64 // keys added since the build
	built int64 // keys at the build
}

// filterSeg is one fixed-size Bloom filter; when the last one holds
// capacity keys a segment twice its size follows (a scalable Bloom
// filter), so the false-positive rate stays near filterFP without a
// rebuild as the keyspace grows.
type filterSeg struct {
	bits     []uint64
	mask     uint64 // len(bits)*64 - 1
	n, limit int64
}

const (
	filterProbes  = 6       // bits set per key: about 1% false positives at 10 bits a key
	filterBitsKey = 10      // bits per key of capacity
	filterMinKeys = 1 << 16 // smallest segment's capacity
)

func newFilterSeg(keys int64) filterSeg {
	words := int64(1)
	for words*64 < keys*filterBitsKey {
		words *= 2
	}
	return filterSeg{bits: make([]uint64, words), mask: uint64(words*64 - 1), limit: words * 64 / filterBitsKey}
}

// filterHash derives the filter's hash of a stored record key from what
// the key already holds (its slot and the user key's keyspace.Hash, see
// dataKey), so that a probe hashes no bytes. A swapped database keeps its
// slot, and a flushed one moves to a new slot, so neither changes which
// stored keys exist under a slot.
func filterHash(k []byte) uint64 {
	h := binary.BigEndian.Uint64(k[13:21]) ^ uint64(binary.BigEndian.Uint32(k[9:13]))*0x9e3779b97f4a7c15
	// splitmix64's finaliser: FNV's low bits alone are weak.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

func (s *filterSeg) add(h uint64) {
	h2 := h>>32 | h<<32 | 1
	for i := range uint64(filterProbes) {
		b := (h + i*h2) & s.mask
		s.bits[b>>6] |= 1 << (b & 63)
	}
	s.n++
}

func (s *filterSeg) has(h uint64) bool {
	h2 := h>>32 | h<<32 | 1
	for i := range uint64(filterProbes) {
		b := (h + i*h2) & s.mask
		if s.bits[b>>6]&(1<<(b&63)) == 0 {
			return false
		}
	}
	return true
}

// absent reports whether the record key k (dataKey's form, of the
// filter's generation) is certainly absent.
func (f *keyFilter) absent(gen uint64, k []byte) bool {
	if !f.valid || f.gen != gen || len(k) < dataKeyLen {
		return false
	}
	h := filterHash(k)
	for i := range f.segs {
		if f.segs[i].has(h) {
			return false
		}
	}
	return true
}

// add records that the record key k may exist now.
func (f *keyFilter) add(gen uint64, k []byte) {
	if !f.valid || f.gen != gen || len(k) < dataKeyLen {
		return
	}
	last := &f.segs[len(f.segs)-1]
	if last.n >= last.limit {
		f.segs = append(f.segs, newFilterSeg(2*last.limit))
		last = &f.segs[len(f.segs)-1]
	}
	last.add(filterHash(k))
	f.adds++
}

// stale reports whether the filter must be built (again) before Apply
// uses it for generation gen with live keys in all: never built, built
// for another generation (a restore), or so many adds since its build
// (deleted keys it still holds, or growth) that it is worth rebuilding.
func (f *keyFilter) stale(gen uint64, live int64) bool {
	return !f.valid || f.gen != gen || f.adds > 2*max(live, f.built)+filterMinKeys
}

// build fills the filter with every record key of generation gen in r.
func (f *keyFilter) build(r pebble.Reader, gen uint64, live int64) error {
	*f = keyFilter{gen: gen, segs: []filterSeg{newFilterSeg(max(2*live, filterMinKeys))}}
	// Records only: chunks and elements live in the slots above.
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: dataPrefix(gen), UpperBound: slotPrefix(gen, chunkSlotBit)})
	if err != nil {
		return fmt.Errorf("pebble kv: build the key filter: %w", classify(err))
	}
	f.valid = true
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		f.add(gen, it.Key())
		n++
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		*f = keyFilter{}
		return fmt.Errorf("pebble kv: build the key filter: %w", classify(err))
	}
	f.adds, f.built = 0, n
	return nil
}

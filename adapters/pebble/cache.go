package pebble

import (
	"bytes"
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
	m          map[string]cachedRecord
}

type cachedRecord struct {
	r  keyspace.Record
	ok bool // false: the key is absent
}

// cacheEntryOverhead is what a cached record costs beyond its key and
// value bytes (map slot, headers), roughly.
const cacheEntryOverhead = 64

func newRecordCache(max int) recordCache {
	return recordCache{max: max, m: map[string]cachedRecord{}}
}

// get returns k's record, and whether the cache knows k at all.
func (c *recordCache) get(k []byte) (r keyspace.Record, found, known bool) {
	e, ok := c.m[string(k)]
	return e.r, e.ok, ok
}

// commit brings the cache to the state b's commit left: every key b
// touched is dropped unless known says what it now holds (known is the
// batch store's view of the keys it read and wrote, nil if b holds writes
// that the store did not make through Put or Delete, so that known may be
// stale); a range deletion clears the cache.
func (c *recordCache) commit(b *pebble.Batch, known map[string]*keyspace.Record) error {
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
	for k, r := range known {
		c.put(k, r)
	}
	return nil
}

func (c *recordCache) put(k string, r *keyspace.Record) {
	if old, ok := c.m[k]; ok {
		c.bytes -= len(k) + len(old.r.Value) + cacheEntryOverhead
	}
	e := cachedRecord{}
	if r != nil {
		e = cachedRecord{r: *r, ok: true}
		e.r.Value = bytes.Clone(r.Value)
	}
	c.m[k] = e
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

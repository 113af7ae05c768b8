package pebble

import (
	"testing"

	"github.com/seshat-kv/seshat/domain/keyspace"
)

// TestRecordCacheFollowsTheBatch checks what a commit leaves in the
// cache: the keys known says, no key the batch wrote behind the store's
// back, nothing after a range deletion, and no more than its budget.
func TestRecordCacheFollowsTheBatch(t *testing.T) {
	db := newMemNode(t).db
	rec := func(v string) cachedRecord {
		return cachedRecord{r: keyspace.Record{Value: []byte(v), Version: 1}, ok: true}
	}
	has := func(c *recordCache, k, want string) {
		t.Helper()
		e, known := c.get([]byte(k))
		r, found := e.r, e.ok
		switch {
		case want == "-" && known:
			t.Errorf("%s: cached (%q, %v), want not cached", k, r.Value, found)
		case want == "absent" && (!known || found):
			t.Errorf("%s: known %v found %v, want cached as absent", k, known, found)
		case want != "-" && want != "absent" && (!found || string(r.Value) != want):
			t.Errorf("%s: %q (found %v, known %v), want %q", k, r.Value, found, known, want)
		}
	}
	c := newRecordCache(1 << 20)
	b := db.db.NewIndexedBatch()
	_ = b.Set([]byte("a"), []byte("sealed"), nil)
	_ = b.Set([]byte("raw"), []byte("x"), nil) // written behind the store's back
	_ = b.Delete([]byte("gone"), nil)
	c.put("raw", rec("stale"))
	if err := c.commit(b, map[string]cachedRecord{"a": rec("1"), "gone": {}, "read": rec("r")}); err != nil {
		t.Fatal(err)
	}
	has(&c, "a", "1")
	has(&c, "gone", "absent")
	has(&c, "read", "r")
	has(&c, "raw", "-")

	// known nil: every key the batch touched is dropped.
	b = db.db.NewIndexedBatch()
	_ = b.Set([]byte("a"), []byte("sealed"), nil)
	if err := c.commit(b, nil); err != nil {
		t.Fatal(err)
	}
	has(&c, "a", "-")
	has(&c, "read", "r")

	// A range deletion clears it.
	b = db.db.NewIndexedBatch()
	_ = b.DeleteRange([]byte("a"), []byte("b"), nil)
	if err := c.commit(b, map[string]cachedRecord{"new": rec("n")}); err != nil {
		t.Fatal(err)
	}
	has(&c, "read", "-")
	has(&c, "new", "n")

	// The budget holds.
	small := newRecordCache(10 * cacheEntryOverhead)
	for i := range 100 {
		small.put(string(rune('A'+i%26))+string(rune('a'+i/26)), rec("0123456789"))
		if small.bytes > small.max {
			t.Fatalf("after %d puts: %d bytes cached, budget %d", i+1, small.bytes, small.max)
		}
	}
	// The values are copies: changing what was put changes nothing.
	r := rec("value")
	c.put("copy", r)
	r.r.Value[0] = 'X'
	has(&c, "copy", "value")
}

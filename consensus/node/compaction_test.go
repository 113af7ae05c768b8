package node

import (
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// bytesStart: how far compaction must purge for the applied entries it
// keeps to hold at most the limit, after entries are applied, purged and
// applied again.
func TestCompactionBytesStart(t *testing.T) {
	ents := func(sizes ...int) []domain.Entry {
		var out []domain.Entry
		for _, s := range sizes {
			out = append(out, domain.Entry{Data: make([]byte, s)})
		}
		return out
	}
	var c compaction
	next := domain.Index(1)
	apply := func(sizes ...int) {
		es := ents(sizes...)
		for i := range es {
			es[i].Index = next
			next++
		}
		c.sized(es)
	}
	over := ents(0)[0].Size() // an entry's size beyond its data
	apply(100, 100, 1000, 100)
	for _, tc := range []struct {
		limit uint64
		want  domain.Index
	}{
		{1 << 20, 0},               // everything fits
		{uint64(1300 + 4*over), 0}, // exactly
		{uint64(1200 + 3*over), 1}, // drop the first
		{uint64(1100 + 2*over), 2},
		{uint64(100 + over), 3}, // the large one must go
		{0, 4},                  // nothing kept
	} {
		if got := c.bytesStart(tc.limit); got != tc.want {
			t.Errorf("limit %d: purge through %d, want %d", tc.limit, got, tc.want)
		}
	}
	c.dropSized(3)
	if got := c.bytesStart(uint64(100 + over)); got != 0 {
		t.Errorf("after purging through 3: purge through %d, want 0 (entry 4 fits)", got)
	}
	apply(5000)
	c.sized([]domain.Entry{{Index: 5, Data: make([]byte, 5000)}}) // applied again: counted once
	if got := c.bytesStart(uint64(5100 + 2*over)); got != 0 {
		t.Errorf("entries 4-5: purge through %d, want 0", got)
	}
	if got := c.bytesStart(uint64(5000 + over)); got != 4 {
		t.Errorf("entries 4-5, room for 5 alone: purge through %d, want 4", got)
	}
}

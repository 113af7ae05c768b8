package main

import (
	"math"
	"testing"
	"time"
)

func TestStatTicks(t *testing.T) {
	for _, c := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		// A real line's shape: utime 1234 and stime 56 (fields 14, 15).
		{"4242 (seshatd) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 9 0 5 0 0", 1290, true},
		// A name with spaces and a ')' in it.
		{"7 (a b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0", 7, true},
		{"7 (x) R 1 2", 0, false},
		{"no name", 0, false},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 u 4 0", 0, false},
	} {
		got, err := statTicks(c.stat)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("statTicks(%q) = %d, %v; want %d, ok %v", c.stat, got, err, c.want, c.ok)
		}
	}
}

func TestTenths(t *testing.T) {
	// 1000 keys/s for 5 s, then 500 keys/s for 10 s: 10,000 keys, the
	// first half at 1000/s and the second at 500/s.
	var r loadResult
	for s := 0; s <= 15; s++ {
		k := int64(min(s, 5)*1000 + max(s-5, 0)*500)
		r.samples = append(r.samples, loadSample{time.Duration(s) * time.Second, k})
	}
	got := r.tenths()
	for i, v := range got {
		want := 1000.0
		if i >= 5 {
			want = 500
		}
		if math.Abs(v-want) > 1e-6 {
			t.Errorf("tenth %d: %v keys/s, want %v (all: %v)", i+1, v, want, got)
		}
	}
}

package node_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// TestCompactionByBytes: with large values the log is compacted after
// SnapshotBytes of entries, long before SnapshotEntries, and not before.
func TestCompactionByBytes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		snapshotBytes uint64
		wantCompacted bool
	}{
		{"bytes-trigger", 16 << 10, true},
		{"bytes-too-high", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, log, _ := startSingle(t, func(c *node.Config) {
				c.SnapshotEntries, c.SnapshotBytes, c.TrailingEntries = 1<<30, tc.snapshotBytes, 2
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			value := strings.Repeat("v", 1000)
			maxSpan := domain.Index(0)
			for i := range 200 {
				if _, err := n.Propose(ctx, set(fmt.Sprint("k", i), value)); err != nil {
					t.Fatal(err)
				}
				first, _ := log.FirstIndex()
				last, _ := log.LastIndex()
				maxSpan = max(maxSpan, last-first+1)
			}
			first, _ := log.FirstIndex()
			if compacted := first > 1; compacted != tc.wantCompacted {
				t.Fatalf("first index %d after 200 entries of 1 KB: compacted=%v, want %v", first, compacted, tc.wantCompacted)
			}
			// 16 KiB of ~1 KB entries is ~16 entries, plus the trailing 2.
			if tc.wantCompacted && maxSpan > 30 {
				t.Fatalf("stored log grew to %d entries, want <= 30", maxSpan)
			}
			t.Logf("largest stored log: %d entries", maxSpan)
		})
	}
}

// TestCompactionKeepsTrailingBytes: compaction keeps TrailingEntries
// applied entries only while they hold at most TrailingBytes, so that a
// large value leaves the log (and the node's memory) once applied, not
// after TrailingEntries more writes; with a limit they all fit in, it
// keeps TrailingEntries of them.
func TestCompactionKeepsTrailingBytes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		trailingBytes uint64
		maxKept       domain.Index
	}{
		{"bytes bound", 8 << 10, 20},            // 8 KiB of ~1 KB entries, a compaction period, a sync
		{"entries bound", 1 << 30, 100 + 1 + 8}, // TrailingEntries, one more, a compaction's worth
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, log, _ := startSingle(t, func(c *node.Config) {
				c.SnapshotEntries, c.TrailingEntries, c.TrailingBytes = 8, 100, tc.trailingBytes
			})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			value := strings.Repeat("v", 1000)
			minKept := domain.Index(1 << 30)
			for i := range 300 {
				if _, err := n.Propose(ctx, set(fmt.Sprint("k", i), value)); err != nil {
					t.Fatal(err)
				}
				if i < 200 {
					continue
				}
				first, _ := log.FirstIndex()
				last, _ := log.LastIndex()
				kept := last - first + 1
				if kept > tc.maxKept {
					t.Fatalf("after entry %d the log holds %d entries (%d-%d), want at most %d", i, kept, first, last, tc.maxKept)
				}
				minKept = min(minKept, kept)
			}
			if tc.trailingBytes > 1<<20 && minKept < 100 {
				t.Fatalf("the log held as few as %d entries with room for all: want TrailingEntries (100) kept", minKept)
			}
		})
	}
}

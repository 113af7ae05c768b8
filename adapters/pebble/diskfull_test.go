package pebble

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestDiskFull(t *testing.T) {
	fs := vfs.NewMem()
	db, err := Open(Options{Dir: "node", FS: fs, CacheSize: 1 << 20, MinFreeBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.DiskFull() {
		t.Fatal("a filesystem that reports no usage must never be full")
	}
	for _, tc := range []struct {
		avail uint64
		full  bool
	}{{5000, false}, {1000, false}, {999, true}, {0 + 1, true}, {2000, false}} {
		fs.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: tc.avail, TotalBytes: 10000, UsedBytes: 10000 - tc.avail})
		if got := db.DiskFull(); got != tc.full {
			t.Errorf("avail %d, reserve 1000: DiskFull = %v, want %v", tc.avail, got, tc.full)
		}
	}
}

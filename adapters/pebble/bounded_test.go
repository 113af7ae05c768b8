package pebble

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestDiskUseStaysBounded appends far more log than it keeps, purging a
// prefix as the driver's compaction does, and checks that the files on
// disk stay a small multiple of what is kept, not of what was written:
// the range deletions of Purge are reclaimed by Pebble's compactions.
func TestDiskUseStaysBounded(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir, CacheSize: 1 << 20, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := db.LogStore()
	data := []byte(strings.Repeat("x", 1000))
	const total, keep, batch = 40000, 1000, 100
	var maxSize int64
	for i := domain.Index(1); i <= total; i += batch {
		ents := make([]domain.Entry, batch)
		for j := range ents {
			ents[j] = domain.Entry{Index: i + domain.Index(j), Term: 1, Data: data}
		}
		if err := log.Append(ents); err != nil {
			t.Fatal(err)
		}
		if err := log.Sync(); err != nil {
			t.Fatal(err)
		}
		if last := i + batch - 1; last > keep && (last/batch)%10 == 0 {
			if err := log.Purge(last - keep); err != nil {
				t.Fatal(err)
			}
			maxSize = max(maxSize, dirSize(t, dir))
		}
	}
	written := int64(total * len(data))
	t.Logf("wrote %d MB of log, kept %d entries; largest directory seen %.1f MB", written>>20, keep, float64(maxSize)/(1<<20))
	// What is kept is ~1 MB; allow memtables, WAL, and not-yet-compacted
	// tombstoned tables, but far less than what was written.
	if maxSize > written/4 {
		t.Fatalf("directory reached %d bytes after writing %d: purged log is not reclaimed", maxSize, written)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed by a compaction meanwhile
		}
		size += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size
}

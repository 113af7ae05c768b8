package pebble

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// Benchmarks run on a real directory (b.TempDir, so the disk under
// $TMPDIR) with fsync on, except where a name says otherwise:
//
//	go test -run '^$' -bench . -benchtime 2s ./adapters/pebble
//
// BenchmarkSnapshot1M and BenchmarkRestore1M build a million keys first;
// they only run under -bench and take a while.

func benchDB(b *testing.B, opts Options) *DB {
	b.Helper()
	if opts.Dir == "" {
		opts.Dir = b.TempDir()
	}
	db, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func BenchmarkAppendSync(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s := benchDB(b, Options{}).LogStore()
			data := make([]byte, 100)
			es := make([]domain.Entry, n)
			next := domain.Index(1)
			b.SetBytes(int64(n * len(data)))
			b.ResetTimer()
			for b.Loop() {
				for k := range es {
					es[k] = domain.Entry{Index: next, Term: 1, Type: domain.EntryNormal, Data: data}
					next++
				}
				if err := s.Append(es); err != nil {
					b.Fatal(err)
				}
				if err := s.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N*n)/sec, "entries/s")
			b.ReportMetric(float64(b.N)/sec, "syncs/s")
		})
	}
}

// BenchmarkApply applies batches of 64 entries, each one SET of a 16-byte
// key and a 100-byte value, to keys spread over a million; sync=every
// syncs after each batch, as a node that commits one batch at a time would.
// BenchmarkApply applies batches of 64 SETs of 100 bytes over a million
// keys: as low-level ops (form=ops), and as Redis commands run by the
// keyspace engine (form=calls, what a client's SET becomes: an indexed
// batch, a read of the key and of the clock before the write).
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct {
		form string
		sync bool
	}{{"ops", false}, {"ops", true}, {"calls", false}, {"calls", true}} {
		form, sync := c.form, c.sync
		b.Run(fmt.Sprintf("batch=64/form=%s/sync=%v", form, sync), func(b *testing.B) {
			kv := benchDB(b, Options{}).StateMachine()
			val := make([]byte, 100)
			es := make([]domain.Entry, 64)
			next := domain.Index(1)
			b.SetBytes(int64(len(es) * len(val)))
			b.ResetTimer()
			for b.Loop() {
				for k := range es {
					key := fmt.Appendf(nil, "key%013d", (uint64(next)*2654435761)%1_000_000)
					cmd := domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: key, Value: val}}}
					if form == "calls" {
						cmd = domain.Command{Time: 1_700_000_000_000 + int64(next), Calls: []domain.Call{{Args: [][]byte{[]byte("SET"), key, val}}}}
					}
					es[k] = domain.Entry{Index: next, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
					next++
				}
				if _, err := kv.Apply(es); err != nil {
					b.Fatal(err)
				}
				if sync {
					if err := kv.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(es))/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// benchKeys is the size of the snapshot benchmarks' state:
// SESHAT_BENCH_KEYS, default a million. Running them at two sizes shows
// whether their memory grows with the data (it must not).
var benchKeys = func() int {
	if n, err := strconv.Atoi(os.Getenv("SESHAT_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}()

// millionKeys builds a DB of a million keys with 100-byte values in a
// temporary directory, and its snapshot image in a file beside it.
func millionKeys(b *testing.B) (dir, image string, meta domain.SnapshotMeta) {
	b.Helper()
	root := b.TempDir()
	db, err := Open(Options{Dir: filepath.Join(root, "db"), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	kv := db.StateMachine()
	val := make([]byte, 100)
	const perEntry, perApply = 100, 100
	idx := domain.Index(1)
	for k := 0; k < benchKeys; {
		var es []domain.Entry
		for range perApply {
			var ops []domain.Op
			for range perEntry {
				ops = append(ops, domain.Op{Kind: domain.OpSet, Key: fmt.Appendf(nil, "key%013d", k), Value: val})
				k++
			}
			es = append(es, domain.Entry{Index: idx, Term: 1, Data: domain.EncodeCommand(domain.Command{Ops: ops})})
			idx++
		}
		if _, err := kv.Apply(es); err != nil {
			b.Fatal(err)
		}
	}
	image = filepath.Join(root, "image")
	f, err := os.Create(image)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	meta, err = kv.Snapshot(w)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return filepath.Join(root, "db"), image, meta
}

// peakMemory runs f and returns the highest Go heap in use and resident
// set size seen while it ran, above what they were before. Pebble's block
// cache and memtables are allocated outside the Go heap when cgo is on, so
// the RSS figure is the one that counts them.
func peakMemory(f func()) (heap, rss uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap, baseRSS := ms.HeapInuse, residentBytes()
	peakHeap, peakRSS := baseHeap, baseRSS
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			peakRSS = max(peakRSS, residentBytes())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	<-sampled
	return peakHeap - baseHeap, peakRSS - baseRSS
}

func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

func BenchmarkSnapshot1M(b *testing.B) {
	dir, _, _ := millionKeys(b)
	db := benchDB(b, Options{Dir: dir})
	out := filepath.Join(b.TempDir(), "image")
	var heap, rss uint64
	var size int64
	b.ResetTimer()
	for b.Loop() {
		h, r := peakMemory(func() {
			f, err := os.Create(out)
			if err != nil {
				b.Fatal(err)
			}
			w := bufio.NewWriter(f)
			if _, err := db.StateMachine().Snapshot(w); err != nil {
				b.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			size, _ = f.Seek(0, 1)
			_ = f.Close()
		})
		heap, rss = max(heap, h), max(rss, r)
	}
	b.ReportMetric(float64(benchKeys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(size)/(1<<20), "image-MiB")
}

func BenchmarkRestore1M(b *testing.B) {
	_, image, meta := millionKeys(b)
	kv := benchDB(b, Options{}).StateMachine()
	var heap, rss uint64
	b.ResetTimer()
	for b.Loop() {
		h, r := peakMemory(func() {
			f, err := os.Open(image)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := kv.Restore(meta, bufio.NewReader(f)); err != nil {
				b.Fatal(err)
			}
		})
		heap, rss = max(heap, h), max(rss, r)
	}
	b.StopTimer()
	if v, err := kv.Get(fmt.Appendf(nil, "key%013d", benchKeys-1)); err != nil || len(v) != 100 {
		b.Fatalf("last key after restore: %q, %v", v, err)
	}
	b.ReportMetric(float64(benchKeys)*float64(b.N)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
}

// BenchmarkView is a GET as the service serves it: one View reading one
// key of 100,000, while nothing applies.
func BenchmarkView(b *testing.B) {
	kv := benchDB(b, Options{NoSync: true}).StateMachine()
	val := make([]byte, 100)
	const keys = 100_000
	next := domain.Index(1)
	for k := 0; k < keys; k += 1000 {
		var ops []domain.Op
		for i := k; i < k+1000; i++ {
			ops = append(ops, domain.Op{Kind: domain.OpSet, Key: fmt.Appendf(nil, "key:%012d", i), Value: val})
		}
		if _, err := kv.Apply([]domain.Entry{{Index: next, Term: 1, Data: domain.EncodeCommand(domain.Command{Ops: ops})}}); err != nil {
			b.Fatal(err)
		}
		next++
	}
	key := make([]byte, 0, 16)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		key = fmt.Appendf(key[:0], "key:%012d", (i*7919)%keys)
		i++
		err := kv.View(func(st keyspace.Store) error {
			_, ok, err := st.Get(0, key)
			if err == nil && !ok {
				err = fmt.Errorf("%s not found", key)
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

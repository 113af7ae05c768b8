package pebble

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// BenchmarkLoad1M is one node's share of a bulk load: benchKeys SETs of
// 100-byte values to random keys over 100,000,000 (redis-benchmark -r
// 100000000 -d 100), in batches of 128 entries that are appended to the
// log and applied, the log purged every 10,000 entries as the driver
// compacts. Nothing is fsynced (NoSync), so that the figures are the
// storage engine's (memtables, flushes, compactions, the read before each
// write) and not the disk's sync latency, which BenchmarkAppendSync
// measures. It reports the rate of the first and the last tenth of
// the load (a keyspace that slows as it grows shows a falling ratio), the
// CPU time per SET of the whole process (Pebble's flushes and compactions
// included) and the disk use at the end against the live keys and values.
//
//	go test -run '^$' -bench Load1M -benchtime 1x ./adapters/pebble
func BenchmarkLoad1M(b *testing.B) {
	const batch, purgeEvery, keep = 128, 10_000, 1_000
	for b.Loop() {
		dir := b.TempDir()
		db := benchDB(b, Options{Dir: dir, NoSync: true, CacheSize: benchMB("SESHAT_BENCH_CACHE_MB"), MemTableSize: uint64(benchMB("SESHAT_BENCH_MEMTABLE_MB"))})
		log, kv := db.LogStore(), db.StateMachine()
		rng := rand.New(rand.NewPCG(1, 2))
		val := bytes.Repeat([]byte("x"), 100)
		var tenths, tenthsCPU [10]time.Duration
		cpu0 := cpuTime()
		lastCPU := cpu0
		start, last := time.Now(), time.Now()
		next := domain.Index(1)
		es := make([]domain.Entry, batch)
		for done := 0; done < benchKeys; {
			n := min(batch, benchKeys-done)
			for k := range n {
				key := fmt.Appendf(nil, "key:%012d", rng.IntN(100_000_000))
				cmd := domain.Command{Time: 1_700_000_000_000 + int64(next), Calls: []domain.Call{{Args: [][]byte{[]byte("SET"), key, val}}}}
				es[k] = domain.Entry{Index: next, Term: 1, Type: domain.EntryNormal, Data: domain.EncodeCommand(cmd)}
				next++
			}
			if err := log.Append(es[:n]); err != nil {
				b.Fatal(err)
			}
			if err := log.Sync(); err != nil {
				b.Fatal(err)
			}
			if _, err := kv.Apply(es[:n]); err != nil {
				b.Fatal(err)
			}
			if (done+n)/purgeEvery != done/purgeEvery {
				if err := kv.Sync(); err != nil {
					b.Fatal(err)
				}
				if err := log.Purge(next - keep); err != nil {
					b.Fatal(err)
				}
			}
			for t := done * 10 / benchKeys; t < (done+n)*10/benchKeys; t++ {
				tenths[t] = time.Since(last)
				last = time.Now()
				c := cpuTime()
				tenthsCPU[t], lastCPU = c-lastCPU, c
			}
			done += n
		}
		elapsed, cpu := time.Since(start), cpuTime()-cpu0
		tenth := float64(benchKeys) / 10
		first, lastRate := tenth/tenths[0].Seconds(), tenth/tenths[9].Seconds()
		slowest := first
		for _, d := range tenths {
			slowest = min(slowest, tenth/d.Seconds())
		}
		keys, _, err := kvLen(kv)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(benchKeys)/elapsed.Seconds(), "SETs/s")
		b.ReportMetric(first, "first-tenth/s")
		b.ReportMetric(lastRate, "last-tenth/s")
		b.ReportMetric(slowest, "slowest-tenth/s")
		b.ReportMetric(lastRate/first, "last/first")
		b.ReportMetric(cpu.Seconds()/float64(benchKeys)*1e6, "cpu-us/SET")
		// CPU per SET moves less than the rate on a shared machine.
		b.ReportMetric(tenthsCPU[0].Seconds()/tenth*1e6, "first-tenth-cpu-us/SET")
		b.ReportMetric(tenthsCPU[9].Seconds()/tenth*1e6, "last-tenth-cpu-us/SET")
		live := float64(keys) * float64(len("key:000000000000")+len(val))
		disk := float64(db.db.Metrics().DiskSpaceUsage())
		b.ReportMetric(disk/(1<<20), "disk-MiB")
		b.ReportMetric(disk/live, "disk/live")
		rates, cpus := make([]string, len(tenths)), make([]string, len(tenths))
		for i, d := range tenths {
			rates[i] = fmt.Sprintf("%.0f", tenth/d.Seconds())
			cpus[i] = fmt.Sprintf("%.1f", tenthsCPU[i].Seconds()/tenth*1e6)
		}
		b.Logf("SETs/s per tenth: %v", rates)
		b.Logf("CPU us per SET per tenth: %v", cpus)
		if testing.Verbose() {
			b.Logf("Pebble at the end:\n%s", db.db.Metrics())
		}
	}
}

// kvLen is database 0's key count, as DBSIZE gives it.
func kvLen(kv *KV) (keys, expires int64, err error) {
	kv.mu.RLock()
	defer kv.mu.RUnlock()
	return kv.mu.dbs.keys[0], kv.mu.dbs.expires[0], nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMB is the size in MiB an environment variable gives, for
// BenchmarkLoad1M's options (SESHAT_BENCH_CACHE_MB,
// SESHAT_BENCH_MEMTABLE_MB); 0 (the default) if unset.
func benchMB(env string) int64 {
	if n, err := strconv.Atoi(os.Getenv(env)); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 0
}

package metrics

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// storageMetrics are measured as the storage is used, by the decorators
// below.
type storageMetrics struct {
	fsyncSeconds    prometheus.Histogram
	fsyncEntries    prometheus.Histogram
	appendedEntries prometheus.Counter
	appendedBytes   prometheus.Counter
	snapshots       *prometheus.CounterVec // by op (build, restore) and result
	snapshotBytes   *prometheus.CounterVec // by op
	snapshotSeconds *prometheus.HistogramVec
}

func newStorageMetrics() *storageMetrics {
	return &storageMetrics{
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seshat_log_fsync_duration_seconds",
			Help: "Time of each Raft log sync (one fsync of the write-ahead log).",
			// 50µs (a fast NVMe) to about 1.6s (a stalled disk).
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16),
		}),
		fsyncEntries: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "seshat_log_fsync_entries",
			Help: "Log entries made durable by each sync (group commit: many proposals share one fsync).",
			// 1 to 8192.
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
		appendedEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seshat_log_appended_entries_total",
			Help: "Entries appended to the Raft log.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "seshat_log_appended_bytes_total",
			Help: "Bytes of the entries appended to the Raft log (payload plus a fixed 24-byte header each).",
		}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seshat_snapshots_total",
			Help: "State machine snapshots, by op (build: an image built to send to a follower behind the compacted log; restore: an image received from the leader) and result (ok, error).",
		}, []string{"op", "result"}),
		snapshotBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seshat_snapshot_bytes_total",
			Help: "Bytes of state machine snapshot images written (build) or read (restore).",
		}, []string{"op"}),
		snapshotSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "seshat_snapshot_duration_seconds",
			Help: "Time to build or restore a state machine snapshot.",
			// 1ms to about 2 hours.
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"op"}),
	}
}

func (m *storageMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.fsyncSeconds, m.fsyncEntries, m.appendedEntries, m.appendedBytes,
		m.snapshots, m.snapshotBytes, m.snapshotSeconds}
}

// LogStore returns ls measured: each Sync is timed and the entries
// appended since the previous Sync are counted. It changes nothing of
// ls's behaviour or errors.
func (s *Server) LogStore(ls ports.LogStore) ports.LogStore {
	return &logStore{LogStore: ls, m: s.storage}
}

type logStore struct {
	ports.LogStore
	m        *storageMetrics
	unsynced atomic.Int64 // entries appended since the last Sync
}

var _ ports.LogStore = (*logStore)(nil)

func (l *logStore) Append(entries []domain.Entry) error {
	if err := l.LogStore.Append(entries); err != nil {
		return err
	}
	var bytes uint64
	for _, e := range entries {
		bytes += e.Size()
	}
	l.unsynced.Add(int64(len(entries)))
	l.m.appendedEntries.Add(float64(len(entries)))
	l.m.appendedBytes.Add(float64(bytes))
	return nil
}

func (l *logStore) Sync() error {
	n := l.unsynced.Swap(0)
	t0 := time.Now()
	err := l.LogStore.Sync()
	if err == nil {
		l.m.fsyncSeconds.Observe(time.Since(t0).Seconds())
		l.m.fsyncEntries.Observe(float64(n))
	}
	return err
}

// StateMachine returns sm measured: snapshots built (Snapshot) and
// restored (Restore) are counted, with their bytes and duration. It
// changes nothing of sm's behaviour or errors.
func (s *Server) StateMachine(sm ports.StateMachine) ports.StateMachine {
	return &stateMachine{StateMachine: sm, m: s.storage}
}

type stateMachine struct {
	ports.StateMachine
	m *storageMetrics
}

var _ ports.StateMachine = (*stateMachine)(nil)

func (sm *stateMachine) Snapshot(w io.Writer) (domain.SnapshotMeta, error) {
	cw := &countingWriter{w: w}
	t0 := time.Now()
	meta, err := sm.StateMachine.Snapshot(cw)
	sm.m.snapshotDone("build", t0, cw.n, err)
	return meta, err
}

func (sm *stateMachine) Restore(meta domain.SnapshotMeta, r io.Reader) error {
	cr := &countingReader{r: r}
	t0 := time.Now()
	err := sm.StateMachine.Restore(meta, cr)
	sm.m.snapshotDone("restore", t0, cr.n, err)
	return err
}

func (m *storageMetrics) snapshotDone(op string, t0 time.Time, n int64, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.snapshots.WithLabelValues(op, result).Inc()
	m.snapshotBytes.WithLabelValues(op).Add(float64(n))
	if err == nil {
		m.snapshotSeconds.WithLabelValues(op).Observe(time.Since(t0).Seconds())
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

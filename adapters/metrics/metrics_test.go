package metrics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

func leaderStatus() ports.KVStatus {
	return ports.KVStatus{ID: 1, Role: "leader", Leader: 1, Term: 5, Commit: 90, Applied: 88, LastIndex: 100,
		Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}}}
}

// scrape fetches path from h and returns the status code and body.
func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// families parses the exposition with Prometheus' own parser.
func families(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := scrape(t, s.Handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", code, body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (label=value pairs), failing if there is not exactly one.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d samples, want 1", name, want, len(found))
	}
	m := found[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected type %v", name, f.GetType())
	return 0
}

// sample is a metric's expected value: a gauge's or a counter's, or a
// histogram's count.
type sample struct {
	name   string
	labels []string
	want   float64
}

func expect(t *testing.T, fams map[string]*dto.MetricFamily, samples []sample) {
	t.Helper()
	for _, c := range samples {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

func TestStatusMetrics(t *testing.T) {
	s, err := New(Options{
		Status: leaderStatus,
		Replication: func() Replication {
			return Replication{FirstIndex: 41, Peers: []Peer{{ID: 1, Match: 100, Active: true}, {ID: 2, Match: 97, Active: true}, {ID: 3, Match: 40}},
				ReadRounds: 12, ReadRoundsConfirmed: 11, LeaseReads: 4}
		},
		DiskFull: func() bool { return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	fams := families(t, s)
	expect(t, fams, []sample{
		{"seshat_raft_node_id", nil, 1},
		{"seshat_raft_term", nil, 5},
		{"seshat_raft_leader_id", nil, 1},
		{"seshat_raft_role", []string{"role", "leader"}, 1},
		{"seshat_raft_role", []string{"role", "follower"}, 0},
		{"seshat_raft_role", []string{"role", "candidate"}, 0},
		{"seshat_raft_role", []string{"role", "pre-candidate"}, 0},
		{"seshat_raft_commit_index", nil, 90},
		{"seshat_raft_applied_index", nil, 88},
		{"seshat_raft_log_last_index", nil, 100},
		{"seshat_raft_log_first_index", nil, 41},
		{"seshat_raft_log_entries", nil, 60},
		{"seshat_raft_voters", nil, 3},
		{"seshat_raft_learners", nil, 0},
		{"seshat_raft_peer_match_index", []string{"peer", "2"}, 97},
		{"seshat_raft_peer_lag_entries", []string{"peer", "2"}, 3},
		{"seshat_raft_peer_match_index", []string{"peer", "3"}, 40},
		{"seshat_raft_peer_lag_entries", []string{"peer", "3"}, 60},
		{"seshat_raft_peer_active", []string{"peer", "3"}, 0},
		{"seshat_raft_read_rounds_total", []string{"outcome", "started"}, 12},
		{"seshat_raft_read_rounds_total", []string{"outcome", "confirmed"}, 11},
		{"seshat_raft_lease_reads_total", nil, 4},
		{"seshat_storage_disk_full", nil, 1},
	})
	// The leader itself is not its own peer.
	if n := len(fams["seshat_raft_peer_match_index"].Metric); n != 2 {
		t.Errorf("seshat_raft_peer_match_index has %d samples, want 2 (the followers)", n)
	}
	// The runtime's collectors are there too.
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

func TestClientMetrics(t *testing.T) {
	bounds := []float64{0.001, 0.01, 0.1}
	s, err := New(Options{
		Status: leaderStatus,
		Clients: func() ports.ClientStats {
			return ports.ClientStats{
				Connections: 3, ConnectionsTotal: 7, LatencyBounds: bounds,
				Commands: []ports.CommandStats{
					{Name: "get", Calls: 6, Buckets: []uint64{4, 1, 0, 1}, Sum: 2 * time.Second},
					{Name: ports.OtherCommand, Calls: 2, Buckets: []uint64{2, 0, 0, 0}, Sum: time.Millisecond},
				},
				Errors: map[string]uint64{"CLUSTERDOWN": 2, "MOVED": 5},
				Reads:  ports.Outcomes{OK: 10, Failed: 1}, Writes: ports.Outcomes{OK: 20, Failed: 6},
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fams := families(t, s)
	expect(t, fams, []sample{
		{"seshat_client_connections", nil, 3},
		{"seshat_client_connections_accepted_total", nil, 7},
		{"seshat_commands_total", []string{"command", "get"}, 6},
		{"seshat_commands_total", []string{"command", "other"}, 2},
		{"seshat_command_duration_seconds", []string{"command", "get"}, 6},
		{"seshat_client_errors_total", []string{"kind", "CLUSTERDOWN"}, 2},
		{"seshat_client_errors_total", []string{"kind", "MOVED"}, 5},
		{"seshat_requests_total", []string{"type", "read", "outcome", "ok"}, 10},
		{"seshat_requests_total", []string{"type", "read", "outcome", "error"}, 1},
		{"seshat_requests_total", []string{"type", "write", "outcome", "ok"}, 20},
		{"seshat_requests_total", []string{"type", "write", "outcome", "error"}, 6},
	})
	// The buckets are cumulative in the exposition, +Inf last.
	for _, m := range fams["seshat_command_duration_seconds"].Metric {
		if m.Label[0].GetValue() != "get" {
			continue
		}
		var got []uint64
		for _, b := range m.Histogram.Bucket {
			got = append(got, b.GetCumulativeCount())
		}
		if d := cmp.Diff([]uint64{4, 5, 5, 6}, got); d != "" {
			t.Errorf("get's buckets (-want +got):\n%s", d)
		}
		if m.Histogram.GetSampleSum() != 2 {
			t.Errorf("get's sum = %v, want 2", m.Histogram.GetSampleSum())
		}
	}
}

func TestHealthz(t *testing.T) {
	var storageErr error
	s, err := New(Options{Status: leaderStatus, Health: func() error { return storageErr }})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := scrape(t, s.Handler(), "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}
	storageErr = errors.New("pebble: storage failed earlier")
	if code, body := scrape(t, s.Handler(), "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "storage failed earlier") {
		t.Errorf("/healthz with a failed storage = %d %q, want 503 with the reason", code, body)
	}
}

func TestReadyz(t *testing.T) {
	for _, c := range []struct {
		name     string
		st       ports.KVStatus
		wantCode int
		wantBody string
	}{
		{"leader caught up", leaderStatus(), 200, "ok"},
		{"follower caught up", ports.KVStatus{ID: 2, Role: "follower", Leader: 1, Term: 5, Commit: 1000, Applied: 1000}, 200, "ok"},
		{"no leader", ports.KVStatus{ID: 2, Role: "candidate", Term: 6, Commit: 10, Applied: 10}, 503, "no leader known (term 6)"},
		{"lag at the bound", ports.KVStatus{ID: 2, Role: "follower", Leader: 1, Commit: 1100, Applied: 100}, 200, "ok"},
		{"lag past the bound", ports.KVStatus{ID: 2, Role: "follower", Leader: 1, Commit: 1101, Applied: 100}, 503, "applied index 100 trails commit index 1101 by more than 1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(Options{Status: func() ports.KVStatus { return c.st }})
			if err != nil {
				t.Fatal(err)
			}
			code, body := scrape(t, s.Handler(), "/readyz")
			if code != c.wantCode || !strings.Contains(body, c.wantBody) {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, c.wantCode, c.wantBody)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without Status: no error")
	}
}

func entries(lo, hi domain.Index) []domain.Entry {
	var out []domain.Entry
	for i := lo; i < hi; i++ {
		out = append(out, domain.Entry{Index: i, Term: 1, Type: domain.EntryBlank, Data: []byte("xy")})
	}
	return out
}

func TestLogStoreMeasured(t *testing.T) {
	s, err := New(Options{Status: leaderStatus})
	if err != nil {
		t.Fatal(err)
	}
	ls := s.LogStore(memory.NewLogStore())
	for _, step := range []func() error{
		func() error { return ls.Append(entries(1, 4)) },
		ls.Sync,
		func() error { return ls.Append(entries(4, 9)) },
		ls.Sync,
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// A refused append changes nothing and is not counted.
	if err := ls.Append(entries(20, 21)); err == nil {
		t.Fatal("non-contiguous append accepted")
	}
	if last, err := ls.LastIndex(); err != nil || last != 8 {
		t.Fatalf("LastIndex = %d, %v; want 8 (calls pass through)", last, err)
	}
	fams := families(t, s)
	if got := value(t, fams, "seshat_log_fsync_duration_seconds"); got != 2 {
		t.Errorf("fsyncs timed = %v, want 2", got)
	}
	if got := value(t, fams, "seshat_log_appended_entries_total"); got != 8 {
		t.Errorf("entries appended = %v, want 8", got)
	}
	if got := value(t, fams, "seshat_log_appended_bytes_total"); got != 8*26 {
		t.Errorf("bytes appended = %v, want %d", got, 8*26)
	}
	h := fams["seshat_log_fsync_entries"].Metric[0].Histogram
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 8 {
		t.Errorf("entries per fsync: %d syncs, %v entries; want 2 syncs of 8 entries in all", h.GetSampleCount(), h.GetSampleSum())
	}
}

func TestStateMachineMeasured(t *testing.T) {
	s, err := New(Options{Status: leaderStatus})
	if err != nil {
		t.Fatal(err)
	}
	src := s.StateMachine(memory.NewKV())
	if _, err := src.Apply(entries(1, 4)); err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	meta, err := src.Snapshot(&img)
	if err != nil {
		t.Fatal(err)
	}
	dst := s.StateMachine(memory.NewKV())
	if err := dst.Restore(meta, bytes.NewReader(img.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, err := dst.Applied(); err != nil || got.Index != 3 {
		t.Fatalf("restored Applied = %v, %v; want index 3", got, err)
	}
	if err := dst.Restore(meta, bytes.NewReader(img.Bytes()[:img.Len()/2])); err == nil {
		t.Fatal("a truncated image restored without error")
	}
	fams := families(t, s)
	expect(t, fams, []sample{
		{"seshat_snapshots_total", []string{"op", "build", "result", "ok"}, 1},
		{"seshat_snapshots_total", []string{"op", "restore", "result", "ok"}, 1},
		{"seshat_snapshots_total", []string{"op", "restore", "result", "error"}, 1},
		{"seshat_snapshot_bytes_total", []string{"op", "build"}, float64(img.Len())},
		{"seshat_snapshot_duration_seconds", []string{"op", "build"}, 1},
		{"seshat_snapshot_duration_seconds", []string{"op", "restore"}, 1},
	})
	// The restore read the whole image once, and part of it the second time.
	if got := value(t, fams, "seshat_snapshot_bytes_total", "op", "restore"); got < float64(img.Len()) || got > float64(img.Len()+img.Len()/2) {
		t.Errorf("restore bytes = %v, want between %d and %d", got, img.Len(), img.Len()+img.Len()/2)
	}
}

func TestRaftCalls(t *testing.T) {
	s, err := New(Options{Status: leaderStatus})
	if err != nil {
		t.Fatal(err)
	}
	s.Proposed(3, 2*time.Millisecond, nil)
	s.Proposed(5, time.Millisecond, nil)
	s.Proposed(1, time.Second, fmt.Errorf("node: %w", domain.ErrLeadershipLost))
	s.Proposed(2, time.Second, context.DeadlineExceeded)
	s.Proposed(1, time.Second, errors.New("something new"))
	s.ReadIndexed(time.Millisecond, nil)
	s.ReadIndexed(time.Second, domain.ErrNoLeader)
	fams := families(t, s)
	expect(t, fams, []sample{
		{"seshat_proposals_total", []string{"outcome", "ok"}, 2},
		{"seshat_proposals_total", []string{"outcome", "leadership_lost"}, 1},
		{"seshat_proposals_total", []string{"outcome", "timeout"}, 1},
		{"seshat_proposals_total", []string{"outcome", "error"}, 1},
		{"seshat_proposed_commands_total", nil, 12},
		{"seshat_proposal_duration_seconds", nil, 2},
		{"seshat_read_index_requests_total", []string{"outcome", "ok"}, 1},
		{"seshat_read_index_requests_total", []string{"outcome", "no_leader"}, 1},
		{"seshat_read_index_duration_seconds", nil, 1},
	})
	if got := fams["seshat_proposal_duration_seconds"].Metric[0].Histogram.GetSampleSum(); got != 0.003 {
		t.Errorf("proposal seconds sum = %v, want 0.003 (successes only)", got)
	}
}

// TestLint runs promtool's lint (promlint, the same checks as
// `promtool check metrics`) over an exposition where every metric family
// of the adapter has a sample.
func TestLint(t *testing.T) {
	s, err := New(Options{
		Status:      leaderStatus,
		Replication: func() Replication { return Replication{FirstIndex: 1, Peers: []Peer{{ID: 2, Match: 3}}} },
		DiskFull:    func() bool { return false },
		Clients: func() ports.ClientStats {
			return ports.ClientStats{LatencyBounds: []float64{1},
				Commands: []ports.CommandStats{{Name: "get", Calls: 1, Buckets: []uint64{1, 0}}},
				Errors:   map[string]uint64{"MOVED": 1}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Proposed(1, time.Millisecond, nil)
	s.ReadIndexed(time.Millisecond, nil)
	ls := s.LogStore(memory.NewLogStore())
	if err := ls.Append(entries(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := ls.Sync(); err != nil {
		t.Fatal(err)
	}
	var img bytes.Buffer
	if _, err := s.StateMachine(memory.NewKV()).Snapshot(&img); err != nil {
		t.Fatal(err)
	}
	_, body := scrape(t, s.Handler(), "/metrics")
	problems, err := promlint.New(strings.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	if n := strings.Count(body, "\n# TYPE seshat_"); n < 33 {
		t.Errorf("only %d seshat_ families linted: %s", n, body)
	}
}

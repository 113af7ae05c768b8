package resp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

func TestStats(t *testing.T) {
	kv := newFakeKV()
	srv, err := New(kv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	s := dial(t, ln.Addr().String())
	failWith := func(err error) {
		kv.mu.Lock()
		kv.fail = err
		kv.mu.Unlock()
	}

	s.expect("+OK\r\n", "SET", "a", "1")
	s.expect("$1\r\n1\r\n", "GET", "a")
	s.expect("+OK\r\n", "SET", "s", "x")
	s.expect("-ERR value is not an integer or out of range\r\n", "INCR", "s")
	s.expect("-ERR unknown command 'NOSUCH', with args beginning with: \r\n", "NOSUCH")
	failWith(domain.ErrNoLeader)
	s.expect("-CLUSTERDOWN No raft leader\r\n", "GET", "a")
	failWith(&ports.RedirectError{Leader: 1, Addr: "h:1"})
	s.expect("-MOVED 0 h:1\r\n", "SET", "a", "2")
	failWith(domain.ErrDiskFull)
	s.expect("-MISCONF disk full on the leader, writes refused until space returns: "+domain.ErrDiskFull.Error()+"\r\n", "SET", "a", "3")
	failWith(nil)

	st := srv.Stats()
	if st.Connections != 1 || st.ConnectionsTotal != 1 {
		t.Errorf("connections %d, accepted %d; want 1, 1", st.Connections, st.ConnectionsTotal)
	}
	if d := cmp.Diff(map[string]uint64{"ERR": 1, "CLUSTERDOWN": 1, "MOVED": 1, "MISCONF": 1}, st.Errors); d != "" {
		t.Errorf("errors by kind (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ports.Outcomes{OK: 1, Failed: 1}, st.Reads); d != "" {
		t.Errorf("reads (-want +got):\n%s", d)
	}
	if d := cmp.Diff(ports.Outcomes{OK: 2, Failed: 3}, st.Writes); d != "" {
		t.Errorf("writes (-want +got):\n%s", d)
	}
	calls := map[string]uint64{}
	for _, c := range st.Commands {
		calls[c.Name] = c.Calls
		var answered uint64
		for _, n := range c.Buckets {
			answered += n
		}
		if answered != c.Calls || len(c.Buckets) != len(st.LatencyBounds)+1 {
			t.Errorf("%s: %d calls, %d in %d latency buckets; want every call in %d buckets",
				c.Name, c.Calls, answered, len(c.Buckets), len(st.LatencyBounds)+1)
		}
	}
	if d := cmp.Diff(map[string]uint64{"set": 4, "get": 2, "incr": 1, ports.OtherCommand: 1}, calls); d != "" {
		t.Errorf("calls by command (-want +got):\n%s", d)
	}

	// INFO errorstats shows the same counts, and CONFIG RESETSTAT zeroes
	// them all.
	info := s.do("INFO", "errorstats")
	for _, want := range []string{"errorstat_CLUSTERDOWN:count=1\r\n", "errorstat_MOVED:count=1\r\n", "errorstat_MISCONF:count=1\r\n", "errorstat_ERR:count=1\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO errorstats lacks %q: %q", want, info)
		}
	}
	s.expect("+OK\r\n", "CONFIG", "RESETSTAT")
	st = srv.Stats()
	if len(st.Errors) != 0 || st.Reads != (ports.Outcomes{}) || st.Writes != (ports.Outcomes{}) {
		t.Errorf("after RESETSTAT: errors %v reads %v writes %v; want none", st.Errors, st.Reads, st.Writes)
	}
	for _, c := range st.Commands {
		if c.Name != "config" {
			t.Errorf("after RESETSTAT: %s still counted (%d calls)", c.Name, c.Calls)
		}
	}
}

func TestErrorKind(t *testing.T) {
	for text, want := range map[string]string{
		"MOVED 0 h:1":                "MOVED",
		"CLUSTERDOWN No raft leader": "CLUSTERDOWN",
		"TIMEOUT write outcome":      "TIMEOUT",
		"ERR syntax error":           "ERR",
		"WRONGTYPE Operation":        "WRONGTYPE",
		"BUSYKEY Target key":         ports.OtherError,
		"":                           ports.OtherError,
	} {
		if got := errorKinds[errorKind(text)]; got != want {
			t.Errorf("errorKind(%q) = %q, want %q", text, got, want)
		}
	}
}

// BenchmarkStatsPerCommand is what the counters add to each key-value
// command: its latency observed and its reply's outcome counted.
func BenchmarkStatsPerCommand(b *testing.B) {
	srv, err := New(newFakeKV(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	stat := srv.cmdStats["get"]
	req := ports.Request{Call: domain.Call{Args: [][]byte{[]byte("GET"), []byte("k")}}}
	reply := ports.Reply{Value: domain.StringReply("v")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		srv.observe(stat, time.Duration(i%5000)*time.Microsecond)
		srv.countReply(req, reply)
	}
}

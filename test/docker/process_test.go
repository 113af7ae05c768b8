package docker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/test/spawn"
)

// startProcesses runs a 3-node cluster of seshatd processes on loopback
// ports, with metrics and JSON logs, and returns the nodes and the paths
// of their logs.
func startProcesses(t *testing.T) ([]node, []string) {
	t.Helper()
	bin, err := spawn.BuildSeshatd("", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	ports, err := spawn.FreePorts(9)
	if err != nil {
		t.Fatal(err)
	}
	var peers, clients []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ports[3*i+1]))
		clients = append(clients, fmt.Sprintf("%d=127.0.0.1:%d", i+1, ports[3*i]))
	}
	var nodes []node
	var logs []string
	uuid := datadir.NewUUID()
	for i := range 3 {
		n := node{service: fmt.Sprintf("seshat%d", i+1), port: ports[3*i], mport: ports[3*i+2]}
		logPath := filepath.Join(t.TempDir(), n.service+".log")
		log, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--id", strconv.Itoa(i+1), "--data-dir", t.TempDir(),
			"--listen", fmt.Sprintf("127.0.0.1:%d", n.port), "--metrics-listen", fmt.Sprintf("127.0.0.1:%d", n.mport),
			"--cluster", strings.Join(peers, ","), "--clients", strings.Join(clients, ","), "--log-format", "json",
			"--bootstrap", "--cluster-uuid", uuid)
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			_ = log.Close()
			if b, _ := os.ReadFile(logPath); t.Failed() {
				t.Logf("%s's log:\n%s", n.service, b)
			}
		})
		nodes, logs = append(nodes, n), append(logs, logPath)
	}
	return nodes, logs
}

// checkJSONLog checks that every line of a node's log is a JSON object
// with each key once and node equal to id.
func checkJSONLog(t *testing.T, log string, id int) {
	t.Helper()
	// The node still runs: a last line may be half written.
	log = log[:strings.LastIndexByte(log, '\n')+1]
	sc := bufio.NewScanner(strings.NewReader(log))
	lines := 0
	for sc.Scan() {
		lines++
		line := sc.Text()
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("log line is not a JSON object: %s", line)
		}
		keys := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("log line: %v: %s", err, line)
			}
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("log line: %v: %s", err, line)
			}
			key := k.(string)
			if keys[key] {
				t.Errorf("log line has %q twice: %s", key, line)
			}
			keys[key] = true
			if key == "node" && v != float64(id) {
				t.Errorf("node %d logged node %v: %s", id, v, line)
			}
		}
		for _, want := range []string{"time", "level", "message", "node"} {
			if !keys[want] {
				t.Errorf("log line lacks %q: %s", want, line)
			}
		}
	}
	if lines == 0 {
		t.Errorf("node %d logged nothing", id)
	}
}

// TestMetricsOfProcesses checks the metrics server on plain seshatd
// processes, so that it is tested where Docker is not: each node's
// /metrics agrees with its INFO, the leader reports both followers caught
// up, /healthz and /readyz answer 200, and the JSON logs carry node once
// on every line.
func TestMetricsOfProcesses(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli is not installed (Debian's redis-tools)")
	}
	nodes, logs := startProcesses(t)
	leader := waitLeader(t, nodes, 30*time.Second)
	write(t, nodes[0], 0, 50)
	readAll(t, nodes[2], 50)

	for _, n := range nodes {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body, err := scrape(n, path); err != nil || code != http.StatusOK {
				t.Errorf("%s %s = %d %q %v, want 200", n.service, path, code, body, err)
			}
		}
		fams := metricsAgree(t, n)
		if n.service != "seshat"+leader {
			continue
		}
		// The leader sees both followers; they catch up with its log.
		deadline := time.Now().Add(10 * time.Second)
		for {
			last := gauge(fams, "seshat_raft_log_last_index")
			var matches []string
			for _, m := range fams["seshat_raft_peer_match_index"].GetMetric() {
				matches = append(matches, strconv.FormatFloat(m.Gauge.GetValue(), 'f', -1, 64))
			}
			if len(matches) == 2 && matches[0] == last && matches[1] == last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("leader's followers' match index %v, want 2 at its last index %s", matches, last)
			}
			time.Sleep(100 * time.Millisecond)
			fams = metricsAgree(t, n)
		}
	}
	for i, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		checkJSONLog(t, string(b), i+1)
	}
}

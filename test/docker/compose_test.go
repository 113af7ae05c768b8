package docker

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/test/spawn"
)

// composeFile is the file README tells operators to run.
var composeFile = filepath.Join("..", "..", "cmd", "seshatd", "docker-compose.yml")

// node is one service of the compose cluster, seen from the host.
type node struct {
	service     string
	port, mport int // published client and metrics ports
}

// cluster is a compose project the test started.
type cluster struct {
	t       *testing.T
	project string
	env     []string
	nodes   []node
}

// requireDocker skips the test where it cannot run, saying why.
func requireDocker(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"docker", "docker-compose", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the container test needs Docker, docker-compose and redis-cli", tool)
		}
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("the Docker daemon does not answer (%v): %s", err, bytes.TrimSpace(out))
	}
}

func run(t *testing.T, env []string, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// mustRun is run, failing the test on an error.
func mustRun(t *testing.T, env []string, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, env, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// buildImage builds the image with the script behind `make image`, under
// a tag of this run's own, removed at the end.
func buildImage(t *testing.T, tag string) {
	t.Helper()
	start := time.Now()
	script := filepath.Join("..", "..", "cmd", "seshatd", "image.sh")
	t.Cleanup(func() {
		// Removing the tag removes its layers: nothing dangles.
		if out, err := exec.Command("docker", "rmi", "-f", tag).CombinedOutput(); err != nil {
			t.Logf("docker rmi %s: %v: %s", tag, err, out)
		}
	})
	mustRun(t, nil, "", script, tag, "test")
	user := mustRun(t, nil, "", "docker", "image", "inspect", "--format", "{{.Config.User}}", tag)
	if strings.TrimSpace(user) != "10001:10001" {
		t.Fatalf("image user %q, want the numeric non-root 10001:10001", user)
	}
	t.Logf("image %s built in %v", tag, time.Since(start).Round(time.Millisecond))
}

// startCluster runs the compose file as project, on free loopback ports.
func startCluster(t *testing.T, project, image string) *cluster {
	t.Helper()
	ports, err := spawn.FreePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, project: project, env: []string{"SESHAT_IMAGE=" + image, "SESHAT_CLUSTER_UUID=" + datadir.NewUUID()}}
	for i := range 3 {
		n := node{service: fmt.Sprintf("seshat%d", i+1), port: ports[2*i], mport: ports[2*i+1]}
		c.nodes = append(c.nodes, n)
		c.env = append(c.env, fmt.Sprintf("SESHAT%d_PORT=%d", i+1, n.port), fmt.Sprintf("SESHAT%d_METRICS_PORT=%d", i+1, n.mport))
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.compose("logs", "--no-color", "--tail", "30")
			t.Logf("logs of the cluster:\n%s", out)
		}
		if out, err := c.compose("down", "-v", "--remove-orphans", "--timeout", "2"); err != nil {
			t.Logf("docker-compose down: %v: %s", err, out)
		}
	})
	c.mustCompose("up", "-d", "--no-build")
	return c
}

func (c *cluster) mustCompose(args ...string) string {
	c.t.Helper()
	return mustRun(c.t, c.env, "", "docker-compose", append([]string{"-p", c.project, "-f", composeFile}, args...)...)
}

func (c *cluster) compose(args ...string) (string, error) {
	return run(c.t, c.env, "", "docker-compose", append([]string{"-p", c.project, "-f", composeFile}, args...)...)
}

// container returns the id of n's container. It asks docker rather than
// docker-compose, whose every start costs seconds on a loaded machine.
func (c *cluster) container(n node) string {
	id := strings.TrimSpace(mustRun(c.t, nil, "", "docker", "ps", "-aq",
		"--filter", "label=com.docker.compose.project="+c.project,
		"--filter", "label=com.docker.compose.service="+n.service))
	if id == "" || strings.Contains(id, "\n") {
		c.t.Fatalf("container of %s: %q, want one id", n.service, id)
	}
	return id
}

// cli runs redis-cli against n, with stdin as commands if not empty.
func cli(t *testing.T, n node, stdin string, args ...string) (string, error) {
	return run(t, nil, stdin, "redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(n.port)}, args...)...)
}

func mustCli(t *testing.T, n node, stdin string, args ...string) string {
	t.Helper()
	out, err := cli(t, n, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// info returns INFO replication's fields on n.
func info(t *testing.T, n node) (map[string]string, error) {
	out, err := cli(t, n, "", "info", "replication")
	if err != nil {
		return nil, err
	}
	f := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	return f, nil
}

// waitLeader waits until every node of nodes names the same leader in
// the same term, and returns that leader's id.
func waitLeader(t *testing.T, nodes []node, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var seen []string
	for time.Now().Before(deadline) {
		seen = seen[:0]
		views := map[string]bool{}
		leader, answered := "", 0
		for _, n := range nodes {
			f, err := info(t, n)
			if err != nil { // not up yet: a container just started
				seen = append(seen, err.Error())
				continue
			}
			answered++
			leader = f["leader"]
			views[f["leader"]+"/"+f["term"]] = true
			seen = append(seen, n.service+" leader="+f["leader"]+" term="+f["term"])
		}
		if answered == len(nodes) && len(views) == 1 && leader != "0" && leader != "" {
			return leader
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no agreed leader within %v: %v", within, seen)
	return ""
}

// write sets key:i to val:i for i in [lo, hi) through n, in one redis-cli
// session, and checks every reply.
func write(t *testing.T, n node, lo, hi int) {
	t.Helper()
	var cmds strings.Builder
	for i := lo; i < hi; i++ {
		fmt.Fprintf(&cmds, "SET key:%d val:%d\n", i, i)
	}
	out := mustCli(t, n, cmds.String())
	if got := strings.Count(out, "OK"); got != hi-lo {
		t.Fatalf("SET key:%d..%d through %s: %d OK, want %d:\n%s", lo, hi-1, n.service, got, hi-lo, out)
	}
}

// readAll checks that n answers every key:i in [0, hi) with val:i.
func readAll(t *testing.T, n node, hi int) {
	t.Helper()
	var cmds strings.Builder
	for i := range hi {
		fmt.Fprintf(&cmds, "GET key:%d\n", i)
	}
	lines := strings.Fields(mustCli(t, n, cmds.String()))
	if len(lines) != hi {
		t.Fatalf("GET key:0..%d through %s: %d replies, want %d: %v", hi-1, n.service, len(lines), hi, lines)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("val:%d", i); l != want {
			t.Fatalf("GET key:%d through %s = %q, want %q", i, n.service, l, want)
		}
	}
}

// scrape fetches path from n's metrics port.
func scrape(n node, path string) (int, string, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.mport, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// gauge returns an unlabelled gauge of the exposition as INFO writes it.
func gauge(fams map[string]*dto.MetricFamily, name string) string {
	f := fams[name]
	if f == nil || len(f.Metric) != 1 || f.Metric[0].Gauge == nil {
		return "missing"
	}
	return strconv.FormatFloat(f.Metric[0].Gauge.GetValue(), 'f', -1, 64)
}

// metricsAgree scrapes n's /metrics, parses it with Prometheus' parser,
// lints it as promtool does, and compares term, leader and commit index with INFO's. Both are read
// without a write in between, but a heartbeat may land between the two
// reads, so a mismatch is retried a few times before it fails. It
// returns the parsed exposition.
func metricsAgree(t *testing.T, n node) map[string]*dto.MetricFamily {
	t.Helper()
	var diff string
	for range 10 {
		code, body, err := scrape(n, "/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s /metrics: %d %v", n.service, code, err)
		}
		var p expfmt.TextParser
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s /metrics does not parse: %v", n.service, err)
		}
		// promtool check metrics' lint, in process (Debian's promtool
		// comes with the whole Prometheus server).
		problems, err := promlint.New(strings.NewReader(body)).Lint()
		if err != nil || len(problems) > 0 {
			t.Fatalf("%s /metrics: lint: %v %v", n.service, err, problems)
		}
		f, err := info(t, n)
		if err != nil {
			t.Fatal(err)
		}
		diff = ""
		for metric, field := range map[string]string{
			"seshat_raft_term":          "term",
			"seshat_raft_leader_id":     "leader",
			"seshat_raft_commit_index":  "commit_index",
			"seshat_raft_applied_index": "applied_index",
		} {
			if got := gauge(fams, metric); got != f[field] {
				diff += fmt.Sprintf(" %s=%s but INFO %s:%s;", metric, got, field, f[field])
			}
		}
		if fams["seshat_commands_total"] == nil || fams["seshat_log_fsync_duration_seconds"] == nil {
			t.Fatalf("%s /metrics lacks the command or fsync metrics", n.service)
		}
		if diff == "" {
			return fams
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: /metrics disagrees with INFO:%s", n.service, diff)
	return nil
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestComposeCluster runs the compose file's 3-node cluster from a freshly
// built image: a write through one node is read through another, a
// leader stopped with docker stop hands over and exits cleanly, the
// restarted container has every key (those written while it was down
// too), each node's /metrics agrees with its INFO, and after the whole
// cluster is stopped and started every key is still there.
func TestComposeCluster(t *testing.T) {
	requireDocker(t)
	t.Parallel() // beside TestMetricsOfProcesses: no port, name or file shared
	start := time.Now()
	image := randomName("seshat-test:")
	buildImage(t, image)
	c := startCluster(t, randomName("seshattest"), image)

	leader := waitLeader(t, c.nodes, 30*time.Second)
	var follower, other node
	for _, n := range c.nodes {
		if n.service != "seshat"+leader && follower.service == "" {
			follower = n
		} else if n.service != "seshat"+leader {
			other = n
		}
	}
	// A write through a follower (forwarded to the leader inside the
	// compose network), read through the other follower.
	write(t, follower, 0, 100)
	readAll(t, other, 100)

	// docker stop the leader: SIGTERM, it hands over and exits 0.
	var stopped node
	for _, n := range c.nodes {
		if n.service == "seshat"+leader {
			stopped = n
		}
	}
	id := c.container(stopped)
	t0 := time.Now()
	mustRun(t, nil, "", "docker", "stop", "--time", "15", id)
	took := time.Since(t0)
	if code := strings.TrimSpace(mustRun(t, nil, "", "docker", "inspect", "--format", "{{.State.ExitCode}}", id)); code != "0" {
		t.Fatalf("docker stop of the leader: exit code %s after %v, want 0 (a clean shutdown)", code, took)
	}
	logs := mustRun(t, nil, "", "docker", "logs", id)
	if !strings.Contains(logs, `"message":"transferring leadership"`) || !strings.Contains(logs, `"message":"stopped"`) ||
		strings.Contains(logs, "hand-over failed") {
		t.Fatalf("the stopped leader did not hand over and stop cleanly:\n%s", logs)
	}
	t.Logf("docker stop of the leader took %v", took.Round(time.Millisecond))
	rest := []node{follower, other}
	if next := waitLeader(t, rest, 15*time.Second); next == leader {
		t.Fatalf("leader still %s after it stopped", next)
	}
	write(t, other, 100, 150)

	mustRun(t, nil, "", "docker", "start", id)
	waitLeader(t, c.nodes, 30*time.Second)
	readAll(t, stopped, 150)

	proposed := 0.0
	for _, n := range c.nodes {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body, err := scrape(n, path); err != nil || code != http.StatusOK {
				t.Errorf("%s %s = %d %q %v, want 200", n.service, path, code, body, err)
			}
		}
		fams := metricsAgree(t, n)
		if f := fams["seshat_proposals_total"]; f != nil {
			for _, m := range f.Metric {
				if m.Label[0].GetValue() == "ok" {
					proposed += m.Counter.GetValue()
				}
			}
		}
	}
	// The 50 writes made while the old leader was stopped were proposed
	// by the new one, which has not restarted since.
	if proposed < 50 {
		t.Errorf("successful proposals on the nodes' /metrics: %v, want at least 50", proposed)
	}

	// The whole cluster stopped and started again: nothing is left in
	// memory, every key comes back from the volumes.
	var ids []string
	for _, n := range c.nodes {
		ids = append(ids, c.container(n))
	}
	mustRun(t, nil, "", "docker", append([]string{"stop", "--time", "15"}, ids...)...)
	for i, n := range c.nodes {
		id := ids[i]
		if code := strings.TrimSpace(mustRun(t, nil, "", "docker", "inspect", "--format", "{{.State.ExitCode}}", id)); code != "0" {
			t.Fatalf("docker stop: %s exited %s, want 0", n.service, code)
		}
	}
	mustRun(t, nil, "", "docker", append([]string{"start"}, ids...)...)
	waitLeader(t, c.nodes, 30*time.Second)
	readAll(t, c.nodes[0], 150)
	t.Logf("whole test %v", time.Since(start).Round(time.Millisecond))
}

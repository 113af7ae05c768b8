// Package e2e runs real seshatd processes on loopback and talks to them
// with real Redis clients (go-redis, and redis-cli when installed).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/test/spawn"
)

// Timing of the test clusters: a tick of 10ms and an election timeout of
// 200-400ms.
const (
	tick          = 10 * time.Millisecond
	electionTicks = 20
	electionMax   = 2 * electionTicks * tick
)

var seshatd string // the binary, built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seshat-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// SESHAT_E2E_RACE=1 builds the daemon with the race detector.
	seshatd, err = spawn.BuildSeshatd("go", dir, os.Getenv("SESHAT_E2E_RACE") != "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := spawn.FreeAddrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, once done is closed
}

type cluster struct {
	t       *testing.T
	n       int
	dir     string
	clients []string // client addresses, index i is node i+1
	peers   []string
	extra   []string // extra flags for every node
	// nodeExtra, if set, gives one node's own extra flags (after extra).
	nodeExtra func(id int) []string
	// uuid is the cluster's UUID: each node's first start creates the
	// cluster with --bootstrap --cluster-uuid uuid, as run-local.sh does;
	// a restart passes neither.
	uuid    string
	created map[int]bool

	mu    sync.Mutex
	procs map[int]*proc
	logs  map[int]*os.File
	rdb   map[int]*redis.Client
}

func newCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	return newClusterWith(t, n, nil, extra...)
}

// newClusterWith is newCluster with flags of each node's own.
func newClusterWith(t *testing.T, n int, nodeExtra func(id int) []string, extra ...string) *cluster {
	t.Helper()
	addrs := freeAddrs(t, 2*n)
	c := &cluster{
		t: t, n: n, dir: t.TempDir(), clients: addrs[:n], peers: addrs[n:], extra: extra, nodeExtra: nodeExtra,
		procs: map[int]*proc{}, logs: map[int]*os.File{}, rdb: map[int]*redis.Client{},
		uuid: datadir.NewUUID(), created: map[int]bool{},
	}
	t.Cleanup(c.cleanup)
	for id := 1; id <= n; id++ {
		c.start(id)
	}
	return c
}

func (c *cluster) list(addrs []string) string {
	var parts []string
	for i, a := range addrs {
		parts = append(parts, fmt.Sprintf("%d=%s", i+1, a))
	}
	return strings.Join(parts, ",")
}

func (c *cluster) args(id int) []string {
	var own []string
	if c.nodeExtra != nil {
		own = c.nodeExtra(id)
	}
	return append(append([]string{
		"--id", strconv.Itoa(id),
		"--data-dir", filepath.Join(c.dir, strconv.Itoa(id)),
		"--listen", c.clients[id-1],
		"--cluster", c.list(c.peers),
		"--clients", c.list(c.clients),
		"--cluster-id", "e2e",
		"--tick", tick.String(),
		"--election-ticks", strconv.Itoa(electionTicks),
		"--heartbeat-ticks", "2",
		"--log-format", "console",
	}, c.extra...), own...)
}

// start starts node id and waits for its client port to accept.
func (c *cluster) start(id int) {
	c.t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	args := c.args(id)
	if !c.created[id] {
		args = append(args, "--bootstrap", "--cluster-uuid", c.uuid)
		c.created[id] = true
	}
	cmd := exec.Command(seshatd, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.procs[id], c.logs[id] = p, logf
	c.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.clients[id-1], 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-p.done:
			c.t.Fatalf("node %d exited at start: %v\n%s", id, p.err, c.logTail(id))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d: client port not open after 10s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *cluster) signal(id int, sig syscall.Signal) *proc {
	c.mu.Lock()
	p := c.procs[id]
	c.mu.Unlock()
	if p == nil {
		c.t.Fatalf("node %d is not running", id)
	}
	_ = p.cmd.Process.Signal(sig)
	return p
}

// kill SIGKILLs node id and waits for it to die.
func (c *cluster) kill(id int) {
	p := c.signal(id, syscall.SIGKILL)
	<-p.done
	c.forget(id)
}

func (c *cluster) forget(id int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.procs, id)
	if r := c.rdb[id]; r != nil {
		r.Close()
		delete(c.rdb, id)
	}
}

func (c *cluster) cleanup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	for _, r := range c.rdb {
		r.Close()
	}
	for _, f := range c.logs {
		f.Close()
	}
	for id := 1; id <= c.n; id++ {
		b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)))
		if bytes.Contains(b, []byte("WARNING: DATA RACE")) || bytes.Contains(b, []byte("panic:")) {
			c.t.Errorf("node %d's log shows a data race or a panic", id)
		}
	}
	if c.t.Failed() {
		for id := 1; id <= c.n; id++ {
			c.t.Logf("---- node %d log (tail) ----\n%s", id, c.logTail(id))
		}
	}
}

func (c *cluster) logTail(id int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)))
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// client returns a go-redis client of node id that never retries, so that
// every error is seen.
func (c *cluster) client(id int) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rdb[id]; r != nil {
		return r
	}
	r := redis.NewClient(&redis.Options{
		Addr:         c.clients[id-1],
		MaxRetries:   -1,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 5 * time.Second,
		PoolSize:     4,
	})
	c.rdb[id] = r
	return r
}

// info returns INFO replication's fields from node id.
func (c *cluster) info(ctx context.Context, id int) (map[string]string, error) {
	s, err := c.client(id).Info(ctx, "replication").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok {
			out[k] = v
		}
	}
	return out, nil
}

// leader waits until every running node named in ids agrees on one leader
// among them and returns it.
func (c *cluster) leader(timeout time.Duration, ids ...int) int {
	c.t.Helper()
	if len(ids) == 0 {
		for id := 1; id <= c.n; id++ {
			ids = append(ids, id)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		agreed := 0
		for _, id := range ids {
			inf, err := c.info(ctx, id)
			if err != nil {
				agreed = 0
				break
			}
			l, _ := strconv.Atoi(inf["leader"])
			if agreed == 0 {
				agreed = l
			}
			if l == 0 || l != agreed {
				agreed = 0
				break
			}
		}
		cancel()
		ok := false
		for _, id := range ids {
			ok = ok || id == agreed
		}
		if ok {
			return agreed
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no leader agreed on by nodes %v within %v", ids, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func others(n, not int) []int {
	var out []int
	for id := 1; id <= n; id++ {
		if id != not {
			out = append(out, id)
		}
	}
	return out
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// checkAll reads every key of want through node id.
func checkAll(t *testing.T, c *cluster, id int, want map[string]string) {
	t.Helper()
	ctx := ctxT(t, 20*time.Second)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	for len(keys) > 0 {
		n := min(len(keys), 200)
		vals, err := c.client(id).MGet(ctx, keys[:n]...).Result()
		if err != nil {
			t.Fatalf("node %d: MGET: %v", id, err)
		}
		for i, k := range keys[:n] {
			if s, _ := vals[i].(string); s != want[k] {
				t.Fatalf("node %d: %s = %v, want %q (acknowledged)", id, k, vals[i], want[k])
			}
		}
		keys = keys[n:]
	}
}

// writer writes keys prefix-0, prefix-1, ... through one node until stopped
// and records what was acknowledged and every error.
type writer struct {
	mu     sync.Mutex
	acked  map[string]string
	errs   []error
	lastOK time.Time
}

func (w *writer) run(ctx context.Context, r *redis.Client, prefix string, max int, pause time.Duration) {
	for i := 0; i < max && ctx.Err() == nil; i++ {
		k, v := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("v%d", i)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := r.Set(cctx, k, v, 0).Err()
		cancel()
		w.mu.Lock()
		if err == nil {
			w.acked[k] = v
			w.lastOK = time.Now()
		} else if ctx.Err() == nil {
			w.errs = append(w.errs, fmt.Errorf("SET %s: %w", k, err))
		}
		w.mu.Unlock()
		if pause > 0 {
			time.Sleep(pause)
		}
	}
}

func (w *writer) snapshot() (map[string]string, []error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]string, len(w.acked))
	for k, v := range w.acked {
		m[k] = v
	}
	return m, append([]error(nil), w.errs...)
}

func TestWritesThroughEveryNodeReadableEverywhere(t *testing.T) {
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	ctx := ctxT(t, 20*time.Second)
	want := map[string]string{}
	for id := 1; id <= 3; id++ {
		for i := range 20 {
			k, v := fmt.Sprintf("k%d-%d", id, i), fmt.Sprintf("value %d from node %d", i, id)
			if err := c.client(id).Set(ctx, k, v, 0).Err(); err != nil {
				t.Fatalf("node %d: SET %s: %v", id, k, err)
			}
			want[k] = v
		}
	}
	for id := 1; id <= 3; id++ {
		checkAll(t, c, id, want)
	}
	// The other key commands, through a follower.
	f := others(3, c.leader(5*time.Second))[0]
	r := c.client(f)
	if err := r.MSet(ctx, "a", "1", "b", "2").Err(); err != nil {
		t.Fatalf("MSET: %v", err)
	}
	if n, err := r.Exists(ctx, "a", "b", "nope", "a").Result(); err != nil || n != 3 {
		t.Fatalf("EXISTS a b nope a = %d, %v; want 3", n, err)
	}
	if n, err := r.Del(ctx, "a", "nope").Result(); err != nil || n != 1 {
		t.Fatalf("DEL a nope = %d, %v; want 1", n, err)
	}
	if _, err := r.Get(ctx, "a").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET a after DEL: %v, want nil", err)
	}
	if err := r.Set(ctx, "empty", "", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.client(1).Get(ctx, "empty").Result(); err != nil || v != "" {
		t.Fatalf("GET empty = %q, %v", v, err)
	}
}

func TestPipelineRepliesInOrder(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	for _, id := range []int{lead, others(3, lead)[0]} {
		ctx := ctxT(t, 30*time.Second)
		pipe := c.client(id).Pipeline()
		var sets []*redis.StatusCmd
		var gets []*redis.StringCmd
		for i := range 1000 {
			k := fmt.Sprintf("p%d-%d", id, i)
			sets = append(sets, pipe.Set(ctx, k, fmt.Sprintf("v%d", i), 0))
			gets = append(gets, pipe.Get(ctx, k))
		}
		miss := pipe.Get(ctx, fmt.Sprintf("p%d-missing", id))
		start := time.Now()
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatalf("node %d: pipeline: %v", id, err)
		}
		t.Logf("node %d: 2001 pipelined commands in %v", id, time.Since(start))
		for i := range 1000 {
			if err := sets[i].Err(); err != nil {
				t.Fatalf("node %d: SET %d: %v", id, i, err)
			}
			if v, err := gets[i].Result(); err != nil || v != fmt.Sprintf("v%d", i) {
				t.Fatalf("node %d: GET %d = %q, %v", id, i, v, err)
			}
		}
		if err := miss.Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("node %d: GET missing: %v, want nil", id, err)
		}
		// And the values are there for a later, separate read.
		if v, err := c.client(others(3, id)[0]).Get(ctx, fmt.Sprintf("p%d-999", id)).Result(); err != nil || v != "v999" {
			t.Fatalf("GET p%d-999 elsewhere = %q, %v", id, v, err)
		}
	}
}

func TestRedisErrorTexts(t *testing.T) {
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	ctx := ctxT(t, 10*time.Second)
	r := c.client(2)
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"foo", "a", "b"}, "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{[]any{"foo"}, "ERR unknown command 'foo', with args beginning with: "},
		{[]any{"get"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"GET", "a", "b"}, "ERR wrong number of arguments for 'get' command"},
		{[]any{"set", "k"}, "ERR wrong number of arguments for 'set' command"},
		{[]any{"mset", "a", "1", "b"}, "ERR wrong number of arguments for 'mset' command"},
		{[]any{"set", "k", "v", "bogus"}, "ERR syntax error"},
		{[]any{"set", "k", "v", "EX", "x"}, "ERR value is not an integer or out of range"},
		{[]any{"set", "k", "v", "EX", "0"}, "ERR invalid expire time in 'set' command"},
		{[]any{"set", "k", "v", "NX", "XX"}, "ERR syntax error"},
		{[]any{"select", "16"}, "ERR DB index is out of range"},
		{[]any{"hello", "4"}, "NOPROTO unsupported protocol version"},
		{[]any{"client", "nosuch"}, "ERR unknown subcommand 'nosuch'. Try CLIENT HELP."},
	} {
		err := r.Do(ctx, tc.args...).Err()
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: error %q, want %q", tc.args, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []any
		want any
	}{
		{[]any{"ping"}, "PONG"},
		{[]any{"echo", "hi"}, "hi"},
		{[]any{"select", "0"}, "OK"},
		{[]any{"client", "setname", "e2e"}, "OK"},
		{[]any{"client", "getname"}, "e2e"},
	} {
		got, err := r.Do(ctx, tc.args...).Result()
		if err != nil || got != tc.want {
			t.Errorf("%v = %v, %v; want %v", tc.args, got, err, tc.want)
		}
	}
	inf, err := r.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"# Server\r\n", "redis_version:", "# Clients\r\n", "connected_clients:", "# Replication\r\n", "role:", "term:", "commit_index:", "applied_index:", "# Keyspace\r\n"} {
		if !strings.Contains(inf, s) {
			t.Errorf("INFO lacks %q:\n%s", s, inf)
		}
	}
}

func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed")
	}
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	_, port, _ := net.SplitHostPort(c.clients[1])
	run := func(args ...string) string {
		out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "cli", "hello"); got != "OK" {
		t.Fatalf("SET = %q", got)
	}
	if got := run("GET", "cli"); got != "hello" {
		t.Fatalf("GET = %q", got)
	}
	if got := run("PING"); got != "PONG" {
		t.Fatalf("PING = %q", got)
	}
}

func TestKillLeaderNewLeaderNoAckedWriteLost(t *testing.T) {
	c := newCluster(t, 3)
	old := c.leader(10 * time.Second)
	follower := others(3, old)[0]
	ctx := ctxT(t, 60*time.Second)
	w := &writer{acked: map[string]string{}}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx, c.client(follower), "kl", 100000, 2*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	c.kill(old)
	killedAt := time.Now() // the leader is dead: any later ack is the new leader's
	newLead := c.leader(10*time.Second, others(3, old)...)
	// Writes resume within a few election timeouts.
	deadline := killedAt.Add(10 * electionMax)
	for {
		w.mu.Lock()
		resumed := w.lastOK.After(killedAt) && time.Since(killedAt) > 0
		w.mu.Unlock()
		if resumed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write acknowledged within %v of killing leader %d", 10*electionMax, old)
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.mu.Lock()
	t.Logf("leader %d killed; node %d leads; first write after %v", old, newLead, w.lastOK.Sub(killedAt))
	w.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	// The killed node restarts and catches up.
	c.start(old)
	time.Sleep(300 * time.Millisecond)
	stop()
	<-done
	acked, errs := w.snapshot()
	t.Logf("%d writes acknowledged, %d failed (around the kill)", len(acked), len(errs))
	for _, err := range errs {
		// An unknown outcome or no leader yet, in Redis's words; never a
		// silent retry and never anything else.
		if msg := errors.Unwrap(err).Error(); !strings.HasPrefix(msg, "TIMEOUT ") && !strings.HasPrefix(msg, "CLUSTERDOWN ") {
			t.Errorf("write failed with %q, want TIMEOUT or CLUSTERDOWN", msg)
		} else {
			t.Logf("failed write: %v", err)
		}
	}
	if len(acked) < 50 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	for id := 1; id <= 3; id++ {
		checkAll(t, c, id, acked)
	}
	// The restarted node's own state machine caught up: its applied index
	// reaches the leader's commit index.
	lead := c.leader(5 * time.Second)
	li, err := c.info(ctx, lead)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := strconv.ParseUint(li["commit_index"], 10, 64)
	for {
		oi, err := c.info(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := strconv.ParseUint(oi["applied_index"], 10, 64)
		if got >= want {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("restarted node %d applied %d, leader committed %d", old, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKillAllRestartKeepsAckedWrites(t *testing.T) {
	c := newCluster(t, 3)
	c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	acked := map[string]string{}
	for i := range 300 {
		id := i%3 + 1
		k, v := fmt.Sprintf("ka-%d", i), strings.Repeat("x", i%50)+strconv.Itoa(i)
		if err := c.client(id).Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatalf("node %d: SET %s: %v", id, k, err)
		}
		acked[k] = v
	}
	for id := 1; id <= 3; id++ {
		c.kill(id)
	}
	for id := 1; id <= 3; id++ {
		c.start(id)
	}
	c.leader(10 * time.Second)
	for id := 1; id <= 3; id++ {
		checkAll(t, c, id, acked)
	}
	// And the cluster takes writes again.
	if err := c.client(1).Set(ctx, "after", "restart", 0).Err(); err != nil {
		t.Fatalf("SET after restart: %v", err)
	}
}

func TestSigtermLeaderHandsOverWithoutFailedWrites(t *testing.T) {
	c := newCluster(t, 3)
	old := c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	// Clients write through both followers, which relay to the leader.
	ws := []*writer{{acked: map[string]string{}}, {acked: map[string]string{}}}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, id := range others(3, old) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ws[i].run(wctx, c.client(id), fmt.Sprintf("st%d", id), 100000, time.Millisecond)
		}()
	}
	time.Sleep(500 * time.Millisecond)
	p := c.signal(old, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("node %d did not exit within 15s of SIGTERM", old)
	}
	c.forget(old)
	if p.err != nil {
		t.Errorf("node %d exited with %v after SIGTERM, want status 0", old, p.err)
	}
	lead := c.leader(5*time.Second, others(3, old)...)
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	all := map[string]string{}
	for _, w := range ws {
		acked, errs := w.snapshot()
		for _, err := range errs {
			t.Errorf("a client saw a failed write during the hand-over: %v", err)
		}
		for k, v := range acked {
			all[k] = v
		}
	}
	t.Logf("leader %d stopped, node %d leads; %d writes, all acknowledged", old, lead, len(all))
	if !bytes.Contains([]byte(c.logTail(old)), []byte("transferring leadership")) {
		t.Errorf("node %d's log does not show a leadership transfer", old)
	}
	for _, id := range others(3, old) {
		checkAll(t, c, id, all)
	}
}

func TestBadConfigurationExitsWithOneLine(t *testing.T) {
	addrs := freeAddrs(t, 4)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	two := fmt.Sprintf("1=%s,2=%s", addrs[0], addrs[1])
	clients := fmt.Sprintf("1=%s,2=%s", addrs[2], addrs[3])
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"duplicate id", []string{"--id", "1", "--data-dir", dir, "--cluster", fmt.Sprintf("1=%s,1=%s", addrs[0], addrs[1]), "--clients", clients}, "appears twice"},
		{"own id missing", []string{"--id", "3", "--data-dir", dir, "--cluster", two, "--clients", clients}, "does not name this node's id 3"},
		{"client address in use", []string{"--id", "1", "--data-dir", dir, "--listen", busy.Addr().String(), "--cluster", two, "--clients", clients}, "address already in use"},
		{"peer address in use", []string{"--id", "1", "--data-dir", dir, "--listen", addrs[2], "--peer-listen", busy.Addr().String(), "--cluster", two, "--clients", clients}, "address already in use"},
		{"data dir is a file", []string{"--id", "1", "--data-dir", file, "--listen", addrs[2], "--cluster", two, "--clients", clients}, "data dir"},
		{"no clients", []string{"--id", "1", "--data-dir", dir, "--cluster", two}, "--clients is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(seshatd, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("exit: %v, want a non-zero status; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) {
				t.Fatalf("stderr %q: want one line containing %q", stderr.String(), tc.want)
			}
		})
	}
}

func TestRedirectAndClusterDown(t *testing.T) {
	c := newCluster(t, 3, "--redirect")
	lead := c.leader(10 * time.Second)
	f := others(3, lead)[0]
	ctx := ctxT(t, 20*time.Second)
	want := fmt.Sprintf("MOVED 0 %s", c.clients[lead-1])
	if err := c.client(f).Set(ctx, "r", "1", 0).Err(); err == nil || err.Error() != want {
		t.Fatalf("SET on follower %d with --redirect: %v, want %q", f, err, want)
	}
	if err := c.client(lead).Set(ctx, "r", "1", 0).Err(); err != nil {
		t.Fatalf("SET on the leader: %v", err)
	}
	// Reads are served by any node.
	if v, err := c.client(f).Get(ctx, "r").Result(); err != nil || v != "1" {
		t.Fatalf("GET on follower = %q, %v", v, err)
	}
	// Without a quorum there is no leader: after about one election
	// timeout of waiting, CLUSTERDOWN.
	for _, id := range others(3, f) {
		c.kill(id)
	}
	start := time.Now()
	var err error
	for time.Since(start) < 10*time.Second {
		if err = c.client(f).Set(ctx, "r", "2", 0).Err(); err != nil && err.Error() == "CLUSTERDOWN No raft leader" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err == nil || err.Error() != "CLUSTERDOWN No raft leader" {
		t.Fatalf("SET with no quorum: %v, want CLUSTERDOWN No raft leader", err)
	}
	t.Logf("CLUSTERDOWN after %v", time.Since(start))
	// A linearizable read cannot be served either.
	start = time.Now()
	if err := c.client(f).Get(ctx, "r").Err(); err == nil || err.Error() != "CLUSTERDOWN No raft leader" {
		t.Fatalf("GET with no quorum: %v, want CLUSTERDOWN No raft leader", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("GET with no quorum took %v", d)
	}
}

// TestRestartedNodeCatchesUpFromSnapshot: a follower that was down while
// the leader compacted past everything it has comes back, receives a
// snapshot, and serves every acknowledged write.
func TestRestartedNodeCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, "--snapshot-entries", "50", "--trailing-entries", "5")
	lead := c.leader(10 * time.Second)
	down := others(3, lead)[0]
	c.kill(down)
	ctx := ctxT(t, 60*time.Second)
	acked := map[string]string{}
	for i := range 400 {
		k, v := fmt.Sprintf("ks-%d", i), strconv.Itoa(i)
		if err := c.client(lead).Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		acked[k] = v
	}
	c.start(down)
	// Reads through the restarted node are linearizable (ReadIndex), so
	// they wait until it has caught up: they can only succeed once the
	// snapshot is in, since the leader's log no longer reaches back.
	checkAll(t, c, down, acked)
	if logs := c.logTail(down); !strings.Contains(logs, "snapshot received") {
		t.Fatalf("node %d caught up without a snapshot; its log:\n%s", down, logs)
	}
	inf, err := c.info(ctx, down)
	if err != nil {
		t.Fatal(err)
	}
	if applied, _ := strconv.Atoi(inf["applied_index"]); applied < 400 {
		t.Fatalf("node %d applied_index %d after catching up, want >= 400", down, applied)
	}
}

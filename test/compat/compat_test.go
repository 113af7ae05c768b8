package compat

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/adapters/datadir"
	"github.com/seshat-kv/seshat/test/spawn"
)

// Timing of the Seshat test cluster, as in test/e2e: a 10ms tick and an
// election timeout of 200-400ms.
const (
	tick          = 10 * time.Millisecond
	electionTicks = 20
	clients       = 3 // connections per side; on Seshat each on its own node
)

var (
	seshatd    string // the binary built by TestMain
	buildError string // why it did not build, if it did not
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seshat-compat-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if seshatd, err = spawn.BuildSeshatd("go", dir, false); err != nil {
		// Only the tests that need seshatd fail; the harness's own tests
		// still run.
		buildError = err.Error()
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ---- configuration from the environment ----

func seedFor(t *testing.T) uint64 {
	t.Helper()
	if s := os.Getenv("SESHAT_COMPAT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SESHAT_COMPAT_SEED=%q: %v", s, err)
		}
		return n
	}
	return rand.Uint64() >> 1
}

// historyLen is how many commands before a difference a failure shows
// (SESHAT_COMPAT_HISTORY, default 25).
var historyLen = func() int {
	if n, err := strconv.Atoi(os.Getenv("SESHAT_COMPAT_HISTORY")); err == nil && n > 0 {
		return n
	}
	return 25
}()

func opsFor(t *testing.T) int {
	t.Helper()
	if s := os.Getenv("SESHAT_COMPAT_OPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SESHAT_COMPAT_OPS=%q: not a positive integer", s)
		}
		return n
	}
	if testing.Short() {
		return 300
	}
	return 1500
}

// ---- differences.txt ----

// difference is one line of differences.txt. A pattern starting with '-'
// matches an error reply of the Seshat side; any other pattern matches a
// command name, or a command name and its first argument ("CONFIG GET").
// '*' in a pattern matches any run of characters; matching ignores case.
type difference struct {
	pattern, reason string
}

type differences []difference

func loadDifferences(t *testing.T) differences {
	t.Helper()
	b, err := os.ReadFile("differences.txt")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := parseDifferences(b)
	if err != nil {
		t.Fatalf("differences.txt: %v", err)
	}
	// SESHAT_COMPAT_MORE_DIFFERENCES names a file in the same format whose
	// entries are added: to look past a known bug while triaging, without
	// listing it here.
	if more := os.Getenv("SESHAT_COMPAT_MORE_DIFFERENCES"); more != "" {
		b, err := os.ReadFile(more)
		if err != nil {
			t.Fatal(err)
		}
		ds2, err := parseDifferences(b)
		if err != nil {
			t.Fatalf("%s: %v", more, err)
		}
		t.Logf("also ignoring the %d entries of %s", len(ds2), more)
		ds = append(ds, ds2...)
	}
	return ds
}

func parseDifferences(b []byte) (differences, error) {
	var ds differences
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, reason, ok := strings.Cut(line, "\t")
		pat, reason = strings.TrimSpace(pat), strings.TrimSpace(reason)
		if !ok || pat == "" || reason == "" {
			return nil, fmt.Errorf("line %d: want pattern<TAB>reason, got %q", n, line)
		}
		ds = append(ds, difference{pat, reason})
	}
	return ds, sc.Err()
}

// command returns the entry matching the command args, if any.
func (ds differences) command(args []string) (difference, bool) {
	name := strings.ToUpper(args[0])
	withSub := name
	if len(args) > 1 {
		withSub += " " + strings.ToUpper(args[1])
	}
	for _, d := range ds {
		if d.pattern[0] != '-' && (glob(strings.ToUpper(d.pattern), name) || glob(strings.ToUpper(d.pattern), withSub)) {
			return d, true
		}
	}
	return difference{}, false
}

// reply returns the entry matching the error reply v, if any.
func (ds differences) reply(v Value) (difference, bool) {
	if v.Type != '-' {
		return difference{}, false
	}
	for _, d := range ds {
		if d.pattern[0] == '-' && glob(strings.ToUpper(d.pattern[1:]), strings.ToUpper(v.Str)) {
			return d, true
		}
	}
	return difference{}, false
}

// glob matches s against pattern, where '*' matches any run of bytes.
func glob(pattern, s string) bool {
	star := strings.IndexByte(pattern, '*')
	if star < 0 {
		return pattern == s
	}
	if !strings.HasPrefix(s, pattern[:star]) {
		return false
	}
	s, pattern = s[star:], pattern[star+1:]
	for i := 0; i <= len(s); i++ {
		if glob(pattern, s[i:]) {
			return true
		}
	}
	return false
}

func TestDifferencesFile(t *testing.T) {
	ds := loadDifferences(t)
	if _, ok := ds.command([]string{"info", "replication"}); !ok {
		t.Error("INFO is not listed")
	}
	if _, ok := ds.command([]string{"GET", "k"}); ok {
		t.Error("GET is listed")
	}
	if _, ok := ds.reply(Value{Type: '-', Str: "CLUSTERDOWN No raft leader"}); !ok {
		t.Error("CLUSTERDOWN is not listed")
	}
	if _, ok := ds.reply(Value{Type: '-', Str: "ERR wrong number of arguments for 'get' command"}); ok {
		t.Error("an ordinary error is listed")
	}
	if _, err := parseDifferences([]byte("# c\nINFO no tab\n")); err == nil {
		t.Error("a line without a TAB was accepted")
	}
	for _, c := range []struct {
		p, s string
		ok   bool
	}{{"A*", "ABC", true}, {"*C", "ABC", true}, {"A*C*", "ABXC", true}, {"A*D", "ABC", false}, {"ABC", "ABC", true}, {"AB", "ABC", false}} {
		if glob(c.p, c.s) != c.ok {
			t.Errorf("glob(%q, %q) = %v", c.p, c.s, !c.ok)
		}
	}
}

// ---- servers ----

// freeAddrs returns n distinct free loopback addresses.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := spawn.FreeAddrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// A backend starts a server (or a cluster) for one test and returns the
// client addresses its connections are spread over.
type backend struct {
	name  string
	start func(t *testing.T) []string
}

var redisBackend = backend{"redis-server", func(t *testing.T) []string { return []string{startRedis(t)} }}

var seshatBackend = backend{"seshat", func(t *testing.T) []string {
	if s := os.Getenv("SESHAT_COMPAT_ADDRS"); s != "" {
		// An already running server or cluster (any RESP server): a
		// comma-separated list of client addresses.
		return strings.Split(s, ",")
	}
	return startSeshat(t, 3)
}}

func requireRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): nothing to compare with")
	}
	return path
}

// startRedis starts a redis-server without persistence, killed when the
// test ends, and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	path := requireRedis(t)
	addr := freeAddrs(t, 1)[0]
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "redis.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		logf.Close()
	})
	waitPort(t, addr, done, func() string { b, _ := os.ReadFile(logf.Name()); return string(b) })
	return addr
}

// waitPort waits until addr answers PING, or fails the test if the process
// behind it exits first or 10 s pass.
func waitPort(t *testing.T, addr string, exited <-chan struct{}, log func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := dial(addr); err == nil {
			v, err := c.Do("PING")
			c.Close()
			if err == nil && v.Type == '+' {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("server on %s exited at start:\n%s", addr, log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server on %s does not answer PING after 10s:\n%s", addr, log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startSeshat starts an n-node seshatd cluster on loopback, waits until
// every node names the same leader and returns the client addresses.
func startSeshat(t *testing.T, n int) []string {
	t.Helper()
	if buildError != "" {
		t.Fatalf("seshatd does not build, so the Seshat side cannot run:\n%s", buildError)
	}
	addrs := freeAddrs(t, 2*n)
	clientAddrs, peers := addrs[:n], addrs[n:]
	list := func(as []string) string {
		var parts []string
		for i, a := range as {
			parts = append(parts, fmt.Sprintf("%d=%s", i+1, a))
		}
		return strings.Join(parts, ",")
	}
	dir := t.TempDir()
	logPath := func(id int) string { return filepath.Join(dir, fmt.Sprintf("node%d.log", id)) }
	logTail := func(id int) string {
		b, _ := os.ReadFile(logPath(id))
		lines := strings.Split(string(b), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		return strings.Join(lines, "\n")
	}
	type proc struct {
		cmd  *exec.Cmd
		done chan struct{}
		log  *os.File
	}
	var procs []*proc
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
			<-p.done
			p.log.Close()
		}
		for id := 1; id <= n; id++ {
			b, _ := os.ReadFile(logPath(id))
			if bytes.Contains(b, []byte("panic:")) || bytes.Contains(b, []byte("WARNING: DATA RACE")) {
				t.Errorf("seshatd node %d's log shows a panic or a data race", id)
			}
		}
		if t.Failed() {
			for id := 1; id <= n; id++ {
				t.Logf("---- seshatd node %d log (tail) ----\n%s", id, logTail(id))
			}
		}
	})
	uuid := datadir.NewUUID()
	for id := 1; id <= n; id++ {
		logf, err := os.Create(logPath(id))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(seshatd,
			"--id", strconv.Itoa(id),
			"--data-dir", filepath.Join(dir, strconv.Itoa(id)),
			"--listen", clientAddrs[id-1],
			"--cluster", list(peers),
			"--clients", list(clientAddrs),
			"--cluster-id", "compat",
			"--bootstrap", "--cluster-uuid", uuid,
			"--tick", tick.String(),
			"--election-ticks", strconv.Itoa(electionTicks),
			"--heartbeat-ticks", "2",
			"--log-format", "console",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		p := &proc{cmd: cmd, done: make(chan struct{}), log: logf}
		go func() { _ = cmd.Wait(); close(p.done) }()
		procs = append(procs, p)
	}
	for id := 1; id <= n; id++ {
		waitPort(t, clientAddrs[id-1], procs[id-1].done, func() string { return logTail(id) })
	}
	waitLeader(t, clientAddrs)
	return clientAddrs
}

// waitLeader waits until INFO replication on every node shows the same
// leader (a "leader:" field that is not 0).
func waitLeader(t *testing.T, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for {
		agreed := ""
		for _, a := range addrs {
			l, err := infoLeader(a)
			if err != nil || l == "" || l == "0" || (agreed != "" && l != agreed) {
				agreed, last = "", fmt.Sprintf("%s: leader %q, %v", a, l, err)
				break
			}
			agreed = l
		}
		if agreed != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader agreed on within 20s (last: %s)", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func infoLeader(addr string) (string, error) {
	c, err := dial(addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	v, err := c.Do("INFO", "replication")
	if err != nil {
		return "", err
	}
	if v.Type != '$' || v.Nil {
		return "", fmt.Errorf("INFO replication = %v", v)
	}
	for _, line := range strings.Split(v.Str, "\n") {
		if k, val, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == "leader" {
			return val, nil
		}
	}
	return "", nil
}

// ---- the comparison ----

// side is one of the two systems compared: one connection per client.
type side struct {
	name  string
	addrs []string // client i talks to addrs[i]
	conns []*Conn
}

func connect(t *testing.T, name string, addrs []string, perm []int) *side {
	t.Helper()
	s := &side{name: name}
	for i := range clients {
		a := addrs[perm[i]%len(addrs)]
		c, err := dial(a)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		s.addrs, s.conns = append(s.addrs, a), append(s.conns, c)
	}
	return s
}

// do sends one command of op and returns the reply. A Raft-specific error
// listed in differences.txt (the command was not run) is retried for up to
// 10 s outside MULTI. SCAN is iterated to completion and returns the
// sorted set of keys (or the first error).
func (s *side) do(t *testing.T, ds differences, o op) Value {
	t.Helper()
	conn := s.conns[o.client]
	send := func(args []string) Value {
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, err := conn.Do(args...)
			if err != nil {
				t.Fatalf("%s (client %d): %s: %v", s.name, o.client, quoteCmd(args), err)
			}
			d, ok := ds.reply(v)
			if !ok || o.inMulti || time.Now().After(deadline) {
				return v
			}
			t.Logf("%s (client %d): %s: %v (%s); retrying", s.name, o.client, quoteCmd(args), v, d.reason)
			time.Sleep(50 * time.Millisecond)
		}
	}
	if o.mode == mScanColl {
		return s.scanColl(send, o.args)
	}
	if o.mode != mScan {
		return send(o.args)
	}
	args := slices.Clone(o.args)
	seen := map[string]bool{}
	for range 100_000 {
		v := send(args)
		if v.Type != '*' || len(v.Elems) != 2 || v.Elems[0].Type != '$' || v.Elems[1].Type != '*' {
			return v
		}
		for _, k := range v.Elems[1].Elems {
			seen[k.Str] = true
		}
		if v.Elems[0].Str == "0" {
			keys := make([]string, 0, len(seen))
			for k := range seen {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			out := Value{Type: '*', Elems: []Value{}}
			for _, k := range keys {
				out.Elems = append(out.Elems, Value{Type: '$', Str: k})
			}
			return out
		}
		args[1] = v.Elems[0].Str
	}
	t.Fatalf("%s: SCAN did not finish after 100000 calls", s.name)
	return Value{}
}

// scanColl iterates HSCAN, SSCAN or ZSCAN to completion and returns
// ["0", elements] with the elements (field and value pairs for HSCAN and
// ZSCAN) deduplicated and sorted, or the first reply that is not a page.
func (s *side) scanColl(send func([]string) Value, args []string) Value {
	args = slices.Clone(args)
	pairs := !strings.EqualFold(args[0], "SSCAN")
	seen := map[string]Value{}
	for range 100_000 {
		v := send(args)
		if v.Type != '*' || len(v.Elems) != 2 || v.Elems[0].Type != '$' || v.Elems[1].Type != '*' {
			return v
		}
		page := v.Elems[1].Elems
		for i := 0; i < len(page); i++ {
			if pairs && i+1 < len(page) {
				seen[page[i].Str] = page[i+1]
				i++
				continue
			}
			seen[page[i].Str] = Value{}
		}
		if v.Elems[0].Str == "0" {
			keys := slices.Sorted(maps.Keys(seen))
			out := Value{Type: '*', Elems: []Value{}}
			for _, k := range keys {
				out.Elems = append(out.Elems, Value{Type: '$', Str: k})
				if pairs {
					out.Elems = append(out.Elems, seen[k])
				}
			}
			return Value{Type: '*', Elems: []Value{{Type: '$', Str: "0"}, out}}
		}
		args[2] = v.Elems[0].Str
	}
	return Value{Type: '-', Str: "scan did not finish after 100000 calls"}
}

// normalize makes a and b comparable under m.
func normalize(m mode, a, b *Value) {
	switch m {
	case mSkip:
		*a, *b = Value{Type: '?'}, Value{Type: '?'}
	case mSorted:
		for _, v := range []*Value{a, b} {
			if v.Type == '*' {
				v.Elems = slices.Clone(v.Elems)
				slices.SortFunc(v.Elems, func(x, y Value) int { return strings.Compare(x.Str, y.Str) })
			}
		}
	case mLen:
		for _, v := range []*Value{a, b} {
			if v.Type == '*' {
				v.Elems = make([]Value, len(v.Elems))
			}
			if v.Type == '$' && !v.Nil {
				v.Str = "<some member>"
			}
		}
	case mNil:
		for _, v := range []*Value{a, b} {
			if v.Type == '$' && !v.Nil {
				v.Str = "<some key>"
			}
		}
	case mTTL, mPTTL:
		tol := int64(ttlTolS)
		if m == mPTTL {
			tol = ttlTolMS
		}
		if a.Type == ':' && b.Type == ':' && a.Int >= 0 && b.Int >= 0 && max(a.Int-b.Int, b.Int-a.Int) <= tol {
			b.Int = a.Int
		}
	}
}

type record struct {
	n    int
	o    op
	a, b Value
}

type runConfig struct {
	a, b    backend
	runName string // the test to name in the replay command
	// replicas: b's addresses are the nodes of one Seshat cluster, which
	// must end with the same state (SESHAT.DIGEST).
	replicas bool
}

// run sends one generated sequence to both backends, one command at a time,
// and fails on the first difference.
func run(t *testing.T, cfg runConfig) {
	requireRedis(t)
	ds := loadDifferences(t)
	seed, ops := seedFor(t), opsFor(t)
	t.Logf("seed %d, %d ops (replay: %s)", seed, ops, replayCmd(seed, ops, cfg.runName))

	addrsA, addrsB := cfg.a.start(t), cfg.b.start(t)
	// Which node each client talks to is drawn from the seed too, in a
	// random order so that the clients are on different nodes.
	pr := rand.New(rand.NewPCG(seed, 7))
	permB := pr.Perm(max(clients, len(addrsB)))
	a := connect(t, cfg.a.name, addrsA, make([]int, clients))
	b := connect(t, cfg.b.name, addrsB, permB)
	for i := range clients {
		t.Logf("client %d: %s %s, %s %s", i, a.name, a.addrs[i], b.name, b.addrs[i])
	}

	g := newGen(seed, clients)
	queued := make([][]mode, clients) // modes of the commands queued in MULTI
	var history []record
	start := time.Now()
	var slowest time.Duration
	slowestOp := ""
	for n := 1; n <= ops; n++ {
		o := g.next()
		if _, ok := ds.command(o.args); ok {
			o.mode = mSkip
		}
		t0 := time.Now()
		ra := a.do(t, ds, o)
		t1 := time.Now()
		rb := b.do(t, ds, o)
		if d := time.Since(t0); d > slowest {
			slowest, slowestOp = d, fmt.Sprintf("op %d (%s %v, %s %v): %s", n, a.name, t1.Sub(t0), b.name, time.Since(t1), quoteCmd(o.args))
		}
		history = append(history, record{n, o, ra, rb})
		if len(history) > historyLen {
			history = history[1:]
		}
		na, nb := ra, rb
		switch name := strings.ToUpper(o.args[0]); {
		case name == "EXEC" && o.inMulti:
			if na.Type == '*' && nb.Type == '*' && len(na.Elems) == len(queued[o.client]) && len(nb.Elems) == len(na.Elems) {
				na.Elems, nb.Elems = slices.Clone(na.Elems), slices.Clone(nb.Elems)
				for i, m := range queued[o.client] {
					normalize(m, &na.Elems[i], &nb.Elems[i])
				}
			}
			queued[o.client] = nil
		case name == "DISCARD" && o.inMulti:
			queued[o.client] = nil
		case o.inMulti:
			if ra.Type == '+' && ra.Str == "QUEUED" {
				queued[o.client] = append(queued[o.client], o.mode)
			}
			if o.mode == mSkip { // and a difference shows at EXEC
				normalize(o.mode, &na, &nb)
			}
		default:
			normalize(o.mode, &na, &nb)
		}
		if scoreReply(o.args[0]) {
			na, nb = signlessZero(na), signlessZero(nb)
		}
		if !cmp.Equal(na, nb) {
			t.Fatal(report(seed, n, o, ra, rb, cmp.Diff(na, nb), history, a, b, cfg.runName))
		}
	}
	t.Logf("%d ops compared in %v; the slowest took %v: %s", ops, time.Since(start).Round(time.Millisecond), slowest, slowestOp)
	finalState(t, cfg, a, b, seed, ops, history)
	if cfg.replicas {
		replicasAgree(t, addrsB, replayCmd(seed, ops, cfg.runName))
	}
}

// replicasAgree waits until every node answers SESHAT.DIGEST with the same
// applied index and digest. A node-local cache that decided a result
// (the lost write CI found) could leave the replicas different, which
// the comparison with redis-server, made through one node per client,
// need not see.
func replicasAgree(t *testing.T, addrs []string, replay string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var views []string
	for {
		views = views[:0]
		for _, addr := range addrs {
			views = append(views, digestAt(addr))
		}
		if !slices.ContainsFunc(views, func(v string) bool { return v != views[0] || strings.HasPrefix(v, "error") }) {
			t.Logf("replicas agree: applied index/digest %.40s", views[0])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas' states differ (applied index/digest by node %v): %v\nreplay: %s", addrs, views, replay)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// digestAt is addr's "applied/digest", or "error: ...".
func digestAt(addr string) string {
	c, err := dial(addr)
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.Close()
	v, err := c.Do("SESHAT.DIGEST")
	if err != nil {
		return "error: " + err.Error()
	}
	if v.Type != '*' || len(v.Elems) != 2 {
		return fmt.Sprintf("error: SESHAT.DIGEST answered %v", v)
	}
	return fmt.Sprintf("%d/%s", v.Elems[0].Int, v.Elems[1].Str)
}

func report(seed uint64, n int, o op, ra, rb Value, diff string, history []record, a, b *side, runName string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "seed %d, op %d, client %d (%s %s / %s %s)", seed, n, o.client, a.name, a.addrs[o.client], b.name, b.addrs[o.client])
	if o.inMulti {
		s.WriteString(", inside MULTI")
	}
	fmt.Fprintf(&s, " (compared as mode %d)\ncommand: %s\n%-14s %v\n%-14s %v\n", o.mode, quoteCmd(o.args), a.name+":", ra, b.name+":", rb)
	if len(diff) > 4000 {
		diff = diff[:4000] + "..."
	}
	fmt.Fprintf(&s, "diff (-%s +%s):\n%s", a.name, b.name, diff)
	s.WriteString("the commands before it (op client: command => replies):\n")
	writeHistory(&s, history[:len(history)-1])
	fmt.Fprintf(&s, "replay: %s", replayCmd(seed, n, runName))
	return s.String()
}

// replayCmd is the command that replays ops operations of seed in the
// test runName.
func replayCmd(seed uint64, ops int, runName string) string {
	return fmt.Sprintf("SESHAT_COMPAT_SEED=%d SESHAT_COMPAT_OPS=%d go test ./test/compat -run '^%s$'", seed, ops, runName)
}

// scoreReply reports whether a reply of the command name may hold sorted
// set scores: a Z or BZ command, or EXEC (which may hold one).
func scoreReply(name string) bool {
	name = strings.ToUpper(name)
	return strings.HasPrefix(name, "Z") || strings.HasPrefix(name, "BZ") || name == "EXEC"
}

// signlessZero returns v with every bulk "-0" as "0". Seshat stores a
// score of -0 as 0, as Redis's compact encoding does; Redis's skiplist
// encoding (a member over 64 bytes, or over 128 members) keeps -0 and
// answers "-0" (differences.txt).
func signlessZero(v Value) Value {
	if v.Type == '$' && v.Str == "-0" {
		v.Str = "0"
	}
	if len(v.Elems) > 0 {
		elems := make([]Value, len(v.Elems))
		for i, e := range v.Elems {
			elems[i] = signlessZero(e)
		}
		v.Elems = elems
	}
	return v
}

// writeHistory writes the commands of history, a line each, with
// redis-server's reply, and Seshat's where it differs.
func writeHistory(s *strings.Builder, history []record) {
	for _, r := range history {
		fmt.Fprintf(s, "  %5d c%d: %s => %v", r.n, r.o.client, quoteCmd(r.o.args), r.a)
		if !cmp.Equal(r.a, r.b) {
			fmt.Fprintf(s, " / %v", r.b)
		}
		s.WriteString("\n")
	}
}

// finalState compares every key of every database, its value and TTL,
// through a fresh connection to each side.
func finalState(t *testing.T, cfg runConfig, a, b *side, seed uint64, ops int, history []record) {
	t.Helper()
	ca, err := dial(a.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := dial(b.addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	check := func(args []string, m mode) Value {
		t.Helper()
		ra, err := ca.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := cb.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		na, nb := ra, rb
		normalize(m, &na, &nb)
		if scoreReply(args[0]) {
			na, nb = signlessZero(na), signlessZero(nb)
		}
		if !cmp.Equal(na, nb) {
			var h strings.Builder
			writeHistory(&h, history)
			t.Fatalf("final state after seed %d, %d ops: %s\n%-14s %v\n%-14s %v\nthe last commands (op client: command => replies):\n%sreplay: %s",
				seed, ops, quoteCmd(args), a.name+":", ra, b.name+":", rb, h.String(), replayCmd(seed, ops, cfg.runName))
		}
		return ra
	}
	compared := map[string]int{}
	for db := range 16 {
		check([]string{"SELECT", strconv.Itoa(db)}, mExact)
		check([]string{"KEYS", "*"}, mSorted)
		for _, k := range keyPool {
			check([]string{"PTTL", k}, mPTTL)
			// A write lost inside a transaction may show nowhere else:
			// every value is compared, of every type.
			typ := check([]string{"TYPE", k}, mExact)
			compared[typ.Str]++
			switch typ.Str {
			case "string":
				check([]string{"GET", k}, mExact)
			case "list":
				check([]string{"LRANGE", k, "0", "-1"}, mExact)
			case "set":
				check([]string{"SMEMBERS", k}, mSorted)
			case "zset":
				check([]string{"ZRANGE", k, "0", "-1", "WITHSCORES"}, mExact)
			case "hash":
				fields := check([]string{"HKEYS", k}, mSorted)
				args := []string{"HMGET", k}
				for _, f := range fields.Elems {
					args = append(args, f.Str)
				}
				slices.Sort(args[2:])
				check(args, mExact)
			}
		}
	}
	t.Logf("final state: the same in 16 databases; keys compared by type: %v", compared)
}

// TestCompatRedisVsRedis runs the harness against two redis-servers, where
// every reply must match: it proves the generator and the comparison.
func TestCompatRedisVsRedis(t *testing.T) {
	run(t, runConfig{
		a:       redisBackend,
		b:       backend{"redis-server-2", redisBackend.start},
		runName: "TestCompatRedisVsRedis",
	})
}

// TestCompat compares redis-server with a 3-node seshatd cluster, each
// client on a different node, commands one at a time.
func TestCompat(t *testing.T) {
	run(t, runConfig{a: redisBackend, b: seshatBackend, runName: "TestCompat", replicas: os.Getenv("SESHAT_COMPAT_ADDRS") == ""})
}

// Command bench compares a 3-node Seshat cluster with a redis-server that
// fsyncs every write (appendonly yes, appendfsync always), both on
// 127.0.0.1, with redis-benchmark: SET and GET of 100-byte values over a
// 100,000-key space, 1 and 50 clients, SET with 50 clients pipelining 16
// commands each, and SET and GET through a follower, the two servers
// interleaved and each run repeated. It prints the median requests/s of
// each, their ratio, the latencies, and the CPU time per request summed
// over the server's processes (the three seshatd nodes; redis-server), read
// from /proc/PID/stat. Then it loads -load-keys new keys into each (SET,
// 50 clients, pipelines of 16, random keys over 100,000,000) and prints
// the rate at which each tenth of them arrived, to show whether the
// keyspace slows down as it grows.
//
//	go run ./test/bench                    # 3 repeats, runs of about 3 s
//	go run ./test/bench -repeats 5 -run-time 5s
//	go run ./test/bench -n 20000           # a fixed number of requests per run
//	go run ./test/bench -load-keys 100000  # a quick run
//
// It builds seshatd (CGO_ENABLED=0) and starts the cluster (fsync on, the
// real configuration) and redis-server in a temporary directory, on free
// loopback ports, and stops them and removes the directory at the end, also
// on a failure or Ctrl-C. It needs redis-server and redis-benchmark
// (Debian: apt-get install redis-tools redis-server). A failed run exits
// with status 1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/seshat-kv/seshat/test/spawn"
)

type options struct {
	repeats    int
	requests   int
	runTime    time.Duration
	keys       int
	valueSize  int
	follower   bool
	types      bool
	timeout    time.Duration
	runTimeout time.Duration
	keep       bool
	loadKeys   int
	large      string // sizes for the -large mode (large.go)
	largeWarm  int    // MiB of small SETs before the -large mode's first value
	grow       string // SIZE,STEP for the -grow mode (grow.go)
}

func main() {
	var o options
	flag.IntVar(&o.repeats, "repeats", 3, "runs of each case on each server (the table gives the median)")
	flag.IntVar(&o.requests, "n", 0, "requests per run (0: sized from a warm-up run to take -run-time)")
	flag.DurationVar(&o.runTime, "run-time", 3*time.Second, "target length of one run when -n is 0")
	flag.IntVar(&o.keys, "keys", 100000, "key space (redis-benchmark -r), preloaded on both servers")
	flag.IntVar(&o.valueSize, "d", 100, "value size in bytes (redis-benchmark -d)")
	flag.BoolVar(&o.follower, "follower", true, "also run SET and GET -c 50 against a follower (forwarding)")
	flag.BoolVar(&o.types, "types", true, "also run HSET, LPUSH, LPOP, SADD and ZADD -c 50 on the leader and redis-server")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "bound on the whole benchmark")
	flag.DurationVar(&o.runTimeout, "run-timeout", 3*time.Minute, "bound on one redis-benchmark run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (data and logs)")
	flag.IntVar(&o.loadKeys, "load-keys", 1_000_000, "SETs of the bulk load measured per tenth (0: no load)")
	flag.StringVar(&o.large, "large", "", "instead of the benchmark: SET and GET values of these sizes (e.g. 10M,100M,512M), see large.go")
	flag.IntVar(&o.largeWarm, "large-warm", 0, "with -large: MiB of 1 KB SETs written to both servers first, so that the nodes' memtables have filled and turned over (0: measure fresh nodes)")
	flag.StringVar(&o.grow, "grow", "", "instead of the benchmark: APPEND chunks of STEP to a value of SIZE, then change it in place (e.g. 512M,64M), see grow.go")
	flag.Parse()
	if flag.NArg() > 0 || o.repeats < 1 || o.requests < 0 || o.keys < 1 || o.valueSize < 1 || o.runTime <= 0 || o.loadKeys < 0 {
		fmt.Fprintln(os.Stderr, "bench: bad arguments (see -help)")
		os.Exit(2)
	}
	for _, tool := range []string{"redis-benchmark", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s not found: apt-get install redis-tools redis-server\n", tool)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills this program at once
		// (the children then die with it, see childAttr).
		<-ctx.Done()
		stop()
	}()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	err := run(ctx, o)
	cancel()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		} else if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%v (-timeout %v)", err, o.timeout)
		}
		fmt.Fprintf(os.Stderr, "bench: FAIL: %v\n", err)
		os.Exit(1)
	}
}

// target is a server that redis-benchmark runs against.
type target int

const (
	seshatLeader target = iota
	seshatFollower
	redisServer
)

func (t target) String() string {
	return [...]string{"seshat leader", "seshat follower", "redis-server"}[t]
}

// benchCase is one redis-benchmark configuration on one target.
type benchCase struct {
	test     string // a redis-benchmark test: SET, GET, HSET, LPUSH, ...
	clients  int
	pipeline int // redis-benchmark -P (0: none)
	target   target
}

func (c benchCase) String() string {
	if c.pipeline > 1 {
		return fmt.Sprintf("%s -c %d -P %d on %s", c.test, c.clients, c.pipeline, c.target)
	}
	return fmt.Sprintf("%s -c %d on %s", c.test, c.clients, c.target)
}

// on returns the same configuration on target t.
func (c benchCase) on(t target) benchCase { c.target = t; return c }

// result is one redis-benchmark run.
type result struct {
	requests                int
	rps, avg, p50, p99, max float64
	cpu                     float64 // CPU-seconds of the target's processes during the run
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "seshat-bench-")
	if err != nil {
		return err
	}
	all := &procs{}
	defer func() {
		all.stopAll(10 * time.Second)
		if o.keep {
			fmt.Printf("kept %s\n", dir)
		} else if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			err = rerr
		}
	}()

	printMachine(dir)
	fmt.Printf("load average at start: %s\n", loadAvg())

	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	bin, err := spawn.BuildSeshatd(goTool, dir, false)
	if err != nil {
		return err
	}
	cl, err := startCluster(bin, dir, 3, all)
	if err != nil {
		return err
	}
	leader, err := cl.waitLeader(ctx, 30*time.Second, all)
	if err != nil {
		return err
	}
	_, term0 := cl.leader()
	ports, err := spawn.FreePorts(1)
	if err != nil {
		return err
	}
	redisAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	redisDir := filepath.Join(dir, "redis")
	if err := os.Mkdir(redisDir, 0o755); err != nil {
		return err
	}
	rs, err := start("redis-server", filepath.Join(dir, "redis.log"), "redis-server",
		"--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--appendonly", "yes",
		"--appendfsync", "always", "--save", "", "--dir", redisDir, "--daemonize", "no")
	if err != nil {
		return err
	}
	all.add(rs)
	if err := waitPing(ctx, redisAddr, rs, 20*time.Second); err != nil {
		return err
	}
	fmt.Printf("seshat: 3 nodes on %s (leader node %d, term %s); redis-server on %s; data in %s\n",
		strings.Join(cl.clients, ", "), leader+1, term0, redisAddr, dir)

	if o.large != "" || o.grow != "" {
		var pids []int
		for _, p := range cl.nodes {
			pids = append(pids, p.cmd.Process.Pid)
		}
		if o.grow != "" {
			return runGrow(ctx, o, cl, leader, pids, redisAddr, rs.cmd.Process.Pid)
		}
		return runLarge(ctx, o, cl, leader, pids, redisAddr, rs.cmd.Process.Pid)
	}

	t0 := time.Now()
	for _, addr := range []string{cl.clients[leader], redisAddr} {
		if err := preload(addr, o.keys, o.valueSize, 100, 8, 5*time.Minute); err != nil {
			return fmt.Errorf("preload %s: %w", addr, err)
		}
	}
	fmt.Printf("preloaded %d keys of %d bytes on both in %v\n", o.keys, o.valueSize, time.Since(t0).Round(time.Millisecond))

	var cases []benchCase
	for _, c := range []benchCase{{"SET", 1, 0, 0}, {"GET", 1, 0, 0}, {"SET", 50, 0, 0}, {"GET", 50, 0, 0}, {"SET", 50, 16, 0}} {
		cases = append(cases, c.on(seshatLeader), c.on(redisServer))
	}
	if o.follower {
		cases = append(cases, benchCase{"SET", 50, 0, seshatFollower}, benchCase{"GET", 50, 0, seshatFollower})
	}
	var seshatPids []int
	for _, p := range cl.nodes {
		seshatPids = append(seshatPids, p.cmd.Process.Pid)
	}
	pidsOf := func(t target) []int {
		if t == redisServer {
			return []int{rs.cmd.Process.Pid}
		}
		return seshatPids
	}
	if o.types {
		for _, test := range []string{"HSET", "LPUSH", "LPOP", "SADD", "ZADD"} {
			cases = append(cases, benchCase{test, 50, 0, seshatLeader}, benchCase{test, 50, 0, redisServer})
		}
	}

	var notes []string
	// addrOf finds the current leader (or a follower of it) before each
	// seshat run, noting a change of leader.
	addrOf := func(t target) (string, error) {
		if t == redisServer {
			return redisAddr, nil
		}
		if p := all.firstExited(); p != nil {
			return "", fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail(20))
		}
		i, term := cl.leader()
		if i < 0 {
			return "", errors.New("seshat: no leader")
		}
		if i != leader || term != term0 {
			notes = append(notes, fmt.Sprintf("the leader changed during the benchmark: node %d term %s, then node %d term %s", leader+1, term0, i+1, term))
			leader, term0 = i, term
		}
		if t == seshatFollower {
			i = (i + 1) % len(cl.clients)
		}
		return cl.clients[i], nil
	}

	// Size each case's runs from a warm-up run (which also warms up the
	// connections and caches), unless -n fixes them.
	size := map[benchCase]int{}
	for _, c := range cases {
		if o.requests > 0 {
			size[c] = o.requests
			continue
		}
		// A first short probe, then longer ones until one lasts a third
		// of -run-time (a short probe is dominated by connection set-up
		// and a cold start).
		probe, floor := 300, 300
		if c.clients > 1 {
			probe, floor = 3000, 20*c.clients
		}
		var r result
		for try := 0; try < 3; try++ {
			addr, err := addrOf(c.target)
			if err != nil {
				return err
			}
			if r, err = benchmark(ctx, addr, c, probe, o); err != nil {
				return fmt.Errorf("warm-up %v: %w", c, err)
			}
			if float64(probe)/r.rps >= o.runTime.Seconds()/3 {
				break
			}
			probe = min(max(int(r.rps*o.runTime.Seconds()/2), floor), 1_000_000)
		}
		n := int(math.Round(r.rps * o.runTime.Seconds()))
		size[c] = min(max(n, floor), 2_000_000)
		fmt.Printf("warm-up %-28s %8.0f req/s (-n %d) -> -n %d\n", c.String(), r.rps, probe, size[c])
	}

	results := map[benchCase][]result{}
	for rep := range o.repeats {
		for i := 0; i < len(cases); i++ {
			// Interleave: the two targets of a configuration run back to
			// back, in alternating order from one repeat to the next.
			group := []benchCase{cases[i]}
			if i+1 < len(cases) && cases[i+1] == cases[i].on(cases[i+1].target) && cases[i+1].target != seshatFollower {
				group = append(group, cases[i+1])
				i++
			}
			if rep%2 == 1 {
				slices.Reverse(group)
			}
			for _, c := range group {
				addr, err := addrOf(c.target)
				if err != nil {
					return err
				}
				cpu0, err := cpuSeconds(pidsOf(c.target))
				if err != nil {
					return err
				}
				r, err := benchmark(ctx, addr, c, size[c], o)
				if err != nil {
					return fmt.Errorf("run %d %v: %w", rep+1, c, err)
				}
				cpu1, err := cpuSeconds(pidsOf(c.target))
				if err != nil {
					return err
				}
				r.cpu = cpu1 - cpu0
				results[c] = append(results[c], r)
				fmt.Printf("run %d/%d %-34s -n %-7d %9.0f req/s  avg %.3f  p50 %.3f  p99 %.3f  max %.3f ms  cpu %.1f us/req\n",
					rep+1, o.repeats, c.String(), r.requests, r.rps, r.avg, r.p50, r.p99, r.max, perReq(r.cpu, r.requests))
			}
		}
	}
	if _, err := addrOf(seshatLeader); err != nil {
		return err
	}
	fmt.Printf("load average after the table: %s\n\n", loadAvg())
	printTable(os.Stdout, cases, results, o)
	var loads [2]loadResult
	if o.loadKeys > 0 {
		for i, t := range []target{seshatLeader, redisServer} {
			addr, err := addrOf(t)
			if err != nil {
				return err
			}
			if loads[i], err = loadCase(ctx, addr, pidsOf(t), o.loadKeys, o); err != nil {
				return fmt.Errorf("load of %d keys on %v: %w", o.loadKeys, t, err)
			}
			fmt.Printf("load %-15s %d SETs in %v\n", t, o.loadKeys, loads[i].total.Round(time.Millisecond))
		}
	}
	if o.loadKeys > 0 {
		fmt.Printf("load average at end: %s\n\n", loadAvg())
		disk := dirSize(filepath.Join(dir, fmt.Sprintf("node%d", leader+1)))
		// Live data: the preloaded and the loaded keys, each a key of
		// len("key:000000000000") and a value.
		live := (int64(o.keys) + loads[0].samples[len(loads[0].samples)-1].keys) * int64(16+o.valueSize)
		printLoad(os.Stdout, o.loadKeys, loads[0], loads[1], disk, live)
	}
	for _, n := range notes {
		fmt.Printf("note: %s\n", n)
	}
	return nil
}

// benchmark runs redis-benchmark once and parses its --csv output.
func benchmark(ctx context.Context, addr string, c benchCase, n int, o options) (result, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return result{}, err
	}
	runCtx, cancel := context.WithTimeout(ctx, o.runTimeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "redis-benchmark", "-h", host, "-p", port,
		"-t", strings.ToLower(c.test), "-c", strconv.Itoa(c.clients), "-n", strconv.Itoa(n),
		"-d", strconv.Itoa(o.valueSize), "-r", strconv.Itoa(o.keys), "--csv")
	if c.pipeline > 1 {
		cmd.Args = append(cmd.Args, "-P", strconv.Itoa(c.pipeline))
	}
	cmd.SysProcAttr = childAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	if runCtx.Err() != nil {
		return result{}, fmt.Errorf("redis-benchmark did not finish within -run-timeout %v", o.runTimeout)
	}
	if runErr != nil {
		return result{}, fmt.Errorf("redis-benchmark: %v: %s", runErr, firstLine(stderr.String()+stdout.String()))
	}
	// redis-benchmark counts an error reply as a request: any error line
	// fails the run.
	if s := stderr.String() + stdout.String(); strings.Contains(s, "Error") || strings.Contains(s, "ERR") {
		return result{}, fmt.Errorf("redis-benchmark reported: %s", firstLine(s))
	}
	r, err := parseCSV(stdout.String(), c.test)
	if err != nil {
		return result{}, fmt.Errorf("redis-benchmark output: %v: %q", err, stdout.String())
	}
	r.requests = n
	return r, nil
}

// parseCSV reads redis-benchmark --csv output (Redis 7: test, rps,
// avg_latency_ms, min, p50, p95, p99, max; older: test, rps only).
func parseCSV(out, test string) (result, error) {
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		return result{}, err
	}
	var header []string
	for _, row := range rows {
		if len(row) > 0 && row[0] == "test" {
			header = row
			continue
		}
		if len(row) < 2 || row[0] != test {
			continue
		}
		var r result
		fields := map[string]*float64{"rps": &r.rps, "avg_latency_ms": &r.avg, "p50_latency_ms": &r.p50,
			"p99_latency_ms": &r.p99, "max_latency_ms": &r.max}
		if header == nil {
			header = []string{"test", "rps"}
		}
		for i, name := range header {
			if p, ok := fields[name]; ok && i < len(row) {
				if *p, err = strconv.ParseFloat(row[i], 64); err != nil {
					return result{}, fmt.Errorf("%s: %v", name, err)
				}
			}
		}
		if r.rps <= 0 {
			return result{}, errors.New("no requests/s")
		}
		return r, nil
	}
	return result{}, fmt.Errorf("no %s row", test)
}

func splitHostPort(addr string) (string, string, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port in %q", addr)
	}
	return addr[:i], addr[i+1:], nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

// printTable prints the medians as a Markdown table: a row per test and
// client count, seshat against redis-server.
func printTable(w io.Writer, cases []benchCase, results map[benchCase][]result, o options) {
	fmt.Fprintf(w, "Medians of %d runs each (redis-benchmark -d %d -r %d; latencies in ms, p50 / p99):\n\n", o.repeats, o.valueSize, o.keys)
	fmt.Fprintln(w, "| test | clients | seshat req/s | redis req/s | seshat/redis | seshat p50 / p99 | redis p50 / p99 | seshat CPU us/req (3 nodes) | redis CPU us/req | seshat runs (req/s) | redis runs (req/s) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|")
	rps := func(r result) float64 { return r.rps }
	p50 := func(r result) float64 { return r.p50 }
	p99 := func(r result) float64 { return r.p99 }
	cpuPerReq := func(r result) float64 { return perReq(r.cpu, r.requests) }
	for _, c := range cases {
		if c.target == redisServer {
			continue
		}
		s := results[c]
		rd := results[c.on(redisServer)]
		name := c.test
		if c.pipeline > 1 {
			name += fmt.Sprintf(" pipeline %d", c.pipeline)
		}
		if c.target == seshatFollower {
			name += " via follower"
		}
		sm, rm := medianOf(s, rps), medianOf(rd, rps)
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.2f | %.2f / %.2f | %.2f / %.2f | %.1f | %.1f | %s | %s |\n",
			name, c.clients, thousands(sm), thousands(rm), sm/rm,
			medianOf(s, p50), medianOf(s, p99), medianOf(rd, p50), medianOf(rd, p99),
			medianOf(s, cpuPerReq), medianOf(rd, cpuPerReq),
			runList(s), runList(rd))
	}
	fmt.Fprintln(w)
}

func runList(rs []result) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = thousands(r.rps)
	}
	return strings.Join(parts, ", ")
}

// thousands formats v rounded to an integer with comma separators.
func thousands(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	return b.String()
}

// printMachine prints what the figures depend on: CPUs, their model, the
// file system and device of the temporary directory, the tools' versions.
func printMachine(dir string) {
	model := "unknown"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	fmt.Printf("machine: %d CPUs (%s), %s/%s, %s\n", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("data: %s on %s\n", dir, mountOf(dir))
	for _, tool := range []string{"redis-server", "redis-benchmark"} {
		out, _ := exec.Command(tool, "--version").Output()
		fmt.Printf("%s: %s\n", tool, firstLine(string(out)))
	}
}

// mountOf returns the device and file system type of the mount holding
// path, from /proc/mounts.
func mountOf(path string) string {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return "unknown file system"
	}
	best, bestLen := "unknown file system", -1
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > bestLen {
			best, bestLen = fmt.Sprintf("%s (%s, mounted on %s)", f[0], f[2], mp), len(mp)
		}
	}
	return best
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/seshat-kv/seshat/test/spawn"
)

// The -large mode: for each size of -large (e.g. 10M,100M,512M), SET a
// value of that size on the seshat leader and on redis-server, then GET it
// back, timing both, while another client SETs small keys in a loop on
// the same server; it prints the times, the small SETs' latency (p50,
// p99, max) during the big ones, and each server process's peak RSS growth
// over the SET and then over the GET (VmHWM minus VmRSS before the SET,
// the peak reset through /proc/PID/clear_refs before each). The key is
// deleted after each size.
//
//	go run ./test/bench -large 10M,100M,512M

// parseSizes parses "10M,100M,512M" (K, M, G are powers of 1024).
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "K"):
			mult, f = 1<<10, strings.TrimSuffix(f, "K")
		case strings.HasSuffix(f, "M"):
			mult, f = 1<<20, strings.TrimSuffix(f, "M")
		case strings.HasSuffix(f, "G"):
			mult, f = 1<<30, strings.TrimSuffix(f, "G")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-large: bad size %q", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// procMem reads a field (VmRSS, VmHWM) of /proc/PID/status, in bytes.
func procMem(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return -1
}

// resetPeak resets the VmHWM of pid to its current RSS.
func resetPeak(pid int) { _ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) }

type largeResult struct {
	set, get      time.Duration
	small         []time.Duration
	smallErrs     int
	firstSmallErr error
	growth        []int64 // per process, over the SET
	getGrowth     []int64 // per process, over the GET
}

// largeCase SETs and GETs one value on addr while a client SETs small keys
// on smallAddr, measuring the processes pids.
func largeCase(ctx context.Context, addr, smallAddr string, pids []int, v []byte) (largeResult, error) {
	var r largeResult
	base := make([]int64, len(pids))
	for i, pid := range pids {
		resetPeak(pid)
		base[i] = procMem(pid, "VmRSS")
	}
	c, err := dial(addr, 10*time.Minute)
	if err != nil {
		return r, err
	}
	defer c.Close()
	small := startSmallSets(ctx, smallAddr)
	defer small.halt()

	key := "large-" + strconv.Itoa(len(v))
	t0 := time.Now()
	fmt.Fprintf(c.w, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, len(v))
	if _, err := c.w.Write(v); err != nil {
		return r, err
	}
	c.w.WriteString("\r\n")
	if err := c.flush(); err != nil {
		return r, err
	}
	rep, err := c.read()
	if err == nil {
		if e, ok := rep.(errReply); ok {
			err = e
		}
	}
	if err != nil {
		return r, fmt.Errorf("SET of %d bytes: %w", len(v), err)
	}
	r.set = time.Since(t0)
	for i, pid := range pids {
		r.growth = append(r.growth, procMem(pid, "VmHWM")-base[i])
		resetPeak(pid)
	}
	t0 = time.Now()
	got, err := c.do("GET", key)
	if err != nil {
		return r, fmt.Errorf("GET of %d bytes: %w", len(v), err)
	}
	r.get = time.Since(t0)
	if s, _ := got.(string); len(s) != len(v) || !bytes.Equal([]byte(s), v) {
		return r, fmt.Errorf("GET of %d bytes returned %d bytes, not the value", len(v), len(s))
	}
	got = nil
	small.halt()
	r.small, r.smallErrs, r.firstSmallErr = small.take()
	for i, pid := range pids {
		r.getGrowth = append(r.getGrowth, procMem(pid, "VmHWM")-base[i])
	}
	if _, err := c.do("DEL", key); err != nil {
		return r, err
	}
	return r, nil
}

// smallSets is a client that SETs small keys on one server, one at a
// time 5 ms apart, to measure how a large command held up the others.
type smallSets struct {
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	lat   []time.Duration
	errs  int
	first error
}

func startSmallSets(ctx context.Context, addr string) *smallSets {
	s := &smallSets{}
	sctx, stop := context.WithCancel(ctx)
	s.stop = stop
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sc, err := dial(addr, 10*time.Minute)
		if err != nil {
			s.mu.Lock()
			s.errs, s.first = 1, err
			s.mu.Unlock()
			return
		}
		defer sc.Close()
		for i := 0; sctx.Err() == nil; i++ {
			t0 := time.Now()
			_, err := sc.do("SET", "small-"+strconv.Itoa(i%1000), "v")
			s.mu.Lock()
			if err != nil {
				if s.errs++; s.first == nil {
					s.first = err
				}
			} else {
				s.lat = append(s.lat, time.Since(t0))
			}
			s.mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return s
}

// halt stops the client and waits for it; it may be called again.
func (s *smallSets) halt() { s.stop(); s.wg.Wait() }

// take returns the latencies, the error count and the first error so far,
// and starts counting afresh.
func (s *smallSets) take() ([]time.Duration, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat, errs, first := s.lat, s.errs, s.first
	s.lat, s.errs, s.first = nil, 0, nil
	return lat, errs, first
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// runLarge runs the -large mode on a started cluster and redis-server.
func runLarge(ctx context.Context, o options, cl *cluster, leader int, seshatPids []int, redisAddr string, redisPid int) error {
	sizes, err := parseSizes(o.large)
	if err != nil {
		return err
	}
	_, term0 := cl.leader()
	if o.largeWarm > 0 {
		for _, addr := range []string{cl.clients[leader], redisAddr} {
			if err := warmUp(ctx, addr, o.largeWarm); err != nil {
				return err
			}
		}
		fmt.Printf("\nwarmed up: %d MiB of 1 KB SETs on each server first\n", o.largeWarm)
	}
	fmt.Printf("\nlarge values (SET then GET on the leader / redis-server; small SETs on the same server, one client, 5ms apart)\n")
	fmt.Printf("%-12s %-8s %9s %9s %8s %8s %8s %6s  %s\n", "server", "size", "SET", "GET", "small p50", "p99", "max", "errors", "peak RSS growth per process (x value), over the SET; over the GET")
	for _, size := range sizes {
		v := spawn.LargeValue(size, uint64(size))
		for _, t := range []struct {
			name string
			addr string
			pids []int
		}{{"seshat", cl.clients[leader], seshatPids}, {"redis-server", redisAddr, []int{redisPid}}} {
			r, err := largeCase(ctx, t.addr, t.addr, t.pids, v)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			var g, gg []string
			for _, b := range r.growth {
				g = append(g, fmt.Sprintf("%.0f MiB (%.1fx)", float64(b)/(1<<20), float64(b)/float64(size)))
			}
			for _, b := range r.getGrowth {
				gg = append(gg, fmt.Sprintf("%.1fx", float64(b)/float64(size)))
			}
			fmt.Printf("%-12s %-8s %9s %9s %8s %8s %8s %6d  %s\n", t.name, fmt.Sprintf("%dM", size>>20),
				r.set.Round(time.Millisecond), r.get.Round(time.Millisecond),
				pct(r.small, 50).Round(time.Millisecond), pct(r.small, 99).Round(time.Millisecond),
				pct(r.small, 100).Round(time.Millisecond), r.smallErrs, strings.Join(g, ", ")+"; "+strings.Join(gg, ", "))
			if r.firstSmallErr != nil {
				fmt.Printf("  first small SET error: %v\n", r.firstSmallErr)
			}
			fmt.Printf("  load average: %s\n", loadAvg())
		}
		if i, term := cl.leader(); i != leader || term != term0 {
			fmt.Printf("  the leader changed: node %d term %s, now node %d term %s\n", leader+1, term0, i+1, term)
			if i < 0 {
				return errors.New("seshat: no leader")
			}
			leader, term0 = i, term
		}
	}
	return nil
}

// warmUp writes mib MiB of 1 KB values to addr with redis-benchmark (the
// same 100,000 keys over and over): a fresh node's first large value
// otherwise also pays for Pebble's first memtables, allocated as they
// grow, which a node that has taken writes already holds.
func warmUp(ctx context.Context, addr string, mib int) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", host, "-p", port, "-t", "set",
		"-n", strconv.Itoa(mib<<10), "-r", "100000", "-c", "50", "-P", "16", "-d", "1024", "-q")
	cmd.SysProcAttr = childAttr()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("warm-up on %s: %v: %s", addr, err, firstLine(string(out)))
	}
	return nil
}

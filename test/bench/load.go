package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// loadSample is the number of keys a load had added after elapsed.
type loadSample struct {
	elapsed time.Duration
	keys    int64
}

// loadResult is one bulk load: how its key count grew over time.
type loadResult struct {
	samples []loadSample
	total   time.Duration
	cpu     float64 // CPU-seconds the target's processes used meanwhile
	refused int     // DBSIZE polls answered with an error (no sample)
}

// loadCase runs `redis-benchmark -t set -n n -r 100000000 -c 50 -P 16`
// against addr while asking DBSIZE every pollEvery on another connection,
// so that the rate is measured on what the server counts, not on what the
// client sent.
func loadCase(ctx context.Context, addr string, pids []int, n int, o options) (loadResult, error) {
	host, port, err := splitHostPort(addr)
	if err != nil {
		return loadResult{}, err
	}
	poll, err := dial(addr, loadTimeout+time.Minute)
	if err != nil {
		return loadResult{}, err
	}
	defer poll.Close()
	dbsize := func() (int64, error) {
		v, err := poll.do("DBSIZE")
		if err != nil {
			return 0, err
		}
		k, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("DBSIZE gave %v", v)
		}
		return k, nil
	}
	base, err := dbsize()
	if err != nil {
		return loadResult{}, err
	}
	runCtx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "redis-benchmark", "-h", host, "-p", port,
		"-t", "set", "-n", strconv.Itoa(n), "-r", "100000000", "-c", "50", "-P", "16",
		"-d", strconv.Itoa(o.valueSize), "--csv")
	cmd.SysProcAttr = childAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cpu0, err := cpuSeconds(pids)
	if err != nil {
		return loadResult{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return loadResult{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	res := loadResult{samples: []loadSample{{0, 0}}}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var runErr error
wait:
	for {
		select {
		case runErr = <-done:
			break wait
		case <-tick.C:
			// A DBSIZE refused meanwhile (no leader for a moment, on a
			// busy machine) loses one sample, not the load.
			k, err := dbsize()
			var refused errReply
			if errors.As(err, &refused) {
				res.refused++
				continue
			}
			if err != nil {
				cancel()
				<-done
				return loadResult{}, fmt.Errorf("DBSIZE during the load: %w", err)
			}
			res.samples = append(res.samples, loadSample{time.Since(start), k - base})
		}
	}
	res.total = time.Since(start)
	if ctx.Err() != nil {
		return loadResult{}, ctx.Err()
	}
	if runCtx.Err() != nil {
		return loadResult{}, fmt.Errorf("the load did not finish within %v", loadTimeout)
	}
	if runErr != nil || strings.Contains(out.String(), "ERR") {
		return loadResult{}, fmt.Errorf("redis-benchmark: %v: %s", runErr, firstLine(out.String()))
	}
	if _, err := parseCSV(out.String(), "SET"); err != nil {
		return loadResult{}, fmt.Errorf("redis-benchmark output: %v: %q", err, out.String())
	}
	cpu1, err := cpuSeconds(pids)
	if err != nil {
		return loadResult{}, err
	}
	res.cpu = cpu1 - cpu0
	var k int64
	for try := 0; ; try++ {
		if k, err = dbsize(); err == nil || try == 20 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return loadResult{}, fmt.Errorf("DBSIZE after the load: %w", err)
	}
	res.samples = append(res.samples, loadSample{res.total, k - base})
	return res, nil
}

// loadTimeout bounds one load (a million SETs at 5,000/s take 200 s).
const loadTimeout = 6 * time.Minute

// pollEvery is how often a load's key count is sampled.
const pollEvery = 100 * time.Millisecond

// tenths returns the rate (keys/s) at which each tenth of the final key
// count was added, the time each tenth was reached found by linear
// interpolation between samples.
func (r loadResult) tenths() [10]float64 {
	var out [10]float64
	final := r.samples[len(r.samples)-1].keys
	if final <= 0 {
		return out
	}
	at := func(k float64) time.Duration {
		for i := 1; i < len(r.samples); i++ {
			a, b := r.samples[i-1], r.samples[i]
			if float64(b.keys) >= k {
				if b.keys == a.keys {
					return b.elapsed
				}
				f := (k - float64(a.keys)) / float64(b.keys-a.keys)
				return a.elapsed + time.Duration(f*float64(b.elapsed-a.elapsed))
			}
		}
		return r.samples[len(r.samples)-1].elapsed
	}
	step := float64(final) / 10
	prev := time.Duration(0)
	for i := range out {
		t := at(step * float64(i+1))
		if d := (t - prev).Seconds(); d > 0 {
			out[i] = step / d
		} else {
			out[i] = math.Inf(1)
		}
		prev = t
	}
	return out
}

// printLoad prints the loads' rate per tenth side by side.
func printLoad(w io.Writer, n int, s, rd loadResult, seshatDisk, liveBytes int64) {
	fmt.Fprintf(w, "Load of %d SETs (redis-benchmark -t set -n %d -r 100000000 -c 50 -P 16 -d 100), keys/s per tenth of the keys added (DBSIZE sampled every %v):\n\n", n, n, pollEvery)
	fmt.Fprintln(w, "| tenth | seshat keys/s | redis keys/s |")
	fmt.Fprintln(w, "|---|---|---|")
	st, rt := s.tenths(), rd.tenths()
	for i := range st {
		fmt.Fprintf(w, "| %d | %s | %s |\n", i+1, thousands(st[i]), thousands(rt[i]))
	}
	keys := func(r loadResult) int64 { return r.samples[len(r.samples)-1].keys }
	fmt.Fprintf(w, "| all | %s in %v | %s in %v |\n", thousands(float64(keys(s))/s.total.Seconds()), s.total.Round(time.Millisecond),
		thousands(float64(keys(rd))/rd.total.Seconds()), rd.total.Round(time.Millisecond))
	fmt.Fprintf(w, "| last / first tenth | %.2f | %.2f |\n", st[9]/st[0], rt[9]/rt[0])
	fmt.Fprintf(w, "| CPU per SET (us) | %.1f (3 nodes) | %.1f |\n\n", perReq(s.cpu, n), perReq(rd.cpu, n))
	if s.refused+rd.refused > 0 {
		fmt.Fprintf(w, "DBSIZE was refused %d times on seshat and %d on redis-server during the loads (those samples are missing).\n\n", s.refused, rd.refused)
	}
	if seshatDisk > 0 {
		fmt.Fprintf(w, "Disk use after the load: the leader's data directory holds %.1f MiB for about %.1f MiB of live keys and values (%.1fx).\n\n",
			mib(seshatDisk), mib(liveBytes), float64(seshatDisk)/float64(liveBytes))
	}
}

func perReq(cpuSeconds float64, n int) float64 { return cpuSeconds / float64(n) * 1e6 }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

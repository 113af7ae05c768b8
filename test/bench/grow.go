package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seshat-kv/seshat/test/spawn"
)

// The -grow mode: with -grow SIZE,STEP (e.g. 512M,64M), change a large
// value in place on the seshat leader and then on redis-server, while
// another client SETs small keys in a loop on the same server:
//
//  1. APPEND STEP-byte chunks to a new key until it holds SIZE bytes;
//  2. SETRANGE of 2 bytes at offset 1000;
//  3. SETRANGE of the last 10 bytes;
//  4. SETBIT of the first bit of the middle byte;
//  5. GETRANGE of 100 bytes at 1000, and STRLEN;
//  6. GET of the whole value, checked against what the commands should
//     have made of it, then DEL.
//
// It prints each command's time; each server process's peak RSS growth
// over the APPENDs (VmHWM after the last minus VmRSS before the first, the
// peak reset through /proc/PID/clear_refs first) and over each of steps 2
// to 4 (peak reset before each); and the small SETs' latency (p50, p99,
// max) and errors during each of steps 1 to 4 (a small SET counts in the
// step it ends in) and over all four. Steps 5
// and 6 run without the small SETs. It ends with the two servers' times
// side by side.
//
//	go run ./test/bench -grow 512M,64M
//
// The chunks are built one at a time from their number, so this program
// never holds the whole value: it checks the GET's reply against a CRC-32C
// of each MiB computed beforehand from the chunks and the changes.

// growTimeout bounds each command of the -grow mode: a command that
// rewrites a value of hundreds of MiB may take tens of seconds, and the
// point is to measure it, not to give up on it.
const growTimeout = 10 * time.Minute

// patch is a change the -grow mode makes to the value after growing it,
// applied to the expected content as the server should apply it.
type patch struct {
	off int
	b   []byte
	or  bool // OR b into the value (SETBIT) instead of writing it over
}

func (p patch) apply(buf []byte, off int) {
	for i, x := range p.b {
		j := p.off + i - off
		if j < 0 || j >= len(buf) {
			continue
		}
		if p.or {
			buf[j] |= x
		} else {
			buf[j] = x
		}
	}
}

// growChunk is the content of the i-th APPEND.
func growChunk(i, n int) []byte { return spawn.LargeValue(n, 0x67726f77+uint64(i)) }

// blockSums is an io.Writer that keeps the CRC-32C of each MiB of what is
// written to it, so that a difference is found to the MiB.
type blockSums struct {
	h    hash.Hash32
	n    int // bytes in the current block
	sums []uint32
}

func newBlockSums() *blockSums { return &blockSums{h: crc32.New(crc32.MakeTable(crc32.Castagnoli))} }

func (b *blockSums) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), 1<<20-b.n)
		b.h.Write(p[:k])
		b.n, p = b.n+k, p[k:]
		if b.n == 1<<20 {
			b.sums, b.n = append(b.sums, b.h.Sum32()), 0
			b.h.Reset()
		}
	}
	return total, nil
}

// done returns the sums, the last one of a partial block.
func (b *blockSums) done() []uint32 {
	if b.n > 0 {
		b.sums, b.n = append(b.sums, b.h.Sum32()), 0
	}
	return b.sums
}

// growExpected builds the value chunk by chunk with the patches applied
// and returns its sums and its bytes lo to hi inclusive.
func growExpected(size, step int, patches []patch, lo, hi int) ([]uint32, []byte) {
	sums := newBlockSums()
	var rng []byte
	for i, off := 0, 0; off < size; i, off = i+1, off+step {
		c := growChunk(i, min(step, size-off))
		for _, p := range patches {
			p.apply(c, off)
		}
		if a, b := max(lo, off), min(hi+1, off+len(c)); a < b {
			rng = append(rng, c[a-off:b-off]...)
		}
		sums.Write(c)
	}
	return sums.done(), rng
}

// growStep is one timed command (or group of them) of the -grow mode.
type growStep struct {
	name          string
	d             time.Duration
	growth        []int64 // per process; nil if not measured
	small         []time.Duration
	smallErrs     int
	firstSmallErr error
	measured      bool // the small SETs ran during it
}

// growCase runs the -grow sequence on addr, measuring the processes pids,
// and prints each step as it ends.
func growCase(ctx context.Context, addr string, pids []int, size, step int, patches []patch, sums []uint32, rng []byte) ([]growStep, error) {
	var steps []growStep
	c, err := dial(addr, growTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// A command blocked for minutes ends on Ctrl-C or -timeout.
	defer context.AfterFunc(ctx, func() { c.Close() })()
	small := startSmallSets(ctx, addr)
	defer small.halt()
	do := func(args ...string) (any, error) {
		if err := c.c.SetDeadline(time.Now().Add(growTimeout)); err != nil {
			return nil, err
		}
		return c.do(args...)
	}
	base := make([]int64, len(pids))
	resetPeaks := func() {
		for i, pid := range pids {
			resetPeak(pid)
			base[i] = procMem(pid, "VmRSS")
		}
	}
	growth := func() []int64 {
		g := make([]int64, len(pids))
		for i, pid := range pids {
			g[i] = procMem(pid, "VmHWM") - base[i]
		}
		return g
	}
	mib := func(g []int64) string {
		var s []string
		for _, b := range g {
			s = append(s, fmt.Sprintf("%.0f", float64(b)/(1<<20)))
		}
		return strings.Join(s, ", ") + " MiB"
	}
	// finish records a step measured with the small SETs and prints it.
	finish := func(name string, d time.Duration) {
		s := growStep{name: name, d: d, growth: growth(), measured: true}
		s.small, s.smallErrs, s.firstSmallErr = small.take()
		steps = append(steps, s)
		printGrowStep(s, size)
	}

	key := fmt.Sprintf("grow-%d", size)
	if _, err := do("DEL", key); err != nil {
		return nil, err
	}
	small.take() // only the small SETs during the steps count
	resetPeaks()
	var total time.Duration
	n := (size + step - 1) / step
	for i, off := 0, 0; off < size; i, off = i+1, off+step {
		v := growChunk(i, min(step, size-off))
		if err := c.c.SetDeadline(time.Now().Add(growTimeout)); err != nil {
			return nil, err
		}
		t0 := time.Now()
		fmt.Fprintf(c.w, "*3\r\n$6\r\nAPPEND\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, len(v))
		if _, err := c.w.Write(v); err != nil {
			return nil, err
		}
		c.w.WriteString("\r\n")
		if err := c.flush(); err != nil {
			return nil, err
		}
		rep, err := c.read()
		if err == nil {
			if e, ok := rep.(errReply); ok {
				err = e
			}
		}
		if err != nil {
			return nil, fmt.Errorf("APPEND %d/%d of %d bytes: %w", i+1, n, len(v), err)
		}
		d := time.Since(t0)
		total += d
		if got, _ := rep.(int64); got != int64(off+len(v)) {
			return nil, fmt.Errorf("APPEND %d/%d replied %v, want the length %d", i+1, n, rep, off+len(v))
		}
		fmt.Printf(growFormat, fmt.Sprintf("APPEND %d/%d to %s", i+1, n, sizeName(off+len(v))), roundDur(d), "", "", "", "", "", "so far "+mib(growth()))
	}
	finish(fmt.Sprintf("%d APPENDs of %s", n, sizeName(step)), total)

	for _, p := range patches {
		resetPeaks()
		var args []string
		var name string
		// SETBIT replies with the bit's former value, whatever it was; the
		// GET at the end checks the value.
		want := []int64{int64(size)}
		if p.or {
			args = []string{"SETBIT", key, strconv.Itoa(8 * p.off), "1"}
			name, want = fmt.Sprintf("SETBIT %d", 8*p.off), []int64{0, 1}
		} else {
			args = []string{"SETRANGE", key, strconv.Itoa(p.off), string(p.b)}
			name = fmt.Sprintf("SETRANGE %d (%d B)", p.off, len(p.b))
		}
		t0 := time.Now()
		rep, err := do(args...)
		d := time.Since(t0)
		if err != nil {
			return steps, fmt.Errorf("%s: %w", name, err)
		}
		if got, _ := rep.(int64); !slices.Contains(want, got) {
			return steps, fmt.Errorf("%s replied %v, want one of %v", name, rep, want)
		}
		finish(name, d)
	}
	small.halt()
	var all growStep
	all.name, all.measured = "steps 1-4", true
	for _, s := range steps {
		all.small = append(all.small, s.small...)
		all.smallErrs += s.smallErrs
		if all.firstSmallErr == nil {
			all.firstSmallErr = s.firstSmallErr
		}
	}
	printGrowStep(all, size)

	// The rest without the small SETs: reads, timed alone.
	lo := 1000
	t0 := time.Now()
	rep, err := do("GETRANGE", key, strconv.Itoa(lo), strconv.Itoa(lo+len(rng)-1))
	d := time.Since(t0)
	if err != nil {
		return steps, fmt.Errorf("GETRANGE: %w", err)
	}
	if got, _ := rep.(string); got != string(rng) {
		return steps, fmt.Errorf("GETRANGE %d %d returned %q, want %q", lo, lo+len(rng)-1, got, rng)
	}
	steps = append(steps, growStep{name: fmt.Sprintf("GETRANGE %d %d", lo, lo+len(rng)-1), d: d})
	printGrowStep(steps[len(steps)-1], size)

	t0 = time.Now()
	rep, err = do("STRLEN", key)
	d = time.Since(t0)
	if err != nil {
		return steps, fmt.Errorf("STRLEN: %w", err)
	}
	if got, _ := rep.(int64); got != int64(size) {
		return steps, fmt.Errorf("STRLEN replied %v, want %d", rep, size)
	}
	steps = append(steps, growStep{name: "STRLEN", d: d})
	printGrowStep(steps[len(steps)-1], size)

	if err := c.c.SetDeadline(time.Now().Add(growTimeout)); err != nil {
		return steps, err
	}
	got := newBlockSums()
	t0 = time.Now()
	c.send("GET", key)
	if err := c.flush(); err != nil {
		return steps, err
	}
	m, err := readBulk(c, got)
	d = time.Since(t0)
	if err != nil {
		return steps, fmt.Errorf("GET: %w", err)
	}
	if m != int64(size) {
		return steps, fmt.Errorf("GET returned %d bytes, want %d", m, size)
	}
	if i := firstDiff(got.done(), sums); i >= 0 {
		return steps, fmt.Errorf("GET: the value differs from what the commands made of it in MiB %d", i)
	}
	steps = append(steps, growStep{name: "GET (checked)", d: d})
	printGrowStep(steps[len(steps)-1], size)

	t0 = time.Now()
	if _, err := do("DEL", key); err != nil {
		return steps, fmt.Errorf("DEL: %w", err)
	}
	steps = append(steps, growStep{name: "DEL", d: time.Since(t0)})
	printGrowStep(steps[len(steps)-1], size)
	return steps, nil
}

// firstDiff returns the first index where a and b differ (or the shorter
// one's length if one is a prefix of the other), or -1.
func firstDiff(a, b []uint32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// readBulk reads a bulk string reply into w without holding it whole, and
// returns its length.
func readBulk(c *conn, w io.Writer) (int64, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return 0, errReply(line[1:])
	case !strings.HasPrefix(line, "$"):
		return 0, fmt.Errorf("unexpected reply %q", line)
	}
	n, err := strconv.ParseInt(line[1:], 10, 64)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("nil reply")
	}
	if _, err := io.CopyN(w, c.r, n); err != nil {
		return 0, err
	}
	var crlf [2]byte
	if _, err := io.ReadFull(c.r, crlf[:]); err != nil {
		return 0, err
	}
	if !bytes.Equal(crlf[:], []byte("\r\n")) {
		return 0, fmt.Errorf("bulk reply of %d bytes not followed by CRLF", n)
	}
	return n, nil
}

func sizeName(n int) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%dG", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return strconv.Itoa(n)
}

const growFormat = "  %-26s %9s %7s %9s %9s %9s %6s  %s\n"

func printGrowStep(s growStep, size int) {
	var n, p50, p99, mx, errs string
	if s.measured {
		n = strconv.Itoa(len(s.small))
		p50, p99, mx = roundDur(pct(s.small, 50)), roundDur(pct(s.small, 99)), roundDur(pct(s.small, 100))
		errs = strconv.Itoa(s.smallErrs)
	}
	var g []string
	for _, b := range s.growth {
		g = append(g, fmt.Sprintf("%.0f MiB (%.1fx)", float64(b)/(1<<20), float64(b)/float64(size)))
	}
	fmt.Printf(growFormat, s.name, roundDur(s.d), n, p50, p99, mx, errs, strings.Join(g, ", "))
	if s.firstSmallErr != nil {
		fmt.Printf("    first small SET error: %v\n", s.firstSmallErr)
	}
}

// roundDur rounds d to the millisecond, or to 10 us below 10 ms; 0 is
// blank (not measured).
func roundDur(d time.Duration) string {
	if d == 0 {
		return ""
	}
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// maxGrowth is the largest of a step's peak RSS growths, as a multiple of
// size, or "" if not measured.
func maxGrowth(s growStep, size int) string {
	if len(s.growth) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%.1fx)", float64(slices.Max(s.growth))/float64(size))
}

// runGrow runs the -grow mode on a started cluster and redis-server.
func runGrow(ctx context.Context, o options, cl *cluster, leader int, seshatPids []int, redisAddr string, redisPid int) error {
	sizes, err := parseSizes(o.grow)
	if err != nil || len(sizes) != 2 || sizes[1] > sizes[0] || sizes[0] < 4<<10 {
		return fmt.Errorf("-grow %s: want SIZE,STEP with 4K <= SIZE and STEP <= SIZE", o.grow)
	}
	size, step := sizes[0], sizes[1]
	patches := []patch{
		{off: 1000, b: []byte("zz")},
		{off: size - 10, b: []byte("0123456789")},
		{off: size / 2, b: []byte{0x80}, or: true}, // SETBIT 8*(size/2): the byte's high bit
	}
	t0 := time.Now()
	sums, rng := growExpected(size, step, patches, 1000, 1099)
	fmt.Printf("\ngrowing a value to %s by APPENDs of %s, then changing it in place (on the leader / redis-server; small SETs on the same server, one client, 5ms apart, during steps 1-4)\n", sizeName(size), sizeName(step))
	fmt.Printf("expected content computed in %v\n", time.Since(t0).Round(time.Millisecond))
	_, term0 := cl.leader()
	results := map[string][]growStep{}
	names := []string{"seshat", "redis-server"}
	for _, t := range []struct {
		name string
		addr string
		pids []int
	}{{names[0], cl.clients[leader], seshatPids}, {names[1], redisAddr, []int{redisPid}}} {
		nodes := ""
		if t.name == names[0] {
			nodes = fmt.Sprintf(", in node order, the leader node %d", leader+1)
		}
		fmt.Printf("\n%s (peak RSS growth per process%s, x the final value: over all the APPENDs, then over each command)\n", t.name, nodes)
		fmt.Printf(growFormat, "step", "time", "small n", "p50", "p99", "max", "errors", "peak RSS growth per process")
		steps, err := growCase(ctx, t.addr, t.pids, size, step, patches, sums, rng)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		results[t.name] = steps
		fmt.Printf("  load average: %s\n", loadAvg())
		if t.name == names[0] {
			if i, term := cl.leader(); i != leader || term != term0 {
				fmt.Printf("  the leader changed: node %d term %s, now node %d term %s\n", leader+1, term0, i+1, term)
				if i < 0 {
					return errors.New("seshat: no leader")
				}
			}
		}
	}
	fmt.Printf("\n%s: time (largest peak RSS growth of a process, x the value)\n", sizeName(size))
	fmt.Printf("%-26s %18s %18s\n", "step", "seshat", "redis-server")
	for i, s := range results[names[0]] {
		r := results[names[1]][i]
		fmt.Printf("%-26s %18s %18s\n", s.name, roundDur(s.d)+maxGrowth(s, size), roundDur(r.d)+maxGrowth(r, size))
	}
	return nil
}

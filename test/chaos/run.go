package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Bounds of a run.
const (
	recoverWithin  = 30 * time.Second // a write is taken after a heal
	convergeWithin = 60 * time.Second // every node at one index and digest
	quietGap       = 2 * time.Second  // between two steps
	porcupineLimit = 3 * time.Minute
)

// result is one run's verdicts, one line per nemesis step and workload.
type result struct {
	lines  []string
	failed []string // what failed, for the test's error
	dir    string   // where the evidence goes
}

func (r *result) line(format string, args ...any) {
	l := fmt.Sprintf(format, args...)
	r.lines = append(r.lines, l)
	fmt.Println(l)
}

func (r *result) fail(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

// runConfig is one cluster's run.
type runConfig struct {
	Name     string // chaos-<label>
	Nodes    int
	Seed     uint64
	Duration time.Duration // beyond one pass of every nemesis
	Env      []string      // extra SESHAT_* for every node
	Steps    []step        // nil: schedule(Seed, Duration)
}

// runChaos starts a cluster, runs the workloads through the schedule,
// and checks everything. It returns the verdicts; it does not fail t
// itself except where the run cannot go on.
func runChaos(t *testing.T, rc runConfig, evidence string) *result {
	res := &result{dir: evidence}
	label := fmt.Sprintf("chaos cluster=%d seed=%d", rc.Nodes, rc.Seed)
	c := newCluster(t, rc.Name, rc.Nodes, rc.Seed, rc.Env)
	c.evidence = evidence
	c.startAll()
	// Logs and schedule are kept when anything failed.
	t.Cleanup(func() {
		if len(res.failed) > 0 || t.Failed() {
			c.logs(evidence)
		}
	})
	if c.waitLeader(60*time.Second) == nil {
		t.Fatalf("%s: no leader within 60s of the start", label)
	}
	if d, ok := c.takesWrites(recoverWithin); !ok {
		t.Fatalf("%s: no write taken within %v of the start", label, d)
	}
	steps := rc.Steps
	if steps == nil {
		steps = schedule(rc.Seed, rc.Duration, rc.Nodes)
	}
	var sched strings.Builder
	fmt.Fprintf(&sched, "seed %d, %d nodes, duration %v; the steps run, with their targets:\n", rc.Seed, rc.Nodes, rc.Duration)

	var addrs []string
	for _, nd := range c.members() {
		addrs = append(addrs, nd.addr())
	}
	w := newWorkloads(addrs)
	c.w = w
	w.run(rc.Seed)
	time.Sleep(2 * time.Second)
	began := time.Now()
	for i, s := range steps {
		if i >= len(nemeses) && rc.Steps == nil && time.Since(began) >= rc.Duration {
			break // every nemesis ran once, and the duration is spent
		}
		w.epoch.Store(int64(i + 1))
		from := w.now()
		c.change = nil
		what, err := c.apply(s)
		if err != nil {
			c.heal()
			res.fail("%s nemesis=%s: %v", label, s.Nemesis, err)
			res.line("%s nemesis=%s step=%d error=%q verdict=FAILED", label, s.Nemesis, i, err.Error())
			fmt.Fprintf(&sched, "%d %s fault=%v pick=%d: error %v\n", i, s.Nemesis, s.Fault, s.Pick, err)
			continue
		}
		// A membership change or a disk-full check runs during the
		// fault; what it could not finish runs after the heal.
		healEnd := time.Now().Add(s.Fault)
		var problems []string
		changed := ""
		if ch := c.change; ch != nil {
			problems = append(problems, ch.runUntil(healEnd)...)
			changed = " change=done-during-fault"
			if len(ch.todo) > 0 {
				changed = " change=finished-after-heal"
			}
		}
		time.Sleep(time.Until(healEnd))
		c.heal()
		if ch := c.change; ch != nil {
			problems = append(problems, ch.finish(time.Now().Add(changeWithin))...)
			c.change = nil
			changed += " members=" + c.memberNames()
		}
		d, ok := c.takesWrites(recoverWithin)
		time.Sleep(quietGap)
		verdict := "ok"
		if !ok {
			problems = append(problems, fmt.Sprintf("no write taken within %v of the heal", recoverWithin))
		}
		for _, p := range problems {
			verdict = "FAILED"
			res.fail("%s nemesis=%s step=%d: %s", label, s.Nemesis, i, p)
		}
		fmt.Fprintf(&sched, "%d %s fault=%v pick=%d: %s%s\n", i, s.Nemesis, s.Fault, s.Pick, what, changed)
		res.line("%s nemesis=%s step=%d fault=%v targets=%q%s ops %s writes-back-after=%v verdict=%s",
			label, s.Nemesis, i, s.Fault.Round(time.Millisecond), what, changed, w.window(from, w.now()), d.Round(time.Millisecond), verdict)
		if verdict != "ok" {
			res.line("%s nemesis=%s step=%d problems: %s", label, s.Nemesis, i, strings.Join(problems, "; "))
		}
	}
	_ = os.WriteFile(filepath.Join(evidence, "schedule-"+rc.Name+".txt"), []byte(sched.String()), 0o644)
	w.halt()

	// The end: writes within a bound after the last heal, then every node
	// at one applied index and digest.
	if d, ok := c.takesWrites(recoverWithin); !ok {
		res.fail("%s: no write taken within %v after the last heal", label, recoverWithin)
	} else {
		res.line("%s check=writes-after-last-heal took=%v verdict=ok", label, d.Round(time.Millisecond))
	}
	if diff := c.checkMembers(changeWithin); diff == "" {
		res.line("%s check=members members=%s verdict=ok", label, c.memberNames())
	} else {
		res.fail("%s: the members do not agree on the membership: %s", label, diff)
		res.line("%s check=members verdict=FAILED %s", label, diff)
	}
	idx, digest, conv := c.converge(convergeWithin)
	if conv == "" {
		res.line("%s check=convergence applied=%d digest=%.16s verdict=ok", label, idx, digest)
	} else {
		res.fail("%s: nodes did not converge within %v: %s", label, convergeWithin, conv)
		res.line("%s check=convergence verdict=FAILED %s", label, conv)
	}
	c.checkRegister(w, res, label, rc.Name)
	c.checkCounters(w, res, label)
	c.checkLists(w, res, label)
	return res
}

// takesWrites writes through every node in turn until one write is
// answered OK, up to within; it returns how long that took.
func (c *cluster) takesWrites(within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for i := 0; time.Since(start) < within; i++ {
		m := c.members()
		nd := m[i%len(m)]
		cl := newClient(nd.addr())
		ctx, cancel := opCtx()
		err := cl.Set(ctx, "chaos:probe", strconv.Itoa(i), 0).Err()
		cancel()
		cl.Close()
		if err == nil {
			return time.Since(start), true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), false
}

// digestOf asks nd for SESHAT.DIGEST.
func (c *cluster) digestOf(nd *node) (int64, string, error) {
	cl := newClient(nd.addr())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := cl.Do(ctx, "SESHAT.DIGEST").Slice()
	if err != nil {
		return 0, "", err
	}
	if len(v) != 2 {
		return 0, "", fmt.Errorf("SESHAT.DIGEST: %v", v)
	}
	idx, _ := v[0].(int64)
	d, _ := v[1].(string)
	return idx, d, nil
}

// converge waits until every node answers the same applied index and
// digest; it returns them, or what differed.
func (c *cluster) converge(within time.Duration) (int64, string, string) {
	deadline := time.Now().Add(within)
	var seen []string
	for time.Now().Before(deadline) {
		seen = seen[:0]
		views := map[string]bool{}
		var idx int64
		var dig string
		for _, nd := range c.members() {
			i, d, err := c.digestOf(nd)
			if err != nil {
				seen = append(seen, nd.name+": "+err.Error())
				views["error"+nd.name] = true
				continue
			}
			idx, dig = i, d
			views[fmt.Sprintf("%d/%s", i, d)] = true
			seen = append(seen, fmt.Sprintf("n%d=%d/%.16s", nd.id, i, d))
		}
		if len(views) == 1 {
			return idx, dig, ""
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, "", strings.Join(seen, " ")
}

// checkRegister runs porcupine over the register history; a violation
// keeps the visualisation.
func (c *cluster) checkRegister(w *workloads, res *result, label, name string) {
	keys := map[string]bool{}
	for _, op := range w.reg {
		keys[op.Input.(regInput).Key] = true
	}
	start := time.Now()
	verdict, info := porcupine.CheckOperationsVerbose(registerModel, w.reg, porcupineLimit)
	took := time.Since(start).Round(time.Millisecond)
	v := "ok"
	switch verdict {
	case porcupine.Illegal:
		v = "FAILED (not linearizable)"
		path := filepath.Join(res.dir, "register-"+name+".html")
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			path = "(visualisation failed: " + err.Error() + ")"
		}
		res.fail("%s workload=register: not linearizable: see %s", label, path)
	case porcupine.Unknown:
		v = "unknown (porcupine timed out)"
	}
	res.line("%s workload=register keys=%d clients=%d ops %s checked-in=%v verdict=%s", label, len(keys), regClients, w.regCnt, took, v)
}

// checkCounters reads every counter: it must lie within [acknowledged,
// acknowledged + unknown].
func (c *cluster) checkCounters(w *workloads, res *result, label string) {
	v := "ok"
	var detail []string
	for k := range ctrKeys {
		got, err := c.readLinearizable(func(ctx context.Context, nd *node) (string, error) {
			cl := newClient(nd.addr())
			defer cl.Close()
			return cl.Get(ctx, "ctr:"+strconv.Itoa(k)).Result()
		})
		n, _ := strconv.ParseInt(got, 10, 64)
		if err != nil && !strings.Contains(err.Error(), "redis: nil") {
			v = "FAILED"
			res.fail("%s workload=counter ctr:%d: %v", label, k, err)
			continue
		}
		lo, hi := w.ctr[k].acked, w.ctr[k].acked+w.ctr[k].unknown
		detail = append(detail, fmt.Sprintf("ctr:%d=%d∈[%d,%d]", k, n, lo, hi))
		if n < lo || n > hi {
			v = "FAILED"
			res.fail("%s workload=counter ctr:%d = %d, not within [%d acknowledged, %d acknowledged+unknown] (%d failed)", label, k, n, lo, hi, w.ctr[k].failed)
		}
	}
	res.line("%s workload=counter keys=%d clients=%d ops %s %s verdict=%s", label, ctrKeys, ctrClients, w.ctrCnt, strings.Join(detail, " "), v)
}

// checkLists reads every list: every acknowledged element is there, none
// twice, none whose RPUSH certainly failed.
func (c *cluster) checkLists(w *workloads, res *result, label string) {
	v := "ok"
	present := map[string]int{}
	for k := range listKeys {
		var els []string
		_, err := c.readLinearizable(func(ctx context.Context, nd *node) (string, error) {
			cl := newClient(nd.addr())
			defer cl.Close()
			var err error
			els, err = cl.LRange(ctx, "list:"+strconv.Itoa(k), 0, -1).Result()
			return "", err
		})
		if err != nil {
			v = "FAILED"
			res.fail("%s workload=list list:%d: %v", label, k, err)
			continue
		}
		for _, e := range els {
			present[e]++
		}
	}
	var lost, dup, ghost int
	var examples []string
	for el, o := range w.list {
		switch {
		case o == ok && present[el] == 0:
			lost++
			examples = append(examples, "lost "+el)
		case present[el] > 1:
			dup++
			examples = append(examples, "twice "+el)
		case o == failed && present[el] > 0:
			ghost++
			examples = append(examples, "failed but present "+el)
		}
	}
	if lost+dup+ghost > 0 {
		v = "FAILED"
		if len(examples) > 10 {
			examples = examples[:10]
		}
		res.fail("%s workload=list: %d acknowledged elements lost, %d present twice, %d reported failed but present: %v", label, lost, dup, ghost, examples)
	}
	res.line("%s workload=list keys=%d clients=%d ops %s lost=%d duplicated=%d failed-but-present=%d verdict=%s", label, listKeys, listClient, w.listCnt, lost, dup, ghost, v)
}

// readLinearizable runs read on each node in turn until one answers.
func (c *cluster) readLinearizable(read func(ctx context.Context, nd *node) (string, error)) (string, error) {
	var last error
	for range 3 {
		for _, nd := range c.members() {
			ctx, cancel := opCtx()
			v, err := read(ctx, nd)
			cancel()
			if err == nil || strings.Contains(err.Error(), "redis: nil") {
				return v, err
			}
			last = err
		}
		time.Sleep(time.Second)
	}
	return "", last
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
)

// runBatch runs seeds lo..hi in parallel and returns their results in seed
// order.
func runBatch(opts options, lo, hi uint64) []result {
	seeds := seedRange(lo, hi)
	out := make([]result, len(seeds))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = runSeed(opts, seeds[i])
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func TestSimClean(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		seeds uint64
	}{{3, 200}, {5, 100}} {
		opts := defaultOptions()
		opts.nodes = tc.nodes
		ops := 0
		var st stats
		for _, r := range runBatch(opts, 1, tc.seeds) {
			st.add(r.stats)
			if r.err != nil {
				t.Fatalf("seed %d: %v", r.seed, r.err)
			}
			if r.violation != nil {
				t.Error(r.violation.line(opts))
			}
			if r.lin == "unknown" {
				t.Logf("seed %d: porcupine timed out", r.seed)
			}
			ops += r.ops
		}
		// A simulation in which nothing happens would pass trivially.
		if min := int(tc.seeds) * 50; ops < min {
			t.Errorf("%d nodes: only %d client operations completed in %d seeds (want >= %d)", tc.nodes, ops, tc.seeds, min)
		}
		t.Logf("%d nodes, seeds 1..%d: %d operations, %v", tc.nodes, tc.seeds, ops, st)
		// Nor would one whose faults never fire.
		for name, k := range map[string]int{"elections": st.elections, "crashes": st.crashes, "partitions": st.partitions,
			"compactions": st.compactions, "snapshots": st.snapshots, "unknown writes": st.unknown,
			"membership changes": st.members} {
			if k < int(tc.seeds) {
				t.Errorf("%d nodes: only %d %s in %d seeds", tc.nodes, k, name, tc.seeds)
			}
		}
	}
}

func TestSimDeterministic(t *testing.T) {
	for _, nodes := range []int{3, 5} {
		opts := defaultOptions()
		opts.nodes = nodes
		opts.steps = 4000
		var outs [2]bytes.Buffer
		var sums [2]summary
		for i, workers := range []int{1, 2} {
			var err error
			sums[i], err = runSeeds(&outs[i], opts, seedRange(1, 12), workers, false, false)
			if err != nil {
				t.Fatal(err)
			}
		}
		if outs[0].String() != outs[1].String() {
			t.Errorf("%d nodes: two runs of the same seeds differ:\n%s\n%s", nodes, outs[0].String(), outs[1].String())
		}
		seen := map[uint64]uint64{}
		for i, r := range sums[0].results {
			if r2 := sums[1].results[i]; r.hash != r2.hash || r.ops != r2.ops || r.steps != r2.steps {
				t.Errorf("%d nodes, seed %d: hash %x/%x ops %d/%d steps %d/%d", nodes, r.seed, r.hash, r2.hash, r.ops, r2.ops, r.steps, r2.steps)
			}
			if s, ok := seen[r.hash]; ok {
				t.Errorf("%d nodes: seeds %d and %d have the same trace hash %x", nodes, s, r.seed, r.hash)
			}
			seen[r.hash] = r.seed
		}
	}
}

// TestReplayPrefix checks what the repro command relies on: a run cut at
// step K is the first K steps of the full run.
func TestReplayPrefix(t *testing.T) {
	opts := defaultOptions()
	opts.traceKeep = 50
	opts.steps = 3000
	full := runSeed(opts, 7)
	opts.steps = 1500
	cut := runSeed(opts, 7)
	opts.steps = 3000
	again := runSeed(opts, 7)
	if full.hash != again.hash {
		t.Fatalf("same seed, different hashes: %x %x", full.hash, again.hash)
	}
	if cut.steps != 1500 || full.steps != 3000 {
		t.Fatalf("steps: cut %d full %d", cut.steps, full.steps)
	}
	// The cut run's last events (before its history check) appear in the
	// full run's trace at the same step.
	last := ""
	for _, l := range cut.trace {
		if strings.Contains(l, " #1500 ") && !strings.Contains(l, "history") {
			last = l
		}
	}
	if last == "" {
		t.Fatalf("no trace line at step 1500 in %q", cut.trace)
	}
	opts.traceKeep = 100000
	whole := runSeed(opts, 7)
	found := false
	for _, l := range whole.trace {
		found = found || l == last
	}
	if !found {
		t.Errorf("line %q of the cut run is not in the full run", last)
	}
}

// TestCheckersFire feeds the invariant checkers hand-made bad histories, so
// that a checker that cannot fail is caught.
func TestCheckersFire(t *testing.T) {
	t.Run("election safety", func(t *testing.T) {
		var c checker
		c.init()
		if other, fresh := c.recordLeader(5, 1); other != domain.None || !fresh {
			t.Fatalf("first leader of term 5: other %d fresh %v", other, fresh)
		}
		if other, _ := c.recordLeader(5, 1); other != domain.None {
			t.Fatalf("same leader again reported %d", other)
		}
		if other, _ := c.recordLeader(5, 2); other != 1 {
			t.Fatalf("two leaders in term 5 not caught: other %d", other)
		}
		if other, _ := c.recordLeader(6, 2); other != domain.None {
			t.Fatalf("a new term's leader reported as a second leader")
		}
	})
	t.Run("state machine safety", func(t *testing.T) {
		s, err := newSim(defaultOptions(), 1)
		if err != nil {
			t.Fatal(err)
		}
		n1, n2 := s.nodes[1], s.nodes[2]
		put := func(v string) []byte {
			return domain.EncodeCommand(domain.Command{Ops: []domain.Op{{Kind: domain.OpSet, Key: []byte("k"), Value: []byte(v)}}})
		}
		s.chk.recordApplied(s, n1, domain.Entry{Index: 1, Term: 1, Data: put("a")})
		s.chk.recordApplied(s, n2, domain.Entry{Index: 1, Term: 1, Data: put("a")})
		if s.viol != nil {
			t.Fatalf("identical entries reported: %+v", s.viol)
		}
		s.chk.recordApplied(s, n2, domain.Entry{Index: 2, Term: 1, Data: put("b")})
		s.chk.recordApplied(s, n1, domain.Entry{Index: 2, Term: 1, Data: put("c")})
		if s.viol == nil || s.viol.inv != "state-machine-safety" {
			t.Fatalf("divergent data at index 2 not caught: %+v", s.viol)
		}
		s.viol = nil
		s.chk.recordApplied(s, n1, domain.Entry{Index: 1, Term: 2, Data: put("a")})
		if s.viol == nil || s.viol.inv != "state-machine-safety" {
			t.Fatalf("divergent term at index 1 not caught: %+v", s.viol)
		}
	})
	t.Run("log matching", func(t *testing.T) {
		e := func(i domain.Index, term domain.Term, d string) domain.Entry {
			return domain.Entry{Index: i, Term: term, Data: []byte(d)}
		}
		a := []domain.Entry{e(1, 1, "x"), e(2, 1, "y"), e(3, 2, "z")}
		// Divergent suffixes are fine: the logs agree up to index 2.
		b := []domain.Entry{e(1, 1, "x"), e(2, 1, "y"), e(3, 3, "w"), e(4, 3, "v")}
		if i, ok := logsMatch(1, a, 1, b); !ok {
			t.Fatalf("legal divergence reported at %d", i)
		}
		// Same entry at 3 but different data below it: a violation.
		c := []domain.Entry{e(1, 1, "x"), e(2, 1, "Y"), e(3, 2, "z")}
		if i, ok := logsMatch(1, a, 1, c); ok || i != 2 {
			t.Fatalf("different data below a shared entry not caught: %d %v", i, ok)
		}
		// Same entry at 3, different term below it, in a log compacted
		// through 1.
		d := []domain.Entry{e(2, 2, "y"), e(3, 2, "z")}
		if i, ok := logsMatch(1, a, 2, d); ok || i != 2 {
			t.Fatalf("different term below a shared entry not caught: %d %v", i, ok)
		}
		// No overlap at all.
		if _, ok := logsMatch(1, a, 10, []domain.Entry{e(10, 5, "q")}); !ok {
			t.Fatal("disjoint logs reported")
		}
	})
	t.Run("leader completeness", func(t *testing.T) {
		applied := []appliedEntry{{}, {term: 1, by: 2}, {term: 2, by: 2}}
		log := memory.NewLogStore()
		if err := log.Append([]domain.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}, {Index: 3, Term: 3}}); err != nil {
			t.Fatal(err)
		}
		if msg := missingCommitted(log, applied, 2); msg != "" {
			t.Fatalf("complete log reported: %s", msg)
		}
		short := memory.NewLogStore()
		if err := short.Append([]domain.Entry{{Index: 1, Term: 1}}); err != nil {
			t.Fatal(err)
		}
		if msg := missingCommitted(short, applied, 2); msg == "" {
			t.Fatal("a leader missing committed index 2 not caught")
		}
		other := memory.NewLogStore()
		if err := other.Append([]domain.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 3}}); err != nil {
			t.Fatal(err)
		}
		if msg := missingCommitted(other, applied, 2); msg == "" {
			t.Fatal("a leader with another entry at committed index 2 not caught")
		}
		// Compacted through 2: the committed entries count as present.
		compacted := memory.NewLogStore()
		if err := compacted.Purge(2); err != nil {
			t.Fatal(err)
		}
		if err := compacted.Append([]domain.Entry{{Index: 3, Term: 3}}); err != nil {
			t.Fatal(err)
		}
		if msg := missingCommitted(compacted, applied, 2); msg != "" {
			t.Fatalf("compacted log reported: %s", msg)
		}
	})
}

// TestLinearizabilityChecker runs hand-made histories through the history
// builder and porcupine: a stale read must be rejected, unknown writes
// must be allowed to take effect late or never.
func TestLinearizabilityChecker(t *testing.T) {
	put := func(k, v string) kvInput { return kvInput{Op: opPut, Key: k, Value: v} }
	get := func(k string) kvInput { return kvInput{Op: opGet, Key: k} }
	found := func(v string) kvOutput { return kvOutput{Value: v, Found: true} }
	cases := []struct {
		name  string
		build func(h *history)
		want  string
	}{
		{"sequential", func(h *history) {
			h.ret(h.call(0, put("k0", "a"), 0), 10, kvOutput{})
			h.ret(h.call(1, get("k0"), 20), 30, found("a"))
		}, "ok"},
		{"stale read", func(h *history) {
			h.ret(h.call(0, put("k0", "a"), 0), 10, kvOutput{})
			h.ret(h.call(1, get("k0"), 20), 30, kvOutput{})
		}, "illegal"},
		{"value never written", func(h *history) {
			h.ret(h.call(1, get("k0"), 20), 30, found("zzz"))
		}, "illegal"},
		{"read goes back in time", func(h *history) {
			h.ret(h.call(0, put("k1", "a"), 0), 10, kvOutput{})
			h.call(0, put("k1", "b"), 11) // unknown outcome
			h.ret(h.call(1, get("k1"), 20), 30, found("b"))
			h.ret(h.call(2, get("k1"), 40), 50, found("a"))
		}, "illegal"},
		{"unknown write seen late", func(h *history) {
			h.call(0, put("k0", "a"), 0) // unknown outcome
			h.ret(h.call(1, get("k0"), 20), 30, kvOutput{})
			h.ret(h.call(1, get("k0"), 1000), 1010, found("a"))
		}, "ok"},
		{"unknown write never applied", func(h *history) {
			h.call(0, put("k0", "a"), 0)
			h.ret(h.call(1, get("k0"), 20), 30, kvOutput{})
		}, "ok"},
		{"dropped read", func(h *history) {
			h.ret(h.call(0, put("k0", "a"), 0), 10, kvOutput{})
			h.drop(h.call(1, get("k0"), 20))
			h.call(1, get("k0"), 40) // never answered
		}, "ok"},
		{"keys are independent", func(h *history) {
			h.ret(h.call(0, put("k0", "a"), 0), 10, kvOutput{})
			h.ret(h.call(1, get("k1"), 20), 30, kvOutput{})
			h.ret(h.call(0, kvInput{Op: opDel, Key: "k0"}, 40), 50, kvOutput{})
			h.ret(h.call(1, get("k0"), 60), 70, kvOutput{})
		}, "ok"},
	}
	for _, tc := range cases {
		var h history
		tc.build(&h)
		if got := checkLinearizable(h.operations()); got != tc.want {
			t.Errorf("%s: porcupine says %s, want %s", tc.name, got, tc.want)
		}
	}
	// The model partitions by key and keeps each key's operations.
	var h history
	h.ret(h.call(0, put("a", "1"), 0), 1, kvOutput{})
	h.ret(h.call(0, put("b", "1"), 2), 3, kvOutput{})
	h.ret(h.call(0, get("a"), 4), 5, found("1"))
	parts := kvModel.Partition(h.operations())
	if len(parts) != 2 || len(parts[0]) != 2 || len(parts[1]) != 1 {
		t.Errorf("partition by key: %v", parts)
	}
}

func TestViolationLine(t *testing.T) {
	opts := defaultOptions()
	v := &violation{seed: 42, step: 1234, at: 5*msec + 7, inv: "election-safety", detail: "term 3 has two leaders: n1 and n2"}
	want := "VIOLATION seed=42 step=1234 t=5.007ms inv=election-safety term 3 has two leaders: n1 and n2 repro: go run ./test/sim -seed 42 -nodes 3 -steps 1234"
	if got := v.line(opts); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	opts.plant, opts.nodes = "commit", 5
	if got := reproCommand(opts, 9, 77); got != "go run -tags seshatplant ./test/sim -plant commit -seed 9 -nodes 5 -steps 77" {
		t.Errorf("planted repro: %s", got)
	}
}

// TestStaleReadsCaught serves reads from any node's state machine without
// ReadIndex: the history of a run must then fail the linearizability
// check, end to end.
func TestStaleReadsCaught(t *testing.T) {
	opts := defaultOptions()
	opts.localReads = true
	opts.steps = 5000
	opts.vizDir = t.TempDir()
	for _, r := range runBatch(opts, 1, 30) {
		if v := r.violation; v != nil {
			if v.inv != "linearizability" {
				t.Fatalf("unexpected violation: %s", v.line(opts))
			}
			t.Logf("seed %d: %s", r.seed, v.line(opts))
			path := filepath.Join(opts.vizDir, fmt.Sprintf("seed-%d.html", r.seed))
			if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
				t.Errorf("no visualization of the history: %v", err)
			}
			return
		}
	}
	t.Fatal("stale reads went unnoticed in 30 seeds")
}

// TestMembershipNemesis checks that the membership nemesis does what it
// says: nodes join with empty storage and catch up (some by snapshot),
// members are removed (the leader among them) and stop for good, and
// replacements happen, with no violation.
func TestMembershipNemesis(t *testing.T) {
	opts := defaultOptions()
	opts.traceKeep = 1 << 20
	seen := map[string]int{}
	for _, r := range runBatch(opts, 1, 8) {
		if r.err != nil {
			t.Fatalf("seed %d: %v", r.seed, r.err)
		}
		if r.violation != nil {
			t.Fatal(r.violation.line(opts))
		}
		for _, l := range r.trace {
			f := strings.Fields(l)
			if len(f) < 4 {
				continue
			}
			switch {
			case f[2] == "member" && f[3] == "accepted":
				// member accepted at nX index I term T: the proposal
				// just before names the membership.
				seen["accepted"]++
			case f[2] == "member" && f[3] == "propose" && len(f) > 6:
				id := strings.TrimPrefix(f[5], "n")
				in := false
				for _, x := range strings.FieldsFunc(strings.Join(f[6:], " "), func(r rune) bool { return r < '0' || r > '9' }) {
					in = in || x == id
				}
				if !in {
					seen["leader removes itself"]++
				}
			case f[2] == "member" && f[3] == "new":
				seen["new node"]++
			case f[2] == "member" && f[3] == "retire":
				seen["retired"]++
			case f[2] == "member" && f[3] == "done" && len(f) > 5:
				seen[f[4]]++
			case f[2] == "output" && strings.Contains(l, "snap=") && nodeNum(f[3]) > opts.nodes:
				seen["snapshot to a new node"]++
			}
		}
	}
	t.Logf("seeds 1..8: %v", seen)
	for _, k := range []string{"new node", "retired", "add", "promote", "demote", "remove", "replace-remove", "replace-add",
		"replace-promote", "snapshot to a new node", "leader removes itself"} {
		if seen[k] == 0 {
			t.Errorf("no %s in seeds 1..8", k)
		}
	}
}

func nodeNum(s string) int {
	var n int
	fmt.Sscanf(strings.TrimPrefix(s, "n"), "%d", &n)
	return n
}

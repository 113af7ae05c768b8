// Command sim is Seshat's deterministic simulator: it runs 3 or 5 Raft cores
// in one goroutine from a seed, with virtual time, a faulty network,
// crashes that lose unsynced writes, snapshots and compaction, and clients
// writing and reading. After every event it checks election safety, log
// matching, leader completeness and state machine safety; at the end of a
// seed it checks the clients' history for linearizability with porcupine.
//
//	go run ./test/sim -seeds 300            # seeds 1..300, 3 nodes
//	go run ./test/sim -seed 42 -nodes 5     # one seed
//	go run ./test/sim -seed 42 -trace       # and dump its last events
//
// It prints one line per violation, with the command that replays it, and
// last a summary line `seeds=N violations=V ops=O members=M trace=HASH`,
// where O counts the client operations completed, M the membership changes
// made (see members.go) and HASH digests every event of
// the run: the same flags give the same HASH on every machine. It exits 1
// on any violation.
//
// # How a seed runs
//
// One PCG source seeded from the seed drives everything; each core gets its
// own PCG from the seed, its id and its incarnation. Events wait in a queue
// ordered by (virtual time, sequence number): ticks (every ~10 ms, a
// little different per node), message deliveries, fsync completions,
// crashes and restarts, partitions and heals, client requests and timers.
//
// A node handles a Ready the way a driver on a real disk would: install the
// snapshot (state machine Restore, log replaced), store the vote, write the
// entries (visible, not durable), send Messages at once; then, 0.5-10 ms
// later, the fsync completes: sync the log, send MessagesAfterSync, apply
// the committed entries, answer reads, Advance. Past a per-seed threshold
// of applied entries a node syncs its state machine and compacts its log,
// so lagging and restarted nodes get snapshots. A crash throws away what
// was not synced (adapters/memory) and voids the node's pending events;
// the restart rebuilds the core with node.LoadState.
//
// The faults of a seed are drawn from it (see faultPlan and nemesis.go):
// message loss, duplication and delay (with a long tail, and now and then
// a message a second late), partitions of several shapes that come and go,
// crashes of a random node or of the leader with fast or slow restarts, a
// rare crash of the whole cluster, leader transfers, and crashes and
// partitions aimed at moments where Raft is delicate: a write not yet
// synced, a vote just granted, a leader just elected, a leader's first
// commit of its term.
//
// The membership nemesis (members.go; -members=false switches it off)
// adds, promotes, demotes, removes and replaces members through the
// driver meanwhile, and each leader's commit is checked against the
// membership in force: held durably by a quorum of its voters, meeting
// every quorum of the membership committed before.
//
// Clients (2-4 per seed) put, get and delete a few keys with unique values,
// through the node they believe leads. A write is acknowledged when that
// node applies its entry with the term Propose returned; if another entry
// lands there, the node crashes or the client times out, its outcome is
// unknown and porcupine may place it anywhere after its call, or nowhere.
// A read (ReadIndex) is answered once the node's state machine reaches the
// read index; a read never answered is dropped.
//
// Builds with the seshatplant tag have a -plant flag that switches on one
// of the core's planted bugs (vote, commit, ack) to show that the
// simulator finds them; see plant_test.go.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
)

func main() {
	opts := defaultOptions()
	seeds := flag.Int("seeds", 1, "run seeds 1..N")
	from := flag.Uint64("from", 1, "with -seeds N, run seeds from..from+N-1 instead")
	seed := flag.Uint64("seed", 0, "run this one seed (overrides -seeds)")
	flag.IntVar(&opts.nodes, "nodes", opts.nodes, "cluster size: 3 or 5")
	flag.IntVar(&opts.steps, "steps", opts.steps, "events per seed")
	flag.StringVar(&opts.storage, "storage", opts.storage, "storage backend: memory or pebble (Pebble on a crashable in-memory filesystem)")
	flag.BoolVar(&opts.members, "members", opts.members, "change the membership under faults: add, promote, demote, remove, replace (-members=false: never)")
	flag.IntVar(&opts.compact, "compact", opts.compact, "mean applied entries between log compactions (each seed draws its own in [N/8, 2N])")
	trace := flag.Bool("trace", false, "print the last -trace-events events of every seed with a violation (of every seed, with -seed)")
	traceEvents := flag.Int("trace-events", 200, "how many events -trace prints")
	workers := flag.Int("j", runtime.GOMAXPROCS(0), "seeds run in parallel (the output does not depend on it)")
	flag.StringVar(&opts.vizDir, "viz", "", "write porcupine's visualization of a non-linearizable history to `dir`/seed-S.html")
	showStats := flag.Bool("stats", false, "print on stderr what the run exercised (elections, crashes, ...)")
	flag.Parse()
	if plantFlag != nil {
		opts.plant = *plantFlag
	}
	if opts.nodes != 3 && opts.nodes != 5 {
		fmt.Fprintln(os.Stderr, "sim: -nodes must be 3 or 5")
		os.Exit(2)
	}
	if opts.steps < 1 || opts.compact < 1 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "sim: -steps, -compact and -j must be positive")
		os.Exit(2)
	}
	if *trace {
		opts.traceKeep = *traceEvents
	}
	list := seedRange(*from, *from+uint64(*seeds)-1)
	if *seed != 0 {
		list = []uint64{*seed}
	}
	sum, err := runSeeds(os.Stdout, opts, list, *workers, *trace, *seed != 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(2)
	}
	if *showStats {
		fmt.Fprintln(os.Stderr, sum.stats)
	}
	if sum.violations > 0 {
		os.Exit(1)
	}
}

// plantFlag is the -plant flag; it exists only in builds with the
// seshatplant tag (plant_flag.go).
var plantFlag *string

func seedRange(lo, hi uint64) []uint64 {
	var out []uint64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

// summary is the outcome of a set of seeds.
type summary struct {
	seeds      int
	violations int
	ops        int
	hash       uint64
	results    []result
	stats      stats
}

// runSeeds runs the seeds on a few workers, prints each violation (and
// each porcupine timeout, on stderr) in seed order and then the summary
// line.
func runSeeds(w io.Writer, opts options, seeds []uint64, workers int, trace, traceAll bool) (summary, error) {
	results := make([]result, len(seeds))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(seeds)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = runSeed(opts, seeds[i])
			}
		}()
	}
	for i := range seeds {
		next <- i
	}
	close(next)
	wg.Wait()

	var sum summary
	hashes := make([]uint64, len(results))
	for i, r := range results {
		if r.err != nil {
			return sum, fmt.Errorf("seed %d: %w", r.seed, r.err)
		}
		hashes[i] = r.hash
		sum.ops += r.ops
		sum.stats.add(r.stats)
		if v := r.violation; v != nil {
			sum.violations++
			fmt.Fprintln(w, v.line(opts))
		}
		if r.lin == "unknown" {
			fmt.Fprintf(os.Stderr, "warning: seed %d: porcupine timed out; linearizability not decided\n", r.seed)
		}
		if trace && (r.violation != nil || traceAll) {
			fmt.Fprintf(w, "--- trace of seed %d, last %d events ---\n", r.seed, len(r.trace))
			for _, l := range r.trace {
				fmt.Fprintln(w, "  "+l)
			}
		}
	}
	sum.seeds = len(seeds)
	sum.hash = combineHashes(hashes)
	sum.results = results
	fmt.Fprintf(w, "seeds=%d violations=%d ops=%d members=%d trace=%016x\n", sum.seeds, sum.violations, sum.ops, sum.stats.members, sum.hash)
	return sum, nil
}

// runSeed runs one seed.
func runSeed(opts options, seed uint64) result {
	s, err := newSim(opts, seed)
	if err != nil {
		return result{seed: seed, err: err}
	}
	return s.run()
}

// line is the report of a violation, with the command that replays it.
func (v *violation) line(opts options) string {
	return fmt.Sprintf("VIOLATION seed=%d step=%d t=%d.%03dms inv=%s %s repro: %s",
		v.seed, v.step, v.at/msec, v.at%msec, v.inv, v.detail, reproCommand(opts, v.seed, v.step))
}

// reproCommand is the command that replays a seed through step steps.
func reproCommand(opts options, seed uint64, steps int) string {
	var b strings.Builder
	b.WriteString("go run ")
	if opts.plant != "" {
		b.WriteString("-tags seshatplant ")
	}
	b.WriteString("./test/sim")
	if opts.plant != "" {
		fmt.Fprintf(&b, " -plant %s", opts.plant)
	}
	fmt.Fprintf(&b, " -seed %d -nodes %d -steps %d", seed, opts.nodes, steps)
	def := defaultOptions()
	if opts.storage != def.storage {
		fmt.Fprintf(&b, " -storage %s", opts.storage)
	}
	if opts.compact != def.compact {
		fmt.Fprintf(&b, " -compact %d", opts.compact)
	}
	if opts.members != def.members {
		fmt.Fprintf(&b, " -members=%v", opts.members)
	}
	return b.String()
}

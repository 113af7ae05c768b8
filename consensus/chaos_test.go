package consensus

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// TestChaos runs seeded random schedules (message loss, reordering,
// duplication, partitions, crashes and restarts, compaction, transfers,
// reads) over in-memory clusters and checks Raft's safety properties after
// every event: one leader per term, no two different entries applied at
// one index, and every applied entry in the log of every later leader.
// At the end the network heals and a last proposal must commit.
//
// More seeds: go test ./consensus -run Chaos -chaos.seeds 2000
// One seed:   go test ./consensus -run 'Chaos/seed=17/' -v
func TestChaos(t *testing.T) {
	seeds := *chaosSeeds
	if testing.Short() {
		seeds = min(seeds, 10)
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		n := 3
		if seed%3 == 0 {
			n = 5
		}
		t.Run(fmt.Sprintf("seed=%d/n=%d", seed, n), func(t *testing.T) {
			runChaos(t, seed, n, 5000, plantSet{})
		})
	}
}

var chaosSeeds = flag.Int("chaos.seeds", 40, "number of TestChaos seeds")

// debugChaos prints a summary of the cluster every 100 events.
var debugChaos = false

func runChaos(t testing.TB, seed uint64, n int, steps int, plant plantSet) {
	rng := rand.New(rand.NewPCG(seed, 99))
	opt := func(c *Config) {
		c.Rand = rand.New(rand.NewPCG(seed, uint64(c.ID)))
		c.MaxMsgBytes = 200
		c.MaxInflightMsgs = 4
		c.DisablePreVote = seed%4 == 1
		c.DisableCheckQuorum = seed%5 == 2
		c.plant = plant
	}
	nw := newNetwork(t, n, opt)
	// Membership changes: with three nodes, two more wait to join.
	changes := n == 3
	if changes {
		for _, id := range []domain.NodeID{4, 5} {
			cfg := testConfig(id, nil)
			opt(&cfg)
			nw.add(cfg, State{})
		}
	}
	nw.appliedAt = map[domain.Index]domain.Entry{}
	leaders := map[domain.Term]domain.NodeID{}
	checked := map[domain.Term]bool{}
	proposals := 0
	check := func(ev string) {
		t.Helper()
		for _, id := range nw.ids {
			r := nw.node(id)
			if nw.down[id] || r.role != Leader {
				continue
			}
			if o, ok := leaders[r.term]; ok && o != id {
				t.Fatalf("seed %d after %s: two leaders in term %d: %d and %d", seed, ev, r.term, o, id)
			}
			leaders[r.term] = id
			if checked[r.term] {
				continue
			}
			checked[r.term] = true
			for idx, e := range nw.appliedAt {
				if idx <= r.log.offset {
					continue
				}
				if tt, ok := r.log.termOK(idx); !ok || tt != e.Term {
					t.Fatalf("seed %d after %s: leader %d of term %d lacks applied entry (%d,%d) (has term %d)",
						seed, ev, id, r.term, idx, e.Term, tt)
				}
			}
		}
	}
	randID := func() domain.NodeID { return nw.ids[rng.IntN(len(nw.ids))] }
	for step := 0; step < steps; step++ {
		var ev string
		switch x := rng.IntN(1000); {
		case x < 200:
			id := randID()
			ev = fmt.Sprintf("tick %d", id)
			if !nw.down[id] {
				nw.node(id).Tick()
			}
		case x < 500:
			if len(nw.queue) == 0 {
				continue
			}
			i := rng.IntN(min(len(nw.queue), 4)) // mild reordering
			m := nw.queue[i]
			nw.queue = slices.Delete(nw.queue, i, i+1)
			ev = fmt.Sprintf("deliver %v", m)
			nw.deliver(m)
		case x < 530:
			if len(nw.queue) == 0 {
				continue
			}
			i := rng.IntN(len(nw.queue))
			ev = fmt.Sprintf("drop %v", nw.queue[i])
			nw.lost(nw.queue[i])
			nw.queue = slices.Delete(nw.queue, i, i+1)
		case x < 550:
			if len(nw.queue) == 0 {
				continue
			}
			i := rng.IntN(len(nw.queue))
			ev = fmt.Sprintf("duplicate %v", nw.queue[i])
			nw.queue = append(nw.queue, nw.queue[i])
		case x < 650:
			id := randID()
			ev = fmt.Sprintf("ready %d", id)
			nw.handle(id)
		case x < 700:
			id := randID()
			ev = fmt.Sprintf("take ready %d", id)
			nw.takeReady(id)
		case x < 750:
			id := randID()
			ev = fmt.Sprintf("finish ready %d", id)
			nw.finishReady(id)
		case x < 870:
			ev = "propose"
			if l := nw.leader(); l != domain.None {
				if _, _, err := nw.node(l).Propose([]byte(fmt.Sprintf("p%d", proposals)), []byte(fmt.Sprintf("q%d", proposals))); err == nil {
					proposals++
				} else if debugChaos {
					t.Logf("step %d propose on %d: %v", step, l, err)
				}
			}
		case x < 900:
			id := randID()
			ev = fmt.Sprintf("read %d", id)
			if !nw.down[id] {
				nw.node(id).ReadIndex([]byte("r"))
			}
		case x < 912:
			id := randID()
			ev = fmt.Sprintf("crash %d", id)
			if !nw.down[id] {
				nw.crash(id)
			}
		case x < 927:
			a, b := randID(), randID()
			ev = fmt.Sprintf("cut %d-%d", a, b)
			if a != b {
				nw.cut[[2]domain.NodeID{a, b}] = true
				nw.cut[[2]domain.NodeID{b, a}] = true
			}
		case x < 947:
			ev = "heal and restart"
			nw.heal()
			for _, id := range nw.ids {
				if nw.down[id] {
					nw.restart(id)
				}
			}
		case x < 967:
			id := randID()
			ev = fmt.Sprintf("compact %d", id)
			r := nw.node(id)
			if nw.down[id] || r.log.applied <= r.log.offset {
				continue
			}
			back := domain.Index(rng.IntN(3))
			if r.log.applied < back || r.log.applied-back <= r.log.offset {
				continue
			}
			at := r.log.applied - back
			if at <= r.log.offset {
				continue
			}
			if err := r.Compact(at); err != nil {
				t.Fatalf("seed %d: compact %d: %v", seed, at, err)
			}
			s := nw.stores[id]
			if at > s.snap.Index {
				drop := int(at - s.snap.Index)
				if drop <= len(s.entries) {
					tt, _ := r.Term(at)
					s.entries = slices.Clone(s.entries[drop:])
					s.snap = domain.SnapshotMeta{Index: at, Term: tt, Membership: r.snapMembership.Clone()}
				}
			}
		case x < 975:
			ev = "transfer"
			if l := nw.leader(); l != domain.None {
				nw.node(l).TransferLeadership(randID())
			}
		case x < 985 && changes:
			l := nw.leader()
			if l == domain.None {
				continue
			}
			r := nw.node(l)
			m := r.membership.Clone()
			id := randID()
			switch {
			case m.IsVoter(id) && len(m.Voters) > 2:
				m.Voters = slices.DeleteFunc(m.Voters, func(v domain.NodeID) bool { return v == id })
			case m.IsLearner(id):
				m.Learners = slices.DeleteFunc(m.Learners, func(v domain.NodeID) bool { return v == id })
				m.Voters = append(m.Voters, id)
			case !m.Contains(id):
				m.Learners = append(m.Learners, id)
			default:
				continue
			}
			ev = fmt.Sprintf("membership %v", m)
			if _, _, err := r.ProposeMembership(m); err == nil && debugChaos {
				t.Logf("step %d: leader %d proposed %v", step, l, m)
			}
		default:
			ev = "ready all"
			for _, id := range nw.ids {
				nw.handle(id)
			}
		}
		check(ev)
		if debugChaos && step%100 == 0 {
			line := fmt.Sprintf("step %d q=%d cut=%d:", step, len(nw.queue), len(nw.cut))
			for _, id := range nw.ids {
				r := nw.node(id)
				line += fmt.Sprintf(" [%d %v t%d c%d l%d down=%v]", id, r.role, r.term, r.log.committed, r.log.lastIndex(), nw.down[id])
			}
			t.Log(line)
		}
	}
	// Heal everything; a leader must emerge and commit a last proposal.
	for _, id := range nw.ids {
		if nw.down[id] {
			nw.restart(id)
		}
	}
	nw.heal()
	nw.drop = nil
	proposedIn := map[domain.Term]bool{}
	for i := 0; i < 500; i++ {
		nw.tickAll(1)
		check("final tick")
		l := nw.leader()
		if l == domain.None {
			continue
		}
		r := nw.node(l)
		if !proposedIn[r.term] && r.leadTransferee == domain.None {
			if _, _, err := r.Propose([]byte("final")); err == nil {
				proposedIn[r.term] = true
			}
		}
		done := r.committedInTerm() && r.log.committed == r.log.lastIndex() && r.pendingConfIndex <= r.log.committed
		for _, id := range r.members {
			done = done && nw.node(id).log.committed == r.log.lastIndex()
		}
		if done {
			t.Logf("seed %d: %d proposals, final index %d, %d terms, membership %v, converged after %d ticks",
				seed, proposals, r.log.lastIndex(), len(leaders), r.membership, i+1)
			return
		}
	}
	for _, id := range nw.ids {
		t.Logf("node %d: %+v", id, nw.node(id).Status())
	}
	t.Fatalf("seed %d: the healed cluster did not converge", seed)
}

// catchTB turns a failure into a panic the caller recovers, to find out
// whether a run failed without failing the test.
type catchTB struct {
	testing.TB
	failure string
}

func (c *catchTB) Helper()                   {}
func (c *catchTB) Logf(string, ...any)       {}
func (c *catchTB) Log(...any)                {}
func (c *catchTB) Fatalf(f string, a ...any) { c.failure = fmt.Sprintf(f, a...); panic(c) }
func (c *catchTB) Errorf(f string, a ...any) { c.Fatalf(f, a...) }

// chaosFails runs one chaos schedule and returns its failure, if any.
func chaosFails(t *testing.T, seed uint64, n int, plant plantSet) (failure string) {
	c := &catchTB{TB: t}
	defer func() {
		if v := recover(); v != nil {
			if v != c {
				failure = fmt.Sprintf("panic: %v", v)
				return
			}
			failure = c.failure
		}
	}()
	runChaos(c, seed, n, 5000, plant)
	return ""
}

// TestChaosFindsPlantedBugs: the vote and ack planted bugs break a safety
// check of the chaos schedules within a few hundred seeds, so the checks
// have teeth and the switches do what they say. The commit bug needs the
// precise Figure 8 schedule, which random schedules seldom produce (seed
// 1317 with three nodes finds it); TestFigure8CommitOnlyCurrentTerm
// scripts it instead.
func TestChaosFindsPlantedBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for _, tc := range []struct {
		name  string
		plant plantSet
	}{
		{"vote", plantSet{voteNotPersisted: true}},
		{"ack", plantSet{ackBeforeSync: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= 500; seed++ {
				if f := chaosFails(t, seed, 3+2*int(seed%2), tc.plant); f != "" {
					t.Logf("caught at seed %d: %s", seed, f)
					return
				}
			}
			t.Fatal("not caught in 500 seeds")
		})
	}
}

// TestDeterministic: the same seeds give the same run, message for message.
func TestDeterministic(t *testing.T) {
	run := func() string {
		var b strings.Builder
		nw := newNetwork(t, 5, nil)
		nw.onReady = func(id domain.NodeID, rd Ready) {
			fmt.Fprintf(&b, "%d %+v %+v %d %d\n", id, rd.SoftState, rd.Vote, len(rd.Entries), len(rd.CommittedEntries))
			for _, m := range append(rd.Messages, rd.MessagesAfterSync...) {
				fmt.Fprintf(&b, "  %v\n", m)
			}
		}
		for i := range 200 {
			nw.tickAll(1)
			if l := nw.leader(); l != domain.None && i%7 == 0 {
				nw.node(l).Propose([]byte(fmt.Sprint(i)))
			}
			if i == 100 {
				nw.isolate(nw.leader())
			}
		}
		return b.String()
	}
	a, b := run(), run()
	if a != b {
		t.Fatal("two runs with the same seeds differ")
	}
	if len(a) < 1000 {
		t.Fatalf("run too short to mean anything: %d bytes", len(a))
	}
}

package consensus

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// clockSim runs a network in virtual time, where each node ticks at its own
// period and every message takes its own delay: the setting in which a
// lease can go wrong. After every event it checks the lease's safety
// property: a leader answers a read at once (a lease read) only while no
// leader of a higher term has been elected.
type clockSim struct {
	nw  *network
	now int64
	// period is each node's tick interval in time units; nextTick when it
	// ticks next.
	period   map[domain.NodeID]int64
	nextTick map[domain.NodeID]int64
	// delay gives each message's travel time, at least 1.
	delay  func(domain.Message) int64
	flight []timedMsg
	// probeEvery: a leader is asked for a read every probeEvery units.
	probeEvery int64

	// maxLeaderTerm is the highest term any node has led in so far.
	maxLeaderTerm domain.Term
	// leaseReads counts the reads answered from a lease, by term.
	leaseReads map[domain.Term]int
	// lastLeaseRead is when the leader of a term last answered from its
	// lease; electedAt when a term's leader was elected.
	lastLeaseRead map[domain.Term]int64
	electedAt     map[domain.Term]int64
	violation     string
}

type timedMsg struct {
	at int64
	m  domain.Message
}

func newClockSim(nw *network, period func(domain.NodeID) int64, delay func(domain.Message) int64) *clockSim {
	s := &clockSim{
		nw:            nw,
		period:        map[domain.NodeID]int64{},
		nextTick:      map[domain.NodeID]int64{},
		delay:         delay,
		probeEvery:    5,
		leaseReads:    map[domain.Term]int{},
		lastLeaseRead: map[domain.Term]int64{},
		electedAt:     map[domain.Term]int64{},
	}
	for i, id := range nw.ids {
		s.period[id] = period(id)
		// Distinct phases: node i ticks i units into its period.
		s.nextTick[id] = s.period[id] + int64(i)
	}
	return s
}

// setPeriod changes id's tick interval from its next tick on.
func (s *clockSim) setPeriod(id domain.NodeID, p int64) { s.period[id] = p }

// restart restarts id from its store; its clock starts now.
func (s *clockSim) restart(id domain.NodeID) {
	s.nw.restart(id)
	s.nextTick[id] = s.now + s.period[id]
}

// step advances virtual time by one unit: ticks due, deliveries due, every
// Ready handled, then a read probe on the leaders.
func (s *clockSim) step() {
	s.now++
	for _, id := range s.nw.ids {
		for s.nextTick[id] <= s.now {
			s.nextTick[id] += s.period[id]
			if !s.nw.down[id] {
				s.nw.node(id).Tick()
			}
		}
	}
	s.observe()
	var due []domain.Message
	s.flight = slices.DeleteFunc(s.flight, func(tm timedMsg) bool {
		if tm.at <= s.now {
			due = append(due, tm.m)
			return true
		}
		return false
	})
	for _, m := range due {
		s.nw.deliver(m)
		s.observe()
	}
	s.settle()
	if s.now%s.probeEvery == 0 {
		s.probe()
	}
}

// run steps n units.
func (s *clockSim) run(n int64) {
	for range n {
		s.step()
	}
}

// settle handles every node's Readies and puts their messages in flight.
func (s *clockSim) settle() {
	for moved := true; moved; {
		moved = false
		for _, id := range s.nw.ids {
			for s.nw.handle(id) {
				moved = true
				s.observe()
			}
		}
	}
	for _, m := range s.nw.queue {
		s.flight = append(s.flight, timedMsg{at: s.now + max(1, s.delay(m)), m: m})
	}
	s.nw.queue = nil
}

func (s *clockSim) observe() {
	for _, id := range s.nw.ids {
		r := s.nw.node(id)
		if s.nw.down[id] || r.role != Leader {
			continue
		}
		if _, ok := s.electedAt[r.term]; !ok {
			s.electedAt[r.term] = s.now
		}
		s.maxLeaderTerm = max(s.maxLeaderTerm, r.term)
	}
}

// probe asks every leader for a read; one answered at once came from the
// lease, and must not come from a leader that a later one has replaced.
func (s *clockSim) probe() {
	for _, id := range s.nw.ids {
		r := s.nw.node(id)
		if s.nw.down[id] || r.role != Leader || len(r.voters) < 2 {
			continue
		}
		before := len(r.readStates)
		if err := r.ReadIndex([]byte("probe")); err != nil {
			continue
		}
		if len(r.readStates) == before {
			continue
		}
		s.leaseReads[r.term]++
		s.lastLeaseRead[r.term] = s.now
		if r.term < s.maxLeaderTerm && s.violation == "" {
			s.violation = fmt.Sprintf("t=%d: node %d answered a lease read in term %d, but a leader of term %d was elected at t=%d",
				s.now, id, r.term, s.maxLeaderTerm, s.electedAt[s.maxLeaderTerm])
		}
	}
}

// leader returns the leader of the highest term among live nodes, or None.
func (s *clockSim) leader() domain.NodeID { return s.nw.leader() }

// runUntilLeader steps until some node leads and has committed in its term.
func (s *clockSim) runUntilLeader(limit int64) domain.NodeID {
	for range limit {
		s.step()
		if l := s.leader(); l != domain.None && s.nw.node(l).committedInTerm() {
			return l
		}
	}
	return domain.None
}

// cutOff describes a leader cut off from its followers in virtual time.
type cutOff struct {
	leaderPeriod, followerPeriod int64
	// ackDelay is how long heartbeat acknowledgements take to reach the
	// leader (every other message takes one unit).
	ackDelay int64
	preVote  bool
}

// run elects a leader, lets it serve lease reads at its tick rate, then
// cuts its links to the followers (they still reach it: acknowledgements
// in flight arrive). One follower's next election timeout is drawn at its
// minimum, ElectionTicks, so that it campaigns as early as Raft allows,
// and the other ticks at the same moments, so that it grants the vote as
// early as it may. It returns the simulation once a new leader was
// elected, and the old and new terms.
func (c cutOff) run(t *testing.T) (s *clockSim, oldTerm, newTerm domain.Term, cutAt int64) {
	t.Helper()
	nw := newNetwork(t, 3, func(cfg *Config) {
		leaseConfig(cfg)
		cfg.DisablePreVote = !c.preVote
	})
	lead := domain.None
	s = newClockSim(nw, func(domain.NodeID) int64 { return c.followerPeriod }, func(m domain.Message) int64 {
		if m.Type == domain.MsgHeartbeatResp && m.To == lead {
			return c.ackDelay
		}
		return 1
	})
	s.probeEvery = 1
	lead = s.runUntilLeader(100 * c.followerPeriod)
	if lead == domain.None {
		t.Fatal("no leader elected")
	}
	l := nw.node(lead)
	oldTerm = l.term
	s.setPeriod(lead, c.leaderPeriod)
	var followers []domain.NodeID
	for _, id := range nw.ids {
		if id != lead {
			followers = append(followers, id)
		}
	}
	// The followers tick together: whichever times out first finds the
	// other out of its lease too.
	s.nextTick[followers[1]] = s.nextTick[followers[0]]
	s.run(3 * int64(l.cfg.ElectionTicks) * max(c.leaderPeriod, c.followerPeriod))
	if s.leaseReads[oldTerm] == 0 {
		t.Fatal("the leader served no lease read before the cut")
	}
	cutAt = s.now
	for _, id := range followers {
		nw.cut[[2]domain.NodeID{lead, id}] = true
	}
	et := l.cfg.ElectionTicks
	nw.node(followers[0]).randomizedTimeout = 2*et - 1
	nw.node(followers[1]).randomizedTimeout = et
	for range 10 * int64(et) * max(c.leaderPeriod, c.followerPeriod) {
		s.step()
		if s.maxLeaderTerm > oldTerm {
			break
		}
	}
	if s.maxLeaderTerm <= oldTerm {
		t.Fatal("the followers elected no new leader")
	}
	s.run(2 * c.leaderPeriod)
	return s, oldTerm, s.maxLeaderTerm, cutAt
}

// TestLeaseCutOffLeader: a leader cut off from its followers stops serving
// lease reads before a new leader can be elected, with clocks that tick at
// different rates within the drift bound (LeaseDriftTicks 3 of 10: a
// leader's 7 ticks may last as long as a follower's 9) and with late
// acknowledgements. Beyond the bound the same schedule breaks the lease,
// which shows that the check has teeth.
func TestLeaseCutOffLeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      cutOff
		broken bool
	}{
		{"same rate", cutOff{leaderPeriod: 80, followerPeriod: 80, ackDelay: 1, preVote: true}, false},
		{"same rate without pre-vote", cutOff{leaderPeriod: 80, followerPeriod: 80, ackDelay: 1}, false},
		{"leader slower at the bound", cutOff{leaderPeriod: 90, followerPeriod: 70, ackDelay: 1, preVote: true}, false},
		{"leader faster", cutOff{leaderPeriod: 70, followerPeriod: 90, ackDelay: 1, preVote: true}, false},
		{"late acknowledgements", cutOff{leaderPeriod: 80, followerPeriod: 80, ackDelay: 250, preVote: true}, false},
		{"late acknowledgements, drift at the bound", cutOff{leaderPeriod: 90, followerPeriod: 70, ackDelay: 200}, false},
		{"leader slower beyond the bound", cutOff{leaderPeriod: 110, followerPeriod: 70, ackDelay: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, oldTerm, newTerm, cutAt := tc.c.run(t)
			last, elected := s.lastLeaseRead[oldTerm], s.electedAt[newTerm]
			t.Logf("cut at %d; last lease read of term %d at %d; leader of term %d elected at %d (margin %d units)",
				cutAt, oldTerm, last, newTerm, elected, elected-last)
			if last <= cutAt {
				t.Fatalf("no lease read after the cut at %d: the scenario shows nothing", cutAt)
			}
			switch {
			case !tc.broken && s.violation != "":
				t.Fatal(s.violation)
			case tc.broken && s.violation == "":
				t.Fatal("drift beyond the bound did not break the lease: the scenario is not tight")
			}
		})
	}
}

// leaseChaos is a random schedule in virtual time: tick periods drawn from
// [periodLo, periodHi], message delays from one unit to fifteen ticks, lost
// messages, partitions (some one-way), crashes and restarts (some at
// once), leader
// transfers and proposals, with a lease-read probe on the leaders every
// few units.
type leaseChaos struct {
	seed               uint64
	n                  int
	units              int64
	periodLo, periodHi int64
}

func (c leaseChaos) run(t testing.TB) *clockSim {
	rng := rand.New(rand.NewPCG(c.seed, 7))
	nw := newNetwork(t, c.n, func(cfg *Config) {
		leaseConfig(cfg)
		cfg.Rand = rand.New(rand.NewPCG(c.seed, uint64(cfg.ID)))
		cfg.DisablePreVote = c.seed%3 == 1
		cfg.MaxMsgBytes = 200
	})
	nw.drop = func(domain.Message) bool { return rng.IntN(100) < 2 }
	s := newClockSim(nw, func(domain.NodeID) int64 { return c.periodLo + rng.Int64N(c.periodHi-c.periodLo+1) },
		func(domain.Message) int64 {
			switch rng.IntN(100) {
			case 0:
				// Longer than an election timeout: a MsgTimeoutNow that
				// arrives after its transfer was abandoned.
				return 1 + rng.Int64N(15*c.periodHi)
			case 1, 2, 3, 4, 5, 6, 7, 8, 9, 10:
				return 1 + rng.Int64N(4*c.periodHi)
			}
			return 1 + rng.Int64N(c.periodLo/4)
		})
	randID := func() domain.NodeID { return nw.ids[rng.IntN(len(nw.ids))] }
	proposals := 0
	for s.now < c.units {
		s.step()
		if rng.IntN(int(c.periodLo)) != 0 {
			continue
		}
		switch x := rng.IntN(100); {
		case x < 40:
			if l := s.leader(); l != domain.None {
				nw.node(l).Propose(fmt.Appendf(nil, "p%d", proposals))
				proposals++
			}
		case x < 50:
			l := s.leader()
			if l == domain.None {
				continue
			}
			// Cut the leader off one way: its followers stop hearing
			// from it, their acknowledgements in flight still arrive.
			for _, id := range nw.ids {
				if id != l {
					nw.cut[[2]domain.NodeID{l, id}] = true
				}
			}
		case x < 60:
			nw.isolate(randID())
		case x < 75:
			nw.heal()
		case x < 82:
			down := 0
			for _, id := range nw.ids {
				if nw.down[id] {
					down++
				}
			}
			if down < (c.n-1)/2 {
				nw.crash(randID())
			}
		case x < 85:
			// A crash and an immediate restart: the node forgets the
			// leader it acknowledged a moment ago.
			if id := randID(); !nw.down[id] {
				nw.crash(id)
				s.restart(id)
			}
		case x < 90:
			for _, id := range nw.ids {
				if nw.down[id] {
					s.restart(id)
				}
			}
		case x < 95:
			if l := s.leader(); l != domain.None {
				nw.node(l).TransferLeadership(randID())
			}
		default:
			// A node's clock changes rate, within the range.
			s.setPeriod(randID(), c.periodLo+rng.Int64N(c.periodHi-c.periodLo+1))
		}
	}
	return s
}

// TestLeaseChaos: over random schedules with clocks that drift within the
// bound (LeaseDriftTicks 3 of 10: periods in [70, 90], 7*90 <= 9*70), no
// leader ever answers a lease read once a leader of a higher term has
// been elected.
//
// More seeds: go test ./consensus -run LeaseChaos -lease.seeds 500
func TestLeaseChaos(t *testing.T) {
	seeds := *leaseSeeds
	if testing.Short() {
		seeds = min(seeds, 5)
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		n := 3 + 2*int(seed%2)
		t.Run(fmt.Sprintf("seed=%d/n=%d", seed, n), func(t *testing.T) {
			s := leaseChaos{seed: seed, n: n, units: 150_000, periodLo: 70, periodHi: 90}.run(t)
			if s.violation != "" {
				t.Fatalf("seed %d: %s", seed, s.violation)
			}
			total := 0
			for _, n := range s.leaseReads {
				total += n
			}
			if total == 0 || s.maxLeaderTerm < 3 {
				t.Fatalf("seed %d: %d lease reads over %d terms: the schedule tests nothing", seed, total, s.maxLeaderTerm)
			}
			t.Logf("seed %d: %d lease reads, %d terms", seed, total, s.maxLeaderTerm)
		})
	}
}

var leaseSeeds = flag.Int("lease.seeds", 20, "number of TestLeaseChaos seeds")

// TestLeaseChaosCatchesDrift: with clocks that drift beyond the bound
// (periods in [50, 150]) the same schedules catch a stale lease read, so
// the property checked has teeth.
func TestLeaseChaosCatchesDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	for seed := uint64(1); seed <= 200; seed++ {
		s := leaseChaos{seed: seed, n: 3 + 2*int(seed%2), units: 150_000, periodLo: 50, periodHi: 150}.run(t)
		if s.violation != "" {
			t.Logf("caught at seed %d: %s", seed, s.violation)
			return
		}
	}
	t.Fatal("drift beyond the bound not caught in 200 seeds")
}

// TestLeaseFollowerRestart: a follower that acknowledged the leader's
// heartbeat and restarts at once has forgotten the leader, but it must not
// vote for another candidate while the leader may still count on that
// acknowledgement: in LeaseMode a node refuses votes for an election
// timeout after it starts.
func TestLeaseFollowerRestart(t *testing.T) {
	nw := newNetwork(t, 3, leaseConfig)
	s := newClockSim(nw, func(domain.NodeID) int64 { return 80 }, func(domain.Message) int64 { return 1 })
	s.probeEvery = 1
	lead := s.runUntilLeader(8000)
	if lead == domain.None {
		t.Fatal("no leader")
	}
	l := nw.node(lead)
	var a, b domain.NodeID
	for _, id := range nw.ids {
		switch {
		case id == lead:
		case a == domain.None:
			a = id
		default:
			b = id
		}
	}
	// b stops hearing from the leader and tries to get elected; a, in
	// the leader's lease, ignores it.
	nw.cut[[2]domain.NodeID{lead, b}] = true
	s.run(30 * 80)
	if s.maxLeaderTerm != l.term {
		t.Fatalf("a new leader of term %d while a followed the leader", s.maxLeaderTerm)
	}
	// Right after a acknowledged a heartbeat, it restarts, and b's timer
	// fires.
	for tick := l.ticks; l.ticks == tick; {
		s.step()
	}
	s.run(2)
	if !l.leaseHolds() {
		t.Fatal("the leader holds no lease")
	}
	nw.crash(a)
	s.restart(a)
	nw.node(b).campaign(false)
	s.run(20 * 80)
	if s.violation != "" {
		t.Fatal(s.violation)
	}
	if s.lastLeaseRead[l.term] <= s.now-20*80 {
		t.Fatal("the leader served no lease read after the restart: the scenario shows nothing")
	}
}

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The nemeses the schedule draws from; its first pass runs each once.
// The membership changes (remove-readd, replace-killed, grow, shrink)
// each run during another fault drawn from coFaults.
var nemeses = []string{
	"isolate-one", "isolate-leader", "halves", "ring", "bridge",
	"slow-links", "lossy-links",
	"kill-one", "kill-minority", "kill-leader", "kill-all", "pause-leader",
	"remove-readd", "replace-killed", "grow", "shrink",
	"disk-full",
}

// coFaults are the faults a membership change meets (none: it runs
// alone). Each leaves a majority of the old configuration, but not
// always of the new one: then the change finishes after the heal.
var coFaults = []string{
	"none", "isolate-one", "isolate-leader", "halves", "ring", "bridge",
	"slow-links", "lossy-links", "kill-one", "kill-leader", "pause-leader",
}

// Cluster sizes between which grow and shrink move a cluster.
const (
	smallCluster = 3
	largeCluster = 5
)

// electionTimeout is seshatd's default (50 ticks of 10ms).
const electionTimeout = 500 * time.Millisecond

// step is one nemesis of a schedule: what, for how long, and the random
// draw that picks its targets (so a seed replays the same choices).
type step struct {
	Nemesis string
	Fault   time.Duration
	Pick    uint64
}

// schedule returns the steps for a cluster of nodes: every nemesis once
// in a seeded order, then random ones, enough for total (the run stops
// taking the random ones once total has passed: see runChaos). grow and
// shrink are drawn as one: whichever keeps the cluster between 3 and 5
// nodes (so the first pass has both: a 3-node cluster grows first, a
// 5-node one shrinks first).
func schedule(seed uint64, total time.Duration, nodes int) []step {
	rng := rand.New(rand.NewPCG(seed, 7))
	size := nodes
	mk := func(name string) step {
		d := time.Duration(3000+rng.IntN(5000)) * time.Millisecond
		switch name {
		case "pause-leader":
			d = time.Duration(2+rng.IntN(4)) * electionTimeout
		case "grow", "shrink":
			name = "grow"
			if size >= largeCluster {
				name = "shrink"
			}
			size += map[string]int{"grow": 2, "shrink": -2}[name]
		}
		return step{Nemesis: name, Fault: d, Pick: rng.Uint64()}
	}
	var out []step
	for _, i := range rng.Perm(len(nemeses)) {
		out = append(out, mk(nemeses[i]))
	}
	for range int(total / (3 * time.Second)) {
		out = append(out, mk(nemeses[rng.IntN(len(nemeses))]))
	}
	return out
}

// leader returns the node the others agree leads (the one saying
// role:leader with the highest term), or nil.
func (c *cluster) leader() *node {
	var best *node
	bestTerm := -1
	for _, nd := range c.members() {
		if nd.killed || nd.paused {
			continue
		}
		f := c.info(nd)
		if f["raft_role"] != "leader" {
			continue
		}
		if t, _ := strconv.Atoi(f["term"]); t > bestTerm {
			best, bestTerm = nd, t
		}
	}
	return best
}

// info returns nd's INFO replication fields (empty if it does not answer).
func (c *cluster) info(nd *node) map[string]string {
	cl := newClient(nd.addr())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := cl.Info(ctx, "replication").Result()
	f := map[string]string{}
	if err != nil {
		return f
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	return f
}

// waitLeader waits for a leader, up to within.
func (c *cluster) waitLeader(within time.Duration) *node {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if l := c.leader(); l != nil {
			return l
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// partition cuts every link between nodes not in the same group of
// connected (a node's reachable peers): iptables DROP in both directions,
// in each container's network namespace. Clients still reach every node.
func (c *cluster) partition(reach map[int]map[int]bool) error {
	for _, a := range c.members() {
		if a.killed {
			continue
		}
		for _, b := range c.members() {
			if a == b || reach[a.id][b.id] {
				continue
			}
			if err := c.inNetns(a, "iptables", "-A", "INPUT", "-s", b.ip, "-j", "DROP"); err != nil {
				return err
			}
			if err := c.inNetns(a, "iptables", "-A", "OUTPUT", "-d", b.ip, "-j", "DROP"); err != nil {
				return err
			}
		}
	}
	return nil
}

// groups turns disjoint groups of node ids into a reach relation.
func groups(gs ...[]int) map[int]map[int]bool {
	r := map[int]map[int]bool{}
	for _, g := range gs {
		for _, a := range g {
			if r[a] == nil {
				r[a] = map[int]bool{}
			}
			for _, b := range g {
				r[a][b] = true
			}
		}
	}
	return r
}

// heal removes every rule and queue discipline and resumes and restarts
// every node.
func (c *cluster) heal() {
	for _, nd := range c.members() {
		if nd.paused {
			c.unpause(nd)
		}
		if nd.killed {
			c.start(nd)
		}
	}
	for _, nd := range c.members() {
		c.unfill(nd)
		_ = c.inNetns(nd, "iptables", "-F", "INPUT")
		_ = c.inNetns(nd, "iptables", "-F", "OUTPUT")
		_ = c.inNetns(nd, "tc", "qdisc", "del", "dev", "eth0", "root")
	}
}

// ids returns the nodes' ids, shuffled by rng.
func (c *cluster) ids(rng *rand.Rand) []int {
	m := c.members()
	out := make([]int, len(m))
	for i, p := range rng.Perm(len(m)) {
		out[i] = m[p].id
	}
	return out
}

func (c *cluster) byID(id int) *node { return c.nodes[id-1] }

// apply starts s's fault and returns a description of its targets.
// heal ends it. A membership change or a disk-full check also leaves its
// remaining actions in c.change, which runChaos runs during the fault and
// finishes after the heal.
func (c *cluster) apply(s step) (string, error) {
	rng := rand.New(rand.NewPCG(s.Pick, 11))
	n := len(c.members())
	ids := c.ids(rng)
	leaderOr := func() int {
		if l := c.waitLeader(5 * time.Second); l != nil {
			return l.id
		}
		return ids[0] // no leader now: any node
	}
	others := func(x int) []int {
		var o []int
		for _, id := range ids {
			if id != x {
				o = append(o, id)
			}
		}
		return o
	}
	names := func(xs []int) string {
		s := append([]int(nil), xs...)
		sort.Ints(s)
		var out []string
		for _, x := range s {
			out = append(out, "n"+strconv.Itoa(x))
		}
		return strings.Join(out, ",")
	}
	switch s.Nemesis {
	case "isolate-one", "isolate-leader":
		x := ids[0]
		if s.Nemesis == "isolate-leader" {
			x = leaderOr()
		}
		return "isolated " + names([]int{x}), c.partition(groups([]int{x}, others(x)))
	case "halves":
		minority := ids[:(n-1)/2]
		majority := ids[(n-1)/2:]
		return "minority " + names(minority) + " | majority " + names(majority), c.partition(groups(minority, majority))
	case "ring":
		// Each node reaches its two neighbours on a ring: with 5 nodes
		// every node sees a majority, and no two the same.
		r := map[int]map[int]bool{}
		for i, a := range ids {
			r[a] = map[int]bool{a: true, ids[(i+1)%n]: true, ids[(i+n-1)%n]: true}
		}
		var ring []string
		for _, a := range ids {
			ring = append(ring, "n"+strconv.Itoa(a))
		}
		return "ring " + strings.Join(ring, "-"), c.partition(r)
	case "bridge":
		// Two halves that only the bridge node reaches both of.
		b := ids[0]
		rest := ids[1:]
		left, right := rest[:len(rest)/2], rest[len(rest)/2:]
		r := groups(append([]int{b}, left...), append([]int{b}, right...))
		r[b] = map[int]bool{}
		for _, id := range ids {
			r[b][id] = true
		}
		return "bridge n" + strconv.Itoa(b) + " between " + names(left) + " and " + names(right), c.partition(r)
	case "slow-links":
		return c.slowLinks()
	case "lossy-links":
		return c.lossyLinks()
	case "kill-one", "kill-leader":
		x := ids[0]
		if s.Nemesis == "kill-leader" {
			x = leaderOr()
		}
		c.kill(c.byID(x))
		return "killed " + names([]int{x}), nil
	case "kill-minority":
		m := ids[:(n-1)/2]
		for _, x := range m {
			c.kill(c.byID(x))
		}
		return "killed " + names(m), nil
	case "kill-all":
		for _, x := range ids {
			c.kill(c.byID(x))
		}
		return "killed " + names(ids), nil
	case "kill-all-partitioned":
		// The leader cut off from a majority that goes on taking writes,
		// then every node killed while the partition holds; heal starts
		// them on a healed network.
		x := leaderOr()
		if err := c.partition(groups([]int{x}, others(x))); err != nil {
			return "", err
		}
		time.Sleep(3 * time.Second)
		for _, id := range ids {
			c.kill(c.byID(id))
		}
		return "isolated n" + strconv.Itoa(x) + " for 3s, then killed " + names(ids), nil
	case "replace-during-partition":
		// A follower killed, the leader cut off from the rest, and the
		// killed node replaced (SESHAT.MEMBER REPLACE, then a new node
		// with --join) through the majority side while the partition holds.
		l := leaderOr()
		x := others(l)[0]
		c.kill(c.byID(x))
		if err := c.partition(groups([]int{l}, others(l))); err != nil {
			return "", err
		}
		via := c.byID(others(l)[1])
		nd, err := c.reserveNode()
		if err != nil {
			return "", err
		}
		c.leaving(c.byID(x))
		if err := c.member(via, 30*time.Second, "REPLACE", strconv.Itoa(x), strconv.Itoa(nd.id), nd.ip+":16379", nd.ip+":6379"); err != nil {
			return "", err
		}
		c.byID(x).removed = true
		c.retire(c.byID(x))
		if err := c.join(nd, via); err != nil {
			return "", err
		}
		c.rebalance()
		return fmt.Sprintf("killed n%d, isolated leader n%d, replaced n%d by n%d through n%d", x, l, x, nd.id, via.id), nil
	case "remove-readd", "replace-killed", "grow", "shrink":
		return c.membershipStep(s, rng, ids)
	case "disk-full":
		return c.diskFull(leaderOr())
	case "pause-leader":
		x := leaderOr()
		c.pause(c.byID(x))
		return "paused " + names([]int{x}), nil
	}
	return "", fmt.Errorf("unknown nemesis %q", s.Nemesis)
}

// netemAvailable reports whether the kernel has the netem queue
// discipline (this sandbox's does not: tc answers "Specified qdisc kind
// is unknown").
func (c *cluster) netemAvailable() bool {
	nd := c.members()[0]
	if err := c.inNetns(nd, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	_ = c.inNetns(nd, "tc", "qdisc", "del", "dev", "eth0", "root")
	return true
}

// slowLinks delays every node's traffic with jitter and reordering
// (netem), or, without netem, throttles every node's link to a rate that
// makes queues and so delays (tbf).
func (c *cluster) slowLinks() (string, error) {
	netem := c.netemAvailable()
	for _, nd := range c.members() {
		var err error
		if netem {
			err = c.inNetns(nd, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "60ms", "40ms", "25%", "reorder", "10%", "50%", "loss", "1%")
		} else {
			err = c.inNetns(nd, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "512kbit", "burst", "16kbit", "latency", "300ms")
		}
		if err != nil {
			return "", err
		}
	}
	if netem {
		return "netem delay 60ms±40ms reorder 10% loss 1% on every node", nil
	}
	return "no netem in this kernel: tbf 512kbit (queueing delay) on every node", nil
}

// lossyLinks drops a fifth of the packets between peers: netem loss, or
// iptables' statistic match without netem.
func (c *cluster) lossyLinks() (string, error) {
	if c.netemAvailable() {
		for _, nd := range c.members() {
			if err := c.inNetns(nd, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "loss", "20%", "delay", "5ms", "5ms"); err != nil {
				return "", err
			}
		}
		return "netem loss 20% delay 5ms±5ms on every node", nil
	}
	for _, a := range c.members() {
		for _, b := range c.members() {
			if a == b {
				continue
			}
			if err := c.inNetns(a, "iptables", "-A", "INPUT", "-s", b.ip, "-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP"); err != nil {
				return "", err
			}
		}
	}
	return "iptables statistic: 20% of peer packets dropped on every node", nil
}

// member runs SESHAT.MEMBER args through nd, again while it answers
// TRYAGAIN, CLUSTERDOWN or TIMEOUT (every subcommand may be repeated),
// up to within.
func (c *cluster) member(nd *node, within time.Duration, args ...string) error {
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = memberOnce(nd, args...); err == nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("SESHAT.MEMBER %s through n%d: %v", strings.Join(args, " "), nd.id, err)
}

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// changeWithin bounds what is left of a membership change after the heal:
// a joiner's catch-up and promotion, or a change whose new configuration
// had no majority during the fault.
const changeWithin = 60 * time.Second

// action is one part of a membership change or of a check that a fault
// makes: it is tried until deadline.
type action struct {
	name string
	// beforeHeal: it checks what the fault must cause, so it must succeed
	// before the heal (else the step fails); the others may finish after.
	beforeHeal bool
	do         func(deadline time.Time) error
}

// change is what remains of a step's actions, run in order by runChaos:
// during the fault, then (what could not be done) after the heal.
type change struct {
	todo []action
}

func (ch *change) add(beforeHeal bool, name string, do func(deadline time.Time) error) {
	ch.todo = append(ch.todo, action{name: name, beforeHeal: beforeHeal, do: do})
}

// runUntil runs the actions in order until deadline. An action that
// fails stops the run (the rest waits for the heal), except a beforeHeal
// one: that is a failure of the step, returned, and the run goes on.
func (ch *change) runUntil(deadline time.Time) []string {
	var failures []string
	for len(ch.todo) > 0 {
		a := ch.todo[0]
		err := a.do(deadline)
		if err == nil {
			ch.todo = ch.todo[1:]
			continue
		}
		if !a.beforeHeal {
			return failures
		}
		failures = append(failures, fmt.Sprintf("%s: %v", a.name, err))
		ch.todo = ch.todo[1:]
	}
	return failures
}

// finish runs what is left after the heal; the first action that fails
// by deadline fails the step (the rest depends on it and is dropped).
func (ch *change) finish(deadline time.Time) []string {
	for len(ch.todo) > 0 {
		a := ch.todo[0]
		ch.todo = ch.todo[1:]
		if err := a.do(deadline); err != nil {
			ch.todo = nil
			return []string{fmt.Sprintf("%s (after the heal): %v", a.name, err)}
		}
	}
	return nil
}

// live are the members that run (not killed, not paused), from a point
// that depends on rot, so that successive commands go through different
// nodes.
func (c *cluster) live(rot int) []*node {
	var out []*node
	for _, nd := range c.members() {
		if !nd.killed && !nd.paused {
			out = append(out, nd)
		}
	}
	if len(out) > 0 {
		r := rot % len(out)
		out = append(out[r:], out[:r]...)
	}
	return out
}

// memberOnce sends SESHAT.MEMBER args to nd once.
func memberOnce(nd *node, args ...string) error {
	cl := newClient(nd.addr())
	defer cl.Close()
	ctx, cancel := opCtx()
	defer cancel()
	cmd := []any{"SESHAT.MEMBER"}
	for _, a := range args {
		cmd = append(cmd, a)
	}
	return cl.Do(ctx, cmd...).Err()
}

// memberAny runs SESHAT.MEMBER args through the live members in turn
// (a follower relays it; the node a REMOVE names may be asked too, which
// makes a leader hand over first) until one answers OK, up to deadline.
// Every subcommand may be repeated, so a TIMEOUT is simply tried again.
func (c *cluster) memberAny(deadline time.Time, args ...string) error {
	var last error
	for i := 0; i == 0 || time.Now().Before(deadline); i++ {
		nodes := c.live(i)
		if len(nodes) == 0 {
			last = fmt.Errorf("no live member")
		}
		for _, nd := range nodes {
			if last = memberOnce(nd, args...); last == nil {
				return nil
			}
			last = fmt.Errorf("through n%d: %w", nd.id, last)
			if !time.Now().Before(deadline) {
				break
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("SESHAT.MEMBER %s: %w", strings.Join(args, " "), last)
}

// memberList returns the members and their roles as nd lists them.
func memberList(nd *node) (map[int]string, error) {
	cl := newClient(nd.addr())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := cl.Do(ctx, "SESHAT.MEMBER", "LIST").Slice()
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, r := range rows {
		row, ok := r.([]any)
		if !ok || len(row) < 2 {
			return nil, fmt.Errorf("SESHAT.MEMBER LIST: malformed row %v", r)
		}
		id, _ := row[0].(int64)
		role, _ := row[1].(string)
		out[int(id)] = role
	}
	return out, nil
}

// waitVoter waits until a live member lists nd as a voter.
func (c *cluster) waitVoter(nd *node, deadline time.Time) error {
	last := "no answer"
	for i := 0; time.Now().Before(deadline); i++ {
		for _, m := range c.live(i) {
			l, err := memberList(m)
			if err != nil {
				continue
			}
			if l[nd.id] == "voter" {
				return nil
			}
			last = fmt.Sprintf("n%d lists n%d as %q", m.id, nd.id, l[nd.id])
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("n%d is not a voter yet: %s", nd.id, last)
}

// checkMembers waits until every member lists exactly the members the
// test expects, all voters; it returns "" or what differed.
func (c *cluster) checkMembers(within time.Duration) string {
	want := map[int]string{}
	for _, nd := range c.members() {
		want[nd.id] = "voter"
	}
	deadline := time.Now().Add(within)
	var seen []string
	for time.Now().Before(deadline) {
		seen = seen[:0]
		for _, nd := range c.members() {
			l, err := memberList(nd)
			switch {
			case err != nil:
				seen = append(seen, fmt.Sprintf("n%d: %v", nd.id, err))
			case !mapsEqual(l, want):
				seen = append(seen, fmt.Sprintf("n%d lists %v", nd.id, l))
			}
		}
		if len(seen) == 0 {
			return ""
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Sprintf("want %v: %s", want, strings.Join(seen, "; "))
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// leaving tells the workloads that nd is about to be removed: its
// clients move to the other members, and a write that fails on it from
// now on has an unknown outcome (it may have reached the leader before
// the node left).
func (c *cluster) leaving(nd *node) {
	if c.w == nil {
		return
	}
	c.w.markLeaving(nd.addr())
	var addrs []string
	for _, m := range c.members() {
		if m != nd && !c.w.isLeaving(m.addr()) {
			addrs = append(addrs, m.addr())
		}
	}
	c.w.assign(addrs)
}

// rebalance spreads the workloads' clients over the current members.
func (c *cluster) rebalance() {
	if c.w == nil {
		return
	}
	var addrs []string
	for _, m := range c.members() {
		addrs = append(addrs, m.addr())
	}
	c.w.assign(addrs)
}

// memberNames lists the members as n1,n3,n6.
func (c *cluster) memberNames() string {
	var ids []int
	for _, nd := range c.members() {
		ids = append(ids, nd.id)
	}
	sort.Ints(ids)
	var out []string
	for _, id := range ids {
		out = append(out, "n"+strconv.Itoa(id))
	}
	return strings.Join(out, ",")
}

// removeAction takes nd out of the cluster (SESHAT.MEMBER REMOVE, or
// REPLACE by to) and deletes its container and data dir.
func (c *cluster) removeAction(ch *change, nd, to *node) {
	name := fmt.Sprintf("remove n%d", nd.id)
	args := []string{"REMOVE", strconv.Itoa(nd.id)}
	if to != nil {
		name = fmt.Sprintf("replace n%d by n%d", nd.id, to.id)
		args = []string{"REPLACE", strconv.Itoa(nd.id), strconv.Itoa(to.id), to.ip + ":16379", to.ip + ":6379"}
	}
	ch.add(false, name, func(deadline time.Time) error {
		c.leaving(nd)
		if err := c.memberAny(deadline, args...); err != nil {
			return err
		}
		nd.removed = true
		c.retire(nd)
		return nil
	})
}

// joinAction starts nd, reserved, with --join through a live member, and
// waits until it is a voter.
func (c *cluster) joinAction(ch *change, nd *node) {
	ch.add(false, fmt.Sprintf("join n%d", nd.id), func(time.Time) error {
		if nd.created {
			return nil
		}
		vias := c.live(nd.id)
		if len(vias) == 0 {
			return fmt.Errorf("no live member to join through")
		}
		if err := c.join(nd, vias[0]); err != nil {
			return err
		}
		c.rebalance()
		return nil
	})
	ch.add(false, fmt.Sprintf("n%d promoted", nd.id), func(deadline time.Time) error {
		return c.waitVoter(nd, deadline)
	})
}

// membershipStep starts a co-fault drawn from coFaults, then sets up the
// membership change s names in c.change:
//
//   - remove-readd: a member (any, the leader too) removed, its container
//     and data deleted, and a new node (new id: the old one is retired)
//     joined with --join on a fresh data dir;
//   - replace-killed: a member killed, then SESHAT.MEMBER REPLACE by a new
//     node, which joins;
//   - grow: two new nodes join one after the other (3 -> 5);
//   - shrink: two members removed one after the other (5 -> 3).
func (c *cluster) membershipStep(s step, rng *rand.Rand, ids []int) (string, error) {
	co := coFaults[rng.IntN(len(coFaults))]
	coWhat := "alone"
	if co != "none" {
		w, err := c.apply(step{Nemesis: co, Fault: s.Fault, Pick: rng.Uint64()})
		if err != nil {
			return "", fmt.Errorf("co-fault %s: %w", co, err)
		}
		coWhat = "during " + co + " (" + w + ")"
	}
	ch := &change{}
	var what string
	switch s.Nemesis {
	case "remove-readd", "replace-killed":
		x := c.byID(ids[rng.IntN(len(ids))])
		nd, err := c.reserveNode()
		if err != nil {
			return "", err
		}
		var by *node // REPLACE x by nd, rather than REMOVE x then JOIN nd
		what = fmt.Sprintf("remove n%d, then n%d joins", x.id, nd.id)
		if s.Nemesis == "replace-killed" {
			if !x.killed {
				c.kill(x)
			}
			by = nd
			what = fmt.Sprintf("kill n%d, replace it by n%d, which joins", x.id, nd.id)
		}
		c.removeAction(ch, x, by)
		c.joinAction(ch, nd)
	case "grow":
		var news []string
		for range 2 {
			nd, err := c.reserveNode()
			if err != nil {
				return "", err
			}
			c.joinAction(ch, nd)
			news = append(news, "n"+strconv.Itoa(nd.id))
		}
		what = fmt.Sprintf("grow %d -> %d: %s join", len(ids), len(ids)+2, strings.Join(news, ", "))
	case "shrink":
		if len(ids) < 4 {
			return "", fmt.Errorf("shrink needs at least 4 members, not %d", len(ids))
		}
		picked := slices.Clone(ids)
		rng.Shuffle(len(picked), func(i, j int) { picked[i], picked[j] = picked[j], picked[i] })
		var gone []string
		for _, id := range picked[:2] {
			c.removeAction(ch, c.byID(id), nil)
			gone = append(gone, "n"+strconv.Itoa(id))
		}
		what = fmt.Sprintf("shrink %d -> %d: remove %s", len(ids), len(ids)-2, strings.Join(gone, ", "))
	}
	c.change = ch
	return what + " " + coWhat, nil
}

// diskFull fills node x's data filesystem (a tmpfs of its own) to below
// seshatd's reserve. Before the heal x must have logged that its disk is
// full and must not lead (a full leader refuses writes with MISCONF and
// hands over); after the heal removes the filler it must log that it
// takes writes again.
func (c *cluster) diskFull(x int) (string, error) {
	nd := c.byID(x)
	const leave = 16 << 20
	role := c.info(nd)["raft_role"]
	log := c.logText(nd)
	fullBefore := strings.Count(log, "disk nearly full")
	backBefore := strings.Count(log, "disk space is back")
	free, err := c.fill(nd, leave)
	if err != nil {
		return "", err
	}
	ch := &change{}
	ch.add(true, fmt.Sprintf("n%d refuses writes", x), func(deadline time.Time) error {
		state := "no log line"
		for time.Now().Before(deadline) {
			if strings.Count(c.logText(nd), "disk nearly full") > fullBefore {
				state = "logged, but still leads"
				if c.info(nd)["raft_role"] != "leader" {
					return nil
				}
			}
			time.Sleep(300 * time.Millisecond)
		}
		return fmt.Errorf("n%d with a full disk: %s by the heal", x, state)
	})
	ch.add(false, fmt.Sprintf("n%d takes writes again", x), func(deadline time.Time) error {
		for time.Now().Before(deadline) {
			if strings.Count(c.logText(nd), "disk space is back") > backBefore {
				return nil
			}
			time.Sleep(300 * time.Millisecond)
		}
		return fmt.Errorf("n%d did not log that its disk space is back", x)
	})
	c.change = ch
	return fmt.Sprintf("filled the data fs of n%d, a %s (%d MiB free -> %d MiB, reserve 64 MiB)", x, role, free>>20, int64(leave)>>20), nil
}

package main

import (
	"fmt"

	"github.com/seshat-kv/seshat/consensus"
	raftnode "github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// The fault schedule. Every plan.nemesisMean or so (exponentially spread)
// the nemesis picks one action:
//
//   - a partition, if none is active: one node cut off (often the
//     leader), the cluster split into a minority and a majority, one link
//     cut both ways or one way, or a node that cannot send or cannot
//     receive; it heals after 30-500 ms;
//   - a crash of a random node or of the leader, if fewer than a minority
//     are down; the node restarts from its synced state after 1-420 ms;
//   - rarely, a crash of the whole cluster, every node restarting at its
//     own time;
//   - a leader transfer to a random node.
//
// Besides, with per-seed probabilities drawn in drawPlan:
//
//   - messages are lost, duplicated and delayed (a long tail, and one in a
//     thousand arrives 0.1-1 s late); a crash loses half of the crashed
//     node's messages still in flight;
//   - a node crashes before a write it started is synced (beginReady);
//   - a node crashes just after granting a vote (send);
//   - a new leader crashes, or is cut off, within 20 ms or at once
//     (checkRole);
//   - a leader is cut off at its first commit of its term (onLeaderCommit).
//
// Targeted crashes may take one node more than a minority down.
func (s *sim) nemesis() {
	next := s.now + 1*msec + int64(s.rng.ExpFloat64()*float64(s.plan.nemesisMean))
	defer s.schedule(&event{at: next, kind: evNemesis})

	r := s.rng.IntN(100)
	switch {
	case r < 40:
		if s.partDesc != "" {
			s.heal()
			return
		}
		s.partition()
	case r < 70:
		s.crashOne(false)
	case r < 88:
		s.crashOne(true)
	case r < 91:
		s.crashAll()
	default:
		s.transfer()
	}
}

// transfer asks the leader to hand its leadership to another node.
func (s *sim) transfer() {
	l := s.leader()
	if l == nil {
		return
	}
	to := s.otherNode(l.id)
	s.tr.linef(s.now, s.step, "nemesis transfer n%d -> n%d", l.id, to)
	l.d.Transfer(&raftnode.Transfer{To: to, Done: func(err error) {
		s.tr.linef(s.now, s.step, "transfer n%d -> n%d: %v", l.id, to, err)
	}})
	s.pump(l)
}

// leader returns the up node that leads the highest term, if any.
func (s *sim) leader() *node {
	var best *node
	for _, id := range s.ids {
		n := s.nodes[id]
		if n.up && n.role == consensus.Leader && (best == nil || n.term > best.term) {
			best = n
		}
	}
	return best
}

func (s *sim) downCount() int {
	k := 0
	for _, id := range s.ids {
		if !s.nodes[id].up {
			k++
		}
	}
	return k
}

// maxDown is the number of nodes that may be down at once short of a
// whole-cluster crash: a minority of the running nodes (with the
// membership nemesis, learners and a node about to retire count too).
func (s *sim) maxDown() int { return (len(s.ids) - 1) / 2 }

func (s *sim) crashOne(leader bool) {
	if s.downCount() >= s.maxDown() {
		return
	}
	var n *node
	if leader {
		n = s.leader()
	}
	if n == nil {
		var up []*node
		for _, id := range s.ids {
			if s.nodes[id].up {
				up = append(up, s.nodes[id])
			}
		}
		n = up[s.rng.IntN(len(up))]
	}
	s.tr.linef(s.now, s.step, "nemesis crash n%d", n.id)
	s.crash(n, true)
}

func (s *sim) crashAll() {
	s.tr.linef(s.now, s.step, "nemesis crash all")
	for _, id := range s.ids {
		if n := s.nodes[id]; n.up {
			s.crash(n, true)
		}
	}
}

// partition cuts links for a while.
func (s *sim) partition() {
	ids := s.ids
	var cut func(a, b domain.NodeID) bool
	switch s.rng.IntN(8) {
	case 0, 1, 2: // one node (often the leader) cut off from everyone
		x := ids[s.rng.IntN(len(ids))]
		if l := s.leader(); l != nil && s.rng.IntN(3) > 0 {
			x = l.id
		}
		s.partDesc = fmt.Sprintf("isolate n%d", x)
		cut = func(a, b domain.NodeID) bool { return (a == x) != (b == x) }
	case 3: // a minority and a majority
		perm := s.rng.Perm(len(ids))
		k := 1 + s.rng.IntN(len(ids)/2)
		side := make([]bool, len(s.nodes))
		for _, p := range perm[:k] {
			side[ids[p]] = true
		}
		var left []domain.NodeID
		for _, p := range perm[:k] {
			left = append(left, ids[p])
		}
		s.partDesc = fmt.Sprintf("split %v", left)
		cut = func(a, b domain.NodeID) bool { return side[a] != side[b] }
	case 4: // one link, both ways: the two ends still hear the others
		x := ids[s.rng.IntN(len(ids))]
		y := s.otherNode(x)
		s.partDesc = fmt.Sprintf("cut n%d-n%d", x, y)
		cut = func(a, b domain.NodeID) bool { return (a == x && b == y) || (a == y && b == x) }
	case 5: // one direction of one link
		x := ids[s.rng.IntN(len(ids))]
		y := s.otherNode(x)
		s.partDesc = fmt.Sprintf("cut n%d->n%d", x, y)
		cut = func(a, b domain.NodeID) bool { return a == x && b == y }
	default: // a node (often the leader) that hears but is not heard, or the reverse
		x := ids[s.rng.IntN(len(ids))]
		if l := s.leader(); l != nil && s.rng.IntN(2) > 0 {
			x = l.id
		}
		if s.rng.IntN(2) == 0 {
			s.partDesc = fmt.Sprintf("mute n%d", x)
			cut = func(a, b domain.NodeID) bool { return a == x }
		} else {
			s.partDesc = fmt.Sprintf("deaf n%d", x)
			cut = func(a, b domain.NodeID) bool { return b == x }
		}
	}
	s.cut(cut, 30*msec+s.rng.Int64N(470*msec))
}

// cut blocks the links for which cut is true, replacing any partition in
// force, for duration.
func (s *sim) cut(cut func(a, b domain.NodeID) bool, duration int64) {
	for _, a := range s.ids {
		for _, b := range s.ids {
			s.blocked[a][b] = a != b && cut(a, b)
		}
	}
	s.partGen++
	s.tr.linef(s.now, s.step, "nemesis partition %s", s.partDesc)
	s.stats.partitions++
	s.schedule(&event{at: s.now + duration, kind: evHeal, attempt: s.partGen})
}

// isolateSoon cuts node id off from everyone at time at, for a while: the
// fault that leaves a new leader's first entries on its own disk only.
func (s *sim) isolateSoon(id domain.NodeID, at int64) {
	s.schedule(&event{at: at, kind: evIsolate, node: id})
}

func (s *sim) isolate(x domain.NodeID) {
	s.partDesc = fmt.Sprintf("isolate n%d", x)
	s.cut(func(a, b domain.NodeID) bool { return (a == x) != (b == x) }, 30*msec+s.rng.Int64N(300*msec))
}

func (s *sim) heal() {
	for _, a := range s.ids {
		clear(s.blocked[a])
	}
	s.tr.linef(s.now, s.step, "heal %s", s.partDesc)
	s.partDesc = ""
}

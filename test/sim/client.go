package main

import (
	"errors"
	"fmt"
	"strconv"

	raftnode "github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// client is a closed-loop client: one operation at a time, sent to the
// node it believes leads, retried elsewhere when refused or unanswered.
type client struct {
	id     int
	leader domain.NodeID
	op     *clientOp
	// attempt numbers the client's sends; a timer or retry event for an
	// older attempt is stale.
	attempt uint64
	seq     int
}

// clientOp is an operation in progress.
type clientOp struct {
	hid   int // its place in the history
	in    kvInput
	start int64
	// Where the current attempt waits, if it was accepted.
	node     domain.NodeID
	inc      uint64
	proposed bool // a write appended at index in term: its outcome is decided by that entry
	index    domain.Index
	term     domain.Term
	reading  bool // a read waiting for its ReadState
	ctx      string
}

func (s *sim) newOp(c *client) {
	c.seq++
	in := kvInput{Key: "k" + strconv.Itoa(s.rng.IntN(numKeys))}
	switch r := s.rng.IntN(10); {
	case r < 5:
		in.Op = opPut
		in.Value = fmt.Sprintf("c%d.%d", c.id, c.seq)
	case r < 9:
		in.Op = opGet
	default:
		in.Op = opDel
	}
	c.op = &clientOp{in: in, start: s.now, hid: s.hist.call(c.id, in, s.now)}
	s.tr.linef(s.now, s.step, "client %d call %v", c.id, in)
}

// retry sends the current operation again after d.
func (s *sim) retry(c *client, d int64) {
	c.attempt++
	s.schedule(&event{at: s.now + d, kind: evClient, client: c.id, attempt: c.attempt})
}

// otherNode picks a node other than id for a client to try.
func (s *sim) otherNode(id domain.NodeID) domain.NodeID {
	i := s.rng.IntN(len(s.ids) - 1)
	if s.ids[i] >= id {
		i++
	}
	if i >= len(s.ids) {
		i = 0
	}
	return s.ids[i]
}

func (s *sim) clientSend(c *client, attempt uint64) {
	if attempt != c.attempt {
		return
	}
	if c.op == nil {
		s.newOp(c)
	}
	op := c.op
	if s.now-op.start > opDeadline {
		// Every attempt was refused before anything was appended (or, for
		// a read, went unanswered): the operation never took effect.
		s.tr.linef(s.now, s.step, "client %d gives up %v", c.id, op.in)
		s.finish(c, false, kvOutput{})
		return
	}
	n := s.nodes[c.leader]
	if !n.up {
		s.tr.linef(s.now, s.step, "client %d: n%d is down", c.id, n.id)
		c.leader = s.otherNode(n.id)
		s.retry(c, 5*msec+s.rng.Int64N(10*msec))
		return
	}
	op.node, op.inc = n.id, n.inc
	attempt = c.attempt
	switch op.in.Op {
	case opPut, opDel:
		o := domain.Op{Kind: domain.OpSet, Key: []byte(op.in.Key), Value: []byte(op.in.Value)}
		if op.in.Op == opDel {
			o = domain.Op{Kind: domain.OpDel, Key: []byte(op.in.Key)}
		}
		op.proposed = true
		s.tr.linef(s.now, s.step, "client %d proposes at n%d", c.id, n.id)
		s.schedule(&event{at: s.now + writeTimeout, kind: evClientTimer, client: c.id, attempt: c.attempt})
		answered := false
		n.d.Propose(&raftnode.Proposal{
			Cmds: [][]byte{domain.EncodeCommand(domain.Command{Ops: []domain.Op{o}})},
			Done: func(_ []domain.Result, err error) {
				if s.once(&answered, n, "proposal") {
					s.onWrite(c, op, attempt, n, err)
				}
			},
		})
	case opGet:
		if s.opts.localReads {
			v, err := n.disk.KV().Get([]byte(op.in.Key))
			s.finish(c, true, kvOutput{Value: string(v), Found: err == nil})
			return
		}
		s.nextCtx++
		op.ctx = "r" + strconv.FormatUint(s.nextCtx, 10)
		op.reading = true
		s.tr.linef(s.now, s.step, "client %d reads at n%d: %s", c.id, n.id, op.ctx)
		s.schedule(&event{at: s.now + readTimeout, kind: evClientTimer, client: c.id, attempt: c.attempt})
		answered := false
		n.d.Read(&raftnode.Read{Done: func(err error) {
			if s.once(&answered, n, "read") {
				s.onRead(c, op, attempt, n, err)
			}
		}})
	}
	s.pump(n)
}

// once reports whether a request's answer is its first: the driver
// answers a request at most once, and a second answer is a violation.
func (s *sim) once(answered *bool, n *node, what string) bool {
	if *answered {
		s.fail("driver", "n%d answered a %s twice", n.id, what)
		return false
	}
	*answered = true
	return true
}

// current reports whether op is still client c's operation in the attempt
// made at node n's incarnation inc.
func (c *client) current(op *clientOp, attempt uint64) bool {
	return c.op == op && c.attempt == attempt
}

// onWrite is the driver's answer to a write: applied (its result known),
// refused before anything was appended (tried again), or appended with an
// unknown outcome.
func (s *sim) onWrite(c *client, op *clientOp, attempt uint64, n *node, err error) {
	if !c.current(op, attempt) || !op.proposed {
		return
	}
	switch {
	case err == nil:
		c.leader = n.id
		s.finish(c, true, kvOutput{})
	case errors.Is(err, domain.ErrLeadershipLost):
		s.tr.linef(s.now, s.step, "client %d: n%d: %v", c.id, n.id, err)
		s.finish(c, false, kvOutput{})
	default:
		op.proposed = false
		s.refused(c, n, err)
	}
}

// onRead is the driver's answer to a read: safe to serve from node n's
// state machine now, or refused.
func (s *sim) onRead(c *client, op *clientOp, attempt uint64, n *node, err error) {
	if !c.current(op, attempt) || !op.reading {
		return
	}
	op.reading = false
	if err != nil {
		s.refused(c, n, err)
		return
	}
	v, err := n.disk.KV().Get([]byte(op.in.Key))
	switch {
	case err == nil:
		s.finish(c, true, kvOutput{Value: string(v), Found: true})
	case errors.Is(err, domain.ErrNotFound):
		s.finish(c, true, kvOutput{})
	default:
		s.fail("driver", "n%d: get %q: %v", n.id, op.in.Key, err)
	}
}

// refused sends the operation elsewhere: to the leader n knows of, or to
// another node if it knows none.
func (s *sim) refused(c *client, n *node, err error) {
	s.tr.linef(s.now, s.step, "client %d refused by n%d: %v", c.id, n.id, err)
	lead := n.d.SoftState().Lead
	d := msec + s.rng.Int64N(4*msec)
	if lead == domain.None || lead == n.id || errors.Is(err, domain.ErrProposalDropped) {
		// No leader to redirect to: an election is likely under way.
		lead = s.otherNode(n.id)
		d = 5*msec + s.rng.Int64N(20*msec)
	}
	c.leader = lead
	s.retry(c, d)
}

// clientTimeout: a write that was proposed and not heard of has an unknown
// outcome; a read is tried again elsewhere.
func (s *sim) clientTimeout(c *client, attempt uint64) {
	if attempt != c.attempt || c.op == nil {
		return
	}
	s.tr.linef(s.now, s.step, "client %d timed out at n%d", c.id, c.op.node)
	c.leader = s.otherNode(c.op.node)
	if c.op.proposed {
		s.finish(c, false, kvOutput{})
		return
	}
	c.op.reading = false
	s.retry(c, 0)
}

// finish ends the client's operation: with its output if known, as an
// unknown outcome if it is a write that may have been applied, or dropped
// from the history if it certainly had no effect.
func (s *sim) finish(c *client, known bool, out kvOutput) {
	op := c.op
	switch {
	case known:
		s.hist.ret(op.hid, s.now, out)
		s.opsDone++
		s.tr.linef(s.now, s.step, "client %d return %v -> %v", c.id, op.in, out)
	case op.proposed:
		s.tr.linef(s.now, s.step, "client %d unknown %v", c.id, op.in)
		s.stats.unknown++
	default:
		s.hist.drop(op.hid)
	}
	c.op = nil
	c.attempt++
	s.schedule(&event{at: s.now + s.rng.Int64N(10*msec), kind: evClient, client: c.id, attempt: c.attempt})
}

// clientsOnCrash: writes waiting at a crashed node have unknown outcomes;
// reads go elsewhere.
func (s *sim) clientsOnCrash(n *node) {
	for _, c := range s.clients {
		op := c.op
		if op == nil || op.node != n.id || !(op.proposed || op.reading) {
			continue
		}
		if op.proposed {
			s.finish(c, false, kvOutput{})
			continue
		}
		op.reading = false
		c.leader = s.otherNode(n.id)
		s.retry(c, msec+s.rng.Int64N(5*msec))
	}
}

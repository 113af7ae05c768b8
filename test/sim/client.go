package main

import (
	"errors"
	"fmt"
	"strconv"

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
	o := s.ids[s.rng.IntN(len(s.ids)-1)]
	if o >= id {
		o++
	}
	if int(o) > len(s.ids) {
		o = s.ids[0]
	}
	return o
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
	var err error
	switch op.in.Op {
	case opPut, opDel:
		o := domain.Op{Kind: domain.OpSet, Key: []byte(op.in.Key), Value: []byte(op.in.Value)}
		if op.in.Op == opDel {
			o = domain.Op{Kind: domain.OpDel, Key: []byte(op.in.Key)}
		}
		var idx domain.Index
		var term domain.Term
		idx, term, err = n.core.Propose(domain.EncodeCommand(domain.Command{Ops: []domain.Op{o}}))
		if err == nil {
			op.proposed, op.index, op.term = true, idx, term
			s.tr.linef(s.now, s.step, "client %d proposed at n%d: %d/%d", c.id, n.id, idx, term)
			s.schedule(&event{at: s.now + writeTimeout, kind: evClientTimer, client: c.id, attempt: c.attempt})
		}
	case opGet:
		if s.opts.localReads {
			v, err := n.disk.KV().Get([]byte(op.in.Key))
			s.finish(c, true, kvOutput{Value: string(v), Found: err == nil})
			return
		}
		s.nextCtx++
		op.ctx = "r" + strconv.FormatUint(s.nextCtx, 10)
		err = n.core.ReadIndex([]byte(op.ctx))
		if err == nil {
			op.reading = true
			s.tr.linef(s.now, s.step, "client %d read at n%d: %s", c.id, n.id, op.ctx)
			s.schedule(&event{at: s.now + readTimeout, kind: evClientTimer, client: c.id, attempt: c.attempt})
		}
	}
	if err != nil {
		s.tr.linef(s.now, s.step, "client %d refused by n%d: %v", c.id, n.id, err)
		lead := n.core.Status().Lead
		d := msec + s.rng.Int64N(4*msec)
		if lead == domain.None || lead == n.id || errors.Is(err, domain.ErrProposalDropped) {
			// No leader to redirect to: an election is likely under way.
			lead = s.otherNode(n.id)
			d = 5*msec + s.rng.Int64N(20*msec)
		}
		c.leader = lead
		s.retry(c, d)
	}
	s.pump(n)
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

// clientsOnApply resolves the writes waiting at node n for entry e.
func (s *sim) clientsOnApply(n *node, e domain.Entry) {
	for _, c := range s.clients {
		op := c.op
		if op == nil || !op.proposed || op.node != n.id || op.inc != n.inc || op.index != e.Index {
			continue
		}
		if e.Term == op.term {
			c.leader = n.id
			s.finish(c, true, kvOutput{})
		} else {
			s.finish(c, false, kvOutput{})
		}
	}
}

// clientsOnSnapshot: a write waiting at node n for an index the snapshot
// covers will not be seen applied there; its outcome is unknown.
func (s *sim) clientsOnSnapshot(n *node, through domain.Index) {
	for _, c := range s.clients {
		op := c.op
		if op != nil && op.proposed && op.node == n.id && op.inc == n.inc && op.index <= through {
			s.finish(c, false, kvOutput{})
		}
	}
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

// serveReads answers the reads whose ReadState node n's state machine has
// caught up with.
func (s *sim) serveReads(n *node) {
	if len(n.reads) == 0 {
		return
	}
	kv := n.disk.KV()
	meta, err := kv.Applied()
	if err != nil {
		s.fail("driver", "n%d: applied: %v", n.id, err)
		return
	}
	keep := n.reads[:0]
	for _, rs := range n.reads {
		if rs.Index > meta.Index {
			keep = append(keep, rs)
			continue
		}
		for _, c := range s.clients {
			op := c.op
			if op == nil || !op.reading || op.node != n.id || op.inc != n.inc || op.ctx != string(rs.Context) {
				continue
			}
			v, err := kv.Get([]byte(op.in.Key))
			switch {
			case err == nil:
				s.finish(c, true, kvOutput{Value: string(v), Found: true})
			case errors.Is(err, domain.ErrNotFound):
				s.finish(c, true, kvOutput{})
			default:
				s.fail("driver", "n%d: get %q: %v", n.id, op.in.Key, err)
				return
			}
		}
	}
	n.reads = keep
}

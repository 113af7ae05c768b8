package node

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Read is a request for a linearizable read: the driver answers it, through
// an Answer whose Deliver calls Done, once the leader confirmed a read
// index with a quorum and this node applied through it (Done(nil)), or
// with an error (see Node.ReadIndex).
type Read struct {
	Done func(err error)
}

// readGroup is the reads that share one core.ReadIndex request.
type readGroup struct {
	waiters []*Read
	sentAt  uint64 // tick of the last core.ReadIndex call
	index   domain.Index
}

// reads is the driver's ReadIndex bookkeeping: every read that arrives
// before the next Output joins one group, and one core.ReadIndex request
// serves the group (the core in turn lets every request that arrives
// before its heartbeats go out share one round).
type reads struct {
	pending   []*Read
	sent      map[uint64]*readGroup // sent to the core, not yet confirmed
	confirmed []*readGroup          // confirmed, waiting for applied >= index
	next      uint64
}

func (rs *reads) init() { rs.sent = map[uint64]*readGroup{} }

// Read queues a read; it joins the group sent at the next Output.
func (d *Driver) Read(r ...*Read) { d.reads.pending = append(d.reads.pending, r...) }

func (d *Driver) flushReads() {
	if len(d.reads.pending) == 0 {
		return
	}
	g := &readGroup{waiters: d.reads.pending}
	d.reads.pending = nil
	d.sendRead(g)
}

func (d *Driver) sendRead(g *readGroup) {
	d.reads.next++
	id := d.reads.next
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], id)
	if err := d.core.ReadIndex(ctx[:]); err != nil {
		d.failGroup(g, fmt.Errorf("node %d: read index: %w", d.id, err))
		return
	}
	g.sentAt = d.ticks
	d.reads.sent[id] = g
}

func (d *Driver) failGroup(g *readGroup, err error) {
	for _, r := range g.waiters {
		d.out.Answers = append(d.out.Answers, Answer{read: r, err: err})
	}
}

func (d *Driver) readState(rs consensus.ReadState) {
	if len(rs.Context) != 8 {
		return
	}
	id := binary.BigEndian.Uint64(rs.Context)
	g, ok := d.reads.sent[id]
	if !ok {
		return // answered already, or resent under a new id
	}
	delete(d.reads.sent, id)
	g.index = rs.Index
	d.reads.confirmed = append(d.reads.confirmed, g)
}

// serveReads answers the confirmed reads whose index is applied.
func (d *Driver) serveReads() {
	kept := d.reads.confirmed[:0]
	for _, g := range d.reads.confirmed {
		if g.index <= d.applied {
			d.failGroup(g, nil)
			continue
		}
		kept = append(kept, g)
	}
	clear(d.reads.confirmed[len(kept):])
	d.reads.confirmed = kept
}

// expireReads runs every tick: it resends the reads the core may have lost
// (a forwarded request or its answer dropped).
func (d *Driver) expireReads() {
	timeout := uint64(2 * d.cfg.Raft.ElectionTicks)
	for _, id := range slices.Sorted(maps.Keys(d.reads.sent)) {
		g := d.reads.sent[id]
		if d.ticks-g.sentAt >= timeout {
			delete(d.reads.sent, id)
			d.sendRead(g)
		}
	}
}

// readsLeaderChanged fails the reads not yet confirmed: the leader that
// was to confirm them is gone.
func (d *Driver) readsLeaderChanged(old, lead domain.NodeID) {
	for _, id := range slices.Sorted(maps.Keys(d.reads.sent)) {
		g := d.reads.sent[id]
		delete(d.reads.sent, id)
		d.failGroup(g, fmt.Errorf("node %d: leader changed from %d to %d before the read was confirmed: %w", d.id, old, lead, domain.ErrLeadershipLost))
	}
}

func (d *Driver) failReads(err error) {
	d.flushPendingReads(err)
	d.readsLeaderChangedErr(err)
	for _, g := range d.reads.confirmed {
		d.failGroup(g, err)
	}
	d.reads.confirmed = nil
}

func (d *Driver) flushPendingReads(err error) {
	for _, r := range d.reads.pending {
		d.out.Answers = append(d.out.Answers, Answer{read: r, err: err})
	}
	d.reads.pending = nil
}

func (d *Driver) readsLeaderChangedErr(err error) {
	for _, id := range slices.Sorted(maps.Keys(d.reads.sent)) {
		d.failGroup(d.reads.sent[id], err)
		delete(d.reads.sent, id)
	}
}

package node

import (
	"errors"
	"fmt"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Transfer is a request to hand leadership to the voter To. The driver
// answers it, through an Answer whose Deliver calls Done, once a leader
// change is seen (see Node.TransferLeadership).
type Transfer struct {
	To   domain.NodeID
	Done func(err error)

	startAt uint64
}

// transfers are the transfers started and waiting for a leader change.
type transfers struct {
	waiting []*Transfer
}

// Transfer asks the core to hand leadership to t.To.
func (d *Driver) Transfer(t *Transfer) {
	if err := d.core.TransferLeadership(t.To); err != nil {
		if errors.Is(err, domain.ErrNotLeader) {
			d.answerTransfer(t, fmt.Errorf("node %d: transfer: %w (leader %d)", d.id, err, d.soft.Lead))
		} else {
			d.answerTransfer(t, fmt.Errorf("node %d: transfer to %d: %w", d.id, t.To, err))
		}
		return
	}
	if t.To == d.id && d.soft.Role == consensus.Leader {
		d.answerTransfer(t, nil)
		return
	}
	t.startAt = d.ticks
	d.transfers.waiting = append(d.transfers.waiting, t)
}

func (d *Driver) answerTransfer(t *Transfer, err error) {
	d.out.Answers = append(d.out.Answers, Answer{transfer: t, err: err})
}

// expireTransfers runs every tick: a transfer not done in twice the
// election timeout has failed (the core gave it up by then).
func (d *Driver) expireTransfers() {
	timeout := uint64(2 * d.cfg.Raft.ElectionTicks)
	kept := d.transfers.waiting[:0]
	for _, t := range d.transfers.waiting {
		if d.ticks-t.startAt >= timeout {
			d.answerTransfer(t, fmt.Errorf("node %d: transfer to %d not done in %d ticks: %w", d.id, t.To, timeout, domain.ErrTransferFailed))
			continue
		}
		kept = append(kept, t)
	}
	clear(d.transfers.waiting[len(kept):])
	d.transfers.waiting = kept
}

// leaderChanged fails the reads waiting for the old leader and ends the
// transfers once a new leader is known.
func (d *Driver) leaderChanged(old, lead domain.NodeID) {
	d.readsLeaderChanged(old, lead)
	if lead == domain.None {
		return
	}
	for _, t := range d.transfers.waiting {
		if lead == t.To {
			d.answerTransfer(t, nil)
		} else {
			d.answerTransfer(t, fmt.Errorf("node %d: transfer to %d: node %d became leader: %w", d.id, t.To, lead, domain.ErrTransferFailed))
		}
	}
	clear(d.transfers.waiting)
	d.transfers.waiting = d.transfers.waiting[:0]
}

func (d *Driver) failTransfers(err error) {
	for _, t := range d.transfers.waiting {
		d.answerTransfer(t, err)
	}
	d.transfers.waiting = nil
}

package node

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/domain"
)

// Proposal is a request to replicate commands (encoded domain.Commands),
// or a change of membership if Membership is set. The driver answers it
// once through an Answer, whose Deliver calls Done: with one result per
// command once this node applied them, or with an error (see Node.Propose
// for which).
type Proposal struct {
	Cmds       [][]byte
	Membership *domain.Membership
	Done       func(results []domain.Result, err error)

	// Set by the driver once appended.
	first, last domain.Index
	term        domain.Term
	results     []domain.Result
	// lost: an entry of another term was applied at one of its indexes.
	lost bool
}

// proposals are the proposals appended and waiting for their entries to
// apply, by index.
type proposals struct {
	waiting map[domain.Index]*Proposal
	data    [][]byte // scratch for a batch's commands
}

func (ps *proposals) init() { ps.waiting = map[domain.Index]*Proposal{} }

// Propose appends the commands of every proposal in batch, in order, as
// one core.Propose: one append, one sync. A proposal whose Membership is
// set is proposed on its own. Proposals the core refuses are answered at
// once.
func (d *Driver) Propose(batch ...*Proposal) {
	data := d.props.data[:0]
	live := batch[:0:0]
	for _, p := range batch {
		if p.Membership != nil {
			d.proposeMembership(p)
			continue
		}
		if len(p.Cmds) == 0 {
			d.answer(p, nil)
			continue
		}
		if d.diskFull {
			d.answer(p, fmt.Errorf("node %d: disk nearly full, writes refused until space returns: %w", d.id, domain.ErrDiskFull))
			continue
		}
		live = append(live, p)
		data = append(data, p.Cmds...)
	}
	if len(live) > 0 {
		first, term, err := d.core.Propose(data...)
		if err != nil {
			err = d.proposeErr(err)
			for _, p := range live {
				d.answer(p, err)
			}
		} else {
			for _, p := range live {
				d.props.wait(p, first, term, len(p.Cmds))
				first = p.last + 1
			}
		}
	}
	clear(data)
	d.props.data = data[:0]
}

func (d *Driver) proposeMembership(p *Proposal) {
	idx, term, err := d.core.ProposeMembership(*p.Membership)
	if err != nil {
		d.answer(p, d.proposeErr(err))
		return
	}
	d.props.wait(p, idx, term, 1)
}

func (ps *proposals) wait(p *Proposal, first domain.Index, term domain.Term, n int) {
	p.first, p.term = first, term
	p.last = first + domain.Index(n) - 1
	p.results = make([]domain.Result, n)
	for i := p.first; i <= p.last; i++ {
		ps.waiting[i] = p
	}
}

func (d *Driver) proposeErr(err error) error {
	if errors.Is(err, domain.ErrNotLeader) {
		return fmt.Errorf("node %d: %w (leader %d)", d.id, err, d.soft.Lead)
	}
	return fmt.Errorf("node %d: %w", d.id, err)
}

// answer answers p (a success if err is nil) and forgets it.
func (d *Driver) answer(p *Proposal, err error) {
	for i := p.first; p.last >= p.first && i <= p.last; i++ {
		if d.props.waiting[i] == p {
			delete(d.props.waiting, i)
		}
	}
	d.out.Answers = append(d.out.Answers, Answer{prop: p, err: err})
}

// answerApplied answers the proposals waiting on applied entries: by
// (index, term), so an entry that replaced a proposal's fails it.
func (d *Driver) answerApplied(ents []domain.Entry, res []domain.Result) {
	if len(d.props.waiting) == 0 {
		return
	}
	byIndex := d.plant.answerByIndex
	for i, e := range ents {
		p, ok := d.props.waiting[e.Index]
		if !ok {
			continue
		}
		if e.Term != p.term && !byIndex {
			p.lost = true
		} else if i < len(res) {
			p.results[e.Index-p.first] = res[i]
		}
		if e.Index == p.last {
			if p.lost {
				d.answer(p, fmt.Errorf("node %d: entries [%d,%d] of term %d: %w", d.id, p.first, p.last, p.term, domain.ErrLeadershipLost))
			} else {
				d.answer(p, nil)
			}
		}
	}
}

// leadershipLost: entries above the commit index may never commit, and
// this node will not hear which; those at or below it will apply soon and
// be answered by their term then.
func (d *Driver) leadershipLost(commit domain.Index) {
	if d.plant.answerByIndex {
		return // planted bug: wait for whatever is applied there
	}
	for _, i := range d.props.indexes() {
		if p, ok := d.props.waiting[i]; ok && i > commit {
			d.answer(p, fmt.Errorf("node %d: lost leadership with entries [%d,%d] uncommitted: %w", d.id, p.first, p.last, domain.ErrLeadershipLost))
		}
	}
}

// proposalsReplaced fails the proposals at or below a snapshot just
// installed: their entries cannot be told apart any more.
func (d *Driver) proposalsReplaced(through domain.Index) {
	for _, i := range d.props.indexes() {
		if p, ok := d.props.waiting[i]; ok && i <= through {
			d.answer(p, fmt.Errorf("node %d: entry %d replaced by a snapshot: %w", d.id, i, domain.ErrLeadershipLost))
		}
	}
}

// failAll fails every waiting proposal with err.
func (ps *proposals) failAll(d *Driver, err error) {
	for _, i := range ps.indexes() {
		if p, ok := ps.waiting[i]; ok {
			d.answer(p, err)
		}
	}
}

// indexes returns the indexes waited on, in order: answers go out in a
// deterministic order.
func (ps *proposals) indexes() []domain.Index {
	return slices.Sorted(maps.Keys(ps.waiting))
}

// applyUncommitted is a planted bug: the leader applies its own entries as
// soon as they are durable in its log, before they commit.
func (d *Driver) applyUncommitted(rj *readyJob) {
	if !d.plant.applyUncommitted || d.soft.Role != consensus.Leader || len(rj.rd.Entries) == 0 {
		return
	}
	var ents []domain.Entry
	for _, e := range rj.rd.Entries {
		if e.Index > d.issuedAll {
			ents = append(ents, e)
		}
	}
	if len(ents) == 0 || ents[0].Index != d.issuedAll+1 {
		return
	}
	d.issuedAll = ents[len(ents)-1].Index
	d.applying++
	d.out.Apply = append(d.out.Apply, &ApplyJob{Entries: ents})
}

package consensus

import (
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

func errorf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func (r *Raft) softState() SoftState { return SoftState{Lead: r.lead, Role: r.role} }

// durableVote is the vote the core hands out to persist.
func (r *Raft) durableVote() domain.Vote {
	v := domain.Vote{Term: r.term, VotedFor: r.vote}
	if r.cfg.plant.voteNotPersisted && v.VotedFor != r.id {
		// Planted bug: a vote for another node is never handed out; only
		// the term is. Restarting forgets the vote.
		v.VotedFor = r.prevVote.VotedFor
		if v.Term != r.prevVote.Term {
			v.VotedFor = domain.None
		}
	}
	return v
}

// HasReady reports whether Ready has work.
func (r *Raft) HasReady() bool {
	return r.softState() != r.prevSoft ||
		r.durableVote() != r.prevVote ||
		r.pendingSnapshot != nil ||
		r.log.unstable <= r.log.lastIndex() ||
		len(r.msgs) > 0 || len(r.msgsAfterSync) > 0 ||
		r.log.committed > r.log.applying ||
		len(r.readStates) > 0 ||
		r.commitNews && r.role == Leader
}

// Ready returns the pending work. Call Advance with it once it is handled;
// until then Ready must not be called again (Step, Tick, Propose may be).
func (r *Raft) Ready() Ready {
	var rd Ready
	if ss := r.softState(); ss != r.prevSoft {
		rd.SoftState = &ss
		r.prevSoft = ss
	}
	if v := r.durableVote(); v != r.prevVote {
		rd.Vote = &v
		r.prevVote = v
	}
	rd.Snapshot = r.pendingSnapshot
	r.pendingSnapshot = nil
	if last := r.log.lastIndex(); r.log.unstable <= last {
		rd.Entries = r.log.slice(r.log.unstable, last+1, 0)
		r.log.unstable = last + 1
		if pr := r.prs[r.id]; r.cfg.plant.leaderUnsynced && r.role == Leader && pr != nil && last > pr.match {
			// Planted bug: the leader's own entries count toward the
			// quorum once handed out, before they are durable.
			pr.match = last
			if r.maybeCommit() {
				r.commitAdvanced()
			}
		}
	}
	rd.MustSync = rd.Vote != nil || len(rd.Entries) > 0 || rd.Snapshot != nil
	r.flushCommit()
	rd.Messages, r.msgs = r.msgs, nil
	rd.MessagesAfterSync, r.msgsAfterSync = r.msgsAfterSync, nil
	if r.log.committed > r.log.applying {
		rd.CommittedEntries = r.log.slice(r.log.applying+1, r.log.committed+1, 0)
		r.log.applying = r.log.committed
	}
	rd.ReadStates, r.readStates = r.readStates, nil
	// The heartbeats of the last read round are out: later reads need a
	// new round.
	r.reads.open = false
	return rd
}

// Advance tells the core that rd was handled: its entries are durable, its
// committed entries applied, its snapshot installed.
func (r *Raft) Advance(rd Ready) {
	l := r.log
	if rd.Snapshot != nil && rd.Snapshot.Meta.Index >= l.offset {
		l.persisted = max(l.persisted, min(rd.Snapshot.Meta.Index, l.lastIndex()))
		l.applied = max(l.applied, rd.Snapshot.Meta.Index)
	}
	// The entries handed out are durable; those of them still in the log
	// (not replaced by a truncation since) count as persisted. By the Log
	// Matching Property the last one still there vouches for the others.
	for i := len(rd.Entries) - 1; i >= 0; i-- {
		e := rd.Entries[i]
		if l.matchTerm(e.Index, e.Term) {
			l.persisted = max(l.persisted, e.Index)
			break
		}
	}
	if n := len(rd.CommittedEntries); n > 0 {
		last := rd.CommittedEntries[n-1].Index
		if last > l.applying {
			panic(errorf("consensus: node %d: advance applied %d past the entries handed out (%d)", r.id, last, l.applying))
		}
		l.applied = max(l.applied, last)
	}
	switch r.role {
	case Candidate:
		if v := rd.Vote; v != nil && v.Term == r.term && v.VotedFor == r.id {
			// Our own vote is durable: now it counts.
			r.votes[r.id] = true
			r.poll()
		}
	case Leader:
		if pr := r.prs[r.id]; pr != nil && l.persisted > pr.match {
			pr.match = l.persisted
			if r.maybeCommit() {
				r.commitAdvanced()
			}
		}
	}
}

// TakeMessages returns the messages queued for Ready.Messages so far and
// forgets them. It may be called at any time, also between Ready and
// Advance: those messages may be sent at once (step 4 of the Ready
// contract), so a driver whose storage is busy with the last Ready's
// writes takes them out to keep replicating (the leader's appends of the
// proposals that arrived meanwhile, a follower's answers that need no
// sync). MessagesAfterSync stay for the next Ready.
func (r *Raft) TakeMessages() []domain.Message {
	r.flushCommit()
	m := r.msgs
	r.msgs = nil
	// As in Ready: the heartbeats of the last read round are out, and a
	// read that arrives now must not be confirmed by them.
	r.reads.open = false
	return m
}

// TakeReadStates returns the ReadStates queued for Ready.ReadStates so far
// and forgets them. Like TakeMessages it may be called between Ready and
// Advance: a read's safety depends on the state machine having applied
// its index, not on any write, so a read need not wait for the log's sync.
func (r *Raft) TakeReadStates() []ReadState {
	rs := r.readStates
	r.readStates = nil
	return rs
}

// AppliedTo tells the core that the state machine has applied every
// committed entry through i. It lets a driver apply on a stage of its own:
// it calls Advance with a Ready whose CommittedEntries it has cleared once
// the Ready's writes are durable, and AppliedTo once they are applied.
// Compact refuses to go past the index reported here.
func (r *Raft) AppliedTo(i domain.Index) {
	if i > r.log.applying {
		panic(errorf("consensus: node %d: applied %d past the entries handed out (%d)", r.id, i, r.log.applying))
	}
	r.log.applied = max(r.log.applied, i)
}

// Status reports the core's state.
func (r *Raft) Status() Status {
	s := Status{
		ID:         r.id,
		Term:       r.term,
		Vote:       r.vote,
		Lead:       r.lead,
		Role:       r.role,
		Commit:     r.log.committed,
		Applied:    r.log.applied,
		FirstIndex: r.log.firstIndex(),
		LastIndex:  r.log.lastIndex(),
		Membership: r.membership.Clone(),
		Reads:      r.readStats,
	}
	if r.role == Leader {
		s.Progress = make(map[domain.NodeID]Progress, len(r.prs))
		for _, id := range r.members {
			pr := r.prs[id]
			if pr == nil {
				continue
			}
			s.Progress[id] = Progress{Match: pr.match, Next: pr.next, State: pr.state,
				Inflight: len(pr.inflights.buf), RecentActive: pr.recentActive, LostData: pr.lostData}
		}
		if pr := r.prs[r.id]; pr != nil {
			s.Progress[r.id] = Progress{Match: pr.match, Next: pr.next, State: pr.state, RecentActive: true}
		}
	}
	return s
}

// Term returns the term of the entry at i, or an error wrapping
// domain.ErrCompacted or domain.ErrUnavailable when the core does not hold
// it.
func (r *Raft) Term(i domain.Index) (domain.Term, error) { return r.log.term(i) }

// Entries returns the entries in [lo, hi) the core holds in memory.
func (r *Raft) Entries(lo, hi domain.Index) ([]domain.Entry, error) {
	switch {
	case lo <= r.log.offset:
		return nil, fmt.Errorf("consensus: entries [%d,%d): compacted through %d: %w", lo, hi, r.log.offset, domain.ErrCompacted)
	case hi > r.log.lastIndex()+1 || lo > hi:
		return nil, fmt.Errorf("consensus: entries [%d,%d): last index %d: %w", lo, hi, r.log.lastIndex(), domain.ErrUnavailable)
	}
	return r.log.slice(lo, hi, 0), nil
}

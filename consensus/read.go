package consensus

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/seshat-kv/seshat/domain"
)

// readRequest is one ReadIndex request on the leader: local (from is this
// node) or forwarded by a follower.
type readRequest struct {
	index domain.Index
	ctx   []byte
	from  domain.NodeID
}

// readRound is a heartbeat round confirming leadership for the reads that
// joined it.
type readRound struct {
	id   uint64
	reqs []readRequest
}

// readIndexState is the leader's ReadIndex bookkeeping (thesis §6.4).
type readIndexState struct {
	// queued reads arrived before the leader committed an entry of its
	// term: their read index is not known yet.
	queued []readRequest
	// rounds not yet confirmed, by ascending id.
	rounds []readRound
	nextID uint64
	// open: the last round's heartbeats are not handed out yet, so a new
	// read may join it.
	open bool
}

func (s *readIndexState) pending() int {
	n := len(s.queued)
	for _, rd := range s.rounds {
		n += len(rd.reqs)
	}
	return n
}

// latestRound is the id of the newest unconfirmed round, or 0.
func (s *readIndexState) latestRound() uint64 {
	if n := len(s.rounds); n > 0 {
		return s.rounds[n-1].id
	}
	return 0
}

func encodeRound(id uint64) []byte {
	if id == 0 {
		return nil
	}
	return binary.BigEndian.AppendUint64(nil, id)
}

func decodeRound(ctx []byte) uint64 {
	if len(ctx) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(ctx)
}

// ReadIndex asks for a linearizable read point. When it is safe, a
// ReadState with ctx appears in a later Ready. A follower forwards the
// request to its leader. It fails with domain.ErrNoLeader when no leader is
// known and domain.ErrProposalDropped when too many reads wait. A request
// the core loses (leadership lost) is never answered: the driver times it
// out or fails it on a leader change.
func (r *Raft) ReadIndex(ctx []byte) error {
	switch {
	case r.role == Leader:
		return r.leaderRead(readRequest{from: r.id, ctx: ctx})
	case r.lead == domain.None:
		return fmt.Errorf("consensus: read index on node %d (%v, term %d): %w", r.id, r.role, r.term, domain.ErrNoLeader)
	}
	r.send(domain.Message{Type: domain.MsgReadIndex, To: r.lead, Context: ctx})
	return nil
}

// leaderRead registers a read on the leader.
func (r *Raft) leaderRead(req readRequest) error {
	if n := r.reads.pending(); n >= r.cfg.MaxPendingReads {
		return fmt.Errorf("consensus: read index: %d reads waiting (max %d): %w", n, r.cfg.MaxPendingReads, domain.ErrProposalDropped)
	}
	if !r.committedInTerm() {
		// The commit index may lag behind what earlier leaders committed
		// until the leader commits an entry of its own term.
		r.reads.queued = append(r.reads.queued, req)
		return nil
	}
	r.startRead(req)
	return nil
}

func (r *Raft) startRead(req readRequest) {
	req.index = r.log.committed
	if len(r.voters) == 1 && r.voters[0] == r.id {
		// Nobody else can have been elected: answer at once.
		r.answerRead(req)
		return
	}
	if r.reads.open {
		last := &r.reads.rounds[len(r.reads.rounds)-1]
		last.reqs = append(last.reqs, req)
		return
	}
	r.reads.nextID++
	r.reads.rounds = append(r.reads.rounds, readRound{id: r.reads.nextID, reqs: []readRequest{req}})
	r.reads.open = true
	r.bcastHeartbeat(r.reads.nextID)
}

// releaseQueuedReads starts the reads that waited for the first commit of
// the leader's term.
func (r *Raft) releaseQueuedReads() {
	q := r.reads.queued
	r.reads.queued = nil
	for _, req := range q {
		r.startRead(req)
	}
}

// confirmReads answers the rounds a quorum of voters acknowledged. An
// acknowledgement of a round also confirms every earlier one.
func (r *Raft) confirmReads() {
	if len(r.reads.rounds) == 0 || len(r.voters) == 0 {
		return
	}
	acks := make([]uint64, 0, len(r.voters))
	for _, id := range r.voters {
		switch pr := r.prs[id]; {
		case id == r.id:
			acks = append(acks, ^uint64(0))
		case pr != nil:
			acks = append(acks, pr.readAck)
		default:
			acks = append(acks, 0)
		}
	}
	slices.Sort(acks)
	confirmed := acks[len(acks)-r.quorum()]
	n := 0
	for n < len(r.reads.rounds) && r.reads.rounds[n].id <= confirmed {
		for _, req := range r.reads.rounds[n].reqs {
			r.answerRead(req)
		}
		n++
	}
	if n == 0 {
		return
	}
	if n == len(r.reads.rounds) {
		r.reads.open = false
	}
	r.reads.rounds = slices.Delete(r.reads.rounds, 0, n)
}

func (r *Raft) answerRead(req readRequest) {
	if req.from == r.id {
		r.readStates = append(r.readStates, ReadState{Index: req.index, Context: req.ctx})
		return
	}
	r.send(domain.Message{Type: domain.MsgReadIndexResp, To: req.from, Index: req.index, Context: req.ctx})
}

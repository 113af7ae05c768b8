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

	// The lease (LeaseMode). sent maps heartbeat round ids to the tick
	// they were sent at: sent[i] covers the ids from sent[i].id up to
	// sent[i+1].id. Entries whose lease would have run out are dropped.
	sent []sentRound
	// leaseUntil: the leader holds a lease while Raft.ticks < leaseUntil.
	leaseUntil uint64
	// leaseRevoked: a MsgTimeoutNow went out in this term. Its receiver's
	// campaign bypasses the followers' refusal to vote, at whatever time
	// it arrives, so no acknowledgement can give a lease again this term.
	leaseRevoked bool
}

// sentRound says that the heartbeats of round id, and of the ids after it
// up to the next sentRound, went out at tick.
type sentRound struct {
	id   uint64
	tick uint64
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
	if len(r.voters) == 1 && r.voters[0] == r.id || r.leaseHolds() {
		// Nobody else can have been elected: answer at once.
		r.readStats.Immediate++
		r.answerRead(req)
		return
	}
	if r.reads.open {
		last := &r.reads.rounds[len(r.reads.rounds)-1]
		last.reqs = append(last.reqs, req)
		return
	}
	r.reads.nextID++
	r.readStats.Rounds++
	r.noteSent(r.reads.nextID)
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

// confirmReads answers the rounds a quorum of voters acknowledged and
// extends the lease. An acknowledgement of a round also confirms every
// earlier one.
func (r *Raft) confirmReads() {
	if len(r.voters) == 0 || len(r.reads.rounds) == 0 && r.cfg.ReadMode != LeaseMode {
		return
	}
	confirmed := r.quorumAck()
	r.extendLease(confirmed)
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
	r.readStats.Confirmed += uint64(n)
	if n == len(r.reads.rounds) {
		r.reads.open = false
	}
	r.reads.rounds = slices.Delete(r.reads.rounds, 0, n)
}

// quorumAck is the newest round a quorum of voters acknowledged.
func (r *Raft) quorumAck() uint64 {
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
	return acks[len(acks)-r.quorum()]
}

func (r *Raft) answerRead(req readRequest) {
	if req.from == r.id {
		r.readStates = append(r.readStates, ReadState{Index: req.index, Context: req.ctx})
		return
	}
	r.send(domain.Message{Type: domain.MsgReadIndexResp, To: req.from, Index: req.index, Context: req.ctx})
}

// The lease (thesis §6.4.1). A follower that hears from the leader refuses
// to vote for anyone else until it has counted ElectionTicks ticks
// (CheckQuorum's leader stickiness, inLease). So once a quorum of voters
// acknowledged a heartbeat the leader sent at its tick t, no other node can
// be elected before each of them has counted ElectionTicks ticks after
// receiving it, which is after the leader sent it: until then the leader's
// commit index covers every committed write, and it may answer reads
// without a round trip. The leader stops at its tick t + ElectionTicks -
// LeaseDriftTicks, which is sooner in real time as long as clocks drift
// within the bound (Config.LeaseDriftTicks). The lease counts from the
// send, never from the acknowledgement's arrival: a late acknowledgement
// says nothing about when the follower started counting.

// leaseTicks is how long an acknowledged heartbeat's lease lasts.
func (r *Raft) leaseTicks() uint64 {
	return uint64(r.cfg.ElectionTicks - r.cfg.LeaseDriftTicks)
}

// leaseHolds reports whether the leader may answer a read at once. The
// caller has checked that the leader committed an entry of its term.
func (r *Raft) leaseHolds() bool {
	return r.cfg.ReadMode == LeaseMode && !r.reads.leaseRevoked &&
		r.leadTransferee == domain.None && r.ticks < r.reads.leaseUntil
}

// heartbeatRound is the round id a periodic heartbeat carries. In LeaseMode
// every heartbeat gets a fresh id, so that its acknowledgements prove
// contact at the tick it was sent.
func (r *Raft) heartbeatRound() uint64 {
	if r.cfg.ReadMode != LeaseMode {
		return r.reads.latestRound()
	}
	r.reads.nextID++
	r.noteSent(r.reads.nextID)
	return r.reads.nextID
}

// noteSent records that round id goes out at the current tick. The tick a
// message is queued at is at or before the moment it is sent, so the
// lease can only come out shorter.
func (r *Raft) noteSent(id uint64) {
	if r.cfg.ReadMode != LeaseMode {
		return
	}
	if n := len(r.reads.sent); n > 0 && r.reads.sent[n-1].tick == r.ticks {
		return // the entry of this tick covers id
	}
	r.reads.sent = append(r.reads.sent, sentRound{id: id, tick: r.ticks})
}

// extendLease extends the lease to what the acknowledgement of round
// confirmed by a quorum proves.
func (r *Raft) extendLease(confirmed uint64) {
	if r.cfg.ReadMode != LeaseMode {
		return
	}
	n := 0
	for n < len(r.reads.sent) && r.reads.sent[n].id <= confirmed {
		n++
	}
	if n == 0 {
		// Sent before the oldest kept entry: its lease ran out already.
		return
	}
	at := r.reads.sent[n-1].tick
	r.reads.sent = r.reads.sent[n-1:]
	r.reads.leaseUntil = max(r.reads.leaseUntil, at+r.leaseTicks())
}

// pruneLease forgets the send ticks whose lease ran out, so that sent stays
// within a lease's worth of ticks.
func (r *Raft) pruneLease() {
	n := 0
	for n < len(r.reads.sent) && r.reads.sent[n].tick+r.leaseTicks() <= r.ticks {
		n++
	}
	if n > 0 {
		r.reads.sent = slices.Delete(r.reads.sent, 0, n)
	}
}

// inLease reports whether this node refuses a vote request (not one of a
// leader transfer): it heard from a leader within the election timeout, or
// in LeaseMode it started less than an election timeout ago (it may have
// acknowledged a heartbeat just before it went down, and a leader may be
// counting on that).
func (r *Raft) inLease() bool {
	if r.cfg.DisableCheckQuorum {
		return false
	}
	if r.lead != domain.None && r.electionElapsed < r.cfg.ElectionTicks {
		return true
	}
	return r.cfg.ReadMode == LeaseMode && r.ticks < uint64(r.cfg.ElectionTicks)
}

package consensus

import (
	"slices"

	"github.com/seshat-kv/seshat/domain"
)

// bcastAppend sends every other member the entries it lacks (or an empty
// append carrying the commit index) as far as its flow control allows.
func (r *Raft) bcastAppend() {
	for _, id := range r.members {
		if id != r.id && r.sendAppend(id, true) {
			// Fill the window of a follower in Replicate.
			for r.sendAppend(id, false) {
			}
		}
	}
}

// sendAppend sends to the entries after its next index, or a snapshot if
// they were compacted. With sendIfEmpty false it sends nothing when there
// are no entries to send. It reports whether it sent a message.
func (r *Raft) sendAppend(to domain.NodeID, sendIfEmpty bool) bool {
	pr := r.prs[to]
	if pr == nil || pr.paused() {
		return false
	}
	prev := pr.next - 1
	prevTerm, ok := r.log.termOK(prev)
	if !ok {
		if prev < r.log.offset {
			r.sendSnapshot(to, pr)
			return true
		}
		// next is past the end (cannot happen: next <= last+1).
		panic(errorf("consensus: node %d: progress of %d has next %d past last index %d", r.id, to, pr.next, r.log.lastIndex()))
	}
	var ents []domain.Entry
	if last := r.log.lastIndex(); pr.next <= last {
		ents = r.log.slice(pr.next, last+1, r.cfg.MaxMsgBytes)
	}
	if len(ents) == 0 && !sendIfEmpty {
		return false
	}
	var size uint64
	for i := range ents {
		size += ents[i].Size()
	}
	r.send(domain.Message{Type: domain.MsgApp, To: to, Index: prev, LogTerm: prevTerm, Entries: ents,
		Commit: r.log.committed})
	pr.sent(len(ents), prev+domain.Index(len(ents)), size)
	pr.sentCommit = max(pr.sentCommit, r.log.committed)
	return true
}

// commitAdvanced notes that the commit index moved. The followers hear of
// it with the next append they get anyway or, at the latest, when the
// driver takes the messages (flushCommit): one empty append per follower
// per batch of messages, not one per acknowledgement that moved the
// commit index.
func (r *Raft) commitAdvanced() { r.commitNews = true }

// flushCommit sends an empty append carrying the commit index to every
// follower that was not told it yet and is not paused (a paused follower
// hears of it with its next append or heartbeat).
func (r *Raft) flushCommit() {
	if !r.commitNews {
		return
	}
	r.commitNews = false
	if r.role != Leader {
		return
	}
	for _, id := range r.members {
		if pr := r.prs[id]; id != r.id && pr != nil && pr.sentCommit < r.log.committed {
			r.sendAppend(id, true)
		}
	}
}

func (r *Raft) sendSnapshot(to domain.NodeID, pr *progress) {
	meta := domain.SnapshotMeta{Index: r.log.offset, Term: r.log.offsetTerm, Membership: r.snapMembership.Clone()}
	r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("to", uint64(to)).Uint64("index", uint64(meta.Index)).
		Uint64("next", uint64(pr.next)).Msg("follower behind the compaction point: sending snapshot")
	r.send(domain.Message{Type: domain.MsgSnap, To: to, Snapshot: &domain.Snapshot{Meta: meta}})
	pr.becomeSnapshot(meta.Index)
}

func (r *Raft) bcastHeartbeat(round uint64) {
	ctx := encodeRound(round)
	for _, id := range r.members {
		if id == r.id {
			continue
		}
		pr := r.prs[id]
		r.send(domain.Message{Type: domain.MsgHeartbeat, To: id, Commit: min(pr.match, r.log.committed), Context: ctx})
	}
}

func (r *Raft) stepLeader(m domain.Message) {
	switch m.Type {
	case domain.MsgAppResp:
		r.handleAppendResp(m)
	case domain.MsgHeartbeatResp:
		r.handleHeartbeatResp(m)
	case domain.MsgReadIndex:
		if err := r.leaderRead(readRequest{from: m.From, ctx: m.Context}); err != nil {
			r.send(domain.Message{Type: domain.MsgReadIndexResp, To: m.From, Reject: true, Context: m.Context})
		}
	case domain.MsgApp, domain.MsgHeartbeat, domain.MsgSnap:
		panic(errorf("consensus: node %d: leader of term %d got %v from another leader of its term", r.id, r.term, m))
	default:
		r.logger.Debug().Uint64("term", uint64(r.term)).Stringer("type", m.Type).Uint64("from", uint64(m.From)).
			Msg("leader ignored message")
	}
}

func (r *Raft) handleAppendResp(m domain.Message) {
	pr := r.prs[m.From]
	if pr == nil {
		return
	}
	pr.recentActive = true
	if m.Reject {
		if m.Index >= pr.match && m.RejectHint < pr.match {
			// A log never loses an entry it acknowledged: this one lost
			// its data (a wiped disk under a binary that does not refuse
			// to start), and its vote with it: it must be replaced, never
			// refilled under its id. Probing again at once would loop;
			// the next heartbeat answer sends one probe.
			if !pr.lostData {
				pr.lostData = true
				r.logger.Warn().Uint64("term", uint64(r.term)).Uint64("follower", uint64(m.From)).Uint64("match", uint64(pr.match)).
					Uint64("its_last", uint64(m.RejectHint)).Msg("a follower lost its data: its log ends before what it acknowledged; replace it")
			}
			if pr.state == ProgressReplicate {
				pr.becomeProbe()
			}
			pr.probeSent = true
			return
		}
		hint := m.RejectHint
		if m.LogTerm > 0 {
			// Skip every entry of ours whose term is above the follower's
			// term at hint: none of them can match.
			hint, _ = r.log.findConflictByTerm(m.RejectHint, m.LogTerm)
		}
		if pr.maybeDecrTo(m.Index, hint) {
			r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("from", uint64(m.From)).Uint64("rejected", uint64(m.Index)).
				Uint64("next", uint64(pr.next)).Msg("append rejected, probing")
			if pr.state == ProgressReplicate {
				pr.becomeProbe()
				pr.next = max(min(m.Index, hint+1), pr.match+1)
			}
			r.sendAppend(m.From, true)
		}
		return
	}
	if m.Index >= pr.match {
		pr.lostData = false
	}
	wasPaused := pr.paused()
	if !pr.maybeUpdate(m.Index) && !(pr.match == m.Index && pr.state == ProgressProbe) {
		return
	}
	switch pr.state {
	case ProgressProbe:
		pr.becomeReplicate()
	case ProgressSnapshot:
		if pr.match >= r.log.offset {
			pr.becomeProbe()
			pr.becomeReplicate()
		}
	case ProgressReplicate:
		pr.inflights.freeLE(m.Index)
	}
	if r.maybeCommit() {
		r.commitAdvanced()
	}
	if wasPaused {
		r.sendAppend(m.From, true)
	}
	if r.role != Leader {
		return
	}
	for r.sendAppend(m.From, false) {
	}
	if m.From == r.leadTransferee && pr.match == r.log.lastIndex() {
		r.sendTimeoutNow(m.From)
	}
}

func (r *Raft) handleHeartbeatResp(m domain.Message) {
	pr := r.prs[m.From]
	if pr == nil {
		return
	}
	pr.recentActive = true
	switch {
	case pr.state == ProgressProbe:
		pr.probeSent = false
	case pr.state == ProgressReplicate && pr.inflights.full() && pr.match < r.log.lastIndex():
		// The follower is alive but the window stays full: its appends
		// may be lost. Free one slot so that an append goes out; if the
		// follower misses entries it rejects it and we probe.
		pr.inflights.freeFirst()
	}
	if pr.match < r.log.lastIndex() {
		r.sendAppend(m.From, true)
	}
	if round := decodeRound(m.Context); round > pr.readAck {
		pr.readAck = round
		r.confirmReads()
	}
}

// maybeCommit advances the commit index to the highest index a quorum of
// voters holds, if that entry is of the current term (Raft §5.4.2). It
// reports whether the commit index moved.
func (r *Raft) maybeCommit() bool {
	if len(r.voters) == 0 {
		return false
	}
	matches := r.scratch[:0]
	for _, id := range r.voters {
		var m domain.Index
		if pr := r.prs[id]; pr != nil {
			m = pr.match
		}
		matches = append(matches, m)
	}
	r.scratch = matches
	slices.Sort(matches)
	// The quorum-th largest match: held by at least a quorum.
	n := matches[len(matches)-r.quorum()]
	if n <= r.log.committed {
		return false
	}
	if t, _ := r.log.termOK(n); t != r.term && !r.cfg.plant.commitByCounting {
		return false
	}
	old := r.log.committed
	wasCommittedInTerm := r.committedInTerm()
	r.log.commitTo(n)
	r.afterLeaderCommit(old, wasCommittedInTerm)
	return true
}

// afterLeaderCommit releases what waited for the commit index to move.
func (r *Raft) afterLeaderCommit(old domain.Index, wasCommittedInTerm bool) {
	for i := max(old, r.uncommittedBase) + 1; i <= r.log.committed; i++ {
		r.releaseUncommitted(r.log.entries[i-r.log.offset-1].Data)
	}
	if r.log.committed >= r.pendingConfIndex && !r.membership.IsVoter(r.id) {
		r.logger.Info().Uint64("term", uint64(r.term)).Uint64("commit", uint64(r.log.committed)).
			Msg("leader removed from the voters; stepping down")
		r.becomeFollower(r.term, domain.None)
		return
	}
	if !wasCommittedInTerm && r.committedInTerm() {
		r.releaseQueuedReads()
	}
}

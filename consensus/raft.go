package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/domain"
)

// transferContext marks the MsgVote of a campaign started by MsgTimeoutNow:
// such a vote request is not ignored by followers in a leader's lease.
var transferContext = []byte("transfer")

// Raft is one node's Raft core. It is not safe for concurrent use: one
// goroutine (the driver) owns it.
type Raft struct {
	cfg    Config
	id     domain.NodeID
	log    *raftLog
	logger zerolog.Logger

	term domain.Term
	vote domain.NodeID
	lead domain.NodeID
	role Role

	// membership in force: the last Membership entry in the log, else the
	// membership at the compaction point.
	membership domain.Membership
	voters     []domain.NodeID // sorted
	members    []domain.NodeID // voters then learners, each sorted
	// snapMembership is the membership at the compaction point.
	snapMembership domain.Membership
	// confs are the Membership entries in the log, by index.
	confs []confEntry

	// prs is the leader's view of every member, itself included.
	prs map[domain.NodeID]*progress
	// votes holds the (pre-)vote answers of the current campaign.
	votes map[domain.NodeID]bool

	electionElapsed   int
	heartbeatElapsed  int
	randomizedTimeout int
	// ticks counts every Tick since New: the clock of the lease.
	ticks uint64

	leadTransferee   domain.NodeID
	pendingConfIndex domain.Index
	// uncommittedBytes counts the proposed entries after max(committed,
	// uncommittedBase) (the leader's own proposals of this term).
	uncommittedBytes uint64
	// uncommittedLarge counts, apart, the uncommitted entries larger than
	// MaxMsgBytes (at most one at a time; see Propose).
	uncommittedLarge uint64
	uncommittedBase  domain.Index
	// commitNews: the commit index moved and some follower has not been
	// told; see flushCommit.
	commitNews bool

	reads readIndexState
	// readStats counts ReadIndex work for Status; it survives role changes.
	readStats ReadStats

	msgs            []domain.Message
	msgsAfterSync   []domain.Message
	readStates      []ReadState
	pendingSnapshot *domain.Snapshot
	prevSoft        SoftState
	prevVote        domain.Vote

	scratch []domain.Index
}

type confEntry struct {
	index domain.Index
	m     domain.Membership
}

// New returns a core for cfg, starting from the durable state st, as a
// follower with no leader known.
func New(cfg Config, st State) (*Raft, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := newRaftLog(st.Snapshot, st.Entries)
	if err != nil {
		return nil, err
	}
	r := &Raft{
		cfg:    cfg,
		id:     cfg.ID,
		log:    l,
		logger: cfg.Logger.With().Uint64("node", uint64(cfg.ID)).Logger(),
		term:   st.Vote.Term,
		vote:   st.Vote.VotedFor,
		role:   Follower,
	}
	r.snapMembership = st.Snapshot.Membership.Clone()
	if r.snapMembership.Empty() {
		r.snapMembership = domain.Membership{Voters: slices.Clone(cfg.Peers)}
	}
	if err := r.snapMembership.Validate(); err != nil {
		return nil, fmt.Errorf("consensus: initial membership: %w", err)
	}
	for _, e := range l.entries {
		if e.Type == domain.EntryMembership {
			m, err := domain.DecodeMembership(e.Data)
			if err != nil {
				return nil, fmt.Errorf("consensus: state: membership entry %d: %w", e.Index, err)
			}
			r.confs = append(r.confs, confEntry{index: e.Index, m: m})
		}
	}
	r.refreshMembership()
	r.prevVote = st.Vote
	if lt := l.lastTerm(); lt > r.term {
		// A crash fell between installing a snapshot (or appending) and
		// storing the term that came with it (Ready's order puts the
		// snapshot first). The node never voted in that term, or the vote
		// would be stored: take the term, with no vote; the next Ready
		// stores it.
		r.term, r.vote = lt, domain.None
	}
	r.prevSoft = SoftState{Lead: domain.None, Role: Follower}
	r.resetTimers()
	r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("commit", uint64(l.committed)).
		Uint64("last", uint64(l.lastIndex())).Msg("started")
	return r, nil
}

// Tick advances the core's logical clock by one tick.
func (r *Raft) Tick() {
	r.ticks++
	if r.role == Leader {
		r.tickLeader()
		return
	}
	r.electionElapsed++
	if r.promotable() && r.electionElapsed >= r.randomizedTimeout {
		r.electionElapsed = 0
		r.campaign(false)
	}
}

func (r *Raft) tickLeader() {
	r.heartbeatElapsed++
	r.electionElapsed++
	if r.electionElapsed >= r.cfg.ElectionTicks {
		r.electionElapsed = 0
		if !r.cfg.DisableCheckQuorum && !r.quorumActive() {
			r.logger.Info().Uint64("term", uint64(r.term)).Msg("leader lost contact with a quorum; stepping down")
			r.becomeFollower(r.term, domain.None)
			return
		}
		if r.leadTransferee != domain.None {
			r.logger.Info().Uint64("term", uint64(r.term)).Uint64("to", uint64(r.leadTransferee)).Msg("leader transfer timed out")
			r.leadTransferee = domain.None
		}
	}
	r.pruneLease()
	if r.heartbeatElapsed >= r.cfg.HeartbeatTicks {
		r.heartbeatElapsed = 0
		r.bcastHeartbeat(r.heartbeatRound())
	}
}

// quorumActive reports whether a quorum of voters was heard from since the
// last check, and clears the marks for the next one.
func (r *Raft) quorumActive() bool {
	active := 0
	for _, id := range r.voters {
		pr := r.prs[id]
		if id == r.id || pr != nil && pr.recentActive {
			active++
		}
	}
	for _, id := range r.members {
		if pr := r.prs[id]; pr != nil && id != r.id {
			pr.recentActive = false
		}
	}
	return active >= r.quorum()
}

func (r *Raft) quorum() int { return len(r.voters)/2 + 1 }

// promotable reports whether this node may campaign: it is a voter.
func (r *Raft) promotable() bool { return r.membership.IsVoter(r.id) }

func (r *Raft) resetTimers() {
	r.electionElapsed = 0
	r.heartbeatElapsed = 0
	r.randomizedTimeout = r.cfg.ElectionTicks + r.cfg.Rand.IntN(r.cfg.ElectionTicks)
}

func (r *Raft) reset(term domain.Term) {
	if term != r.term {
		r.term = term
		r.vote = domain.None
	}
	r.lead = domain.None
	r.resetTimers()
	r.votes = nil
	r.leadTransferee = domain.None
	r.prs = nil
	r.reads = readIndexState{nextID: r.reads.nextID}
	r.uncommittedBytes = 0
	r.uncommittedLarge = 0
}

func (r *Raft) becomeFollower(term domain.Term, lead domain.NodeID) {
	was, oldTerm := r.role, r.term
	r.reset(term)
	r.role = Follower
	r.lead = lead
	if was != Follower {
		r.logger.Info().Uint64("term", uint64(term)).Uint64("leader", uint64(lead)).Stringer("was", was).Msg("became follower")
	} else if term != oldTerm {
		r.logger.Debug().Uint64("term", uint64(term)).Uint64("leader", uint64(lead)).Msg("follower moved to a new term")
	}
}

func (r *Raft) becomePreCandidate() {
	// A pre-candidate changes neither term nor vote.
	r.resetTimers()
	r.votes = map[domain.NodeID]bool{}
	r.lead = domain.None
	r.leadTransferee = domain.None
	r.prs = nil
	r.reads = readIndexState{nextID: r.reads.nextID}
	r.role = PreCandidate
	r.logger.Info().Uint64("term", uint64(r.term)).Msg("became pre-candidate")
}

func (r *Raft) becomeCandidate() {
	r.reset(r.term + 1)
	r.vote = r.id
	r.votes = map[domain.NodeID]bool{}
	r.role = Candidate
	r.logger.Info().Uint64("term", uint64(r.term)).Msg("became candidate")
}

func (r *Raft) becomeLeader() {
	if r.role == Follower {
		panic(fmt.Sprintf("consensus: node %d: follower cannot become leader directly (term %d)", r.id, r.term))
	}
	r.reset(r.term)
	r.role = Leader
	r.lead = r.id
	r.prs = make(map[domain.NodeID]*progress, len(r.members))
	for _, id := range r.members {
		r.addProgress(id)
	}
	// No membership change until the leader's blank entry commits, which
	// also commits any change left by earlier leaders.
	r.pendingConfIndex = r.log.lastIndex()
	blank := domain.Entry{Index: r.log.lastIndex() + 1, Term: r.term, Type: domain.EntryBlank}
	r.log.append(blank)
	r.uncommittedBase = blank.Index
	r.uncommittedBytes = 0
	r.uncommittedLarge = 0
	r.prs[r.id].next = r.log.lastIndex() + 1
	r.logger.Info().Uint64("term", uint64(r.term)).Uint64("last", uint64(r.log.lastIndex())).Msg("became leader")
	r.bcastAppend()
}

func (r *Raft) addProgress(id domain.NodeID) {
	pr := &progress{
		next:      r.log.lastIndex() + 1,
		state:     ProgressProbe,
		learner:   !r.membership.IsVoter(id),
		inflights: inflights{maxMsgs: r.cfg.MaxInflightMsgs, maxBytes: r.cfg.MaxInflightBytes},
	}
	if id == r.id {
		pr.match = r.log.persisted
		pr.state = ProgressReplicate
		pr.recentActive = true
	}
	r.prs[id] = pr
}

// campaign starts an election: a pre-vote round first unless disabled or
// the campaign comes from a leader transfer.
func (r *Raft) campaign(transfer bool) {
	if !r.promotable() {
		return
	}
	if r.cfg.DisablePreVote || transfer {
		r.elect(transfer)
		return
	}
	r.becomePreCandidate()
	r.votes[r.id] = true
	if r.poll() {
		return
	}
	r.requestVotes(domain.MsgPreVote, r.term+1, nil)
}

// elect starts the real election in a new term.
func (r *Raft) elect(transfer bool) {
	r.becomeCandidate()
	// The candidate's own vote counts once it is durable (Advance).
	var ctx []byte
	if transfer {
		ctx = transferContext
	}
	if r.poll() {
		return
	}
	r.requestVotes(domain.MsgVote, r.term, ctx)
}

func (r *Raft) requestVotes(typ domain.MessageType, term domain.Term, ctx []byte) {
	for _, id := range r.voters {
		if id == r.id {
			continue
		}
		r.send(domain.Message{Type: typ, To: id, Term: term, Index: r.log.lastIndex(),
			LogTerm: r.log.lastTerm(), Context: ctx})
	}
}

// poll counts the answers of the campaign under way and acts on the
// outcome; it reports whether the campaign ended.
func (r *Raft) poll() bool {
	granted, rejected := 0, 0
	for _, id := range r.voters {
		v, ok := r.votes[id]
		switch {
		case !ok:
		case v:
			granted++
		default:
			rejected++
		}
	}
	q := r.quorum()
	switch {
	case granted >= q:
		if r.role == PreCandidate {
			r.logger.Debug().Uint64("term", uint64(r.term)).Int("granted", granted).Msg("pre-vote won")
			r.elect(false)
		} else {
			r.becomeLeader()
		}
		return true
	case len(r.voters)-rejected < q:
		r.logger.Debug().Uint64("term", uint64(r.term)).Int("rejected", rejected).Stringer("role", r.role).Msg("campaign lost")
		r.becomeFollower(r.term, domain.None)
		return true
	}
	return false
}

// send queues m for Ready.Messages, stamping From and, unless set, Term.
func (r *Raft) send(m domain.Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgs = append(r.msgs, m)
}

// sendAfterSync queues m for Ready.MessagesAfterSync.
func (r *Raft) sendAfterSync(m domain.Message) {
	m.From = r.id
	if m.Term == 0 {
		m.Term = r.term
	}
	r.msgsAfterSync = append(r.msgsAfterSync, m)
}

var errStep = errors.New("consensus: step")

func (r *Raft) checkMessage(m domain.Message) error {
	switch {
	case m.To != r.id:
		return fmt.Errorf("%w: message %v addressed to %d, not this node %d", errStep, m, m.To, r.id)
	case !m.Type.Valid():
		return fmt.Errorf("%w: unknown message type %v", errStep, m.Type)
	case m.From == domain.None:
		return fmt.Errorf("%w: message %v from node 0", errStep, m)
	case m.From == r.id:
		return fmt.Errorf("%w: message %v from this node to itself", errStep, m)
	case m.Type == domain.MsgSnap && m.Snapshot == nil:
		return fmt.Errorf("%w: %v without a snapshot", errStep, m)
	case m.Type == domain.MsgApp:
		for i, e := range m.Entries {
			if e.Index != m.Index+1+domain.Index(i) {
				return fmt.Errorf("%w: %v: entry %d has index %d, want %d", errStep, m, i, e.Index, m.Index+1+domain.Index(i))
			}
			if e.Term > m.Term {
				return fmt.Errorf("%w: %v: entry %d has term %d above the message's", errStep, m, e.Index, e.Term)
			}
		}
	}
	return nil
}

// Step feeds a message received from a peer. It returns an error for a
// message that is not addressed to this node or is malformed; such a
// message changes nothing.
func (r *Raft) Step(m domain.Message) error {
	if err := r.checkMessage(m); err != nil {
		return err
	}
	switch {
	case m.Term > r.term:
		if m.Type == domain.MsgVote || m.Type == domain.MsgPreVote {
			force := bytes.Equal(m.Context, transferContext)
			if r.inLease() && !force {
				r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("from", uint64(m.From)).
					Stringer("type", m.Type).Uint64("msg_term", uint64(m.Term)).Msg("ignored vote request within leader lease")
				return nil
			}
		}
		switch {
		case m.Type == domain.MsgPreVote:
			// Changes no state.
		case m.Type == domain.MsgPreVoteResp && !m.Reject:
			// Granted pre-votes carry the term we will campaign in.
		default:
			lead := domain.None
			if m.Type == domain.MsgApp || m.Type == domain.MsgHeartbeat || m.Type == domain.MsgSnap {
				lead = m.From
			}
			r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("from", uint64(m.From)).
				Stringer("type", m.Type).Uint64("msg_term", uint64(m.Term)).Msg("higher term seen")
			r.becomeFollower(m.Term, lead)
		}
	case m.Term < r.term:
		switch {
		case (!r.cfg.DisableCheckQuorum || !r.cfg.DisablePreVote) && (m.Type == domain.MsgApp || m.Type == domain.MsgHeartbeat):
			// A stale leader: tell it our term so that it steps down (with
			// pre-vote or check-quorum on, it could not learn it otherwise).
			r.send(domain.Message{Type: domain.MsgAppResp, To: m.From})
		case m.Type == domain.MsgPreVote:
			r.send(domain.Message{Type: domain.MsgPreVoteResp, To: m.From, Term: r.term, Reject: true})
		default:
			r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("from", uint64(m.From)).
				Stringer("type", m.Type).Uint64("msg_term", uint64(m.Term)).Msg("ignored lower-term message")
		}
		return nil
	}

	if m.Type == domain.MsgVote || m.Type == domain.MsgPreVote {
		r.handleVoteRequest(m)
		return nil
	}
	switch r.role {
	case Leader:
		r.stepLeader(m)
	case Candidate, PreCandidate:
		r.stepCandidate(m)
	default:
		r.stepFollower(m)
	}
	return nil
}

func (r *Raft) handleVoteRequest(m domain.Message) {
	respType := domain.MsgVoteResp
	if m.Type == domain.MsgPreVote {
		respType = domain.MsgPreVoteResp
	}
	canVote := r.vote == m.From ||
		r.vote == domain.None && r.lead == domain.None ||
		m.Type == domain.MsgPreVote && m.Term > r.term
	grant := canVote && r.log.isUpToDate(m.Index, m.LogTerm)
	resp := domain.Message{Type: respType, To: m.From}
	if grant {
		resp.Term = m.Term
		if m.Type == domain.MsgVote {
			r.electionElapsed = 0
			r.vote = m.From
		}
	} else {
		resp.Term = r.term
		resp.Reject = true
	}
	r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("candidate", uint64(m.From)).
		Stringer("type", m.Type).Bool("granted", grant).Msg("vote request")
	if respType == domain.MsgVoteResp {
		// A vote (or the term a rejection reports) is durable before it
		// is told.
		r.sendAfterSync(resp)
	} else {
		r.send(resp)
	}
}

func (r *Raft) stepCandidate(m domain.Message) {
	switch m.Type {
	case domain.MsgApp, domain.MsgHeartbeat, domain.MsgSnap:
		// A leader of this term exists.
		r.becomeFollower(m.Term, m.From)
		r.stepFollower(m)
	case domain.MsgVoteResp, domain.MsgPreVoteResp:
		want := domain.MsgVoteResp
		if r.role == PreCandidate {
			want = domain.MsgPreVoteResp
		}
		if m.Type != want {
			return
		}
		if m.Type == domain.MsgPreVoteResp && !m.Reject && m.Term != r.term+1 {
			// A grant from an earlier pre-vote round.
			return
		}
		if _, seen := r.votes[m.From]; !seen {
			r.votes[m.From] = !m.Reject
		}
		r.poll()
	default:
		r.logger.Debug().Uint64("term", uint64(r.term)).Stringer("type", m.Type).Uint64("from", uint64(m.From)).
			Msg("candidate ignored message")
	}
}

func (r *Raft) stepFollower(m domain.Message) {
	switch m.Type {
	case domain.MsgApp:
		r.heardFromLeader(m.From)
		r.handleAppend(m)
	case domain.MsgHeartbeat:
		r.heardFromLeader(m.From)
		r.handleHeartbeat(m)
	case domain.MsgSnap:
		r.heardFromLeader(m.From)
		r.handleSnapshot(m)
	case domain.MsgTimeoutNow:
		r.logger.Info().Uint64("term", uint64(r.term)).Uint64("from", uint64(m.From)).Msg("leader transfer: campaigning now")
		r.campaign(true)
	case domain.MsgReadIndexResp:
		if !m.Reject {
			r.readStates = append(r.readStates, ReadState{Index: m.Index, Context: m.Context})
		}
	case domain.MsgReadIndex:
		r.send(domain.Message{Type: domain.MsgReadIndexResp, To: m.From, Reject: true, Context: m.Context})
	default:
		r.logger.Debug().Uint64("term", uint64(r.term)).Stringer("type", m.Type).Uint64("from", uint64(m.From)).
			Msg("follower ignored message")
	}
}

func (r *Raft) heardFromLeader(from domain.NodeID) {
	r.electionElapsed = 0
	if r.lead != from {
		r.logger.Info().Uint64("term", uint64(r.term)).Uint64("leader", uint64(from)).Msg("leader known")
		r.lead = from
	}
}

// ackAppend answers the leader with the last index this node matches.
// An acknowledgement that covers entries not yet durable (or that answers
// entries just received) waits for the sync.
func (r *Raft) ackAppend(to domain.NodeID, index domain.Index, carried bool) {
	m := domain.Message{Type: domain.MsgAppResp, To: to, Index: index}
	if r.cfg.plant.ackBeforeSync || !carried && index <= r.log.persisted {
		r.send(m)
		return
	}
	r.sendAfterSync(m)
}

func (r *Raft) handleAppend(m domain.Message) {
	if m.Index < r.log.committed {
		r.ackAppend(m.From, r.log.committed, false)
		return
	}
	if !r.log.matchTerm(m.Index, m.LogTerm) {
		hint, hintTerm := r.log.findConflictByTerm(min(m.Index, r.log.lastIndex()), m.LogTerm)
		r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("index", uint64(m.Index)).Uint64("log_term", uint64(m.LogTerm)).
			Uint64("hint", uint64(hint)).Uint64("hint_term", uint64(hintTerm)).Msg("rejected append")
		r.send(domain.Message{Type: domain.MsgAppResp, To: m.From, Index: m.Index, Reject: true,
			RejectHint: hint, LogTerm: hintTerm})
		return
	}
	lastNew := m.Index + domain.Index(len(m.Entries))
	if ci := r.log.findConflict(m.Entries); ci != 0 {
		ents := m.Entries[ci-m.Index-1:]
		truncated := r.log.append(ents...)
		r.noteAppended(ents, truncated)
	}
	r.log.commitTo(min(m.Commit, lastNew))
	r.ackAppend(m.From, lastNew, len(m.Entries) > 0)
}

func (r *Raft) handleHeartbeat(m domain.Message) {
	if c := min(m.Commit, r.log.lastIndex()); c > r.log.committed {
		r.log.commitTo(c)
	}
	r.send(domain.Message{Type: domain.MsgHeartbeatResp, To: m.From, Context: m.Context})
}

func (r *Raft) handleSnapshot(m domain.Message) {
	meta := m.Snapshot.Meta
	switch {
	case meta.Index <= r.log.committed:
		r.ackAppend(m.From, r.log.committed, false)
	case r.log.matchTerm(meta.Index, meta.Term):
		// The log has the snapshot's last entry: fast-forward commit.
		r.log.commitTo(meta.Index)
		r.ackAppend(m.From, meta.Index, false)
	default:
		r.logger.Info().Uint64("term", uint64(r.term)).Uint64("index", uint64(meta.Index)).
			Uint64("snap_term", uint64(meta.Term)).Msg("installing snapshot")
		r.log.restore(meta)
		r.snapMembership = meta.Membership.Clone()
		if r.snapMembership.Empty() {
			r.snapMembership = domain.Membership{Voters: slices.Clone(r.cfg.Peers)}
		}
		r.confs = nil
		r.refreshMembership()
		r.pendingSnapshot = m.Snapshot
		r.ackAppend(m.From, meta.Index, true)
	}
}

// noteAppended updates the membership after entries were appended.
func (r *Raft) noteAppended(ents []domain.Entry, truncated bool) {
	changed := false
	if truncated {
		first := ents[0].Index
		n := len(r.confs)
		for n > 0 && r.confs[n-1].index >= first {
			n--
		}
		changed = n != len(r.confs)
		r.confs = r.confs[:n]
	}
	for _, e := range ents {
		if e.Type != domain.EntryMembership {
			continue
		}
		m, err := domain.DecodeMembership(e.Data)
		if err != nil {
			panic(fmt.Sprintf("consensus: membership entry %d (term %d): %v", e.Index, e.Term, err))
		}
		r.confs = append(r.confs, confEntry{index: e.Index, m: m})
		changed = true
	}
	if changed {
		r.refreshMembership()
	}
}

// refreshMembership makes the last membership in the log the one in force.
func (r *Raft) refreshMembership() {
	m := r.snapMembership
	if n := len(r.confs); n > 0 {
		m = r.confs[n-1].m
	}
	old := r.membership
	r.membership = m.Clone()
	r.voters = slices.Sorted(slices.Values(m.Voters))
	r.members = m.Members()
	if r.role == Leader {
		for _, id := range r.members {
			if pr, ok := r.prs[id]; ok {
				pr.learner = !r.membership.IsVoter(id)
			} else {
				r.addProgress(id)
			}
		}
		for _, id := range slices.Sorted(maps.Keys(r.prs)) {
			if id != r.id && !r.membership.Contains(id) {
				delete(r.prs, id)
			}
		}
	}
	if len(old.Voters)+len(old.Learners) > 0 {
		r.logger.Info().Uint64("term", uint64(r.term)).Any("voters", r.voters).Any("learners", m.Learners).Msg("membership changed")
	}
}

// Propose appends Normal entries carrying data, in order, at consecutive
// indexes starting at the returned index, in the returned term. It fails
// with domain.ErrNotLeader on a non-leader and domain.ErrProposalDropped
// when the uncommitted limits are reached or a transfer is in progress.
// An entry's outcome is known when an entry with its index is applied: it
// was this proposal if and only if the applied entry's term is term.
// The core keeps the data slices as they are: do not modify them after.
func (r *Raft) Propose(data ...[]byte) (first domain.Index, term domain.Term, err error) {
	if err := r.checkPropose("propose"); err != nil {
		return 0, 0, err
	}
	if len(data) == 0 {
		return 0, 0, fmt.Errorf("consensus: propose: no data: %w", domain.ErrProposalDropped)
	}
	// An entry larger than MaxMsgBytes (a big value) is not held to
	// MaxUncommittedBytes, which would refuse it, or the small proposals
	// behind it, until it commits; instead only one may be uncommitted at
	// a time, so its memory is bounded by the largest value a client may
	// send.
	var size, large uint64
	for _, d := range data {
		if s := entryBytes(d); s > r.cfg.MaxMsgBytes {
			large += s
		} else {
			size += s
		}
	}
	if large > 0 && r.uncommittedLarge > 0 {
		return 0, 0, fmt.Errorf("consensus: propose %d large bytes with %d uncommitted: one large entry at a time: %w",
			large, r.uncommittedLarge, domain.ErrProposalDropped)
	}
	n := r.uncommittedEntries()
	if n+len(data) > r.cfg.MaxUncommittedEntries {
		return 0, 0, fmt.Errorf("consensus: propose %d entries with %d uncommitted (max %d): %w",
			len(data), n, r.cfg.MaxUncommittedEntries, domain.ErrProposalDropped)
	}
	if size > 0 && r.uncommittedBytes > 0 && r.uncommittedBytes+size > r.cfg.MaxUncommittedBytes {
		return 0, 0, fmt.Errorf("consensus: propose %d bytes with %d uncommitted (max %d): %w",
			size, r.uncommittedBytes, r.cfg.MaxUncommittedBytes, domain.ErrProposalDropped)
	}
	first = r.log.lastIndex() + 1
	ents := make([]domain.Entry, len(data))
	for i, d := range data {
		ents[i] = domain.Entry{Index: first + domain.Index(i), Term: r.term, Type: domain.EntryNormal, Data: d}
	}
	r.uncommittedBytes += size
	r.uncommittedLarge += large
	r.appendLeader(ents)
	return first, r.term, nil
}

// entryBytes is what a proposal of data counts toward the uncommitted
// limits.
func entryBytes(data []byte) uint64 { return uint64(len(data)) + 24 }

// releaseUncommitted uncounts a committed entry proposed in this term.
func (r *Raft) releaseUncommitted(data []byte) {
	if s := entryBytes(data); s > r.cfg.MaxMsgBytes {
		r.uncommittedLarge -= min(r.uncommittedLarge, s)
	} else {
		r.uncommittedBytes -= min(r.uncommittedBytes, s)
	}
}

func (r *Raft) checkPropose(what string) error {
	if r.role != Leader {
		return fmt.Errorf("consensus: %s on node %d (%v, leader %d, term %d): %w", what, r.id, r.role, r.lead, r.term, domain.ErrNotLeader)
	}
	if r.leadTransferee != domain.None {
		return fmt.Errorf("consensus: %s during transfer to %d: %w: %w", what, r.leadTransferee, domain.ErrProposalDropped, domain.ErrTransferInProgress)
	}
	return nil
}

func (r *Raft) uncommittedEntries() int {
	return int(r.log.lastIndex() - max(r.log.committed, r.uncommittedBase))
}

// appendLeader appends the leader's new entries and replicates them.
func (r *Raft) appendLeader(ents []domain.Entry) {
	r.log.append(ents...)
	r.noteAppended(ents, false)
	r.prs[r.id].next = r.log.lastIndex() + 1
	r.bcastAppend()
}

// ProposeMembership appends a Membership entry changing the membership to
// m. Only single-server changes are allowed (one voter or learner added,
// removed or promoted), one at a time, and only once the leader has
// committed an entry of its own term (thesis §4.1, with the fix of §4.1.2's
// erratum: the blank entry).
func (r *Raft) ProposeMembership(m domain.Membership) (domain.Index, domain.Term, error) {
	if err := r.checkPropose("propose membership"); err != nil {
		return 0, 0, err
	}
	if err := m.Validate(); err != nil {
		return 0, 0, fmt.Errorf("consensus: propose membership: %w", err)
	}
	if !r.committedInTerm() && !r.cfg.plant.earlyChange {
		return 0, 0, fmt.Errorf("consensus: propose membership: leader has not committed an entry of term %d yet: %w",
			r.term, domain.ErrProposalDropped)
	}
	if r.pendingConfIndex > r.log.committed && !r.cfg.plant.twoChanges {
		return 0, 0, fmt.Errorf("consensus: propose membership: change at %d not committed yet (commit %d): %w",
			r.pendingConfIndex, r.log.committed, domain.ErrProposalDropped)
	}
	if err := singleServerChange(r.membership, m); err != nil {
		return 0, 0, err
	}
	e := domain.Entry{Index: r.log.lastIndex() + 1, Term: r.term, Type: domain.EntryMembership,
		Data: domain.EncodeMembership(m)}
	r.pendingConfIndex = e.Index
	r.uncommittedBytes += e.Size()
	r.logger.Info().Uint64("term", uint64(r.term)).Uint64("index", uint64(e.Index)).Any("voters", m.Voters).
		Any("learners", m.Learners).Msg("proposed membership change")
	r.appendLeader([]domain.Entry{e})
	return e.Index, r.term, nil
}

// singleServerChange checks that to differs from from in the role of
// exactly one node and keeps at least one voter.
func singleServerChange(from, to domain.Membership) error {
	role := func(m domain.Membership, id domain.NodeID) int {
		switch {
		case m.IsVoter(id):
			return 2
		case m.IsLearner(id):
			return 1
		}
		return 0
	}
	changed := 0
	seen := map[domain.NodeID]bool{}
	for _, id := range append(from.Members(), to.Members()...) {
		if !seen[id] && role(from, id) != role(to, id) {
			changed++
		}
		seen[id] = true
	}
	switch {
	case len(to.Voters) == 0:
		return fmt.Errorf("consensus: membership %v has no voter: %w", to, domain.ErrInvalidMembership)
	case changed == 0:
		return fmt.Errorf("consensus: membership %v is the current one: %w", to, domain.ErrInvalidMembership)
	case changed > 1:
		return fmt.Errorf("consensus: membership %v -> %v changes %d nodes, not one: %w", from, to, changed, domain.ErrInvalidMembership)
	}
	return nil
}

// committedInTerm reports whether the leader committed an entry of its term.
func (r *Raft) committedInTerm() bool {
	t, ok := r.log.termOK(r.log.committed)
	return ok && t == r.term
}

// TransferLeadership starts handing leadership to the voter to: once to's
// log is caught up, the leader sends it MsgTimeoutNow. Proposals are
// refused while the transfer runs; it is abandoned after an election
// timeout. It fails with domain.ErrNotLeader on a non-leader.
func (r *Raft) TransferLeadership(to domain.NodeID) error {
	if r.role != Leader {
		return fmt.Errorf("consensus: transfer leadership on node %d (%v, leader %d): %w", r.id, r.role, r.lead, domain.ErrNotLeader)
	}
	if to == r.id {
		return nil
	}
	if !r.membership.IsVoter(to) {
		return fmt.Errorf("consensus: transfer leadership to %d: not a voter: %w", to, domain.ErrInvalidMembership)
	}
	if r.leadTransferee == to {
		return nil
	}
	r.logger.Info().Uint64("term", uint64(r.term)).Uint64("to", uint64(to)).Msg("leader transfer started")
	r.leadTransferee = to
	r.electionElapsed = 0
	pr := r.prs[to]
	if pr.match == r.log.lastIndex() {
		r.sendTimeoutNow(to)
	} else {
		r.sendAppend(to, true)
	}
	return nil
}

func (r *Raft) sendTimeoutNow(to domain.NodeID) {
	r.logger.Info().Uint64("term", uint64(r.term)).Uint64("to", uint64(to)).Msg("leader transfer: target caught up, sending timeout-now")
	r.send(domain.Message{Type: domain.MsgTimeoutNow, To: to})
	// to's campaign will not wait for the followers' lease to run out.
	r.reads.leaseRevoked = true
}

// ReportSnapshot tells the leader whether the snapshot it asked to send to
// id was delivered; on failure it probes again.
func (r *Raft) ReportSnapshot(id domain.NodeID, ok bool) {
	if r.role != Leader {
		return
	}
	pr := r.prs[id]
	if pr == nil || pr.state != ProgressSnapshot {
		return
	}
	r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("to", uint64(id)).Bool("ok", ok).Msg("snapshot report")
	if !ok {
		pr.pendingSnapshot = 0
	}
	pr.becomeProbe()
	// Wait for the follower's answer (or a heartbeat response) before
	// probing.
	pr.probeSent = true
}

// ReportUnreachable tells the leader that sending to id failed, so it goes
// back to probing instead of pipelining into the void.
func (r *Raft) ReportUnreachable(id domain.NodeID) {
	if r.role != Leader {
		return
	}
	if pr := r.prs[id]; pr != nil && pr.state == ProgressReplicate {
		r.logger.Debug().Uint64("term", uint64(r.term)).Uint64("to", uint64(id)).Msg("follower unreachable, probing")
		pr.becomeProbe()
	}
}

// Compact drops the in-memory log through index, which must be applied
// (and held durably by the state machine: the driver Syncs it first).
// Followers that need a dropped entry then get a snapshot.
func (r *Raft) Compact(index domain.Index) error {
	switch {
	case index == r.log.offset:
		return nil
	case index < r.log.offset:
		return fmt.Errorf("consensus: compact through %d: already compacted through %d: %w", index, r.log.offset, domain.ErrCompacted)
	case index > r.log.applied:
		return fmt.Errorf("consensus: compact through %d: applied only through %d: %w", index, r.log.applied, domain.ErrUnavailable)
	}
	n := 0
	for n < len(r.confs) && r.confs[n].index <= index {
		r.snapMembership = r.confs[n].m
		n++
	}
	r.confs = r.confs[n:]
	r.log.compact(index)
	return nil
}

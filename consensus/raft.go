package consensus

import (
	"errors"

	"github.com/seshat-kv/seshat/domain"
)

// STUB: the signatures below are the core's API, fixed; the bodies are
// being written. Everything here is replaced by the implementation.

var errUnbuilt = errors.New("consensus: not built yet")

// Raft is one node's Raft core. It is not safe for concurrent use: one
// goroutine (the driver) owns it.
type Raft struct{}

// New returns a core for cfg, starting from the durable state st, as a
// follower with no leader known.
func New(cfg Config, st State) (*Raft, error) { return nil, errUnbuilt }

// Tick advances the core's logical clock by one tick.
func (r *Raft) Tick() {}

// Step feeds a message received from a peer. It returns an error for a
// message that is not addressed to this node or is malformed; such a
// message changes nothing.
func (r *Raft) Step(m domain.Message) error { return errUnbuilt }

// Propose appends Normal entries carrying data, in order, at consecutive
// indexes starting at the returned index, in the returned term. It fails
// with domain.ErrNotLeader on a non-leader and domain.ErrProposalDropped
// when the uncommitted limits are reached or a transfer is in progress.
// An entry's outcome is known when an entry with its index is applied: it
// was this proposal if and only if the applied entry's term is term.
func (r *Raft) Propose(data ...[]byte) (first domain.Index, term domain.Term, err error) {
	return 0, 0, errUnbuilt
}

// ProposeMembership appends a Membership entry changing the membership to
// m. Only single-server changes are allowed (one voter or learner added,
// removed or promoted), one at a time, and only once the leader has
// committed an entry of its own term (thesis §4.1, with the fix of §4.1.2's
// erratum: the blank entry).
func (r *Raft) ProposeMembership(m domain.Membership) (domain.Index, domain.Term, error) {
	return 0, 0, errUnbuilt
}

// ReadIndex asks for a linearizable read point. When it is safe, a
// ReadState with ctx appears in a later Ready. A follower forwards the
// request to its leader. It fails with domain.ErrNoLeader when no leader is
// known and domain.ErrProposalDropped when too many reads wait. A request
// the core loses (leadership lost) is never answered: the driver times it
// out or fails it on a leader change.
func (r *Raft) ReadIndex(ctx []byte) error { return errUnbuilt }

// TransferLeadership starts handing leadership to the voter to: once to's
// log is caught up, the leader sends it MsgTimeoutNow. Proposals are
// refused while the transfer runs; it is abandoned after an election
// timeout. It fails with domain.ErrNotLeader on a non-leader.
func (r *Raft) TransferLeadership(to domain.NodeID) error { return errUnbuilt }

// ReportSnapshot tells the leader whether the snapshot it asked to send to
// id was delivered; on failure it probes again.
func (r *Raft) ReportSnapshot(id domain.NodeID, ok bool) {}

// ReportUnreachable tells the leader that sending to id failed, so it goes
// back to probing instead of pipelining into the void.
func (r *Raft) ReportUnreachable(id domain.NodeID) {}

// Compact drops the in-memory log through index, which must be applied
// (and held durably by the state machine: the driver Syncs it first).
// Followers that need a dropped entry then get a snapshot.
func (r *Raft) Compact(index domain.Index) error { return errUnbuilt }

// HasReady reports whether Ready has work.
func (r *Raft) HasReady() bool { return false }

// Ready returns the pending work. Call Advance with it once it is handled;
// until then Ready must not be called again (Step, Tick, Propose may be).
func (r *Raft) Ready() Ready { return Ready{} }

// Advance tells the core that rd was handled: its entries are durable, its
// committed entries applied, its snapshot installed.
func (r *Raft) Advance(rd Ready) {}

// Status reports the core's state.
func (r *Raft) Status() Status { return Status{} }

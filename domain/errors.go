package domain

import "errors"

// Sentinel errors. Callers match them with errors.Is; producers wrap them
// with %w and the values that explain the failure.
var (
	// ErrNotLeader: the request needs the leader and this node is not it.
	ErrNotLeader = errors.New("seshat: not the leader")
	// ErrNoLeader: no leader is known right now; try again shortly.
	ErrNoLeader = errors.New("seshat: no leader")
	// ErrProposalDropped: the proposal was refused without being appended
	// (too much uncommitted data, or a leader transfer in progress). It is
	// safe to retry: nothing was written.
	ErrProposalDropped = errors.New("seshat: proposal dropped")
	// ErrLeadershipLost: a proposal was appended but the leader lost its
	// leadership before it committed; whether it will ever apply is unknown.
	ErrLeadershipLost = errors.New("seshat: leadership lost, outcome unknown")
	// ErrStopped: the node was stopped.
	ErrStopped = errors.New("seshat: node stopped")
	// ErrTransferInProgress: a leader transfer is under way.
	ErrTransferInProgress = errors.New("seshat: leader transfer in progress")

	// ErrTransferFailed: a leader transfer ended without the target
	// becoming leader (another node won, or it timed out).
	ErrTransferFailed = errors.New("seshat: leader transfer failed")

	// ErrCompacted: the requested log index was purged by compaction.
	ErrCompacted = errors.New("seshat: log index compacted")
	// ErrUnavailable: the requested log index is past the last entry.
	ErrUnavailable = errors.New("seshat: log index unavailable")
	// ErrNotFound: a stored item (vote, key) does not exist.
	ErrNotFound = errors.New("seshat: not found")
	// ErrCorrupt: stored or received bytes fail their checks. Never ignore it.
	ErrCorrupt = errors.New("seshat: corrupt data")
	// ErrInvalidMembership: a membership names a node twice or node 0, or a
	// change is not a single-server change.
	ErrInvalidMembership = errors.New("seshat: invalid membership")
	// ErrClosed: the store or transport was closed.
	ErrClosed = errors.New("seshat: closed")
	// ErrDiskFull: a write failed for lack of disk space.
	ErrDiskFull = errors.New("seshat: disk full")

	// ErrRelayRefused: the node a batch was relayed to refused all of it
	// without running any (it is not the leader, or knows none). Safe to
	// retry with the leader of now.
	ErrRelayRefused = errors.New("seshat: relayed batch refused")
	// ErrUnreachable: a request could not be sent to another node (dial,
	// handshake or connection failure before it went out). Nothing ran;
	// safe to retry.
	ErrUnreachable = errors.New("seshat: node unreachable")
)

// ErrNoIdentity: a data dir holds no cluster identity: the node never was
// a member, or its data was lost. It must be told to create a cluster
// (seshatd --bootstrap) or to join one (--join); it never does either on
// its own.
var ErrNoIdentity = errors.New("seshat: no cluster identity in the data dir")

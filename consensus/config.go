package consensus

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/rs/zerolog"
	"github.com/seshat-kv/seshat/domain"
)

// Config configures a core. The zero value of every field but ID and Rand
// is usable: EnsureDefaults fills in the documented defaults.
type Config struct {
	// ID is this node's id. Required, non-zero.
	ID domain.NodeID
	// Peers is the initial membership (all voters, this node included) of a
	// node that starts with no membership in its state: a fresh cluster.
	// Ignored when the restored state carries a membership. A node that is
	// to join an existing cluster later starts with no Peers and waits to
	// be contacted by a leader.
	Peers []domain.NodeID
	// ElectionTicks is the election timeout in ticks. A follower that hears
	// from no leader for a randomized timeout in [ElectionTicks,
	// 2*ElectionTicks) starts an election. Default 10.
	ElectionTicks int
	// HeartbeatTicks is the interval between leader heartbeats in ticks; it
	// must be less than ElectionTicks. Default 1.
	HeartbeatTicks int
	// Rand is the only source of randomness of the core (election jitter).
	// Required: seed it, e.g. rand.New(rand.NewPCG(seed, uint64(id))).
	Rand *rand.Rand
	// DisablePreVote turns off the pre-vote phase (thesis §9.6). Pre-vote is
	// on by default: a node partitioned away and back does not depose a
	// healthy leader by bumping the term.
	DisablePreVote bool
	// DisableCheckQuorum turns off CheckQuorum: by default a leader that
	// has not heard from a quorum within an election timeout steps down,
	// and a follower that heard from a leader within the election timeout
	// ignores vote requests (leader stickiness).
	DisableCheckQuorum bool
	// MaxMsgBytes bounds the entries of one MsgApp, in Entry.Size bytes
	// (at least one entry is always sent). Default 1 MiB.
	MaxMsgBytes uint64
	// MaxInflightMsgs bounds the MsgApps in flight (sent, not acknowledged)
	// to one follower. Default 256.
	MaxInflightMsgs int
	// MaxInflightBytes bounds the entry bytes in flight to one follower.
	// Default 32 MiB.
	MaxInflightBytes uint64
	// MaxUncommittedBytes bounds the entry bytes a leader holds appended
	// but not committed. A proposal past it fails with
	// domain.ErrProposalDropped, which a client may retry. Default 64 MiB.
	MaxUncommittedBytes uint64
	// MaxUncommittedEntries bounds the number of entries appended but not
	// committed, likewise. Default 65536.
	MaxUncommittedEntries int
	// MaxPendingReads bounds ReadIndex requests waiting for their
	// confirmation round. Default 65536.
	MaxPendingReads int
	// Logger receives the core's events (elections, leader changes). The
	// default discards them.
	Logger *zerolog.Logger

	// plant holds the bug switches of the planted-bug test; see plant.go.
	plant plantSet
}

// Defaults of Config's fields.
const (
	DefaultElectionTicks         = 10
	DefaultHeartbeatTicks        = 1
	DefaultMaxMsgBytes           = 1 << 20
	DefaultMaxInflightMsgs       = 256
	DefaultMaxInflightBytes      = 32 << 20
	DefaultMaxUncommittedBytes   = 64 << 20
	DefaultMaxUncommittedEntries = 1 << 16
	DefaultMaxPendingReads       = 1 << 16
)

// EnsureDefaults fills zero fields with their defaults.
func (c *Config) EnsureDefaults() {
	if c.ElectionTicks == 0 {
		c.ElectionTicks = DefaultElectionTicks
	}
	if c.HeartbeatTicks == 0 {
		c.HeartbeatTicks = DefaultHeartbeatTicks
	}
	if c.MaxMsgBytes == 0 {
		c.MaxMsgBytes = DefaultMaxMsgBytes
	}
	if c.MaxInflightMsgs == 0 {
		c.MaxInflightMsgs = DefaultMaxInflightMsgs
	}
	if c.MaxInflightBytes == 0 {
		c.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if c.MaxUncommittedBytes == 0 {
		c.MaxUncommittedBytes = DefaultMaxUncommittedBytes
	}
	if c.MaxUncommittedEntries == 0 {
		c.MaxUncommittedEntries = DefaultMaxUncommittedEntries
	}
	if c.MaxPendingReads == 0 {
		c.MaxPendingReads = DefaultMaxPendingReads
	}
	if c.Logger == nil {
		nop := zerolog.Nop()
		c.Logger = &nop
	}
}

// Validate reports a configuration the core cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.ID == domain.None:
		return errors.New("consensus: config: ID must be non-zero")
	case c.Rand == nil:
		return errors.New("consensus: config: Rand is required (a seeded source)")
	case c.HeartbeatTicks <= 0 || c.ElectionTicks <= c.HeartbeatTicks:
		return fmt.Errorf("consensus: config: need 0 < HeartbeatTicks (%d) < ElectionTicks (%d)", c.HeartbeatTicks, c.ElectionTicks)
	case c.MaxInflightMsgs < 1:
		return fmt.Errorf("consensus: config: MaxInflightMsgs %d < 1", c.MaxInflightMsgs)
	}
	return nil
}

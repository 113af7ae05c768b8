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
	// An entry larger than MaxMsgBytes does not count toward it: one such
	// entry may be uncommitted at a time (a second one is dropped likewise),
	// whatever its size, and the small proposals go on beside it.
	MaxUncommittedBytes uint64
	// MaxUncommittedEntries bounds the number of entries appended but not
	// committed, likewise. Default 65536.
	MaxUncommittedEntries int
	// MaxPendingReads bounds ReadIndex requests waiting for their
	// confirmation round. Default 65536.
	MaxPendingReads int
	// ReadMode says how a leader confirms that it still leads before it
	// answers a ReadIndex request. Default ReadIndexMode: one heartbeat
	// round per batch of reads. LeaseMode answers at once while the leader
	// holds a lease (see read.go and LeaseDriftTicks); it needs
	// CheckQuorum, and it rests on an assumption about clocks that
	// ReadIndexMode does not make.
	ReadMode ReadMode
	// LeaseDriftTicks is the clock-drift bound of LeaseMode, in ticks: a
	// quorum's acknowledgement of a heartbeat the leader sent at its tick t
	// gives it a lease until its tick t + ElectionTicks - LeaseDriftTicks,
	// while each acknowledging follower refuses votes until it has counted
	// ElectionTicks ticks after receiving it. So the lease is safe when any
	// ElectionTicks-LeaseDriftTicks consecutive tick intervals of a leader
	// last no longer than any ElectionTicks-1 consecutive tick intervals of
	// a follower (ElectionTicks-2 with a ticker that may hand a follower one
	// tick late, as consensus/node's does): tick rates within a bounded
	// ratio, and no leader tick handled later than the margin allows (a
	// process pause is a late tick). Default ElectionTicks/2: with the
	// default 10 ticks and consensus/node's ticker, a leader's ticks may be
	// 1.6 times as long as a follower's, or, at equal rates, up to three
	// tick intervals late. Must be in [1, ElectionTicks-1].
	LeaseDriftTicks int
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
	if c.LeaseDriftTicks == 0 {
		c.LeaseDriftTicks = c.ElectionTicks / 2
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
	case c.ReadMode != ReadIndexMode && c.ReadMode != LeaseMode:
		return fmt.Errorf("consensus: config: unknown ReadMode %d", c.ReadMode)
	case c.ReadMode == LeaseMode && c.DisableCheckQuorum:
		// Without CheckQuorum followers vote whenever asked: nothing keeps
		// a new leader from being elected within the lease.
		return errors.New("consensus: config: ReadMode lease needs CheckQuorum (DisableCheckQuorum is set)")
	case c.ReadMode == LeaseMode && (c.LeaseDriftTicks < 1 || c.LeaseDriftTicks >= c.ElectionTicks):
		return fmt.Errorf("consensus: config: LeaseDriftTicks %d not in [1, ElectionTicks-1 = %d]", c.LeaseDriftTicks, c.ElectionTicks-1)
	}
	return nil
}

// ReadMode is how a leader confirms its leadership for a read.
type ReadMode uint8

const (
	// ReadIndexMode confirms leadership with a heartbeat round that a
	// quorum acknowledges after the read arrived (thesis §6.4). Safe
	// whatever the clocks do.
	ReadIndexMode ReadMode = iota
	// LeaseMode answers at once while the leader holds a lease (thesis
	// §6.4.1), falling back to a heartbeat round when it does not. Safe
	// only within the clock assumption of Config.LeaseDriftTicks.
	LeaseMode
)

func (m ReadMode) String() string {
	switch m {
	case ReadIndexMode:
		return "readindex"
	case LeaseMode:
		return "lease"
	}
	return fmt.Sprintf("ReadMode(%d)", uint8(m))
}

// ParseReadMode parses "readindex" or "lease".
func ParseReadMode(s string) (ReadMode, error) {
	switch s {
	case "readindex":
		return ReadIndexMode, nil
	case "lease":
		return LeaseMode, nil
	}
	return 0, fmt.Errorf("consensus: read mode %q: want readindex or lease", s)
}

package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seshat-kv/seshat/ports"
)

// Config configures a Node: the driver's configuration (embedded, with
// its defaults) and the shell's. Every field but the ports has a usable
// zero value: EnsureDefaults fills in the documented defaults and Start
// runs it, then Validate.
type Config struct {
	// DriverConfig is the driver's part: the core's configuration and the
	// compaction and apply policies. Raft.ID is required. Raft.Rand
	// defaults to a source seeded from the wall clock and the node id
	// (tests and the simulator pass a seeded one).
	DriverConfig

	// Log, Vote and StateMachine hold the node's durable state. Required.
	// The node never closes them: their owner does, after Stop.
	Log          ports.LogStore
	Vote         ports.VoteStore
	StateMachine ports.StateMachine
	// Transport carries messages to and from the peers. Required. The node
	// never closes it.
	Transport ports.Transport

	// TickInterval is the wall-clock length of one core tick. Default 50ms:
	// with the core's default ElectionTicks (10) and HeartbeatTicks (1) a
	// leader sends heartbeats every 50ms and a follower starts an election
	// after 0.5-1s without hearing from one. Ticks only pace failure
	// detection: proposals, reads and transfers never wait for one. 10ms
	// ticks (elections after 100-200ms) were measured to cause spurious
	// elections on a saturated 2-core machine, where GC work with a few
	// hundred MB of heap stalled a loop for up to 200ms. With lease reads
	// (Raft.ReadMode LeaseMode), a leader's loop that runs late feeds the
	// driver every tick interval that passed meanwhile (up to
	// ElectionTicks-1 at once, after stepping the messages that arrived),
	// so that its lease never outlasts the wall clock; otherwise a node
	// takes one tick per ticker delivery (a clock running slow only
	// delays elections and CheckQuorum).
	TickInterval time.Duration
	// MaxBatch bounds the commands the loop takes into one batch (one
	// append, one sync) from the proposals waiting; a single Propose call
	// is never split, so a batch may exceed it by one call. Default 4096.
	MaxBatch int
	// SnapshotDir, if set, is the directory where the node writes the
	// image of each snapshot it sends to a follower, one file per send,
	// handed to Transport.Send (which removes it once sent or dropped):
	// the leader's memory then stays bounded whatever the size of the
	// state. Start creates it and deletes the image files a previous run
	// left (named seshat-snapshot-*.out; nothing else, so a transport may
	// spool the images it receives in the same directory). Default "":
	// images are built in memory (Snapshot.Data), as the simulator and
	// in-process tests want. Received images are installed from wherever
	// the transport put them, whatever this setting.
	SnapshotDir string
	// DiskFull, if set, reports whether the node's disk is too full to take
	// more writes (the Pebble adapter's DB.DiskFull checks free space
	// against a reserve). It is called once per tick and must be cheap.
	// While it reports true the node refuses new proposals with an error
	// wrapping domain.ErrDiskFull and, if it leads, hands leadership to
	// its most up-to-date follower; it still persists what the leader
	// replicates (from the reserve), serves reads, and takes writes again
	// by itself once DiskFull reports false. Default: never full.
	DiskFull func() bool
}

// Defaults of Config's fields.
const (
	DefaultTickInterval    = 50 * time.Millisecond
	DefaultSnapshotEntries = 10000
	DefaultSnapshotBytes   = 64 << 20
	DefaultTrailingEntries = 1000
	DefaultTrailingBytes   = 64 << 20
	DefaultMaxBatch        = 4096
)

// EnsureDefaults fills zero fields with their defaults (the driver's and
// the core's too).
func (c *Config) EnsureDefaults() {
	if c.TickInterval == 0 {
		c.TickInterval = DefaultTickInterval
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.Raft.Rand == nil {
		c.Raft.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(c.Raft.ID)))
	}
	c.DriverConfig.ensureDefaults()
}

// Validate reports a configuration the node cannot run with.
func (c *Config) Validate() error {
	switch {
	case c.Log == nil || c.Vote == nil || c.StateMachine == nil:
		return errors.New("node: config: Log, Vote and StateMachine are required")
	case c.Transport == nil:
		return errors.New("node: config: Transport is required")
	case c.TickInterval < 0:
		return fmt.Errorf("node: config: TickInterval %v < 0", c.TickInterval)
	case c.MaxBatch < 1:
		return fmt.Errorf("node: config: MaxBatch %d < 1", c.MaxBatch)
	}
	if err := c.Raft.Validate(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return nil
}

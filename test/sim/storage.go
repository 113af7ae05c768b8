package main

import (
	"fmt"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/ports"
)

// disk is one node's simulated storage: its log, its vote and its state
// machine, with a crash that keeps only what was made durable. The
// simulator is written against this interface so that another backend (a
// Pebble database on a crashable in-memory filesystem, say) can be added
// beside memoryDisk without touching the rest.
type disk interface {
	Log() ports.LogStore
	Votes() ports.VoteStore
	KV() stateMachine
	// Crash throws away every write that was not synced and leaves the
	// stores as a restarted process would reopen them.
	Crash() error
}

// stateMachine is the node's key-value state machine as the simulator uses
// it: the port, reads, and a digest of the state for cross-node checks.
type stateMachine interface {
	ports.StateMachine
	ports.KVReader
	// Digest returns a hash of the whole applied state; two state machines
	// that applied the same entries have the same digest.
	Digest() uint64
}

// newDisk returns an empty disk of the named kind.
func newDisk(kind string) (disk, error) {
	switch kind {
	case "memory":
		return &memoryDisk{log: memory.NewLogStore(), vote: memory.NewVoteStore(), kv: memory.NewKV()}, nil
	}
	return nil, fmt.Errorf("sim: unknown storage %q (only \"memory\" is implemented)", kind)
}

// memoryDisk is a disk on adapters/memory: writes are visible at once and
// durable after Sync (SetVote and Restore are durable when they return).
type memoryDisk struct {
	log  *memory.LogStore
	vote *memory.VoteStore
	kv   *memory.KV
}

func (d *memoryDisk) Log() ports.LogStore    { return d.log }
func (d *memoryDisk) Votes() ports.VoteStore { return d.vote }
func (d *memoryDisk) KV() stateMachine       { return d.kv }

func (d *memoryDisk) Crash() error {
	d.log.Crash()
	d.kv.Crash()
	return nil
}

package main

import (
	"fmt"
	"hash/fnv"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/adapters/pebble"
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
	case "pebble":
		d := &pebbleDisk{fs: vfs.NewCrashableMem()}
		return d, d.open()
	}
	return nil, fmt.Errorf("sim: unknown storage %q (memory or pebble)", kind)
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

// pebbleDisk is a disk on adapters/pebble over Pebble's crashable
// in-memory filesystem: a crash keeps exactly what was synced, as a
// power cut would. Pebble's background work runs on its own goroutines, so
// the trace hash may differ between runs; the seed's fault schedule does
// not.
type pebbleDisk struct {
	fs *vfs.MemFS
	db *pebble.DB
}

func (d *pebbleDisk) open() error {
	db, err := pebble.Open(pebble.Options{Dir: "node", FS: d.fs, CacheSize: 1 << 20})
	if err != nil {
		return fmt.Errorf("sim: open pebble: %w", err)
	}
	d.db = db
	return nil
}

// Close closes the DB at the end of a run.
func (d *pebbleDisk) Close() error { return d.db.Close() }

func (d *pebbleDisk) Log() ports.LogStore    { return d.db.LogStore() }
func (d *pebbleDisk) Votes() ports.VoteStore { return d.db.VoteStore() }
func (d *pebbleDisk) KV() stateMachine       { return pebbleKV{d.db.StateMachine()} }

func (d *pebbleDisk) Crash() error {
	clone := d.fs.CrashClone(vfs.CrashCloneCfg{})
	_ = d.db.Close() // the crashed process's handle; only the clone counts
	d.fs = clone
	return d.open()
}

// pebbleKV adds the simulator's digest: a hash of the state machine's
// snapshot image, which lists the keys in order and so is the same on
// every replica with the same state.
type pebbleKV struct{ *pebble.KV }

func (k pebbleKV) Digest() uint64 {
	h := fnv.New64a()
	if _, err := k.Snapshot(h); err != nil {
		panic(fmt.Sprintf("sim: digest of pebble state: %v", err))
	}
	return h.Sum64()
}

package cluster

import (
	"fmt"
	"hash/fnv"
	"os"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/adapters/pebble"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// StorageEnv names the environment variable that picks the storage the
// cluster tests run on: "memory" (the default) or "pebble".
const StorageEnv = "SESHAT_TEST_STORAGE"

// Storage makes the durable stores of the nodes of a test cluster. One is
// chosen per test run by StorageEnv, so that every cluster test runs
// unchanged over every storage adapter.
type Storage interface {
	// Name is the value of StorageEnv that selects this storage.
	Name() string
	// Open returns fresh, empty stores for node id. The cluster closes
	// them at the end of the test.
	Open(t testing.TB, id domain.NodeID) NodeStorage
}

// NodeStorage is one node's durable state.
type NodeStorage interface {
	Log() ports.LogStore
	Vote() ports.VoteStore
	KV() KV
	// Crash loses every write that was not synced, as a power cut would,
	// and reopens the stores: Log, Vote and KV return what survived.
	// The node using them must be stopped first.
	Crash(t testing.TB)
	// Close releases the stores.
	Close() error
}

// KV is a state machine the tests can read and compare.
type KV interface {
	ports.StateMachine
	ports.KVReader
	// Digest identifies the applied state: two replicas that applied the
	// same entries have the same Digest.
	Digest() string
}

// storageFromEnv returns the Storage StorageEnv names; an unknown name
// fails the test.
func storageFromEnv(t testing.TB) Storage {
	switch name := os.Getenv(StorageEnv); name {
	case "", "memory":
		return memoryStorage{}
	case "pebble":
		return pebbleStorage{}
	default:
		t.Fatalf("%s=%q: unknown storage (want memory or pebble)", StorageEnv, name)
		return nil
	}
}

// memoryStorage is adapters/memory: stores that lose unsynced writes on
// Crash.
type memoryStorage struct{}

func (memoryStorage) Name() string { return "memory" }

func (memoryStorage) Open(t testing.TB, id domain.NodeID) NodeStorage {
	return &memoryNode{log: memory.NewLogStore(), vote: memory.NewVoteStore(), kv: memory.NewKV()}
}

type memoryNode struct {
	log  *memory.LogStore
	vote *memory.VoteStore
	kv   *memory.KV
}

func (m *memoryNode) Log() ports.LogStore   { return m.log }
func (m *memoryNode) Vote() ports.VoteStore { return m.vote }
func (m *memoryNode) KV() KV                { return memoryKV{m.kv} }

func (m *memoryNode) Crash(t testing.TB) {
	m.log.Crash()
	m.vote.Crash()
	m.kv.Crash()
}

func (m *memoryNode) Close() error {
	m.log.Close()
	m.vote.Close()
	m.kv.Close()
	return nil
}

type memoryKV struct{ *memory.KV }

func (k memoryKV) Digest() string { return fmt.Sprintf("%016x", k.KV.Digest()) }

// pebbleStorage is adapters/pebble, one DB per node on Pebble's crashable
// in-memory filesystem with sync on: Crash keeps exactly what was synced.
type pebbleStorage struct{}

func (pebbleStorage) Name() string { return "pebble" }

func (pebbleStorage) Open(t testing.TB, id domain.NodeID) NodeStorage {
	n := &pebbleNode{fs: vfs.NewCrashableMem()}
	n.open(t)
	return n
}

type pebbleNode struct {
	fs *vfs.MemFS
	db *pebble.DB
}

func (p *pebbleNode) open(t testing.TB) {
	t.Helper()
	db, err := pebble.Open(pebble.Options{Dir: "node", FS: p.fs, CacheSize: 1 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	p.db = db
}

func (p *pebbleNode) Log() ports.LogStore   { return p.db.LogStore() }
func (p *pebbleNode) Vote() ports.VoteStore { return p.db.VoteStore() }
func (p *pebbleNode) KV() KV                { return pebbleKV{p.db.StateMachine()} }

func (p *pebbleNode) Crash(t testing.TB) {
	clone := p.fs.CrashClone(vfs.CrashCloneCfg{})
	_ = p.db.Close() // the crashed process's handle; only the clone counts
	p.fs = clone
	p.open(t)
}

func (p *pebbleNode) Close() error { return p.db.Close() }

// pebbleKV digests the state as the hash of its snapshot image, which
// lists the keys in order and so is equal on replicas in equal states.
type pebbleKV struct{ *pebble.KV }

func (k pebbleKV) Digest() string {
	h := fnv.New64a()
	if _, err := k.Snapshot(h); err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

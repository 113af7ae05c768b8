package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// StorageEnv names the environment variable that picks the storage the
// cluster tests run on: "memory" (the default) or, once adapters/pebble
// exists, "pebble".
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
	// case "pebble": add the Pebble-backed Storage here (a NodeStorage
	// over one Pebble DB per node on a crashable in-memory vfs, whose
	// Crash keeps only what was synced and reopens the DB).
	default:
		t.Fatalf("%s=%q: unknown storage (want memory)", StorageEnv, name)
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

package memory_test

import (
	"testing"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/ports"
	"github.com/seshat-kv/seshat/test/contract"
)

func TestLogStoreContract(t *testing.T) {
	contract.TestLogStore(t, func(t *testing.T) contract.LogHarness {
		s := memory.NewLogStore()
		return contract.LogHarness{
			Store:              s,
			Crash:              func() ports.LogStore { s.Crash(); return s },
			Reopen:             func() ports.LogStore { s.Close(); s.Crash(); return s },
			CrashLosesUnsynced: true,
		}
	})
}

func TestVoteStoreContract(t *testing.T) {
	contract.TestVoteStore(t, func(t *testing.T) contract.VoteHarness {
		s := memory.NewVoteStore()
		return contract.VoteHarness{
			Store:  s,
			Crash:  func() ports.VoteStore { s.Crash(); return s },
			Reopen: func() ports.VoteStore { s.Close(); s.Crash(); return s },
		}
	})
}

func TestStateMachineContract(t *testing.T) {
	contract.TestStateMachine(t, func(t *testing.T) contract.SMHarness {
		kv := memory.NewKV()
		return contract.SMHarness{
			SM:                 kv,
			Reader:             kv,
			Crash:              func() (ports.StateMachine, ports.KVReader) { kv.Crash(); return kv, kv },
			Reopen:             func() (ports.StateMachine, ports.KVReader) { kv.Close(); kv.Crash(); return kv, kv },
			CrashLosesUnsynced: true,
		}
	})
}

func TestTransportContract(t *testing.T) {
	contract.TestTransport(t, func(t *testing.T) contract.TransportHarness {
		n := memory.NewNetwork(memory.NetworkOptions{Seed: 1})
		t.Cleanup(n.Close)
		return contract.TransportHarness{A: n.Endpoint(1), B: n.Endpoint(2), AID: 1, BID: 2}
	})
}

// The suites accept stores whose crash keeps unsynced writes (the durable
// adapters on a real disk). Run them so against a store that keeps
// everything, so that those branches of the suites run too.
func TestContractsWithCrashKeepingEverything(t *testing.T) {
	contract.TestLogStore(t, func(t *testing.T) contract.LogHarness {
		s := memory.NewLogStore()
		return contract.LogHarness{
			Store:  s,
			Crash:  func() ports.LogStore { s.Sync(); s.Crash(); return s },
			Reopen: func() ports.LogStore { s.Sync(); s.Close(); s.Crash(); return s },
		}
	})
	contract.TestStateMachine(t, func(t *testing.T) contract.SMHarness {
		kv := memory.NewKV()
		keep := func() (ports.StateMachine, ports.KVReader) { kv.Sync(); kv.Crash(); return kv, kv }
		return contract.SMHarness{
			SM:     kv,
			Reader: kv,
			Crash:  keep,
			Reopen: func() (ports.StateMachine, ports.KVReader) { kv.Sync(); kv.Close(); kv.Crash(); return kv, kv },
		}
	})
}

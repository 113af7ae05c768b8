// Package memory holds in-memory adapters of every storage port (LogStore,
// VoteStore, StateMachine with KVReader) and an in-process Transport with
// switchable faults (Network). They are the fakes the rest of Seshat tests
// against: real implementations that pass the same contract suites
// (test/contract) as the durable adapters, not mocks.
//
// The storage adapters model durability the way a disk does: writes change
// what readers see at once but survive a Crash only once Sync (or, for the
// vote, SetVote) has returned. Crash throws away everything else, so tests
// can check that a caller syncs where it must.
//
// Everything here is safe for concurrent use. The package imports only
// domain, ports, the standard library and zerolog.
package memory

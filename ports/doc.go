// Package ports holds the interfaces Seshat's core is written against, in
// domain terms: where the Raft driver meets storage (LogStore, VoteStore,
// StateMachine) and the network (Transport), and where driving adapters
// such as the RESP server meet the application (KV).
//
// "Ports" here means these interfaces only. The adapters that implement them
// live in adapters/ (memory, pebble, tcp); adapters/resp is an adapter that
// drives Seshat from outside through the KV port.
//
// Each interface states its error contract in its doc comment, and each has
// one contract test suite in test/contract that every adapter runs.
package ports

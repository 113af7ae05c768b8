// Package ports holds the interfaces Seshat's core is written against, in
// domain terms: where the Raft driver meets storage (LogStore, VoteStore,
// StateMachine) and the network (Transport), where driving adapters such as
// the RESP server meet the application (KV), and where the application
// reaches the leader from a follower (Relay).
//
// "Ports" here means these interfaces only. The adapters that implement them
// live in adapters/ (memory, pebble, tcp, relay); adapters/resp is an
// adapter that drives Seshat from outside through the KV port.
//
// Each interface states its error contract in its doc comment, and each has
// one contract test suite in test/contract that every adapter runs (Relay,
// with one adapter, is checked by adapters/relay's own tests against a
// fake leader).
package ports

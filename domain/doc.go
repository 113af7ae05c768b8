// Package domain holds Seshat's value types and sentinel errors: the words
// every other package speaks (node ids, terms, log entries, votes,
// membership, snapshot metadata, Raft messages, key-value commands).
//
// It imports nothing of the project and only the standard library, so that
// every layer can depend on it without dragging anything else along.
package domain

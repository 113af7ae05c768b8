// Package node is the driver of a Raft core: the one goroutine that owns a
// consensus.Raft, ticks it on a timer, feeds it messages from a
// ports.Transport, persists its Ready through the storage ports (many
// proposals, one sync), sends its messages, applies committed entries to
// the ports.StateMachine and answers proposals and reads with their
// results.
package node

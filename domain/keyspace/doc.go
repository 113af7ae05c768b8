// Package keyspace is Seshat's Redis: the meaning of every data command
// (strings, hashes, sets, sorted sets, lists, keys, expiry, databases,
// transactions), computed deterministically over a Store, which keeps
// each collection element by element.
//
// Writes run inside the state machine's Apply, one entry at a time, with
// the entry's index and the leader's time stamp as their only inputs, so
// every replica computes the same state and the same replies. Reads run on
// the node a client asked, over the applied state, after a ReadIndex.
//
// The package knows nothing of Raft, sockets or disks: a state machine
// hands it a Store over its pending batch, the KV service a Store over
// its applied state.
package keyspace

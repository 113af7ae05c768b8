// Package pebble implements Seshat's storage ports (ports.LogStore,
// ports.VoteStore, ports.StateMachine and ports.KVReader) on one Pebble DB
// per node.
//
// # Layout
//
// Pebble has no column families, so the first byte of every key says which
// part of the node's state it belongs to:
//
//	0x01 log    0x01 | index (8 bytes, big endian)      -> term | type | data
//	            0x01 | index | chunk (4)                -> a large entry's data chunk
//	0x02 raft   0x02 | "vote" / "logfirst"              -> vote, first log index
//	0x03 data   0x03 | generation (8 bytes) | slot (4) | hash (8) | user key
//	                                                    -> keyspace record
//	            0x03 | generation | slot|1<<30 | hash | key length (4) | user key | chunk (4)
//	                                                    -> a large record's value chunk
//	            0x03 | generation | slot|1<<31 | instance (8) | sub-key
//	                                                    -> a collection's element
//	            0x03 | generation | slot|3<<30 | instance | sub-key length (4) | sub-key | chunk (4)
//	                                                    -> a large element's value chunk
//	0x04 meta   0x04 | "applied"                        -> applied index, term,
//	                                                       membership, generation
//	0x05 snap   0x05 | "restore"                        -> restore in progress
//
// Big-endian indexes make Pebble's byte order the log's order, so a range
// of the log is one iterator and a purge or a suffix truncation is one
// DeleteRange. Every stored value starts with a CRC-32C of its key and its
// payload: a record that fails it is reported as domain.ErrCorrupt naming
// the index or key, never returned as a wrong value. Covering the key too
// catches a record written under the wrong key.
//
// A log entry's data, a record's value or an element's value of more
// than 1 MiB is stored in 1 MiB chunks (see chunkSize in large.go) after a
// head that gives its length, all in the batch that writes the entry,
// record or element, so that Pebble never flushes, blocks and compresses
// one huge pair. An entry's chunks sort between it and the next entry, so
// a purge or a truncation takes them with it; a record's live in its
// database's chunk slot and an element's in its element chunk slot, so
// FLUSHDB, DropElems and a restore's generation switch take them, and a
// scan of keys or elements never meets them. Each chunk has its own CRC,
// seeded with its head's (an entry's, an element's) or with the value's
// id, which a record's head holds: a missing, short or foreign chunk is
// domain.ErrCorrupt naming the index, key or element and the chunk.
// Seeding a record's chunks with an id rather than the head lets a
// command that changes part of a value (APPEND, SETRANGE, SETBIT, a new
// deadline) write the head and the chunks it changes, not the whole value
// (valueparts.go). Entries, records and elements written whole before
// chunks existed, and records chunked before ids (stop 21), are read as
// before; the latter are written whole at their first change.
//
// # Large values bypass the WAL
//
// A log entry of 4 MiB or more, and an apply batch of 4 MiB or more that
// holds a large value, are not committed as batches: they are written, a
// chunk at a time, to an sstable in the ingest directory under the DB's
// (emptied at Open), synced, and ingested (ingest.go). Neither Pebble's
// WAL nor a memtable holds the value, which otherwise cost each node
// about twice the value in memory for each of the two copies (the log's
// and the record's). The table is written before the store's locks are
// taken; only the ingestion holds them. A SET's value that large is not
// even copied into the apply's batch: its chunks go from the entry being
// applied straight into the table (deferredValue, kvstore.go).
//
// # Durability
//
// All three stores share Pebble's write-ahead log, so one WAL sync makes
// everything written before it durable. LogStore writes and state machine
// applies are not synced (Raft syncs once per batch of work, through
// LogStore.Sync or KV.Sync, which skip the sync when nothing was written
// since the last one); VoteStore.SetVote and KV.Restore sync before they
// return. Pebble replays its WAL in order after a crash, so what survives
// is always every write up to some point: an Append or an Apply (one Pebble
// batch each) is kept whole or not at all. An ingested table is durable
// when its ingestion returns, so the WAL is synced just before it: a crash
// never keeps a large entry and loses the entries before it, nor keeps a
// large apply and loses the applies before it. An Append that ingests
// is kept up to some entry: the entries after an ingested one go in a
// batch of their own.
//
// # Restore without mixing
//
// User data lives under a generation number recorded in the applied meta.
// Restore writes the incoming image under the next generation, and only
// then, in one synced batch, points the meta at it and deletes the old
// generation. A crash mid-restore leaves the old state whole (plus
// unreferenced rows of the new generation, deleted at the next Open); a
// stream that fails its checks is rejected the same way.
//
// # Failures
//
// A failed write or sync is fatal: Pebble's commit pipeline cannot recover
// from it, and an fsync that failed once must never be retried and trusted
// (the kernel may have dropped the dirty pages and will report the next
// fsync as a success). The DB therefore poisons itself: the failing call and
// every later one return the error, wrapped, and the driver must stop the
// node. A full disk (ENOSPC) is reported as domain.ErrDiskFull, but the
// node is meant never to get there: DB.DiskFull reports true once free
// space falls below Options.MinFreeBytes, and the driver then refuses new
// writes and hands leadership over (node.Config.DiskFull), so only what
// the leader replicates is still written, from that reserve. Pebble
// reports such failures through its logger's Fatalf; this package turns that
// call into a panic that the calling method recovers and returns as an
// error. A Fatalf on one of Pebble's background goroutines (a failed
// MANIFEST sync, say) is not caught and ends the process, exactly as
// Pebble's default logger would.
package pebble

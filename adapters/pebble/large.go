package pebble

import (
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
)

// copyStep bounds one copy or checksum call over a value: copy and
// crc32.Update run in assembly that the Go scheduler cannot preempt, so
// one call over a 500 MB value would hold up every stop-the-world (each
// garbage collection) and with it the node's Raft loop for as long.
const copyStep = 1 << 20

// copyCRC copies src into dst (as copy does) in steps of copyStep and
// returns crc updated with the bytes copied.
func copyCRC(crc uint32, dst, src []byte) uint32 {
	n := min(len(dst), len(src))
	for off := 0; off < n; off += copyStep {
		end := min(off+copyStep, n)
		copy(dst[off:end], src[off:end])
		crc = crc32.Update(crc, castagnoli, dst[off:end])
	}
	return crc
}

// sizedBatchBytes: entries carrying at least this much data get a batch
// sized for them up front (newLogBatch, newApplyBatch). A Pebble batch
// otherwise doubles its buffer to fit: a 100 MB value took a 128 MB
// buffer, a value of 128 MiB and a few bytes a 256 MiB one, in the log's
// batch and again in the apply's. Smaller ones take Pebble's pooled
// batches.
const sizedBatchBytes = 1 << 20

// batchSlack is what a batch holds per entry beyond its data: the batch
// header, a record's kind, key and lengths, the log entry's or the
// record's own header and checksum, the applied index.
const batchSlack = 256

// entriesData is the data the entries carry, plus batchSlack for each.
func entriesData(entries []domain.Entry) int {
	n := 0
	for i := range entries {
		n += len(entries[i].Data) + batchSlack
	}
	return n
}

// newLogBatch returns the batch that appends entries to the log.
func newLogBatch(db *pebble.DB, entries []domain.Entry) *pebble.Batch {
	if n := entriesData(entries); n >= sizedBatchBytes {
		// The initial size too: Pebble rounds the buffer of a batch's
		// first record up to a power of two of it, reallocating.
		return db.NewBatchWithSize(n, pebble.WithInitialSizeBytes(n))
	}
	return db.NewBatch()
}

// newApplyBatch returns the indexed batch that applies entries: sized for
// their data, which a large SET's record holds about once (a command that
// grows a value more than its own size, APPEND to a large value, still
// grows the batch).
func newApplyBatch(db *pebble.DB, entries []domain.Entry) *pebble.Batch {
	if n := entriesData(entries); n >= sizedBatchBytes {
		b := db.NewIndexedBatchWithSize(n)
		// Pebble rounds the buffer of a batch's first record up to a power
		// of two of its size, reallocating, and an indexed batch takes no
		// initial size: an empty WAL-only record first, so that the large
		// record finds the buffer in place. (LogData counts as no write.)
		_ = b.LogData(nil, nil)
		return b
	}
	return db.NewIndexedBatch()
}

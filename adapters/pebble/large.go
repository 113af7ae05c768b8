package pebble

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime/debug"
	"slices"

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
// record's own header and checksum, the applied index. A large entry's
// chunks take chunkSlack each on top.
const batchSlack = 256

// entriesData is the data the entries carry, plus batchSlack for each.
func entriesData(entries []domain.Entry) int {
	n := 0
	for i := range entries {
		d := len(entries[i].Data)
		n += d + batchSlack
		if d > chunkSize {
			n += chunkCount(d) * chunkSlack
		}
	}
	return n
}

// newLogBatch returns the batch that appends entries to the log.
func newLogBatch(db *pebble.DB, entries []domain.Entry) *pebble.Batch {
	if n := entriesData(entries); n >= sizedBatchBytes {
		b := db.NewBatchWithSize(n)
		// As in newApplyBatch: an empty WAL-only record first, so that
		// the first entry finds the buffer in place. Not
		// pebble.WithInitialSizeBytes: the option stays on the batch
		// when Pebble pools it, and every batch later taken from the pool
		// (the next small append, a sync's empty record) allocated n.
		_ = b.LogData(nil, nil)
		return b
	}
	return db.NewBatch()
}

// newApplyBatch returns the indexed batch that applies entries: sized for
// their data, which a large SET's record holds about once (a command that
// grows a value more than its own size, APPEND to a large value, still
// grows the batch).
func newApplyBatch(db *pebble.DB, entries []domain.Entry) *pebble.Batch {
	// Not for the entries of ingestBytes or more: a SET's value that
	// large is deferred (see deferredValue), and any other is given room
	// when it is written (batchStore.room).
	n := 0
	for i := range entries {
		if !ingested(entries[i]) {
			n += entriesData(entries[i : i+1])
		}
	}
	if n >= sizedBatchBytes {
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

// Chunked values. Pebble keeps a key-value pair whole: it copies the value
// whole at a flush, and writes it as one sstable block (its buffer and
// that block's compression each the value's size again), so a 100 MB
// value cost a node about 3.5 times its size at once when its memtable
// was flushed. A value of more than chunkSize bytes is therefore stored as
// a head under its own key, saying how long the value is, followed by
// chunk pairs of chunkSize bytes (the last one shorter), written in the
// same batch as the head, so that a crash keeps both or neither:
//
//	chunk key   = base | index (4 bytes, big endian)
//	chunk value = CRC-32C | data
//
// The CRC covers a seed, the chunk key and the data. The seed is the
// head's own CRC for a log entry, an element and a record stored before
// stop 21 (recordChunked), and for a record since then the value's id,
// which its head holds (recordPatchable): a chunk left over from another
// value under the same key (which no path leaves, but a bug could) fails
// it like a flipped bit, as does a chunk stored under the wrong key. A
// seed that is not the head's CRC lets a record's head change (its
// length, deadline, version) without its chunks: APPEND, SETRANGE and
// SETBIT rewrite only the chunks they change (see WriteAt). A missing, short or failing chunk is reported as
// domain.ErrCorrupt naming the key and the chunk's index, never returned
// as part of a value.
//
// chunkSize is part of the stored format: how many chunks a value has is
// computed from its length (see chunkCount), so that overwriting or
// deleting a value deletes its chunks without reading them.
const chunkSize = 1 << 20

// chunkSlack is what a batch holds per chunk beyond its data: the chunk
// key (a record's repeats its user key, see maxChunkedKey), the CRC, the
// batch record's kind and lengths.
const chunkSlack = maxChunkedKey + 64

// chunkCount is how many chunks a chunked value of n bytes has.
func chunkCount(n int) int { return (n + chunkSize - 1) / chunkSize }

// chunkKey returns base with index j appended, in buf.
func chunkKey(buf, base []byte, j int) []byte {
	return binary.BigEndian.AppendUint32(append(buf[:0], base...), uint32(j))
}

// chunkSeed starts a chunk's CRC from the CRC of the head it belongs to.
func chunkSeed(head uint32) uint32 {
	var s [4]byte
	binary.LittleEndian.PutUint32(s[:], head)
	return crc32.Checksum(s[:], castagnoli)
}

// idSeed starts a chunk's CRC from the id of the value it belongs to
// (recordPatchable). Its input is 9 bytes long, chunkSeed's 4: the two
// never start from the same bytes.
func idSeed(id uint64) uint32 {
	var s [9]byte
	s[0] = recordPatchable
	binary.LittleEndian.PutUint64(s[1:], id)
	return crc32.Checksum(s[:], castagnoli)
}

// putChunks writes value's chunks under base in b, their CRCs started
// from seed, encoding each in the batch itself, and returns how many it
// wrote.
func putChunks(b *pebble.Batch, base []byte, seed uint32, value []byte) (int, error) {
	n := 0
	for off := 0; off < len(value); off += chunkSize {
		if err := putChunk(b, base, seed, n, value[off:min(off+chunkSize, len(value))]); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// putChunk writes chunk j of a value, part, under base in b, its CRC
// started from seed.
func putChunk(b *pebble.Batch, base []byte, seed uint32, j int, part []byte) error {
	op := b.SetDeferred(len(base)+4, 4+len(part))
	copy(op.Key, base)
	binary.BigEndian.PutUint32(op.Key[len(base):], uint32(j))
	crc := crc32.Update(seed, castagnoli, op.Key)
	binary.LittleEndian.PutUint32(op.Value, copyCRC(crc, op.Value[4:], part))
	return op.Finish()
}

// deleteChunks deletes chunks [from, to) of the chunked value stored
// under base.
func deleteChunks(b *pebble.Batch, base []byte, from, to int) error {
	var kb []byte
	for j := from; j < to; j++ {
		kb = chunkKey(kb, base, j)
		if err := b.Delete(kb, nil); err != nil {
			return err
		}
	}
	return nil
}

// openChunk checks chunk j of a value of total bytes, stored under key
// with value rec, its CRC started from seed, and copies its data into dst
// (the whole value's buffer). It returns false if the chunk fails.
func openChunk(key, rec []byte, seed uint32, j, total int, dst []byte) bool {
	off := j * chunkSize
	want := min(chunkSize, total-off)
	if len(rec) != 4+want {
		return false
	}
	crc := crc32.Update(seed, castagnoli, key)
	return copyCRC(crc, dst[off:off+want], rec[4:]) == binary.LittleEndian.Uint32(rec)
}

// checkChunk checks chunk j of a value of total bytes, stored under key
// with value rec, its CRC started from seed, and returns its data
// (aliasing rec), or false if the chunk fails.
func checkChunk(key, rec []byte, seed uint32, j, total int) ([]byte, bool) {
	want := min(chunkSize, total-j*chunkSize)
	if len(rec) != 4+want {
		return nil, false
	}
	crc := seed
	for _, part := range [][]byte{key, rec[4:]} {
		for off := 0; off < len(part); off += copyStep {
			crc = crc32.Update(crc, castagnoli, part[off:min(off+copyStep, len(part))])
		}
	}
	return rec[4:], crc == binary.LittleEndian.Uint32(rec)
}

// readChunks reads the len(dst) bytes of a chunked value stored under
// base from r into dst, its chunks' CRCs started from seed. what names
// the value in errors.
func readChunks(r reader, base []byte, seed uint32, dst []byte, what string) error {
	total := len(dst)
	var kb []byte
	for j := range chunkCount(total) {
		kb = chunkKey(kb, base, j)
		if err := withChunk(r, kb, j, total, what, func(v []byte) bool {
			return openChunk(kb, v, seed, j, total, dst)
		}); err != nil {
			return err
		}
	}
	return nil
}

// readChunksAt reads len(dst) bytes from off of a chunked value of total
// bytes stored under base from r into dst, checking each chunk it reads
// whole. what names the value in errors.
func readChunksAt(r reader, base []byte, seed uint32, total, off int, dst []byte, what string) error {
	var kb []byte
	for at := off; at < off+len(dst); {
		j := at / chunkSize
		kb = chunkKey(kb, base, j)
		if err := withChunk(r, kb, j, total, what, func(v []byte) bool {
			data, good := checkChunk(kb, v, seed, j, total)
			if good {
				at += copy(dst[at-off:], data[at-j*chunkSize:])
			}
			return good
		}); err != nil {
			return err
		}
	}
	return nil
}

// withChunk reads chunk j of a value of total bytes, stored under key kb,
// from r, and calls open with its stored value, which is valid only
// during the call; open reports whether the chunk checked good.
func withChunk(r reader, kb []byte, j, total int, what string, open func([]byte) bool) error {
	v, closer, err := r.Get(kb)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%s: chunk %d of %d missing: %w", what, j, chunkCount(total), domain.ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("%s: chunk %d: %w", what, j, classify(err))
	}
	good := open(v)
	if err := closer.Close(); err != nil {
		return fmt.Errorf("%s: chunk %d: %w", what, j, classify(err))
	}
	if !good {
		return fmt.Errorf("%s: chunk %d: %w: checksum mismatch", what, j, domain.ErrCorrupt)
	}
	return nil
}

// A record's chunks live in its database's chunk slot, the slot number
// with chunkSlotBit set (as elements live under elemSlotBit), keyed by the
// record's hash and key:
//
//	chunk base = prefixData | generation | slot|chunkSlotBit | hash (8)
//	             | key length (4 bytes, big endian) | user key
//
// so that a database's keys (below chunkSlotBit) never iterate into them,
// FLUSHDB range-deletes them with the slot, and a restore's generation
// switch replaces them. The key's length makes each record's chunks a
// range of their own: no user key's base is a prefix of another's.
const chunkSlotBit = 1 << 30

// recordChunked starts the payload of a chunked record's head, as written
// before stop 21, in place of keyspace's record version: then the value's
// length (uvarint) and the record without its value
// (keyspace.AppendRecord's form). Its chunks' CRCs start from the head's
// CRC. Such a record is still read; a change of any part of it writes it
// whole again, as recordPatchable.
const recordChunked = 'C'

// recordPatchable starts the payload of a chunked record's head since
// stop 21: then the value's length and the value's id (uvarints), and the
// record without its value. Its chunks' CRCs start from idSeed(id): the
// id is the version of the write that last wrote the whole value, and
// stays while commands change parts of it.
const recordPatchable = 'D'

// chunkHead is what a chunked record's head says of its value.
type chunkHead struct {
	n         int    // the value's length; 0 if the record is stored whole
	seed      uint32 // starts each chunk's CRC
	id        uint64 // the value's id, if patchable
	patchable bool   // recordPatchable: chunks can be rewritten one by one
}

// maxChunkedKey bounds the user key of a chunked record: each chunk's key
// repeats it, so a record with a longer key (up to domain.MaxKeySize) is
// stored whole, as before chunks existed.
const maxChunkedKey = 1 << 10

// chunkedRecord reports whether a record (or an element) at the stored
// key k holding a value of n bytes is stored in chunks.
func chunkedRecord(k []byte, n int) bool {
	return n > chunkSize && len(k)-dataKeyLen <= maxChunkedKey
}

// chunkBase is the base of the chunk keys of the record at the stored key
// k (dataKey's form), or of the element at k (see elements.go).
func chunkBase(k []byte) []byte {
	user := k[dataKeyLen:]
	b := make([]byte, 0, dataKeyLen+4+len(user)+4)
	b = append(b, k[:9]...)
	b = binary.BigEndian.AppendUint32(b, binary.BigEndian.Uint32(k[9:13])|chunkSlotBit)
	b = append(b, k[13:dataKeyLen]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(user)))
	return append(b, user...)
}

// chunkedHead parses the payload p of the record stored under k, sealed
// with CRC seal: if it is a chunked record's head, it returns what the
// head says of the value and the record without its value; else head is
// nil.
func chunkedHead(k, p []byte, seal uint32) (h chunkHead, head []byte, err error) {
	if len(p) == 0 || (p[0] != recordChunked && p[0] != recordPatchable) {
		return chunkHead{}, nil, nil
	}
	tag := p[0]
	v, m := binary.Uvarint(p[1:])
	ok := m > 0 && v > chunkSize && v <= 1<<40
	p = p[1+max(m, 0):]
	h.n, h.seed = int(v), chunkSeed(seal)
	if ok && tag == recordPatchable {
		h.id, m = binary.Uvarint(p)
		ok = m > 0
		p = p[max(m, 0):]
		h.seed, h.patchable = idSeed(h.id), true
	}
	if !ok || len(p) == 0 {
		return chunkHead{}, nil, fmt.Errorf("pebble kv: key %q: %w: bad chunked head", k[dataKeyLen:], domain.ErrCorrupt)
	}
	return h, p, nil
}

// releaseFlushes is how many flushes dropLarge makes after a large batch:
// see releaseLarge.
const releaseFlushes = 4

// largeBatch reports whether a batch of size bytes written for entries is
// one of the batches releaseLarge and drainLarge are for: Pebble's
// flushable batches (half a memtable or more) that carry a large value.
// A backlog of small entries as large, which only a node catching up
// writes, is left to Pebble: the flushes would cost it more.
func (d *DB) largeBatch(entries []domain.Entry, size int) bool {
	if uint64(size) < d.opts.MemTableSize/2 {
		return false
	}
	for i := range entries {
		if len(entries[i].Data) > chunkSize {
			return true
		}
	}
	return false
}

// releaseLarge makes Pebble let go of the batch of size bytes it just
// committed for entries, if it is a large one (see largeBatch). Pebble keeps a batch of more than half a memtable as a
// memtable of its own until it is flushed, and then, after the flush, in
// the spare front of its memtable queue's array (the queue is resliced,
// d.mu.mem.queue[n:], not copied), until enough memtable rotations have
// made the queue's append copy it to a new array: with few writes after a
// 100 MB SET, every node kept its apply batch, the value's size, for
// minutes, on top of the next large write's peak. So a goroutine flushes
// (which waits for the large batch's flush, and rotates the memtable) a
// few times after it. Each of those flushes writes a small sstable; that
// is a small cost next to a write of tens of megabytes. A flush can make
// unsynced writes durable, as Pebble's own flushes always could: nothing
// relies on their loss. Then it returns the freed memory to the OS
// (debug.FreeOSMemory, a full collection): measured on a 3-node cluster,
// a 100 MB SET then GET on the leader grew its peak RSS by 636-665 MiB
// with it and 731-769 MiB without (three runs each), since the GET's
// allocations no longer come on top of the SET's uncollected garbage.
// derived says that the batch holds a large value no entry carries (see
// batchStore.room): it counts as one that does.
func (d *DB) releaseLarge(entries []domain.Entry, size int, derived bool) {
	if !d.largeBatch(entries, size) && !(derived && uint64(size) >= d.opts.MemTableSize/2) {
		return
	}
	if d.largeCommits.Add(1) == 1 {
		go d.dropLarge()
	}
}

// dropLarge flushes until no large commit is left unflushed, then frees
// memory (see releaseLarge). It runs as one store operation, so Close
// waits for its flushes.
func (d *DB) dropLarge() {
	for {
		n := d.largeCommits.Load()
		err := d.do(nil, "flush after a large batch", func() error {
			for range releaseFlushes {
				if err := d.db.Flush(); err != nil {
					return classify(err)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, domain.ErrClosed) {
			d.log.Warn().Err(err).Msg("flush after a large batch failed")
		}
		if d.largeCommits.Add(-n) == 0 {
			debug.FreeOSMemory()
			return
		}
	}
}

// drainFlushes is how many flushes drainLarge makes: the first writes out
// the log's large batch, the second rotates the memtable queue past it
// (see releaseLarge).
const drainFlushes = 2

// drainLarge runs before Apply builds a batch for entries of half a
// memtable or more with a large value (see largeBatch): it flushes until the
// log's batch for the same entries, as large and still in memory until
// Pebble flushes it, is written out and let go of, so that the two are
// not in memory at once. Measured on a 3-node cluster, a 100 MB SET's
// followers grew by 237-297 MiB at their peak with it and 342-376 without
// (four runs each); the SET took 2.1-2.6 s instead of 1.8-2.3 (the apply
// waits for the flush that went on beside it anyway).
func (d *DB) drainLarge(entries []domain.Entry) error {
	if slices.ContainsFunc(entries, ingested) {
		// The log ingested the large entries, so its batches for the
		// rest hold none (see LogStore.Append).
		entries = slices.DeleteFunc(slices.Clone(entries), ingested)
	}
	if !d.largeBatch(entries, entriesData(entries)) {
		return nil
	}
	for range drainFlushes {
		if err := d.db.Flush(); err != nil {
			return classify(err)
		}
	}
	return nil
}

// largeBatchHeadroom is how many bytes of large batches may wait for their
// flush without holding back other writes: the largest value the RESP
// front door accepts by default (512 MB). One such batch waits at a time:
// drainLarge flushes the log's before the apply's is built.
const largeBatchHeadroom = 512 << 20

// stopWritesThreshold is Pebble's MemTableStopWritesThreshold: how many
// memtables' worth of bytes may queue for flushing before Pebble holds
// every write back until a flush is done. Pebble queues a batch of half a
// memtable or more as a memtable of its own size, so with its default (2)
// one 256 MB SET stalled every write of the node, and the driver's loop
// with them, for the seconds its flush took: followers stopped hearing
// heartbeats and elected another leader. So the threshold is Pebble's
// default plus room for one large batch, and one memtable more for the
// mutable one beside it. Small writes queue memtables only when flushes
// cannot keep up.
func stopWritesThreshold(memTable uint64) int {
	return 3 + int((largeBatchHeadroom+memTable-1)/memTable)
}

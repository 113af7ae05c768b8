package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"runtime/debug"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
)

// Snapshot stream format:
//
//	magic   "SESHSNP1"
//	chunk*  length (4 bytes LE, of type+payload) | CRC-32C (4 bytes LE)
//	        | type (1 byte) | payload
//
// The CRC covers the chunk's sequence number (0 for the first chunk), its
// type and its payload, so a dropped, repeated or reordered chunk fails
// like a flipped bit. The first chunk is the meta ('M': index, term,
// membership), then data chunks ('D': rows of a uvarint database number,
// then uvarint-length-prefixed key and keyspace record, in ascending
// (database, hash, key) order) and element chunks ('L': rows of a uvarint
// database, then the uvarint-length-prefixed instance (8 bytes) and
// sub-key, and value, in ascending (instance, sub-key) order per
// database; a database's element rows follow its key rows), then one end
// chunk ('E': the number of rows of both kinds) and nothing after it. A
// torn stream lacks the end chunk.
var snapMagic = []byte("SESHSNP3")

const (
	chunkMeta byte = 'M'
	chunkData byte = 'D'
	chunkElem byte = 'L'
	chunkEnd  byte = 'E'
)

// maxChunk bounds a chunk a reader accepts: the largest chunk size plus one
// row of the largest key (or element sub-key, which may be as long as a
// value) and value, which always travel whole.
const maxChunk = maxSnapshotChunkSize + domain.MaxValueSize + 16 + domain.MaxValueSize + 3*binary.MaxVarintLen64 + 1

func chunkCRC(seq uint64, body []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seq)
	return crc32.Update(crc32.Checksum(s[:], castagnoli), castagnoli, body)
}

type chunkWriter struct {
	w   io.Writer
	seq uint64
	buf []byte // header room, type, payload
}

func (cw *chunkWriter) start(typ byte) { cw.buf = append(cw.buf[:0], 0, 0, 0, 0, 0, 0, 0, 0, typ) }

func (cw *chunkWriter) payloadLen() int { return len(cw.buf) - 9 }

func (cw *chunkWriter) flush() error {
	body := cw.buf[8:]
	binary.LittleEndian.PutUint32(cw.buf, uint32(len(body)))
	binary.LittleEndian.PutUint32(cw.buf[4:], chunkCRC(cw.seq, body))
	cw.seq++
	_, err := cw.w.Write(cw.buf)
	return err
}

func encodeSnapMeta(m domain.SnapshotMeta) []byte {
	p := make([]byte, 16)
	binary.BigEndian.PutUint64(p, uint64(m.Index))
	binary.BigEndian.PutUint64(p[8:], uint64(m.Term))
	return append(p, domain.EncodeMembership(m.Membership)...)
}

// Snapshot implements ports.StateMachine. It streams a Pebble snapshot, so
// Apply may go on meanwhile, and holds one chunk in memory at a time
// (Options.SnapshotChunkSize, or one pair if that is larger). A stored
// value that fails its checksum aborts the snapshot with domain.ErrCorrupt
// rather than shipping it.
func (kv *KV) Snapshot(w io.Writer) (meta domain.SnapshotMeta, err error) {
	var snap *pebble.Snapshot
	var gen uint64
	var dbs dbTable
	err = kv.d.do(&kv.closed, "snapshot", func() error {
		// The applied point and the Pebble snapshot are taken together
		// under the lock Apply and Restore hold, so they match.
		kv.mu.RLock()
		snap = kv.d.db.NewSnapshot()
		meta, gen, dbs = kv.mu.meta, kv.mu.gen, *kv.mu.dbs
		meta.Membership = meta.Membership.Clone()
		kv.mu.RUnlock()
		defer snap.Close()
		return kv.writeSnapshot(w, snap, meta, gen, &dbs)
	})
	if err != nil {
		return domain.SnapshotMeta{}, err
	}
	return meta, nil
}

func (kv *KV) writeSnapshot(w io.Writer, snap *pebble.Snapshot, meta domain.SnapshotMeta, gen uint64, dbs *dbTable) error {
	if _, err := w.Write(snapMagic); err != nil {
		return fmt.Errorf("pebble snapshot: write: %w", err)
	}
	cw := &chunkWriter{w: w, buf: make([]byte, 0, kv.d.opts.SnapshotChunkSize+64)}
	cw.start(chunkMeta)
	cw.buf = append(cw.buf, encodeSnapMeta(meta)...)
	if err := cw.flush(); err != nil {
		return fmt.Errorf("pebble snapshot: write: %w", err)
	}
	var pairs uint64
	for db := range domain.MaxDatabases {
		slot := dbs.slot[db]
		for _, typ := range []byte{chunkData, chunkElem} {
			s := slot
			if typ == chunkElem {
				s |= elemSlotBit
			}
			n, err := kv.writeRows(cw, snap, typ, db, slotPrefix(gen, s), slotPrefix(gen, s+1))
			if err != nil {
				return err
			}
			pairs += n
		}
	}
	cw.start(chunkEnd)
	cw.buf = binary.BigEndian.AppendUint64(cw.buf, pairs)
	if err := cw.flush(); err != nil {
		return fmt.Errorf("pebble snapshot: write: %w", err)
	}
	return nil
}

// writeRows writes the rows of db in [lower, upper) in chunks of type
// typ, the key of each row without the slot's prefix, and returns how
// many it wrote.
func (kv *KV) writeRows(cw *chunkWriter, snap *pebble.Snapshot, typ byte, db int, lower, upper []byte) (uint64, error) {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("pebble snapshot: %w", classify(err))
	}
	defer it.Close()
	var rows uint64
	cw.start(typ)
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		rec, err := it.ValueAndErr()
		if err != nil {
			return 0, fmt.Errorf("pebble snapshot: key %q: %w", k[snapRowPrefix:], classify(err))
		}
		row, val, chunked, base, seed, err := snapRow(typ, k, rec)
		if err != nil {
			return 0, err
		}
		cw.buf = binary.AppendUvarint(cw.buf, uint64(db))
		cw.buf = binary.AppendUvarint(cw.buf, uint64(len(row)))
		cw.buf = append(cw.buf, row...)
		// The stream holds every record whole (keyspace's form) and
		// every element's value whole: a chunked value, read into the
		// chunk in place, follows its head (a record's, which is that
		// form without the value; an element's is nothing).
		cw.buf = binary.AppendUvarint(cw.buf, uint64(len(val)+chunked))
		cw.buf = append(cw.buf, val...)
		if chunked > 0 {
			at := len(cw.buf)
			cw.buf = slices.Grow(cw.buf, chunked)[:at+chunked]
			what := fmt.Sprintf("pebble snapshot: key %q", row)
			if typ == chunkElem {
				what = "pebble snapshot: " + elemName(k)
			}
			if err := readChunks(snap, base, seed, cw.buf[at:], what); err != nil {
				return 0, err
			}
		}
		rows++
		if cw.payloadLen() >= kv.d.opts.SnapshotChunkSize {
			if err := cw.flush(); err != nil {
				return 0, fmt.Errorf("pebble snapshot: write: %w", err)
			}
			cw.start(typ)
		}
	}
	if err := it.Error(); err != nil {
		return 0, fmt.Errorf("pebble snapshot: %w", classify(err))
	}
	if cw.payloadLen() > 0 {
		if err := cw.flush(); err != nil {
			return 0, fmt.Errorf("pebble snapshot: write: %w", err)
		}
	}
	return rows, nil
}

// snapRowPrefix is the part of a stored key a snapshot row leaves out:
// prefixData | generation | slot.
const snapRowPrefix = 13

// snapRow checks the pair k, rec of a chunk of type typ and returns its
// row (the key as the stream holds it), the stored value without its
// seal and, if the value is chunked, the value's length beyond val (a
// record's head is val, an element's head is nothing), its chunks' base
// and the seed of their CRCs.
func snapRow(typ byte, k, rec []byte) (row, val []byte, chunked int, base []byte, seed uint32, err error) {
	if typ == chunkElem {
		val, chunked, err = elemHead(k, rec)
		if err != nil {
			return nil, nil, 0, nil, 0, fmt.Errorf("pebble snapshot: %w", err)
		}
		if chunked > 0 {
			base, seed = chunkBase(k), chunkSeed(binary.LittleEndian.Uint32(rec))
		}
		return k[snapRowPrefix:], val, chunked, base, seed, nil
	}
	val, good := unseal(k, rec)
	if !good {
		return nil, nil, 0, nil, 0, fmt.Errorf("pebble snapshot: key %q: %w: checksum mismatch", k[dataKeyLen:], domain.ErrCorrupt)
	}
	h, head, err := chunkedHead(k, val, binary.LittleEndian.Uint32(rec))
	if err != nil {
		return nil, nil, 0, nil, 0, fmt.Errorf("pebble snapshot: %w", err)
	}
	if head != nil {
		val, base = head, chunkBase(k)
	}
	return k[dataKeyLen:], val, h.n, base, h.seed, nil // the hash is recomputed on restore
}

// errTorn marks a stream that ended early; it is reported as corrupt.
var errTorn = errors.New("stream ends early")

type chunkReader struct {
	r   io.Reader
	seq uint64
	buf []byte
}

// next reads one chunk and returns its type and payload (valid until the
// next call). It grows its buffer only as bytes actually arrive, so a
// corrupt length cannot make it allocate much more than the stream holds.
func (cr *chunkReader) next() (byte, []byte, error) {
	var h [8]byte
	if _, err := io.ReadFull(cr.r, h[:]); err != nil {
		return 0, nil, readErr(err)
	}
	n := int(binary.LittleEndian.Uint32(h[:]))
	if n < 1 || n > maxChunk {
		return 0, nil, fmt.Errorf("chunk %d: length %d out of range: %w", cr.seq, n, domain.ErrCorrupt)
	}
	cr.buf = cr.buf[:0]
	const step = 1 << 20
	for len(cr.buf) < n {
		m := min(n-len(cr.buf), step)
		if cap(cr.buf)-len(cr.buf) < m {
			// Doubled, and the chunk's length once that is near it:
			// append's growth of a quarter at a time copied a 512 MiB
			// row about 25 times, leaving twice its size in garbage
			// that the collector let stand, at the restoring node's
			// peak, and a last doubling to 512 MiB would still be a few
			// bytes short of the row. Never more than about three
			// times what has arrived.
			c := max(2*cap(cr.buf), step)
			if 4*c >= 3*n {
				c = n
			}
			nb := make([]byte, len(cr.buf), c)
			copy(nb, cr.buf)
			cr.buf = nb
		}
		if _, err := io.ReadFull(cr.r, cr.buf[len(cr.buf):len(cr.buf)+m]); err != nil {
			return 0, nil, readErr(err)
		}
		cr.buf = cr.buf[:len(cr.buf)+m]
	}
	if chunkCRC(cr.seq, cr.buf) != binary.LittleEndian.Uint32(h[4:]) {
		return 0, nil, fmt.Errorf("chunk %d: %w: checksum mismatch", cr.seq, domain.ErrCorrupt)
	}
	if n >= largeChunkRead {
		// The buffers it outgrew are garbage, and the collector's goal,
		// set while the last two were live, is three times the chunk:
		// collect and return them now, before the restore writes the
		// chunk's rows through Pebble's memtables.
		debug.FreeOSMemory()
	}
	cr.seq++
	return cr.buf[0], cr.buf[1:], nil
}

// largeChunkRead is the length of a stream chunk after whose read the
// reader frees memory (see chunkReader.next): only a chunk of a record of
// tens of MB, since a full collection costs milliseconds.
const largeChunkRead = 64 << 20

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", domain.ErrCorrupt, errTorn)
	}
	return err
}

func sameMeta(a, b domain.SnapshotMeta) bool {
	return a.Index == b.Index && a.Term == b.Term &&
		slices.Equal(a.Membership.Voters, b.Membership.Voters) &&
		slices.Equal(a.Membership.Learners, b.Membership.Learners)
}

// Restore implements ports.StateMachine. It verifies the stream as it
// writes it, in batches of Options.RestoreBatchSize, under the next data
// generation; only when the whole stream checked out does one synced batch
// switch the applied meta to the new generation and delete the old one. A
// bad stream (domain.ErrCorrupt, including a meta that differs from meta
// and bytes after the image: r must end where the image ends) or a failing
// reader leaves the previous state in place. Apply waits while Restore
// runs; reads go on over the previous state until the switch.
func (kv *KV) Restore(meta domain.SnapshotMeta, r io.Reader) error {
	return kv.d.do(&kv.closed, "restore", func() error {
		kv.write.Lock()
		defer kv.write.Unlock()
		newGen := kv.mu.gen + 1
		dbs, err := kv.restore(meta, r, newGen)
		if err != nil {
			// Drop what was staged; the old generation was never touched.
			// If this cleanup is lost to a crash, the next Open redoes it.
			b := kv.d.db.NewBatch()
			defer b.Close()
			_ = b.DeleteRange(dataPrefix(newGen), dataPrefix(newGen+1), nil)
			_ = b.Delete(keyRestore, nil)
			if cerr := kv.d.commit(b, false); cerr != nil {
				return fmt.Errorf("pebble restore: %w (and cleanup failed: %w)", err, cerr)
			}
			return fmt.Errorf("pebble restore at %d: %w", meta.Index, err)
		}
		b := kv.d.db.NewBatch()
		defer b.Close()
		_ = b.DeleteRange(dataPrefix(kv.mu.gen), dataPrefix(kv.mu.gen+1), nil)
		_ = b.Set(keyApplied, encodeMeta(meta, newGen, &dbs), nil)
		_ = b.Delete(keyRestore, nil)
		kv.mu.Lock()
		defer kv.mu.Unlock()
		if err := kv.d.commit(b, true); err != nil {
			return fmt.Errorf("pebble restore at %d: commit: %w", meta.Index, err)
		}
		kv.mu.meta = meta
		kv.mu.meta.Membership = meta.Membership.Clone()
		kv.cache.clear()
		kv.mu.gen = newGen
		kv.mu.dbs = &dbs
		return nil
	})
}

// restore writes the stream's rows under generation gen (each database in
// its own slot), checking everything, and returns the database table they
// make or the first failure.
func (kv *KV) restore(meta domain.SnapshotMeta, r io.Reader, gen uint64) (dbTable, error) {
	dbs := newDBTable()
	err := kv.restoreRows(meta, r, gen, &dbs)
	return dbs, err
}

func (kv *KV) restoreRows(meta domain.SnapshotMeta, r io.Reader, gen uint64, dbs *dbTable) error {
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return readErr(err)
	}
	if !bytes.Equal(magic, snapMagic) {
		return fmt.Errorf("bad magic %q: %w", magic, domain.ErrCorrupt)
	}
	cr := &chunkReader{r: r}
	typ, p, err := cr.next()
	if err != nil {
		return err
	}
	if typ != chunkMeta || len(p) < 16 {
		return fmt.Errorf("first chunk is not a meta chunk: %w", domain.ErrCorrupt)
	}
	mem, err := domain.DecodeMembership(p[16:])
	if err != nil {
		return fmt.Errorf("snapshot meta: %w", err)
	}
	got := domain.SnapshotMeta{
		Index:      domain.Index(binary.BigEndian.Uint64(p)),
		Term:       domain.Term(binary.BigEndian.Uint64(p[8:])),
		Membership: mem,
	}
	if !sameMeta(got, meta) {
		return fmt.Errorf("stream holds %+v, want %+v: %w", got, meta, domain.ErrCorrupt)
	}

	b := kv.d.db.NewBatch()
	defer func() { b.Close() }()
	// The marker says a restore is under way, for the log line at the next
	// Open if a crash interrupts it; the generation scheme alone already
	// keeps the old state whole.
	_ = b.Set(keyRestore, seal(keyRestore, encodeMeta(meta, gen, dbs)), nil)
	var pairs uint64
	var prev, prevElem []byte
	for {
		typ, p, err := cr.next()
		if err != nil {
			return err
		}
		switch typ {
		case chunkElem:
			n, err := kv.restoreElems(b, p, gen, &prevElem)
			if err != nil {
				return fmt.Errorf("chunk %d: %w", cr.seq-1, err)
			}
			pairs += n
			if b.Len() >= kv.d.opts.RestoreBatchSize {
				if err := kv.d.commit(b, false); err != nil {
					return err
				}
				b.Close()
				b = kv.d.db.NewBatch()
			}
		case chunkData:
			for len(p) > 0 {
				db, n := binary.Uvarint(p)
				if n <= 0 || db >= domain.MaxDatabases {
					return fmt.Errorf("chunk %d: bad database: %w", cr.seq-1, domain.ErrCorrupt)
				}
				key, rest, ok := cutBytes(p[n:], domain.MaxKeySize)
				if !ok {
					return fmt.Errorf("chunk %d: bad key: %w", cr.seq-1, domain.ErrCorrupt)
				}
				val, rest, ok := cutBytes(rest, domain.MaxValueSize+64)
				if !ok {
					return fmt.Errorf("chunk %d: bad value for key %q: %w", cr.seq-1, key, domain.ErrCorrupt)
				}
				p = rest
				rec, err := keyspace.DecodeRecord(val)
				if err != nil {
					return fmt.Errorf("chunk %d: key %q: %w", cr.seq-1, key, err)
				}
				dk := dataKey(gen, uint32(db), key)
				// Rows come in key order, each once: the counts below rely
				// on it.
				if prev != nil && bytes.Compare(prev, dk) >= 0 {
					return fmt.Errorf("chunk %d: key %q out of order: %w", cr.seq-1, key, domain.ErrCorrupt)
				}
				prev = dk
				dbs.keys[db]++
				if rec.ExpireAt != 0 {
					dbs.expires[db]++
				}
				if chunkedRecord(dk, len(rec.Value)) {
					// Committed as it goes, like the rows: one batch of
					// a value of hundreds of MB cost the node its size
					// again, and more as the batch grew. Nothing of the
					// new generation is read before the restore's last
					// commit, so a value cut between batches is never seen.
					if b, err = kv.restoreChunked(b, dk, rec); err != nil {
						return err
					}
				} else if err := b.Set(dk, seal(dk, val), nil); err != nil {
					return classify(err)
				}
				pairs++
				if b.Len() >= kv.d.opts.RestoreBatchSize {
					if err := kv.d.commit(b, false); err != nil {
						return err
					}
					b.Close()
					b = kv.d.db.NewBatch()
				}
			}
		case chunkEnd:
			if len(p) != 8 || binary.BigEndian.Uint64(p) != pairs {
				return fmt.Errorf("end chunk does not match the %d pairs read: %w", pairs, domain.ErrCorrupt)
			}
			// r holds exactly one image: anything after the end chunk means
			// the stream is not what Snapshot wrote.
			var one [1]byte
			if n, _ := io.ReadFull(r, one[:]); n != 0 {
				return fmt.Errorf("bytes after the end chunk: %w", domain.ErrCorrupt)
			}
			return kv.d.commit(b, false)
		default:
			return fmt.Errorf("chunk %d: unknown type %q: %w", cr.seq-1, typ, domain.ErrCorrupt)
		}
	}
}

// restoreChunked writes the chunked record rec under dk into b, committing
// b and going on in a new batch whenever it holds RestoreBatchSize bytes,
// and returns the batch to go on with.
func (kv *KV) restoreChunked(b *pebble.Batch, dk []byte, rec keyspace.Record) (*pebble.Batch, error) {
	value := rec.Value
	h := chunkHead{n: len(value), id: rec.Version, seed: idSeed(rec.Version), patchable: true}
	if err := putChunkedHead(b, dk, rec, h); err != nil {
		return b, classify(err)
	}
	base, seed := chunkBase(dk), h.seed
	for j, off := 0, 0; off < len(value); j, off = j+1, off+chunkSize {
		if err := putChunk(b, base, seed, j, value[off:min(off+chunkSize, len(value))]); err != nil {
			return b, classify(err)
		}
		if b.Len() >= kv.d.opts.RestoreBatchSize {
			if err := kv.d.commit(b, false); err != nil {
				return b, err
			}
			b.Close()
			b = kv.d.db.NewBatch()
		}
	}
	return b, nil
}

// restoreElems writes one element chunk's rows under generation gen and
// returns how many there were. Rows must come in ascending key order
// (prev is the last key written).
func (kv *KV) restoreElems(b *pebble.Batch, p []byte, gen uint64, prev *[]byte) (uint64, error) {
	var n uint64
	for len(p) > 0 {
		db, m := binary.Uvarint(p)
		if m <= 0 || db >= domain.MaxDatabases {
			return n, fmt.Errorf("bad database: %w", domain.ErrCorrupt)
		}
		row, rest, ok := cutBytes(p[m:], domain.MaxValueSize+16)
		if !ok || len(row) < 8 {
			return n, fmt.Errorf("bad element key: %w", domain.ErrCorrupt)
		}
		val, rest, ok := cutBytes(rest, domain.MaxValueSize)
		if !ok {
			return n, fmt.Errorf("bad element value: %w", domain.ErrCorrupt)
		}
		p = rest
		k := append(slotPrefix(gen, uint32(db)|elemSlotBit), row...)
		if *prev != nil && bytes.Compare(*prev, k) >= 0 {
			return n, fmt.Errorf("element out of order: %w", domain.ErrCorrupt)
		}
		*prev = k
		if _, err := putElem(b, k, val); err != nil {
			return n, classify(err)
		}
		n++
	}
	return n, nil
}

// cutBytes splits a uvarint-length-prefixed byte string off the front of p.
func cutBytes(p []byte, limit uint64) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > limit || l > uint64(len(p)-n) {
		return nil, nil, false
	}
	return p[n : n+int(l)], p[n+int(l):], true
}

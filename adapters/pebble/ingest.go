package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seshat-kv/seshat/domain"
)

// Ingested large values. A write through a batch goes through Pebble's
// WAL (whose blocks queue in memory until written) and is copied into a
// memtable (whose arena, with CGO_ENABLED=0, is Go heap), once for the
// log entry and once for the record: a 10 MiB SET grew each node by
// about 60 MiB, six times the value (BENCHMARKS.md, "Large values, stop
// 21"). So a log entry of ingestBytes or more, and an apply batch of
// ingestBytes or more that holds a large value, are written instead to an
// sstable file of their own, a chunk at a time, and ingested: Pebble links
// the file into the LSM with one MANIFEST edit, and neither the WAL nor a
// memtable ever holds the value.
//
// An ingestion is durable when it returns, and atomic, but it does not
// sync the WAL: a write committed before it without a sync could be lost
// in a crash that keeps the ingested file. That would leave a hole in the
// log, or an applied index past writes that are gone. So ingestTable
// syncs the WAL first (DB.sync), which costs nothing when it holds
// nothing unsynced.
const ingestBytes = 4 << 20

// ingestDir is where writeTable writes its sstables, under Options.Dir,
// before Pebble links them into the DB (Pebble ignores what it does not
// name). Open empties it: a file left there was never ingested.
const ingestDir = "ingest"

// openIngest creates ingestDir, empty, and computes the options of the
// tables writeTable writes: those of a flush into level 0.
func (d *DB) openIngest(po *pebble.Options) error {
	fs, dir := d.opts.FS, d.opts.FS.PathJoin(d.opts.Dir, ingestDir)
	if err := fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("pebble: clear %s: %w", dir, err)
	}
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pebble: create %s: %w", dir, err)
	}
	d.ingestDir = dir
	po = po.Clone()
	po.EnsureDefaults()
	d.tableOpts = po.MakeWriterOptions(0, d.db.TableFormat())
	// Not compressed: the table is written while a write waits for it (a
	// flush compresses in the background), and a value this large is
	// often compressed already. A compaction that rewrites the table
	// compresses it as Pebble's levels say.
	d.tableOpts.Compression = sstable.NoCompression
	return nil
}

// table is an sstable written for ingestion, synced, not yet ingested.
type table struct {
	path string
	n    uint64 // the bytes of its pairs (see tableWriter)
}

// writeTable writes a table with what fill sets, in increasing key
// order. It is done before the store's locks are taken: a table of
// hundreds of MB takes seconds to write, and readers, the Raft loop's
// among them, must not wait for it.
//
// A failure to write, sync or ingest a table is fatal, as a failed batch
// commit is (see the package doc): the DB refuses every later call.
func (d *DB) writeTable(fill func(w *tableWriter) error) (table, error) {
	path := d.opts.FS.PathJoin(d.ingestDir, fmt.Sprintf("%06d.sst", d.tables.Add(1)))
	f, err := d.opts.FS.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return table{}, d.fail(err)
	}
	w := &tableWriter{Writer: sstable.NewWriter(objstorageprovider.NewFileWritable(f), d.tableOpts)}
	if err := fill(w); err != nil {
		_ = w.Close()
		_ = d.opts.FS.Remove(path)
		return table{}, d.fail(err)
	}
	// Close syncs the file: Pebble requires it of an ingested table.
	if err := w.Close(); err != nil {
		_ = d.opts.FS.Remove(path)
		return table{}, d.fail(err)
	}
	return table{path: path, n: w.n}, nil
}

// ingestTable ingests t, after syncing every write before it (see
// ingestBytes).
func (d *DB) ingestTable(t table) error {
	if err := d.sync(); err != nil {
		return err
	}
	if err := d.db.Ingest(context.Background(), []string{t.path}); err != nil {
		return d.fail(err)
	}
	d.ingested.Add(t.n)
	return nil
}

// fail poisons the DB with err, classified, and returns it.
func (d *DB) fail(err error) error {
	err = classify(err)
	d.fatal.CompareAndSwap(nil, &err)
	d.log.Error().Err(err).Msg("pebble: writing a large value failed: storage stopped")
	return err
}

// dropTables removes the tables in ts that were not ingested (Ingest
// removes those it took, so their removal here fails, harmlessly).
func (d *DB) dropTables(ts []table) {
	for _, t := range ts {
		_ = d.opts.FS.Remove(t.path)
	}
}

// tableWriter is an sstable writer that counts the bytes of the pairs it
// sets, before compression.
type tableWriter struct {
	*sstable.Writer
	n uint64
}

func (w *tableWriter) Set(key, value []byte) error {
	w.n += uint64(len(key) + len(value))
	return w.Writer.Set(key, value)
}

// entryTable writes the chunked log entry e (len(e.Data) > chunkSize) as
// a table: its head, then its chunks, as putEntry would write them to a
// batch.
func (d *DB) entryTable(e domain.Entry) (table, error) {
	key := logKey(e.Index)
	head := chunkedEntryHead(key, e)
	return d.writeTable(func(w *tableWriter) error {
		if err := w.Set(key, head); err != nil {
			return err
		}
		return writeChunks(w, key, chunkSeed(binary.LittleEndian.Uint32(head)), e.Data)
	})
}

// writeChunks is putChunks for a table: value's chunks under base, their
// CRCs started from seed, through one chunk-sized buffer.
func writeChunks(w *tableWriter, base []byte, seed uint32, value []byte) error {
	var kb, buf []byte
	for j := 0; j < chunkCount(len(value)); j++ {
		kb = chunkKey(kb, base, j)
		if err := w.Set(kb, sealChunk(&buf, kb, seed, value, j)); err != nil {
			return err
		}
	}
	return nil
}

// sealChunk returns chunk j of value, stored under key with its CRC
// started from seed, in *buf (grown to a chunk's size at the first use).
func sealChunk(buf *[]byte, key []byte, seed uint32, value []byte, j int) []byte {
	part := value[j*chunkSize : min((j+1)*chunkSize, len(value))]
	if cap(*buf) < 4+len(part) {
		*buf = make([]byte, 4+min(chunkSize, len(value)))
	}
	rec := (*buf)[:4+len(part)]
	crc := crc32.Update(seed, castagnoli, key)
	binary.LittleEndian.PutUint32(rec, copyCRC(crc, rec[4:], part))
	return rec
}

// ingestApply reports whether Apply should ingest its batch of size
// bytes (the deferred values counted) for entries, rather than commit it:
// it is ingestBytes or more, and holds a large value (an entry's, or one
// the batch made or deferred, derived).
func ingestApply(entries []domain.Entry, size int, derived bool) bool {
	if size < ingestBytes {
		return false
	}
	return derived || slices.ContainsFunc(entries, func(e domain.Entry) bool { return len(e.Data) > chunkSize })
}

// batchOp is one write of a batch, or (def set) chunk j of a deferred
// value.
type batchOp struct {
	kind       pebble.InternalKeyKind
	key, value []byte
	def        *deferredValue
	j          int
}

// sortedOps returns b's writes in key order, the last one per key only,
// or false if b holds a kind of write a table for ingestion cannot stand
// for (a range deletion, whose effect on the batch's own earlier writes
// one table cannot express). The slices point into b.
func sortedOps(b *pebble.Batch) ([]batchOp, bool, error) {
	var ops []batchOp
	rd := b.Reader()
	for {
		kind, k, v, ok, err := rd.Next()
		if err != nil {
			return nil, false, err
		}
		if !ok {
			break
		}
		switch kind {
		case pebble.InternalKeyKindLogData:
			continue
		case pebble.InternalKeyKindSet, pebble.InternalKeyKindDelete:
			ops = append(ops, batchOp{kind: kind, key: k, value: v})
		default:
			return nil, false, nil
		}
	}
	return lastPerKey(ops), true, nil
}

// lastPerKey sorts ops by key, keeping of the writes to a key the last
// one in ops.
func lastPerKey(ops []batchOp) []batchOp {
	slices.SortStableFunc(ops, func(a, b batchOp) int { return bytes.Compare(a.key, b.key) })
	last := ops[:0]
	for i, op := range ops {
		if i+1 < len(ops) && bytes.Equal(op.key, ops[i+1].key) {
			continue // a later write to the same key wins
		}
		last = append(last, op)
	}
	return last
}

// batchTable writes b's writes and the chunks of the deferred values as
// a table, if it can (see sortedOps); ok is false, with nothing written,
// if it cannot. A deferred chunk overrides a write of the batch to the
// same key (see deferredValue).
func (d *DB) batchTable(b *pebble.Batch, deferred []deferredValue) (t table, ok bool, err error) {
	ops, ok, err := sortedOps(b)
	if err != nil || !ok {
		return table{}, false, classify(err)
	}
	if len(deferred) > 0 {
		for i := range deferred {
			def := &deferred[i]
			base := chunkBase(def.k)
			for j := range chunkCount(len(def.value)) {
				ops = append(ops, batchOp{kind: pebble.InternalKeyKindSet, key: chunkKey(nil, base, j), def: def, j: j})
			}
		}
		ops = lastPerKey(ops)
	}
	var buf []byte
	t, err = d.writeTable(func(w *tableWriter) error {
		for _, op := range ops {
			var err error
			switch {
			case op.def != nil:
				err = w.Set(op.key, sealChunk(&buf, op.key, op.def.seed, op.def.value, op.j))
			case op.kind == pebble.InternalKeyKindSet:
				err = w.Set(op.key, op.value)
			default:
				err = w.Delete(op.key)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return t, err == nil, err
}

package pebble

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

var _ ports.LogStore = (*LogStore)(nil)

// LogStore is the Raft log: one key per entry under the log prefix, the
// first index under the raft prefix. Get it from DB.LogStore.
type LogStore struct {
	d      *DB
	closed atomic.Bool

	// mu orders writers and lets readers see first and last consistent
	// with what Pebble holds.
	mu struct {
		sync.RWMutex
		first, last domain.Index
	}
}

// entry payload: term (8 bytes, big endian), type (1 byte), data. An
// entry of more than chunkSize bytes of data has entryChunked set in its
// type byte and, instead of the data, its length (uvarint); the data
// follows in chunks keyed logKey(index) | chunk index (see chunkSize),
// which sort between the entry and the next one, so that a purge's or a
// truncation's range deletion takes them with their entry.
const entryHeader = 9

// entryChunked marks a chunked entry's type byte (types are small).
const entryChunked = 0x80

// putEntry sets e, sealed (see seal), under its key in b, encoding it in
// the batch itself: a large entry is copied once, not three times.
func putEntry(b *pebble.Batch, e domain.Entry) error {
	key := logKey(e.Index)
	if len(e.Data) > chunkSize {
		head := chunkedEntryHead(key, e)
		if err := b.Set(key, head, nil); err != nil {
			return err
		}
		_, err := putChunks(b, key, chunkSeed(binary.LittleEndian.Uint32(head)), e.Data)
		return err
	}
	op := b.SetDeferred(len(key), 4+entryHeader+len(e.Data))
	copy(op.Key, key)
	p := op.Value[4:]
	binary.BigEndian.PutUint64(p, uint64(e.Term))
	p[8] = byte(e.Type)
	crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, p[:entryHeader])
	binary.LittleEndian.PutUint32(op.Value, copyCRC(crc, p[entryHeader:], e.Data))
	return op.Finish()
}

// chunkedEntryHead returns the sealed head of e, stored under key, whose
// data goes in chunks (len(e.Data) > chunkSize).
func chunkedEntryHead(key []byte, e domain.Entry) []byte {
	var p [entryHeader + binary.MaxVarintLen64]byte
	binary.BigEndian.PutUint64(p[:], uint64(e.Term))
	p[8] = byte(e.Type) | entryChunked
	n := binary.PutUvarint(p[entryHeader:], uint64(len(e.Data)))
	return seal(key, p[:entryHeader+n])
}

// decodeEntry decodes the entry stored under key as rec. If it is
// chunked, it returns its data's length as chunked, leaving Data nil for
// readEntryChunks to fill.
func decodeEntry(i domain.Index, key, rec []byte) (e domain.Entry, chunked int, err error) {
	p, ok := unseal(key, rec)
	if !ok || len(p) < entryHeader {
		return domain.Entry{}, 0, fmt.Errorf("pebble log: entry %d: %w: checksum mismatch", i, domain.ErrCorrupt)
	}
	e = domain.Entry{
		Index: i,
		Term:  domain.Term(binary.BigEndian.Uint64(p)),
		Type:  domain.EntryType(p[8] &^ entryChunked),
	}
	if p[8]&entryChunked != 0 {
		n, m := binary.Uvarint(p[entryHeader:])
		if m <= 0 || entryHeader+m != len(p) || n <= chunkSize || n > 1<<40 {
			return domain.Entry{}, 0, fmt.Errorf("pebble log: entry %d: %w: bad chunked length", i, domain.ErrCorrupt)
		}
		return e, int(n), nil
	}
	if len(p) > entryHeader {
		e.Data = append([]byte(nil), p[entryHeader:]...)
	}
	return e, 0, nil
}

// readEntryChunks reads the total bytes of data of the chunked entry i,
// whose head (stored as rec) it is on, from it's next pairs, leaving it
// on the last chunk.
func readEntryChunks(it *pebble.Iterator, i domain.Index, rec []byte, total int) ([]byte, error) {
	seed := chunkSeed(binary.LittleEndian.Uint32(rec))
	base := logKey(i)
	out := make([]byte, total)
	var kb []byte
	for j := range chunkCount(total) {
		kb = chunkKey(kb, base, j)
		if !it.Next() || !bytes.Equal(it.Key(), kb) {
			if err := it.Error(); err != nil {
				return nil, fmt.Errorf("pebble log: entry %d: chunk %d: %w", i, j, classify(err))
			}
			return nil, fmt.Errorf("pebble log: entry %d: chunk %d of %d missing: %w", i, j, chunkCount(total), domain.ErrCorrupt)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("pebble log: entry %d: chunk %d: %w", i, j, classify(err))
		}
		if !openChunk(kb, v, seed, j, total, out) {
			return nil, fmt.Errorf("pebble log: entry %d: chunk %d: %w: checksum mismatch", i, j, domain.ErrCorrupt)
		}
	}
	return out, nil
}

// load reads the first index and finds the last one.
func (s *LogStore) load() error {
	s.mu.first = 1
	rec, ok, err := s.d.get(s.d.db, keyLogFirst)
	if err != nil {
		return fmt.Errorf("pebble log: read first index: %w", err)
	}
	if ok {
		p, good := unseal(keyLogFirst, rec)
		if !good || len(p) != 8 {
			return fmt.Errorf("pebble log: first index record: %w: checksum mismatch", domain.ErrCorrupt)
		}
		s.mu.first = domain.Index(binary.BigEndian.Uint64(p))
	}
	s.mu.last = s.mu.first - 1
	it, err := s.d.db.NewIter(&pebble.IterOptions{LowerBound: logLower, UpperBound: logUpper})
	if err != nil {
		return fmt.Errorf("pebble log: %w", classify(err))
	}
	defer it.Close()
	if it.Last() {
		k := it.Key()
		if len(k) != 9 && len(k) != 9+4 { // an entry or its last chunk
			return fmt.Errorf("pebble log: malformed key %x: %w", k, domain.ErrCorrupt)
		}
		last := domain.Index(binary.BigEndian.Uint64(k[1:]))
		if last < s.mu.first {
			return fmt.Errorf("pebble log: entry %d below first index %d: %w", last, s.mu.first, domain.ErrCorrupt)
		}
		s.mu.last = last
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("pebble log: %w", classify(err))
	}
	return nil
}

// FirstIndex implements ports.LogStore.
func (s *LogStore) FirstIndex() (first domain.Index, err error) {
	err = s.d.do(&s.closed, "log first index", func() error {
		s.mu.RLock()
		defer s.mu.RUnlock()
		first = s.mu.first
		return nil
	})
	return first, err
}

// LastIndex implements ports.LogStore.
func (s *LogStore) LastIndex() (last domain.Index, err error) {
	err = s.d.do(&s.closed, "log last index", func() error {
		s.mu.RLock()
		defer s.mu.RUnlock()
		last = s.mu.last
		return nil
	})
	return last, err
}

// checkRange reports whether [lo, hi) lies within the log; mu is held.
func (s *LogStore) checkRange(lo, hi domain.Index) error {
	if lo < s.mu.first {
		return fmt.Errorf("pebble log: index %d below first %d: %w", lo, s.mu.first, domain.ErrCompacted)
	}
	if hi > s.mu.last+1 {
		return fmt.Errorf("pebble log: index %d above last %d: %w", hi-1, s.mu.last, domain.ErrUnavailable)
	}
	return nil
}

// Term implements ports.LogStore.
func (s *LogStore) Term(i domain.Index) (term domain.Term, err error) {
	err = s.d.do(&s.closed, "log term", func() error {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if err := s.checkRange(i, i+1); err != nil {
			return err
		}
		key := logKey(i)
		rec, ok, err := s.d.get(s.d.db, key)
		if err != nil {
			return fmt.Errorf("pebble log: entry %d: %w", i, err)
		}
		if !ok {
			return fmt.Errorf("pebble log: entry %d missing inside [%d,%d]: %w", i, s.mu.first, s.mu.last, domain.ErrCorrupt)
		}
		e, _, err := decodeEntry(i, key, rec)
		term = e.Term
		return err
	})
	return term, err
}

// Entries implements ports.LogStore. An entry is left out if it would take
// the total Size past maxBytes, unless it is the first.
func (s *LogStore) Entries(lo, hi domain.Index, maxBytes uint64) (out []domain.Entry, err error) {
	err = s.d.do(&s.closed, "log entries", func() error {
		if lo >= hi {
			return fmt.Errorf("pebble log: entries [%d,%d): empty range", lo, hi)
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		if err := s.checkRange(lo, hi); err != nil {
			return err
		}
		it, err := s.d.db.NewIter(&pebble.IterOptions{LowerBound: logKey(lo), UpperBound: logKey(hi)})
		if err != nil {
			return fmt.Errorf("pebble log: entries [%d,%d): %w", lo, hi, classify(err))
		}
		defer it.Close()
		var size uint64
		next := lo
		for ok := it.First(); ok; ok = it.Next() {
			k := it.Key()
			if len(k) != 9 || domain.Index(binary.BigEndian.Uint64(k[1:])) != next {
				return fmt.Errorf("pebble log: entry %d missing (found key %x): %w", next, k, domain.ErrCorrupt)
			}
			v, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("pebble log: entry %d: %w", next, classify(err))
			}
			e, chunked, err := decodeEntry(next, k, v)
			if err != nil {
				return err
			}
			size += e.Size() + uint64(chunked)
			if maxBytes > 0 && size > maxBytes && len(out) > 0 {
				return nil
			}
			if chunked > 0 {
				// v is valid until the iterator moves: its CRC, the
				// chunks' seed, first.
				if e.Data, err = readEntryChunks(it, next, v, chunked); err != nil {
					return err
				}
			}
			out = append(out, e)
			next++
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("pebble log: entries [%d,%d): %w", lo, hi, classify(err))
		}
		if next != hi {
			return fmt.Errorf("pebble log: entry %d missing inside [%d,%d]: %w", next, s.mu.first, s.mu.last, domain.ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Append implements ports.LogStore: the entries go into one Pebble batch,
// so a crash keeps all or none of them, except that an entry of
// ingestBytes or more is ingested (see ingestBytes): the entries before it
// are synced with it, those after it go in a batch of their own. So a
// crash keeps a prefix of them. It does not sync.
func (s *LogStore) Append(entries []domain.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.d.do(&s.closed, "log append", func() error {
		// The tables first, outside the lock (see writeTable).
		var tables []table
		defer func() { s.d.dropTables(tables) }()
		for _, e := range entries {
			if !ingested(e) {
				continue
			}
			t, err := s.d.entryTable(e)
			if err != nil {
				return fmt.Errorf("pebble log: append %d: %w", e.Index, err)
			}
			tables = append(tables, t)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, e := range entries {
			if want := s.mu.last + 1 + domain.Index(k); e.Index != want {
				return fmt.Errorf("pebble log: append: entry %d at position %d, want index %d", e.Index, k, want)
			}
		}
		for _, t := range tables {
			k := slices.IndexFunc(entries, ingested)
			if err := s.appendBatch(entries[:k]); err != nil {
				return err
			}
			if err := s.d.ingestTable(t); err != nil {
				return fmt.Errorf("pebble log: append %d: %w", entries[k].Index, err)
			}
			s.mu.last = entries[k].Index
			entries = entries[k+1:]
		}
		return s.appendBatch(entries)
	})
}

// ingested reports whether Append writes e as an ingested table rather
// than in a batch (see ingestBytes).
func ingested(e domain.Entry) bool { return len(e.Data) >= ingestBytes }

// appendBatch appends entries, none of them ingested, in one batch.
func (s *LogStore) appendBatch(entries []domain.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	b := newLogBatch(s.d.db, entries)
	defer b.Close()
	for _, e := range entries {
		if err := putEntry(b, e); err != nil {
			return fmt.Errorf("pebble log: append %d: %w", e.Index, classify(err))
		}
	}
	size := len(b.Repr()) // before the commit, which drops a large batch's data
	if err := s.d.commit(b, false); err != nil {
		return fmt.Errorf("pebble log: append [%d,%d]: %w", entries[0].Index, entries[len(entries)-1].Index, err)
	}
	s.d.releaseLarge(entries, size, false)
	s.mu.last = entries[len(entries)-1].Index
	return nil
}

// TruncateSuffix implements ports.LogStore with one DeleteRange. A from
// below FirstIndex is an error wrapping domain.ErrCompacted.
func (s *LogStore) TruncateSuffix(from domain.Index) error {
	return s.d.do(&s.closed, "log truncate", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if from < s.mu.first {
			return fmt.Errorf("pebble log: truncate from %d below first %d: %w", from, s.mu.first, domain.ErrCompacted)
		}
		if from > s.mu.last {
			return nil
		}
		b := s.d.db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(logKey(from), logUpper, nil); err != nil {
			return fmt.Errorf("pebble log: truncate from %d: %w", from, classify(err))
		}
		if err := s.d.commit(b, false); err != nil {
			return fmt.Errorf("pebble log: truncate from %d: %w", from, err)
		}
		s.mu.last = from - 1
		return nil
	})
}

// Purge implements ports.LogStore: one batch deletes the range and records
// the new first index, so a crash never leaves one without the other.
func (s *LogStore) Purge(upTo domain.Index) error {
	return s.d.do(&s.closed, "log purge", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if upTo < s.mu.first {
			return nil
		}
		first := upTo + 1
		b := s.d.db.NewBatch()
		defer b.Close()
		if err := b.DeleteRange(logKey(s.mu.first), logKey(first), nil); err != nil {
			return fmt.Errorf("pebble log: purge to %d: %w", upTo, classify(err))
		}
		var p [8]byte
		binary.BigEndian.PutUint64(p[:], uint64(first))
		if err := b.Set(keyLogFirst, seal(keyLogFirst, p[:]), nil); err != nil {
			return fmt.Errorf("pebble log: purge to %d: %w", upTo, classify(err))
		}
		if err := s.d.commit(b, false); err != nil {
			return fmt.Errorf("pebble log: purge to %d: %w", upTo, err)
		}
		s.mu.first = first
		if s.mu.last < upTo {
			s.mu.last = upTo
		}
		return nil
	})
}

// Sync implements ports.LogStore with one WAL sync (which also covers the
// state machine's writes), or none if nothing was written since the last.
// An error is fatal: the DB refuses every later call.
func (s *LogStore) Sync() error {
	return s.d.do(&s.closed, "log sync", func() error {
		if err := s.d.sync(); err != nil {
			return fmt.Errorf("pebble log: sync: %w", err)
		}
		return nil
	})
}

// Close implements ports.LogStore. It closes this store only; DB.Close
// closes the DB. Closing twice returns domain.ErrClosed.
func (s *LogStore) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("pebble: close: %w", domain.ErrClosed)
	}
	return nil
}

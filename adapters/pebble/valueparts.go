package pebble

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/seshat-kv/seshat/domain/keyspace"
)

// A string value by parts (keyspace.Store's Stat, ReadAt and WriteAt): a
// chunked value's command that reads a few bytes reads the chunks that
// hold them, and one that changes a few bytes or appends writes the head
// and the chunks it changes, not the whole value. Before, an APPEND of 64
// MiB to a 448 MiB value read 448 MiB, built 512 MiB and wrote 512 MiB in
// one batch, and a SETRANGE of 2 bytes into a 512 MiB value took 6.9 s
// and 1.3-1.6 GB more memory on every node.

// ReadAt implements keyspace.Store.
func (s *batchStore) ReadAt(db int, key []byte, off int, dst []byte) error {
	k, err := s.tempKey(db, key)
	if err != nil {
		return err
	}
	e, err := s.lookup(k, false)
	if err != nil {
		return err
	}
	if !e.ok || off < 0 || off+len(dst) > e.size() {
		return fmt.Errorf("pebble kv: key %q: read of %d bytes at %d out of the value's %d", key, len(dst), off, e.size())
	}
	if !e.partial {
		copy(dst, e.r.Value[off:])
		return nil
	}
	return readChunksAt(s.chunkReader(), chunkBase(k), e.head.seed, e.head.n, off, dst, fmt.Sprintf("pebble kv: key %q", key))
}

// WriteAt implements keyspace.Store. A chunked value stored since stop 21
// (recordPatchable) that stays chunked gets a new head and the chunks
// that change: those data overlaps, and those the value grows into (the
// old last chunk, if it was short, among them). Anything else is written
// whole, as Put: a value stored whole or that stays small, and a chunked
// value stored before stop 21, whose chunks' CRCs start from its head's.
func (s *batchStore) WriteAt(db int, key []byte, r keyspace.Record, off int, data []byte) error {
	k, old, err := s.forWrite(db, key)
	if err != nil {
		return err
	}
	if !old.ok || off < 0 {
		return fmt.Errorf("pebble kv: key %q: write at %d of a missing value", key, off)
	}
	// patch reads and writes chunks in the batch (see deferredValue).
	if err := s.settle(k); err != nil {
		return err
	}
	end := max(old.size(), off+len(data))
	if old.head == nil || !old.head.patchable || !chunkedRecord(k, end) {
		if old.partial {
			if old, err = s.lookup(k, true); err != nil {
				return err
			}
		}
		r.Value = keyspace.PatchValue(old.r.Value, off, data)
		return s.Put(db, key, r)
	}
	return s.patch(db, k, old, r, off, data)
}

// patch is WriteAt for a patchable chunked value old at the stored key k.
func (s *batchStore) patch(db int, k []byte, old cachedRecord, r keyspace.Record, off int, data []byte) error {
	h := *old.head
	h.n = max(old.head.n, off+len(data))
	// The bytes that change: data's, and those the value grows by.
	lo, hi := h.n, 0
	if len(data) > 0 {
		lo, hi = off, off+len(data)
	}
	if h.n > old.head.n {
		lo, hi = min(lo, old.head.n), h.n
	}
	first, last := lo/chunkSize, (hi-1)/chunkSize
	if lo >= hi {
		first, last = 0, -1 // the head alone: a new deadline or version
	}
	if err := s.room((last - first + 1) * chunkSize); err != nil {
		return err
	}
	r.Value = nil
	if err := putChunkedHead(s.w, k, r, h); err != nil {
		return classify(err)
	}
	s.puts++
	base, what := chunkBase(k), fmt.Sprintf("pebble kv: key %q", k[dataKeyLen:])
	var kept []byte // an old chunk's bytes kept, when one is changed in part
	for j := first; j <= last; j++ {
		if err := s.patchChunk(base, old, h, j, off, data, &kept, what); err != nil {
			return err
		}
		s.puts++
	}
	s.remember(k, cachedRecord{r: r, ok: true, head: &h, partial: true})
	s.count(db, k, old, r)
	return nil
}

// patchChunk writes chunk j of the value h describes, under base: the old
// value old's bytes there, zero bytes past its end, data's where it
// overlaps (written at off). *buf holds the old bytes kept (a chunk's
// room, allocated at the first use). what names the value in errors.
func (s *batchStore) patchChunk(base []byte, old cachedRecord, h chunkHead, j, off int, data []byte, buf *[]byte, what string) error {
	a, b := j*chunkSize, min((j+1)*chunkSize, h.n)
	// The old bytes are read before the chunk's batch record is begun: a
	// deferred record must be finished before the batch is read.
	var kept []byte
	if keep := min(b, old.head.n) - a; keep > 0 && !(off <= a && off+len(data) >= b) {
		if cap(*buf) < chunkSize {
			*buf = make([]byte, chunkSize)
		}
		kept = (*buf)[:keep]
		if err := readChunksAt(s.r, base, old.head.seed, old.head.n, a, kept, what); err != nil {
			return err
		}
	}
	op := s.w.SetDeferred(len(base)+4, 4+b-a)
	copy(op.Key, base)
	binary.BigEndian.PutUint32(op.Key[len(base):], uint32(j))
	part := op.Value[4:]
	n := copy(part, kept)
	clear(part[n:]) // a pooled batch's buffer is not zeroed
	if from, to := max(a, off), min(b, off+len(data)); from < to {
		copy(part[from-a:], data[from-off:to-off])
	}
	crc := crc32.Update(h.seed, castagnoli, op.Key)
	for at := 0; at < len(part); at += copyStep {
		crc = crc32.Update(crc, castagnoli, part[at:min(at+copyStep, len(part))])
	}
	binary.LittleEndian.PutUint32(op.Value, crc)
	return classify(op.Finish())
}

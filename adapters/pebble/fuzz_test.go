package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/seshat-kv/seshat/domain"
)

// FuzzRestore feeds arbitrary snapshot streams to Restore: it must never
// panic or hang, a stream it rejects must be reported as ErrCorrupt, and
// whatever happens the node's previous state must stay readable and whole.
//
//	go test -run '^$' -fuzz FuzzRestore -fuzztime 30s ./adapters/pebble
func FuzzRestore(f *testing.F) {
	db, err := Open(Options{Dir: "seed", FS: vfs.NewMem(), CacheSize: 1 << 20, SnapshotChunkSize: 64})
	if err != nil {
		f.Fatal(err)
	}
	var es []domain.Entry
	for i := domain.Index(1); i <= 4; i++ {
		es = append(es, cmdEntry(i, 1, set(fmt.Sprintf("k%04d", i), "seed")))
	}
	if _, err := db.StateMachine().Apply(es); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	meta, err := db.StateMachine().Snapshot(&buf)
	if err != nil {
		f.Fatal(err)
	}
	_ = db.Close()
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:len(buf.Bytes())/2])
	f.Add([]byte{})
	f.Add([]byte("SKV1 not a pebble image"))

	f.Fuzz(func(t *testing.T, image []byte) {
		n := newMemNode(t)
		kv := n.db.StateMachine()
		fill(t, kv, 1, 20, "old")
		before, err := kv.Applied()
		if err != nil {
			t.Fatal(err)
		}
		err = kv.Restore(meta, bytes.NewReader(image))
		if err != nil && !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("Restore: %v, want nil or ErrCorrupt", err)
		}
		after, aerr := kv.Applied()
		if aerr != nil {
			t.Fatal(aerr)
		}
		if err != nil {
			// Rejected: the old state is intact.
			if after.Index != before.Index {
				t.Fatalf("rejected restore moved applied %d -> %d", before.Index, after.Index)
			}
			if _, gerr := kv.Get([]byte("k0000")); gerr != nil {
				t.Fatalf("old key lost after a rejected restore: %v", gerr)
			}
		} else if after.Index != meta.Index {
			t.Fatalf("accepted restore: applied %d, want %d", after.Index, meta.Index)
		}
	})
}

// FuzzDecodeEntry feeds arbitrary payloads, sealed under a log key so that
// the checksum passes, to the log's entry decoder: it must never panic; a
// payload it refuses is ErrCorrupt; one it takes for a chunked entry's
// head announces more than a chunk of data (else it would have been
// stored inline) and leaves Data for the chunks to fill.
//
//	go test -run '^$' -fuzz FuzzDecodeEntry -fuzztime 30s ./adapters/pebble
func FuzzDecodeEntry(f *testing.F) {
	key := logKey(7)
	var b bytes.Buffer
	b.Write(make([]byte, 8))
	b.WriteByte(byte(domain.EntryNormal))
	f.Add(append([]byte(nil), b.Bytes()...))               // an empty entry
	f.Add(append(b.Bytes(), "some data"...))               // an inline entry
	f.Add(append(b.Bytes()[:8:8], 0x80, 0x81, 0x80, 0x40)) // a chunked head of 1 MiB + 1
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, payload []byte) {
		e, chunked, err := decodeEntry(7, key, seal(key, payload))
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("decodeEntry(%x): %v, not ErrCorrupt", payload, err)
			}
			return
		}
		if e.Index != 7 {
			t.Fatalf("decodeEntry(%x): index %d, want 7", payload, e.Index)
		}
		if chunked != 0 && (chunked <= chunkSize || e.Data != nil) {
			t.Fatalf("decodeEntry(%x): chunked %d with %d bytes of data", payload, chunked, len(e.Data))
		}
	})
}

// FuzzChunkedHead feeds arbitrary record payloads to chunkedHead: it must
// never panic; a payload marked as a chunked head that it refuses is
// ErrCorrupt; one it takes announces more than a chunk of value.
//
//	go test -run '^$' -fuzz FuzzChunkedHead -fuzztime 30s ./adapters/pebble
func FuzzChunkedHead(f *testing.F) {
	key := dataKey(1, 0, []byte("key"))
	f.Add([]byte{})
	f.Add([]byte("an inline record"))
	f.Add([]byte{recordChunked, 0x81, 0x80, 0x40, 's'})
	f.Add([]byte{recordChunked, 0xff})
	f.Add([]byte{recordPatchable, 0x81, 0x80, 0x40, 0x07, 's'})
	f.Add([]byte{recordPatchable, 0x81, 0x80, 0x40})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, head, err := chunkedHead(key, p, 0x1234)
		n := h.n
		switch {
		case err != nil:
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("chunkedHead(%x): %v, not ErrCorrupt", p, err)
			}
		case head == nil:
			if len(p) > 0 && (p[0] == recordChunked || p[0] == recordPatchable) {
				t.Fatalf("chunkedHead(%x): a chunked mark taken for an inline record", p)
			}
		case n <= chunkSize || len(head) == 0:
			t.Fatalf("chunkedHead(%x): %d bytes announced, head %x", p, n, head)
		case h.patchable != (p[0] == recordPatchable):
			t.Fatalf("chunkedHead(%x): patchable %v", p, h.patchable)
		}
	})
}

// FuzzElemHead feeds arbitrary stored element values to elemHead, raw,
// sealed as an inline value, or sealed as a chunked head: it must never
// panic; a failure is ErrCorrupt; an inline seal reads back as that
// value, a head's seal never as an inline value, and a head it takes
// announces more than a chunk.
//
//	go test -run '^$' -fuzz FuzzElemHead -fuzztime 30s ./adapters/pebble
func FuzzElemHead(f *testing.F) {
	key := append(elemPrefix(1, 0, 7), "field"...)
	f.Add([]byte{}, uint8(0))
	f.Add([]byte("an inline value"), uint8(1))
	f.Add(binary.AppendUvarint(nil, chunkSize+1), uint8(2))
	f.Add(binary.AppendUvarint(nil, chunkSize), uint8(2))
	f.Add([]byte{0xff, 0xff}, uint8(2))
	f.Fuzz(func(t *testing.T, p []byte, form uint8) {
		rec := p
		switch form % 3 {
		case 1:
			rec = seal(key, p)
		case 2:
			crc := crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, p) ^ elemChunkMark
			rec = append(binary.LittleEndian.AppendUint32(nil, crc), p...)
		}
		inline, n, err := elemHead(key, rec)
		switch {
		case err != nil:
			if !errors.Is(err, domain.ErrCorrupt) || form%3 == 1 {
				t.Fatalf("elemHead(%x) form %d: %v", rec, form%3, err)
			}
		case n == 0:
			if form%3 == 2 || (form%3 == 1 && !bytes.Equal(inline, p)) {
				t.Fatalf("elemHead(%x) form %d: inline %x", rec, form%3, inline)
			}
		case n <= chunkSize || n > 1<<40 || inline != nil || form%3 == 1:
			t.Fatalf("elemHead(%x) form %d: %d bytes announced, inline %x", rec, form%3, n, inline)
		}
	})
}

package backupfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

var testMeta = domain.SnapshotMeta{Index: 12345, Term: 7, Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}, Learners: []domain.NodeID{4}}}

// build writes a backup of body, written in pieces of at most step bytes.
func build(t testing.TB, body []byte, step int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, time.UnixMilli(1_700_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	for p := body; len(p) > 0; {
		n := min(step, len(p))
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := w.Close(testMeta, 2); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 1000, 100_000} {
		body := bytes.Repeat([]byte("seshat!"), size/7+1)[:size]
		file := build(t, body, 333)
		info, r, err := Open(bytes.NewReader(file), int64(len(file)))
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := Info{Meta: testMeta, From: 2, Created: time.UnixMilli(1_700_000_000_000), BodyLen: int64(size), Version: Version}
		if d := cmp.Diff(want, info); d != "" {
			t.Fatalf("size %d: info (-want +got):\n%s", size, d)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: body differs (%d bytes, err %v)", size, len(got), err)
		}
	}
}

// TestEveryDamageRefused flips each byte, and cuts the file at each
// length: every one is refused as corrupt.
func TestEveryDamageRefused(t *testing.T) {
	file := build(t, []byte("a small snapshot stream, enough to flip"), 5)
	for i := range file {
		bad := bytes.Clone(file)
		bad[i] ^= 0x10
		_, _, err := Open(bytes.NewReader(bad), int64(len(bad)))
		if i >= 8 && i < 12 && bad[i] != 0 {
			// A flipped version byte reads as a version from the future
			// or as corrupt: refused either way.
			if err == nil {
				t.Fatalf("byte %d flipped: accepted", i)
			}
			continue
		}
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("byte %d flipped: got %v, want ErrCorrupt", i, err)
		}
	}
	for n := range len(file) {
		_, _, err := Open(bytes.NewReader(file[:n]), int64(n))
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("cut at %d: got %v, want ErrCorrupt", n, err)
		}
	}
	ext := append(bytes.Clone(file), 0)
	if _, _, err := Open(bytes.NewReader(ext), int64(len(ext))); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("a byte appended: got %v, want ErrCorrupt", err)
	}
}

func TestClearErrors(t *testing.T) {
	file := build(t, []byte("body"), 10)
	cases := []struct {
		name string
		mut  func([]byte) []byte
		want string
		is   error
	}{
		{"not a backup", func(b []byte) []byte { return append([]byte("*1\r\n$4\r\nPING"), b[12:]...) }, "not a Seshat backup file", domain.ErrCorrupt},
		{"future version", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], Version+1); return b }, "format version 2, this seshatd reads up to 1", ErrVersion},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }, "truncated", domain.ErrCorrupt},
		{"flipped body", func(b []byte) []byte { b[headerLen+1] ^= 1; return b }, "SHA-256 mismatch", domain.ErrCorrupt},
		{"empty", func(b []byte) []byte { return nil }, "shorter than the 20-byte header", domain.ErrCorrupt},
	}
	for _, c := range cases {
		b := c.mut(bytes.Clone(file))
		_, _, err := Open(bytes.NewReader(b), int64(len(b)))
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %v saying %q", c.name, err, c.is, c.want)
		}
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrorSticks(t *testing.T) {
	w, err := NewWriter(&failWriter{n: headerLen + 3}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("abcdef")); err == nil {
		t.Fatal("write past the limit succeeded")
	}
	if err := w.Close(testMeta, 1); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

// FuzzOpen: Open never panics nor allocates from a length it read, and
// what it accepts reads back as its body, of the length it says.
func FuzzOpen(f *testing.F) {
	f.Add(build(f, []byte("body"), 10))
	f.Add(build(f, nil, 1))
	f.Add([]byte("SESHATBK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, r, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		got, err := io.ReadAll(r)
		if err != nil || int64(len(got)) != info.BodyLen {
			t.Fatalf("accepted file: body %d bytes (err %v), info says %d", len(got), err, info.BodyLen)
		}
	})
}

// FuzzDecode feeds the header and trailer decoders directly (Open's sum
// keeps the fuzzer from reaching them with most inputs): no panic, and a
// trailer they accept encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	file := build(f, []byte("body"), 10)
	f.Add(file[:headerLen], file[headerLen+4:len(file)-tailLen])
	f.Fuzz(func(t *testing.T, head, trailer []byte) {
		_, _, _ = decodeHeader(head)
		info, err := decodeTrailer(trailer)
		if err != nil {
			return
		}
		again := encodeTrailer(info)
		again = again[:len(again)-12]
		if len(trailer) == len(again) && !bytes.Equal(again[:trailerFixed], trailer[:trailerFixed]) {
			t.Fatalf("trailer %x re-encodes as %x", trailer, again)
		}
	})
}

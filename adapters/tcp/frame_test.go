package tcp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// frameBytes returns the encoding of frames, as a writer would send them.
func frameBytes(t testing.TB, frames ...func(w *bufio.Writer) error) []byte {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	for _, f := range frames {
		if err := f(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func frame(typ frameType, payload []byte) func(w *bufio.Writer) error {
	return func(w *bufio.Writer) error { return writeFrame(w, typ, payload) }
}

func msgFrame(m domain.Message) func(w *bufio.Writer) error {
	return frame(frameMessage, EncodeMessage(nil, m))
}

// snapFrames is the stream a writer sends for a MsgSnap, in chunks.
func snapFrames(m domain.Message, chunk int) []func(w *bufio.Writer) error {
	hdr := binary.AppendUvarint(nil, uint64(len(m.Snapshot.Data)))
	hdr = appendMessage(hdr, &m, false)
	fs := []func(w *bufio.Writer) error{frame(frameSnapHeader, hdr)}
	data := m.Snapshot.Data
	for off := 0; off < len(data); off += chunk {
		fs = append(fs, frame(frameSnapChunk, data[off:min(off+chunk, len(data))]))
	}
	return append(fs, frame(frameSnapEnd, nil))
}

func TestFrameRoundTrip(t *testing.T) {
	payloads := [][]byte{nil, {1}, bytes.Repeat([]byte("abc"), 50000)}
	var fs []func(w *bufio.Writer) error
	for i, p := range payloads {
		fs = append(fs, frame(frameType(i%int(frameTypeMax)+1), p))
	}
	fr := newFrameReader(bytes.NewReader(frameBytes(t, fs...)), 1<<20)
	for i, want := range payloads {
		typ, got, err := fr.readFrame()
		if err != nil || typ != frameType(i%int(frameTypeMax)+1) || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %v %d bytes %v", i, typ, len(got), err)
		}
	}
	if _, _, err := fr.readFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameRejects(t *testing.T) {
	good := frameBytes(t, frame(frameMessage, []byte("hello world")))
	mod := func(i int, b byte) []byte { c := bytes.Clone(good); c[i] = b; return c }
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"bad magic":           {mod(0, 'X'), domain.ErrCorrupt},
		"bad version":         {mod(4, 2), domain.ErrCorrupt},
		"type 0":              {mod(5, 0), domain.ErrCorrupt},
		"unknown type":        {mod(5, 99), domain.ErrCorrupt},
		"bad crc":             {mod(13, good[13]^1), domain.ErrCorrupt},
		"flipped payload":     {mod(20, good[20]^0x40), domain.ErrCorrupt},
		"oversized length":    {mod(6, 0xff), domain.ErrCorrupt},
		"truncated header":    {good[:7], io.ErrUnexpectedEOF},
		"truncated payload":   {good[:len(good)-1], io.ErrUnexpectedEOF},
		"text instead":        {[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), domain.ErrCorrupt},
		"empty stream is EOF": {nil, io.EOF},
	}
	for name, c := range cases {
		_, _, err := newFrameReader(bytes.NewReader(c.in), 1<<20).readFrame()
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", name, err, c.want)
		}
	}
}

// An oversized length is refused from the header alone: nothing of the
// announced size is allocated and the payload is never read.
func TestOversizedFrameRejectedBeforeAllocation(t *testing.T) {
	var h [frameHeaderSize]byte
	copy(h[:], frameMagic)
	h[4], h[5] = frameVersion, byte(frameMessage)
	binary.BigEndian.PutUint32(h[6:], 0xfffffff0)
	in := io.MultiReader(bytes.NewReader(h[:]), failReader{t})
	fr := newFrameReader(bufio.NewReaderSize(in, 16), 64<<20) // reads the header only
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := fr.readFrame(); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Fatalf("%d bytes allocated to refuse an oversized frame", n)
	}
}

type failReader struct{ t testing.TB }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("read past an oversized frame header")
	return 0, io.ErrClosedPipe
}

// runSession feeds a byte stream to a session for a connection from node 2
// to node 1 and returns what it delivered and how it ended.
func runSession(in []byte, maxSnap int64) ([]domain.Message, error) {
	var got []domain.Message
	s := &session{peer: 2, self: 1, maxSnap: maxSnap, maxMsg: maxSnap, deliver: func(m domain.Message) { got = append(got, m) }}
	err := s.run(newFrameReader(bytes.NewReader(in), 1<<20))
	return got, err
}

func TestSessionDeliversAndReassembles(t *testing.T) {
	want := sampleMessages(2, 1)
	var fs []func(w *bufio.Writer) error
	for _, m := range want {
		if m.Type == domain.MsgSnap {
			fs = append(fs, snapFrames(m, 999)...)
		} else {
			fs = append(fs, msgFrame(m), frame(frameKeepalive, nil))
		}
	}
	empty := domain.Message{Type: domain.MsgSnap, From: 2, To: 1, Snapshot: &domain.Snapshot{}}
	fs = append(fs, snapFrames(empty, 10)...)
	want = append(want, empty)
	got, err := runSession(frameBytes(t, fs...), 1<<20)
	if err != io.EOF {
		t.Fatalf("session ended with %v, want io.EOF", err)
	}
	if d := cmp.Diff(want, got, equateEmpty); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestSessionRejects(t *testing.T) {
	snap := sampleMessages(2, 1)[8]
	if snap.Type != domain.MsgSnap {
		t.Fatalf("sample 8 is %v", snap.Type)
	}
	sf := snapFrames(snap, 1000)
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1}
	impostor := hb
	impostor.From = 3
	misrouted := hb
	misrouted.To = 5
	hdrNotSnap := binary.AppendUvarint(nil, 0)
	hdrNotSnap = appendMessage(hdrNotSnap, &hb, false)
	cases := map[string][]func(w *bufio.Writer) error{
		"impostor From":            {msgFrame(hb), msgFrame(impostor)},
		"wrong To":                 {msgFrame(misrouted)},
		"handshake after it":       {frame(frameHandshake, handshakePayload{From: 2, To: 1}.append(nil))},
		"chunk without header":     {frame(frameSnapChunk, []byte("x"))},
		"end without header":       {frame(frameSnapEnd, nil)},
		"large header in snapshot": {sf[0], sf[1], frame(frameLargeHeader, binary.AppendUvarint(nil, 10))},
		"header inside snapshot":   {sf[0], sf[0]},
		"snapshot ends early":      {sf[0], sf[1], sf[len(sf)-1]},
		"snapshot overruns":        append(append([]func(w *bufio.Writer) error{}, sf[:len(sf)-1]...), frame(frameSnapChunk, []byte("x"))),
		"snapshot header not snap": {frame(frameSnapHeader, hdrNotSnap)},
		"undecodable message":      {frame(frameMessage, []byte{1, 2, 3})},
		"keepalive with payload":   {frame(frameKeepalive, []byte{0})},
		"MsgSnap without snapshot": {msgFrame(domain.Message{Type: domain.MsgSnap, From: 2, To: 1})},
	}
	for name, fs := range cases {
		if got, err := runSession(frameBytes(t, fs...), 1<<20); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("%s: err %v (delivered %d), want ErrCorrupt", name, err, len(got))
		}
	}
	// Over the receiver's limit: refused at the header.
	if _, err := runSession(frameBytes(t, sf[0]), 100); !errors.Is(err, domain.ErrCorrupt) {
		t.Errorf("snapshot over MaxSnapshotBytes: err %v, want ErrCorrupt", err)
	}
	// A stream cut inside a snapshot is not a clean EOF.
	if _, err := runSession(frameBytes(t, sf[0], sf[1]), 1<<20); err != io.ErrUnexpectedEOF {
		t.Errorf("stream cut in a snapshot: err %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestSessionReportsSnapshotProgress: the receiving side reports a
// snapshot's progress as its chunks arrive, so a long catch-up shows in
// the learner's log too.
func TestSessionReportsSnapshotProgress(t *testing.T) {
	snap := domain.Message{Type: domain.MsgSnap, From: 2, To: 1,
		Snapshot: &domain.Snapshot{Data: bytes.Repeat([]byte("s"), 2500)}}
	var got []uint64
	s := &session{peer: 2, self: 1, maxSnap: 1 << 20, maxMsg: 1 << 20, deliver: func(domain.Message) {},
		snapshotProgress: func(m *domain.Message, n, total uint64) {
			if total != 2500 {
				t.Errorf("progress total %d, want 2500", total)
			}
			got = append(got, n)
		}}
	if err := s.run(newFrameReader(bytes.NewReader(frameBytes(t, snapFrames(snap, 1000)...)), 1<<20)); err != io.EOF {
		t.Fatalf("session ended with %v, want io.EOF", err)
	}
	if d := cmp.Diff([]uint64{1000, 2000, 2500}, got); d != "" {
		t.Fatalf("progress reports (-want +got):\n%s", d)
	}
}

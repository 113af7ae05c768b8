package tcp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// spoolSnap is a MsgSnap from 2 to 1 whose image spans several chunks.
func spoolSnap(size int) domain.Message {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return domain.Message{Type: domain.MsgSnap, From: 2, To: 1, Term: 3, Snapshot: &domain.Snapshot{
		Meta: domain.SnapshotMeta{Index: 40, Term: 2, Membership: domain.Membership{Voters: []domain.NodeID{1, 2}}},
		Data: data,
	}}
}

// runSpoolSession runs a session spooling to dir over the frames of in,
// and returns what it delivered and how it ended.
func runSpoolSession(t *testing.T, dir string, maxSnap int64, in []byte) ([]domain.Message, error) {
	t.Helper()
	var got []domain.Message
	s := &session{peer: 2, self: 1, maxSnap: maxSnap, maxMsg: maxSnap, spoolDir: dir,
		deliver: func(m domain.Message) { got = append(got, m) }}
	err := s.run(newFrameReader(bytes.NewReader(in), 1<<20))
	return got, err
}

// spoolFiles lists the files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestSpoolWritesChunksToFile: with a spool, the image arrives in a file
// (the message has no Data), whole and exact, and chunk sizes that do not
// divide it change nothing.
func TestSpoolWritesChunksToFile(t *testing.T) {
	for _, chunk := range []int{1, 1000, 4096, 10_000} {
		dir := t.TempDir()
		snap := spoolSnap(9_999)
		hb := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1, Term: 3}
		fs := snapFrames(snap, chunk)
		// A control message interleaved between two chunks, as a writer
		// sends one.
		fs = append(fs[:2:2], append([]func(w *bufio.Writer) error{msgFrame(hb)}, fs[2:]...)...)
		got, err := runSpoolSession(t, dir, 1<<20, frameBytes(t, fs...))
		if err != io.EOF {
			t.Fatalf("chunk %d: session ended with %v, want io.EOF", chunk, err)
		}
		if len(got) != 2 || got[1].Type != domain.MsgSnap {
			t.Fatalf("chunk %d: delivered %v, want the heartbeat then the snapshot", chunk, got)
		}
		s := got[1].Snapshot
		if s.Data != nil || filepath.Dir(s.File) != dir {
			t.Fatalf("chunk %d: snapshot has %d bytes of Data and file %q, want a file in %s", chunk, len(s.Data), s.File, dir)
		}
		data, err := os.ReadFile(s.File)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, snap.Snapshot.Data) {
			t.Fatalf("chunk %d: spooled image of %d bytes differs from the %d sent", chunk, len(data), len(snap.Snapshot.Data))
		}
		if d := cmp.Diff(snap.Snapshot.Meta, s.Meta); d != "" {
			t.Fatalf("chunk %d: meta (-want +got):\n%s", chunk, d)
		}
	}
}

// TestSpoolRemovesPartialFiles: a stream that overruns, ends short, is
// cut or carries a corrupt chunk delivers nothing and leaves no file.
func TestSpoolRemovesPartialFiles(t *testing.T) {
	snap := spoolSnap(5000)
	sf := snapFrames(snap, 1000)
	corrupt := frameBytes(t, sf[:4]...)
	corrupt[len(corrupt)-10] ^= 0xff // inside the third chunk: its CRC fails
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"overrun":       {frameBytes(t, append(append([]func(w *bufio.Writer) error{}, sf[:len(sf)-1]...), frame(frameSnapChunk, []byte("x")))...), domain.ErrCorrupt},
		"short stream":  {frameBytes(t, sf[0], sf[1], sf[len(sf)-1]), domain.ErrCorrupt},
		"cut":           {frameBytes(t, sf[:3]...), io.ErrUnexpectedEOF},
		"corrupt chunk": {corrupt, domain.ErrCorrupt},
		"bad frame":     {frameBytes(t, sf[0], sf[1], frame(frameLargeHeader, []byte{10})), domain.ErrCorrupt},
	}
	for name, c := range cases {
		dir := t.TempDir()
		got, err := runSpoolSession(t, dir, 1<<20, c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: session ended with %v, want %v", name, err, c.want)
		}
		if len(got) != 0 {
			t.Errorf("%s: delivered %v", name, got)
		}
		if names := spoolFiles(t, dir); len(names) != 0 {
			t.Errorf("%s: spool holds %v after the stream failed", name, names)
		}
	}
	// Over MaxSnapshotBytes: refused at the header, before any file.
	dir := t.TempDir()
	if _, err := runSpoolSession(t, dir, 4999, frameBytes(t, sf...)); !errors.Is(err, domain.ErrCorrupt) {
		t.Errorf("snapshot over MaxSnapshotBytes: %v, want ErrCorrupt", err)
	}
	if names := spoolFiles(t, dir); len(names) != 0 {
		t.Errorf("spool holds %v after a refused header", names)
	}
}

// TestSpoolUndeliveredSnapshotRemoved: a whole image the inbox does not
// take (deliverSnap reports false) has its file removed.
func TestSpoolUndeliveredSnapshotRemoved(t *testing.T) {
	dir := t.TempDir()
	var offered []domain.Message
	s := &session{peer: 2, self: 1, maxSnap: 1 << 20, spoolDir: dir, deliver: func(domain.Message) {},
		deliverSnap: func(m domain.Message) bool { offered = append(offered, m); return false }}
	if err := s.run(newFrameReader(bytes.NewReader(frameBytes(t, snapFrames(spoolSnap(3000), 1000)...)), 1<<20)); err != io.EOF {
		t.Fatalf("session ended with %v", err)
	}
	if len(offered) != 1 || offered[0].Snapshot.File == "" {
		t.Fatalf("offered %v, want one snapshot in a file", offered)
	}
	if names := spoolFiles(t, dir); len(names) != 0 {
		t.Fatalf("spool holds %v after the snapshot was refused", names)
	}
}

// TestPrepareSpoolDeletesOnlyStaleImages: the received images a previous
// run left go, anything else (the node's outgoing images) stays.
func TestPrepareSpoolDeletesOnlyStaleImages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if n, err := prepareSpool(dir); err != nil || n != 0 {
		t.Fatalf("prepareSpool on a new dir: %d, %v", n, err)
	}
	for _, name := range []string{"seshat-snapshot-1.in", "seshat-snapshot-2.in", "seshat-snapshot-3.out", "other"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n, err := prepareSpool(dir)
	if err != nil || n != 2 {
		t.Fatalf("prepareSpool: deleted %d, %v; want 2", n, err)
	}
	if d := cmp.Diff([]string{"other", "seshat-snapshot-3.out"}, spoolFiles(t, dir)); d != "" {
		t.Fatalf("spool after prepareSpool (-want +got):\n%s", d)
	}
}

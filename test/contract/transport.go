package contract

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// TransportHarness is two connected endpoints of one cluster, A and B,
// on a network with no faults.
type TransportHarness struct {
	A, B     ports.Transport
	AID, BID domain.NodeID
}

// transportWait bounds every wait for a message: generous, since a real
// transport may have to connect first.
const transportWait = 10 * time.Second

// TestTransport runs the ports.Transport contract against the endpoint
// pairs open returns.
func TestTransport(t *testing.T, open func(t *testing.T) TransportHarness) {
	t.Run("Delivery", func(t *testing.T) {
		h := open(t)
		sent := sampleMessages(h.AID, h.BID, 200)
		for _, m := range sent {
			if err := h.A.Send(m); err != nil {
				t.Fatalf("Send %v: %v", m, err)
			}
		}
		checkReceived(t, h.B, sent)
	})
	t.Run("BothWays", func(t *testing.T) {
		h := open(t)
		toB := sampleMessages(h.AID, h.BID, 20)
		toA := sampleMessages(h.BID, h.AID, 20)
		for i := range toB {
			if err := h.A.Send(toB[i]); err != nil {
				t.Fatalf("A.Send: %v", err)
			}
			if err := h.B.Send(toA[i]); err != nil {
				t.Fatalf("B.Send: %v", err)
			}
		}
		checkReceived(t, h.B, toB)
		checkReceived(t, h.A, toA)
	})
	t.Run("SnapshotTravelsWhole", func(t *testing.T) {
		h := open(t)
		data := bytes.Repeat([]byte("snapshot-bytes."), 1<<16) // ~1 MiB
		m := domain.Message{Type: domain.MsgSnap, From: h.AID, To: h.BID, Term: 4, Snapshot: &domain.Snapshot{
			Meta: domain.SnapshotMeta{Index: 1000, Term: 3, Membership: domain.Membership{
				Voters: []domain.NodeID{h.AID, h.BID, 3}, Learners: []domain.NodeID{9}}},
			Data: data,
		}}
		if err := h.A.Send(m); err != nil {
			t.Fatalf("Send MsgSnap: %v", err)
		}
		checkReceived(t, h.B, []domain.Message{m})
	})
	t.Run("SnapshotFromFile", func(t *testing.T) {
		h := open(t)
		// Several chunks of a real transport, not a multiple of any.
		data := bytes.Repeat([]byte("file-image."), 300_001)
		file := writeImage(t, data)
		meta := domain.SnapshotMeta{Index: 2000, Term: 5, Membership: domain.Membership{Voters: []domain.NodeID{h.AID, h.BID}}}
		m := domain.Message{Type: domain.MsgSnap, From: h.AID, To: h.BID, Term: 6, Snapshot: &domain.Snapshot{Meta: meta, File: file}}
		if err := h.A.Send(m); err != nil {
			t.Fatalf("Send MsgSnap from a file: %v", err)
		}
		want := m
		want.Snapshot = &domain.Snapshot{Meta: meta, Data: data}
		// checkReceived reads (and removes) a received image file.
		checkReceived(t, h.B, []domain.Message{want})
		// Send took the file: it is gone once the image was sent.
		waitRemoved(t, file)
	})
	t.Run("SnapshotFileDropped", func(t *testing.T) {
		h := open(t)
		meta := domain.SnapshotMeta{Index: 7, Term: 1, Membership: domain.Membership{Voters: []domain.NodeID{h.AID, h.BID}}}
		unknown := writeImage(t, []byte("to nobody"))
		m := domain.Message{Type: domain.MsgSnap, From: h.AID, To: 0xdead, Term: 1, Snapshot: &domain.Snapshot{Meta: meta, File: unknown}}
		if err := h.A.Send(m); err != nil {
			t.Fatalf("Send to an unknown peer: %v; want nil (dropped)", err)
		}
		waitRemoved(t, unknown)
		if err := h.A.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		closed := writeImage(t, []byte("after close"))
		m.To, m.Snapshot = h.BID, &domain.Snapshot{Meta: meta, File: closed}
		if err := h.A.Send(m); !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("Send after Close: %v, want one wrapping ErrClosed", err)
		}
		waitRemoved(t, closed)
	})
	t.Run("SendNeverBlocks", func(t *testing.T) {
		h := open(t)
		// B never reads: Send must queue or drop, never wait.
		done := make(chan error, 1)
		go func() {
			for i := range 20000 {
				m := domain.Message{Type: domain.MsgHeartbeat, From: h.AID, To: h.BID, Term: 1, Index: domain.Index(i)}
				if err := h.A.Send(m); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
		case <-time.After(transportWait):
			t.Fatalf("20000 Sends to a peer that does not read took over %v", transportWait)
		}
		// Some of it arrived.
		select {
		case <-h.B.Receive():
		case <-time.After(transportWait):
			t.Fatalf("nothing received")
		}
	})
	t.Run("UnknownPeer", func(t *testing.T) {
		h := open(t)
		m := domain.Message{Type: domain.MsgApp, From: h.AID, To: 0xdead, Term: 1}
		if err := h.A.Send(m); err != nil {
			t.Fatalf("Send to an unknown peer: %v; want nil (dropped)", err)
		}
		// The transport still works.
		ok := sampleMessages(h.AID, h.BID, 1)
		if err := h.A.Send(ok[0]); err != nil {
			t.Fatalf("Send: %v", err)
		}
		checkReceived(t, h.B, ok)
	})
	t.Run("Close", func(t *testing.T) {
		h := open(t)
		if err := h.B.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// Receive's channel gets closed.
		deadline := time.After(transportWait)
	drain:
		for {
			select {
			case _, ok := <-h.B.Receive():
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatalf("Receive channel still open %v after Close", transportWait)
			}
		}
		m := domain.Message{Type: domain.MsgHeartbeat, From: h.BID, To: h.AID, Term: 1}
		if err := h.B.Send(m); !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("Send after Close: %v, want one wrapping ErrClosed", err)
		}
		// A peer sending to the closed endpoint loses the message, no more.
		m = domain.Message{Type: domain.MsgHeartbeat, From: h.AID, To: h.BID, Term: 1}
		if err := h.A.Send(m); err != nil {
			t.Fatalf("Send to a closed peer: %v; want nil (dropped)", err)
		}
		if err := h.A.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := h.A.Send(m); !errors.Is(err, domain.ErrClosed) {
			t.Fatalf("Send after Close: %v, want one wrapping ErrClosed", err)
		}
	})
}

// sampleMessages returns n messages from one node to another, each kind in
// turn, with every field used somewhere; Index numbers them.
func sampleMessages(from, to domain.NodeID, n int) []domain.Message {
	var out []domain.Message
	for i := range n {
		m := domain.Message{
			Type: domain.MessageType(i%12 + 1), From: from, To: to,
			Term: domain.Term(i + 1), LogTerm: domain.Term(i), Index: domain.Index(i),
			Commit: domain.Index(i / 2), Reject: i%3 == 0, RejectHint: domain.Index(i / 3),
		}
		if i%4 == 0 {
			m.Context = []byte{byte(i), 'c', 't', 'x'}
		}
		if m.Type == domain.MsgApp {
			m.Entries = makeEntries(domain.Index(i+1), domain.Index(i+1+i%5), domain.Term(i))
		}
		if m.Type == domain.MsgSnap {
			m.Snapshot = &domain.Snapshot{
				Meta: domain.SnapshotMeta{Index: domain.Index(i), Term: 2, Membership: domain.Membership{Voters: []domain.NodeID{from, to}}},
				Data: []byte("image"),
			}
		}
		out = append(out, m)
	}
	return out
}

// checkReceived waits for exactly the messages want (in any order: a
// transport may reorder) on tr.
func checkReceived(t *testing.T, tr ports.Transport, want []domain.Message) {
	t.Helper()
	var got []domain.Message
	deadline := time.After(transportWait)
	for len(got) < len(want) {
		select {
		case m, ok := <-tr.Receive():
			if !ok {
				t.Fatalf("Receive channel closed after %d of %d messages", len(got), len(want))
			}
			got = append(got, m)
		case <-deadline:
			t.Fatalf("received %d of %d messages in %v", len(got), len(want), transportWait)
		}
	}
	for i := range got {
		inMemory(t, &got[i])
	}
	key := func(a, b domain.Message) int { return int(a.Index) - int(b.Index) }
	want = slices.Clone(want)
	slices.SortStableFunc(want, key)
	slices.SortStableFunc(got, key)
	// Compare bytes with bytes.Equal: it is fast on snapshot images (cmp
	// is not) and takes nil and empty alike; do the same for Entries.
	for _, ms := range [][]domain.Message{want, got} {
		for i := range ms {
			if len(ms[i].Entries) == 0 {
				ms[i].Entries = nil
			}
		}
	}
	if d := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); d != "" {
		t.Fatalf("received messages (-want +got):\n%s", d)
	}
	// Nothing more, such as duplicates, arrives on a fault-free network.
	select {
	case m := <-tr.Receive():
		t.Fatalf("unexpected extra message %v", m)
	case <-time.After(20 * time.Millisecond):
	}
}

// inMemory replaces the image file of a received MsgSnap by its content,
// and deletes the file, as its receiver must (ports.Transport).
func inMemory(t *testing.T, m *domain.Message) {
	t.Helper()
	if m.Snapshot == nil || m.Snapshot.File == "" {
		return
	}
	if m.Snapshot.Data != nil {
		t.Fatalf("received snapshot has both Data (%d bytes) and File %s", len(m.Snapshot.Data), m.Snapshot.File)
	}
	data, err := os.ReadFile(m.Snapshot.File)
	if err != nil {
		t.Fatalf("received snapshot's image file: %v", err)
	}
	if err := os.Remove(m.Snapshot.File); err != nil {
		t.Fatal(err)
	}
	s := *m.Snapshot
	s.Data, s.File = data, ""
	m.Snapshot = &s
}

// writeImage writes data to a new file and returns its path.
func writeImage(t *testing.T, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "image-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// waitRemoved waits until the file at path no longer exists.
func waitRemoved(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(transportWait); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("image file %s still there %v after Send", path, transportWait)
		}
	}
}

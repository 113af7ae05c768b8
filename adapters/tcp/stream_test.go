package tcp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// largeFrames is the stream a writer sends for a large MsgApp.
func largeFrames(t testing.TB, m domain.Message, chunk int) []func(w *bufio.Writer) error {
	var p pieces
	p.build(&m)
	fs := []func(w *bufio.Writer) error{frame(frameLargeHeader, binary.AppendUvarint(nil, uint64(p.total)))}
	if err := p.chunks(chunk, func(parts [][]byte) error {
		c := bytes.Join(parts, nil)
		fs = append(fs, frame(frameLargeChunk, c))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fs
}

func largeApp(rng *rand.Rand, from, to domain.NodeID, sizes ...int) domain.Message {
	m := domain.Message{Type: domain.MsgApp, From: from, To: to, Term: 3, LogTerm: 2, Index: 40, Commit: 39}
	for i, n := range sizes {
		var d []byte
		if n > 0 {
			d = randomBytes(rng, n)
		}
		m.Entries = append(m.Entries, domain.Entry{Index: domain.Index(41 + i), Term: 3, Data: d})
	}
	return m
}

func TestPiecesEncodeLikeAppendMessage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := []domain.Message{
		largeApp(rng, 1, 2),
		largeApp(rng, 1, 2, 0),
		largeApp(rng, 1, 2, 5000),
		largeApp(rng, 1, 2, 1, 0, 3000, 200, 0, 7),
	}
	msgs[3].Context = []byte("ctx")
	for i, m := range msgs {
		want := appendMessage(nil, &m, true)
		for _, chunk := range []int{1, 7, 100, 4096, 1 << 20} {
			var p pieces
			p.build(&m)
			var got []byte
			calls := 0
			if err := p.chunks(chunk, func(parts [][]byte) error {
				calls++
				c := bytes.Join(parts, nil)
				if len(c) > chunk || len(c) == 0 {
					t.Fatalf("message %d chunk %d: a chunk of %d bytes", i, chunk, len(c))
				}
				got = append(got, c...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if p.total != len(want) || !bytes.Equal(got, want) {
				t.Fatalf("message %d chunk %d: %d bytes (total %d), want %d", i, chunk, len(got), p.total, len(want))
			}
			if wantCalls := (len(want) + chunk - 1) / chunk; calls != wantCalls {
				t.Fatalf("message %d chunk %d: %d chunks, want %d", i, chunk, calls, wantCalls)
			}
		}
	}
}

func TestSessionReassemblesLargeMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	big := largeApp(rng, 2, 1, 3000, 0, 10, 2500)
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1, Commit: 5}
	lf := largeFrames(t, big, 1000)
	// Control messages and keepalives between the chunks are delivered at
	// once; the large message when its last chunk is in.
	fs := []func(w *bufio.Writer) error{lf[0], lf[1], msgFrame(hb), lf[2], frame(frameKeepalive, nil)}
	fs = append(fs, lf[3:]...)
	fs = append(fs, msgFrame(hb))
	got, err := runSession(frameBytes(t, fs...), 1<<20)
	if err != io.EOF {
		t.Fatalf("session ended with %v, want io.EOF", err)
	}
	if d := cmp.Diff([]domain.Message{hb, big, hb}, got, equateEmpty); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func TestSessionRejectsBadLargeStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lf := largeFrames(t, largeApp(rng, 2, 1, 5000), 1000)
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1}
	var notApp pieces
	hbCopy := hb
	hbCopy.Entries = []domain.Entry{{Data: []byte("x")}}
	notApp.build(&hbCopy) // a heartbeat with entries: not a MsgApp
	notAppEnc := appendMessage(nil, &hb, true)
	impostor := largeApp(rng, 3, 1, 2000)
	cases := map[string][]func(w *bufio.Writer) error{
		"chunk without header":   {frame(frameLargeChunk, []byte("x"))},
		"header inside stream":   {lf[0], lf[1], lf[0]},
		"snapshot inside stream": {lf[0], lf[1], snapFrames(sampleMessages(2, 1)[8], 1000)[0]},
		"overrun":                append(append([]func(w *bufio.Writer) error{}, lf[:len(lf)-1]...), frame(frameLargeChunk, make([]byte, 2000))),
		"empty chunk":            {lf[0], frame(frameLargeChunk, nil)},
		"zero length":            {frame(frameLargeHeader, binary.AppendUvarint(nil, 0))},
		"over the limit":         {frame(frameLargeHeader, binary.AppendUvarint(nil, 2<<20))},
		"header trailing bytes":  {frame(frameLargeHeader, []byte{5, 0})},
		"holds a heartbeat": {frame(frameLargeHeader, binary.AppendUvarint(nil, uint64(len(notAppEnc)))),
			frame(frameLargeChunk, notAppEnc)},
		"impostor From": largeFrames(t, impostor, 1000),
		"corrupt chunk": {lf[0], func(w *bufio.Writer) error {
			var h [frameHeaderSize]byte
			copy(h[:], frameMagic)
			h[4], h[5] = frameVersion, byte(frameLargeChunk)
			binary.BigEndian.PutUint32(h[6:], 3)
			_, _ = w.Write(h[:])
			_, err := w.Write([]byte("abc"))
			return err
		}},
	}
	for name, fs := range cases {
		if got, err := runSession(frameBytes(t, fs...), 1<<20); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("%s: err %v (delivered %d), want ErrCorrupt", name, err, len(got))
		}
	}
	if _, err := runSession(frameBytes(t, lf[0], lf[1]), 1<<20); err != io.ErrUnexpectedEOF {
		t.Errorf("stream cut in a large message: err %v, want io.ErrUnexpectedEOF", err)
	}
}

// A MsgApp far over MaxFrameBytes crosses in chunks, intact, with other
// messages around it in order.
func TestLargeAppendCrossesTheFrameLimit(t *testing.T) {
	trs, _ := mesh(t, 2, func(o *Options) { o.MaxFrameBytes = 64 << 10; o.SnapshotChunkBytes = 16 << 10 })
	a, b := trs[0], trs[1]
	rng := rand.New(rand.NewPCG(7, 8))
	big := largeApp(rng, 1, 2, 1<<20, 10, 300<<10)
	small := largeApp(rng, 1, 2, 100)
	for _, m := range []domain.Message{small, big, small} {
		if err := a.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, b, 3, 10*time.Second)
	if d := cmp.Diff([]domain.Message{small, big, small}, got, equateEmpty); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if st := a.Stats(); st.LargeSent != 1 || st.Dropped != 0 {
		t.Fatalf("sender stats %+v", st)
	}
	if st := b.Stats(); st.LargeReceived != 1 {
		t.Fatalf("receiver stats %+v", st)
	}
}

// A heartbeat (and a vote) sent after a large MsgApp arrives before the
// MsgApp has finished streaming: control messages do not queue behind it.
func TestHeartbeatOvertakesLargeAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 96 MB")
	}
	trs, _ := mesh(t, 2, nil) // default limits: 64 MiB frames, 1 MiB chunks
	a, b := trs[0], trs[1]
	const size = 96 << 20 // more than MaxFrameBytes
	data := make([]byte, size)
	for i := 0; i < size; i += 4096 {
		data[i] = byte(i / 4096)
	}
	big := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 2, Index: 10,
		Entries: []domain.Entry{{Index: 11, Term: 2, Data: data}}}
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 10}
	vote := domain.Message{Type: domain.MsgVoteResp, From: 1, To: 2, Term: 2}
	if err := a.Send(big); err != nil {
		t.Fatal(err)
	}
	// Wait until the stream is under way, then send the control messages.
	time.Sleep(time.Millisecond)
	if err := a.Send(hb); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(vote); err != nil {
		t.Fatal(err)
	}
	got := receive(t, b, 3, 60*time.Second)
	if got[0].Type != domain.MsgHeartbeat || got[1].Type != domain.MsgVoteResp || got[2].Type != domain.MsgApp {
		t.Fatalf("arrival order %v %v %v, want heartbeat, vote response, then the append", got[0].Type, got[1].Type, got[2].Type)
	}
	if e := got[2].Entries; len(e) != 1 || !bytes.Equal(e[0].Data, data) {
		t.Fatal("the large entry arrived damaged")
	}
}

// A receiver that stops reading a large append does not hold back the
// heartbeats sent after it. A follower once took seconds to allocate and
// fault in the buffer of a 512 MiB append, reading nothing from its leader
// meanwhile; the heartbeats interleaved on that connection waited behind
// the stream, and the followers called an election. The bulk lane now has
// a connection of its own. Here the receiver is a bare acceptor that stops
// reading a connection at a large-message header.
func TestStalledBulkReceiverDoesNotHoldBackHeartbeats(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	optsA, _ := testOptions(1)
	a := newTransport(t, optsA)
	acceptor := &handshaker{cluster: wireCluster(optsA.ClusterID, optsA.ClusterUUID), self: 2,
		known: func(domain.NodeID) bool { return true }, removed: func(domain.NodeID) bool { return false }}
	got := make(chan domain.Message, 16)
	stalled := make(chan struct{}, 4)
	var conns sync.WaitGroup
	serve := func(c net.Conn) {
		defer conns.Done()
		defer c.Close()
		fr := newFrameReader(c, handshakeMaxBytes)
		if _, _, err := acceptor.accept(fr, bufio.NewWriter(c)); err != nil {
			return
		}
		fr.max = 1 << 20
		for {
			typ, p, err := fr.readFrame()
			if err != nil {
				return
			}
			switch typ {
			case frameLargeHeader:
				stalled <- struct{}{}
				<-a.ctx.Done() // read no more until the test ends
				return
			case frameMessage:
				if m, err := DecodeMessage(p); err == nil {
					got <- m
				}
			}
		}
	}
	conns.Add(1)
	go func() {
		defer conns.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = a.Close()
		_ = ln.Close()
		conns.Wait()
	})
	if err := a.SetPeer(2, ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	big := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 2, Index: 10,
		Entries: []domain.Entry{{Index: 11, Term: 2, Data: make([]byte, 32<<20)}}}
	if err := a.Send(big); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the large append never started")
	}
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: 2, Commit: 10}
	if err := a.Send(hb); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if d := cmp.Diff(hb, m, equateEmpty); d != "" {
			t.Fatalf("(-want +got):\n%s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heartbeat waited behind a large append its receiver does not read")
	}
	if st := a.Stats(); st.LargeSent != 0 {
		t.Fatalf("sender stats %+v: the large append was sent whole, so the receiver did not stall it", st)
	}
}

// A large message costs the receiver its length in buffers, plus at most
// the preallocation it outgrew: not the 64 MiB preallocation plus the
// length it used to.
func TestLargeMessageReceiveAllocatesItsLength(t *testing.T) {
	// Past the old preallocation of 64 MiB.
	const size = 70 << 20
	m := largeApp(rand.New(rand.NewPCG(5, 6)), 2, 1, size)
	in := frameBytes(t, largeFrames(t, m, 1<<20)...)
	var got []domain.Message
	s := &session{peer: 2, self: 1, maxSnap: 1 << 30, maxMsg: 1 << 30, deliver: func(m domain.Message) { got = append(got, m) }}
	fr := newFrameReader(bytes.NewReader(in), 2<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := s.run(fr)
	runtime.ReadMemStats(&after)
	if err != io.EOF || len(got) != 1 || !bytes.Equal(got[0].Entries[0].Data, m.Entries[0].Data) {
		t.Fatalf("session: %v, %d messages", err, len(got))
	}
	if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(size+8<<20); alloc > limit {
		t.Fatalf("receiving %d bytes allocated %d, want at most %d", size, alloc, limit)
	}
}

// TestSessionCountsLargeBytesReceiving: while a large message's chunks
// arrive, its announced size counts as being received (what
// Transport.LargeBacklog reports), and it stops counting once the message
// is whole or its stream ends broken.
func TestSessionCountsLargeBytesReceiving(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	big := largeApp(rng, 2, 1, 5000)
	lf := largeFrames(t, big, 1000)
	announced := uint64(len(appendMessage(nil, &big, true)))
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1}
	cases := []struct {
		name    string
		frames  []func(w *bufio.Writer) error
		wantErr error
	}{
		{"whole", append(append([]func(w *bufio.Writer) error{}, lf...), msgFrame(hb)), io.EOF},
		{"cut short", lf[:2], io.ErrUnexpectedEOF},
		{"corrupt", append(append([]func(w *bufio.Writer) error{}, lf[:2]...), frame(frameLargeChunk, make([]byte, 1<<20))), domain.ErrCorrupt},
	}
	for _, c := range cases {
		var receiving atomic.Uint64
		var seen []uint64 // the count before each frame is read
		s := &session{peer: 2, self: 1, maxSnap: 1 << 20, maxMsg: 1 << 20, receiving: &receiving,
			deliver:    func(domain.Message) {},
			beforeRead: func() { seen = append(seen, receiving.Load()) }}
		err := s.run(newFrameReader(bytes.NewReader(frameBytes(t, c.frames...)), 1<<20))
		if !errors.Is(err, c.wantErr) {
			t.Errorf("%s: session ended with %v, want %v", c.name, err, c.wantErr)
		}
		if got := receiving.Load(); got != 0 {
			t.Errorf("%s: %d bytes still counted as receiving after the session", c.name, got)
		}
		// Before the header: nothing; after it, the announced size.
		if len(seen) < 3 || seen[0] != 0 || seen[1] != announced || seen[2] != announced {
			t.Errorf("%s: counts before each frame %v, want 0 then %d while the chunks arrive", c.name, seen, announced)
		}
	}
}

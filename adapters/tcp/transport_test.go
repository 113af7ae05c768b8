package tcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/rs/zerolog"

	"github.com/seshat-kv/seshat/domain"
)

// syncBuffer collects a transport's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testOptions are fast settings for node id, logging into the returned
// buffer.
func testOptions(id domain.NodeID) (Options, *syncBuffer) {
	logs := &syncBuffer{}
	log := zerolog.New(logs).Level(zerolog.InfoLevel)
	return Options{
		ID: id, ClusterID: "test",
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Logger: &log,
	}, logs
}

func newTransport(t testing.TB, opts Options) *Transport {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// mesh starts n transports (ids 1..n) that know each other and waits until
// every one is connected to every other.
func mesh(t testing.TB, n int, mutate func(*Options)) ([]*Transport, []*syncBuffer) {
	t.Helper()
	trs := make([]*Transport, n)
	logs := make([]*syncBuffer, n)
	for i := range trs {
		opts, lb := testOptions(domain.NodeID(i + 1))
		if mutate != nil {
			mutate(&opts)
		}
		trs[i], logs[i] = newTransport(t, opts), lb
	}
	for i, a := range trs {
		for j, b := range trs {
			if i != j {
				if err := a.SetPeer(domain.NodeID(j+1), b.Addr().String()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	eventually(t, 5*time.Second, "mesh connected", func() bool {
		for _, tr := range trs {
			if tr.Stats().Connects < uint64(n-1) {
				return false
			}
		}
		return true
	})
	return trs, logs
}

func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// receive returns the next n messages of tr.
func receive(t testing.TB, tr *Transport, n int, within time.Duration) []domain.Message {
	t.Helper()
	timeout := time.After(within)
	var got []domain.Message
	for len(got) < n {
		select {
		case m, ok := <-tr.Receive():
			if !ok {
				t.Fatalf("Receive closed after %d of %d messages", len(got), n)
			}
			got = append(got, m)
		case <-timeout:
			t.Fatalf("received %d of %d messages in %v; stats %+v", len(got), n, within, tr.Stats())
		}
	}
	return got
}

// expectNothing fails if tr receives a message within d.
func expectNothing(t testing.TB, tr *Transport, d time.Duration) {
	t.Helper()
	select {
	case m := <-tr.Receive():
		t.Fatalf("unexpected message %v", m)
	case <-time.After(d):
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Three transports send each other a message of every type, a MsgApp with
// big entries and a multi-chunk snapshot; each receives exactly what each
// other sent, in order.
func TestMeshExchangesEveryMessageType(t *testing.T) {
	const n = 3
	trs, logs := mesh(t, n, func(o *Options) { o.SnapshotChunkBytes = 256 << 10 })
	rng := rand.New(rand.NewPCG(1, 2))
	sent := map[[2]domain.NodeID][]domain.Message{}
	for i, a := range trs {
		for j := range trs {
			if i == j {
				continue
			}
			from, to := domain.NodeID(i+1), domain.NodeID(j+1)
			ms := sampleMessages(from, to)
			big := domain.Message{Type: domain.MsgApp, From: from, To: to, Term: 3, Index: 10, Commit: 9}
			for k := range 4 {
				big.Entries = append(big.Entries, domain.Entry{Index: domain.Index(11 + k), Term: 3, Data: randomBytes(rng, 1<<20)})
			}
			snap := domain.Message{Type: domain.MsgSnap, From: from, To: to, Term: 3, Snapshot: &domain.Snapshot{
				Meta: domain.SnapshotMeta{Index: 500, Term: 3, Membership: domain.Membership{Voters: []domain.NodeID{1, 2, 3}}},
				Data: randomBytes(rng, 3<<20+17),
			}}
			ms = append(ms, big, snap)
			for _, m := range ms {
				if err := a.Send(m); err != nil {
					t.Fatal(err)
				}
			}
			sent[[2]domain.NodeID{from, to}] = ms
		}
	}
	for j, b := range trs {
		to := domain.NodeID(j + 1)
		want := len(sent[[2]domain.NodeID{1, 2}]) * (n - 1)
		byFrom := map[domain.NodeID][]domain.Message{}
		for _, m := range receive(t, b, want, 10*time.Second) {
			byFrom[m.From] = append(byFrom[m.From], m)
		}
		for from := domain.NodeID(1); from <= n; from++ {
			if from == to {
				continue
			}
			// Order holds within a lane (control, bulk), not across.
			if d := cmp.Diff(lanes(sent[[2]domain.NodeID{from, to}]), lanes(byFrom[from]), equateEmpty); d != "" {
				t.Fatalf("%d -> %d (-sent +received):\n%s", from, to, d)
			}
		}
		expectNothing(t, b, 20*time.Millisecond)
	}
	for i, tr := range trs {
		eventually(t, 5*time.Second, fmt.Sprintf("node %d stats", i+1), func() bool {
			st := tr.Stats()
			return st.Dropped == 0 && st.InboxDropped == 0 && st.SnapshotsSent == 2*(n-1) && st.SnapshotsReceived == 2*(n-1)
		})
		if !strings.Contains(logs[i].String(), "snapshot send progress") {
			t.Errorf("node %d logged no snapshot progress", i+1)
		}
	}
}

// lanes splits messages into the control lane's and the bulk lane's (MsgApp,
// MsgSnap), each in its order.
func lanes(ms []domain.Message) [2][]domain.Message {
	var l [2][]domain.Message
	for _, m := range ms {
		i := 0
		if m.Type == domain.MsgApp || m.Type == domain.MsgSnap {
			i = 1
		}
		l[i] = append(l[i], m)
	}
	return l
}

func TestMessagesFromOneSenderArriveInOrder(t *testing.T) {
	trs, _ := mesh(t, 2, func(o *Options) { o.SendQueue = 8192; o.InboxSize = 8192 })
	const n = 5000
	for i := range n {
		m := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Index: domain.Index(i),
			Entries: []domain.Entry{{Index: domain.Index(i + 1), Data: []byte("x")}}}
		if i%7 == 0 {
			m = domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Index: domain.Index(i)}
		}
		if err := trs[0].Send(m); err != nil {
			t.Fatal(err)
		}
	}
	for lane, ms := range lanes(receive(t, trs[1], n, 10*time.Second)) {
		for i := 1; i < len(ms); i++ {
			if ms[i].Index <= ms[i-1].Index {
				t.Fatalf("lane %d: message %d has index %d after %d", lane, i, ms[i].Index, ms[i-1].Index)
			}
		}
	}
	eventually(t, 5*time.Second, "sender stats", func() bool {
		st := trs[0].Stats()
		return st.Sent == n && st.Dropped == 0
	})
}

func TestReconnectAfterPeerRestart(t *testing.T) {
	a := newTransport(t, func() Options { o, _ := testOptions(1); return o }())
	ob, _ := testOptions(2)
	ob.Peers = map[domain.NodeID]string{1: a.Addr().String()}
	b := newTransport(t, ob)
	if err := a.SetPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	hb := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Term: 1}
	sendUntilReceived := func(to *Transport) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if err := a.Send(hb); err != nil {
				t.Fatal(err)
			}
			select {
			case m := <-to.Receive():
				if d := cmp.Diff(hb, m, equateEmpty); d != "" {
					t.Fatalf("(-want +got):\n%s", d)
				}
				return
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no message after 5s; sender stats %+v", a.Stats())
			}
		}
	}
	sendUntilReceived(b)

	// Restart b on the same address: a notices the closed connection,
	// backs off, redials and carries on.
	addr := b.Addr().String()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 20 { // sent while b is down: dropped, never an error
		if err := a.Send(hb); err != nil {
			t.Fatal(err)
		}
	}
	ob.ListenAddr = addr
	b2 := newTransport(t, ob)
	sendUntilReceived(b2)
	if st := a.Stats(); st.Connects < 2 {
		t.Fatalf("sender stats %+v, want at least 2 connects", st)
	}
}

func TestWrongClusterRejected(t *testing.T) {
	oa, logsA := testOptions(1)
	ob, logsB := testOptions(2)
	ob.ClusterID = "other"
	a, b := newTransport(t, oa), newTransport(t, ob)
	if err := a.SetPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	_ = a.Send(domain.Message{Type: domain.MsgVote, From: 1, To: 2})
	eventually(t, 5*time.Second, "rejection", func() bool {
		return b.Stats().RejectedConns >= 1 && a.Stats().RejectedConns >= 1 &&
			strings.Contains(logsA.String(), "rejected the handshake")
	})
	expectNothing(t, b, 50*time.Millisecond)
	if st := a.Stats(); st.Connects != 0 {
		t.Fatalf("a connected despite the cluster mismatch: %+v", st)
	}
	for _, l := range []string{logsA.String(), logsB.String()} {
		if !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, "cluster id") {
			t.Fatalf("no warning naming the cluster id:\n%s", l)
		}
	}
}

// rawHandshake dials addr, sends hs and returns the connection with the
// answer frame.
func rawHandshake(t testing.TB, addr string, hs handshakePayload) (net.Conn, frameType, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write(frameBytes(t, frame(frameHandshake, hs.append(nil)))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	typ, p, err := newFrameReader(c, 1<<10).readFrame()
	if err != nil {
		t.Fatalf("handshake answer: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, typ, p
}

// waitClosed fails unless the other side closes c within 3s.
func waitClosed(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		t.Fatal("connection still open after 3s")
	}
}

func TestHandshakeRefusals(t *testing.T) {
	o, logs := testOptions(1)
	o.Peers = map[domain.NodeID]string{2: "127.0.0.1:1"}
	b := newTransport(t, o)
	cases := map[string]handshakePayload{
		"unknown peer":  {ClusterID: "test", From: 9, To: 1},
		"self as peer":  {ClusterID: "test", From: 1, To: 1},
		"wrong target":  {ClusterID: "test", From: 2, To: 3},
		"wrong cluster": {ClusterID: "prod", From: 2, To: 1},
	}
	for name, hs := range cases {
		c, typ, reason := rawHandshake(t, b.Addr().String(), hs)
		if typ != frameReject {
			t.Fatalf("%s: answered with %v", name, typ)
		}
		waitClosed(t, c)
		t.Logf("%s: %s", name, reason)
	}
	if st := b.Stats(); st.RejectedConns != uint64(len(cases)) {
		t.Fatalf("stats %+v, want %d rejected", st, len(cases))
	}
	if !strings.Contains(logs.String(), "not a known peer") {
		t.Fatalf("log:\n%s", logs)
	}
	c, typ, p := rawHandshake(t, b.Addr().String(), handshakePayload{ClusterID: "test", From: 2, To: 1})
	if ack, err := decodeHandshake(p); typ != frameHandshakeAck || err != nil || !cmp.Equal(ack, handshakePayload{ClusterID: "test", From: 1, To: 2}) {
		t.Fatalf("good handshake answered with %v %+v %v", typ, ack, err)
	}
	_ = c.Close()
}

// A connection that handshakes as node 2 cannot speak for node 3.
func TestImpostorDisconnected(t *testing.T) {
	o, logs := testOptions(1)
	o.Peers = map[domain.NodeID]string{2: "127.0.0.1:1", 3: "127.0.0.1:1"}
	b := newTransport(t, o)
	c, typ, _ := rawHandshake(t, b.Addr().String(), handshakePayload{ClusterID: "test", From: 2, To: 1})
	if typ != frameHandshakeAck {
		t.Fatalf("answered with %v", typ)
	}
	honest := domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1, Term: 4}
	forged := domain.Message{Type: domain.MsgVote, From: 3, To: 1, Term: 5}
	_, _ = c.Write(frameBytes(t, msgFrame(honest), msgFrame(forged), msgFrame(honest)))
	if got := receive(t, b, 1, 2*time.Second); got[0].From != 2 {
		t.Fatalf("got %v", got[0])
	}
	waitClosed(t, c)
	expectNothing(t, b, 50*time.Millisecond)
	if st := b.Stats(); st.BadConns != 1 || st.Received != 1 {
		t.Fatalf("stats %+v", st)
	}
	if l := logs.String(); !strings.Contains(l, "protocol violation") || !strings.Contains(l, c.LocalAddr().String()) {
		t.Fatalf("no warning with the remote address:\n%s", l)
	}
}

// Garbage on the port, before or after a handshake, costs the sender its
// connection and nothing else.
func TestGarbageDisconnectsAndTransportKeepsWorking(t *testing.T) {
	trs, logs := mesh(t, 2, nil)
	b := trs[1]
	addr := b.Addr().String()
	// The garbage comes from a known peer, 3, that is not running: were it
	// node 1, node 1's own reconnection could replace a raw connection
	// before its garbage is read, and the count below would race.
	if err := b.SetPeer(3, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	hs := handshakePayload{ClusterID: "test", From: 3, To: 2}
	oversized := frameBytes(t, frame(frameKeepalive, nil))
	oversized[5] = byte(frameMessage)
	oversized[6], oversized[7] = 0x7f, 0xff
	badCRC := frameBytes(t, msgFrame(domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2}))
	badCRC[len(badCRC)-1] ^= 0xff
	afterHandshake := map[string][]byte{
		"junk":              []byte("\x00\x01 this is not a frame \xff\xfe"),
		"oversized length":  oversized,
		"bad crc":           badCRC,
		"undecodable":       frameBytes(t, frame(frameMessage, []byte{0xff, 0xff})),
		"truncated message": frameBytes(t, frame(frameMessage, EncodeMessage(nil, domain.Message{Type: domain.MsgApp, From: 1, To: 2})[:5])),
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5 { // raw junk instead of a handshake
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(randomBytes(rng, 20+i*1000))
		waitClosed(t, c)
		_ = c.Close()
	}
	for name, junk := range afterHandshake {
		c, typ, _ := rawHandshake(t, addr, hs)
		if typ != frameHandshakeAck {
			t.Fatalf("%s: answered with %v", name, typ)
		}
		_, _ = c.Write(junk)
		waitClosed(t, c)
		if l := logs[1].String(); !strings.Contains(l, c.LocalAddr().String()) {
			t.Fatalf("%s: no log line with the remote address %s:\n%s", name, c.LocalAddr(), l)
		}
	}
	st := b.Stats()
	if st.RejectedConns != 5 || st.BadConns != uint64(len(afterHandshake)) {
		t.Fatalf("stats %+v", st)
	}
	// a's messages still flow.
	m := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Entries: []domain.Entry{{Index: 1, Term: 1, Data: []byte("still here")}}}
	eventually(t, 5*time.Second, "a message after the garbage", func() bool {
		_ = trs[0].Send(m)
		select {
		case got := <-b.Receive():
			return cmp.Equal(m, got, equateEmpty)
		case <-time.After(10 * time.Millisecond):
			return false
		}
	})
}

func TestCloseSemantics(t *testing.T) {
	trs, _ := mesh(t, 2, nil)
	a := trs[0]
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Send(domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2}); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	if err := a.SetPeer(3, "127.0.0.1:1"); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("SetPeer after Close: %v", err)
	}
	if err := a.RemovePeer(2); !errors.Is(err, domain.ErrClosed) {
		t.Fatalf("RemovePeer after Close: %v", err)
	}
	select {
	case _, ok := <-a.Receive():
		if ok {
			t.Fatal("a message on a closed transport")
		}
	case <-time.After(time.Second):
		t.Fatal("Receive not closed by Close")
	}
	if _, err := net.DialTimeout("tcp", a.Addr().String(), time.Second); err == nil {
		t.Fatal("still listening after Close")
	}
}

// A peer that accepts but never answers the handshake: the writer waits,
// its queue fills, Send drops without blocking, Close still returns fast.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	}()
	o, _ := testOptions(1)
	o.SendQueue = 8
	o.DialTimeout = 10 * time.Second
	o.Peers = map[domain.NodeID]string{2: ln.Addr().String()}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	start := time.Now()
	for i := range n {
		if err := a.Send(domain.Message{Type: domain.MsgApp, From: 1, To: 2, Index: domain.Index(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("%d sends took %v", n, d)
	}
	if err := a.Send(domain.Message{Type: domain.MsgApp, From: 1, To: 7}); err != nil {
		t.Fatalf("send to an unknown peer: %v", err)
	}
	// The queue keeps 8; the bulk lane's writer may hold one more, the
	// first it took, which it dials for.
	if st := a.Stats(); st.Dropped != n-8+1 && st.Dropped != n-9+1 || st.Sent != 0 {
		t.Fatalf("stats %+v, want %d or %d dropped", st, n-8+1, n-9+1)
	}
	start = time.Now()
	_ = a.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v with a writer stuck in a handshake", d)
	}
}

func TestSenderDropsWhatCannotBeSent(t *testing.T) {
	trs, logs := mesh(t, 2, func(o *Options) {
		o.MaxFrameBytes = 64 << 10
		o.MaxSnapshotBytes = 1 << 20
		o.MaxMessageBytes = 1 << 20
	})
	a, b := trs[0], trs[1]
	// A MsgApp travels in chunks up to MaxMessageBytes; other messages
	// must fit a frame.
	tooBig := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Entries: []domain.Entry{{Data: make([]byte, 2<<20)}}}
	bigHeartbeat := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2, Context: make([]byte, 100<<10)}
	badType := domain.Message{Type: 0, From: 1, To: 2}
	badEntry := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Entries: []domain.Entry{{Type: 77}}}
	noSnap := domain.Message{Type: domain.MsgSnap, From: 1, To: 2}
	hugeSnap := domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Snapshot: &domain.Snapshot{Data: make([]byte, 2<<20)}}
	// Bigger than MaxFrameBytes but within MaxSnapshotBytes: chunked.
	okSnap := domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Snapshot: &domain.Snapshot{Data: bytes.Repeat([]byte("s"), 500<<10)}}
	ok := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2}
	for _, m := range []domain.Message{tooBig, bigHeartbeat, badType, badEntry, noSnap, hugeSnap, okSnap, ok} {
		if err := a.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	got := receive(t, b, 2, 5*time.Second)
	if d := cmp.Diff(lanes([]domain.Message{okSnap, ok}), lanes(got), equateEmpty); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	eventually(t, 5*time.Second, "6 dropped, 2 sent", func() bool {
		st := a.Stats()
		return st.Dropped == 6 && st.Sent == 2
	})
	if !strings.Contains(logs[0].String(), "exceeds MaxFrameBytes") || !strings.Contains(logs[0].String(), "exceeds MaxMessageBytes") {
		t.Fatalf("log:\n%s", logs[0])
	}
}

func TestRemovePeer(t *testing.T) {
	trs, logs := mesh(t, 2, nil)
	a, b := trs[0], trs[1]
	if err := b.RemovePeer(1); err != nil {
		t.Fatal(err)
	}
	// a's connection is cut and its redials are refused, as a removed
	// member's, not an unknown node's.
	// (The count goes up before the log line is written: wait for both.)
	eventually(t, 5*time.Second, "a refused, with a log line saying why", func() bool {
		return b.Stats().RejectedConns > 0 && strings.Contains(logs[1].String(), "node 1 was removed from the cluster")
	})
	_ = a.Send(domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2})
	_ = b.Send(domain.Message{Type: domain.MsgHeartbeat, From: 2, To: 1}) // dropped: unknown now
	expectNothing(t, b, 50*time.Millisecond)
	if st := b.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Back again.
	if err := b.SetPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a message after SetPeer", func() bool {
		_ = a.Send(domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2})
		select {
		case <-b.Receive():
			return true
		case <-time.After(10 * time.Millisecond):
			return false
		}
	})
}

func TestOptions(t *testing.T) {
	var o Options
	o.ID = 3
	o.Peers = map[domain.NodeID]string{3: "127.0.0.1:7000", 1: "h:1"}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.ListenAddr != "127.0.0.1:7000" || o.SendQueue != DefaultSendQueue || o.MaxFrameBytes != DefaultMaxFrameBytes ||
		o.SnapshotChunkBytes != DefaultSnapshotChunkBytes || o.JitterSeed != 3 || o.Logger == nil {
		t.Fatalf("defaults: %+v", o)
	}
	bad := []func(*Options){
		func(o *Options) { o.ID = 0 },
		func(o *Options) { o.ClusterID = strings.Repeat("x", 256) },
		func(o *Options) { o.BackoffMax = o.BackoffMin / 2 },
		func(o *Options) { o.MaxFrameBytes = 100 },
		func(o *Options) { o.SnapshotChunkBytes = o.MaxFrameBytes + 1 },
		func(o *Options) { o.Peers = map[domain.NodeID]string{0: "x:1"} },
		func(o *Options) { o.Peers = map[domain.NodeID]string{2: ""} },
		func(o *Options) { o.SendQueue = -1 },
	}
	for i, f := range bad {
		c := o.Clone()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("case %d: %v, want ErrInvalidOptions", i, err)
		}
	}
	if _, err := New(Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("New with no id: %v", err)
	}
}

// Close stops every goroutine: listener, writers (also mid-handshake and
// mid-backoff), readers (also mid-snapshot).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		trs := make([]*Transport, 3)
		for i := range trs {
			o, _ := testOptions(domain.NodeID(i + 1))
			o.Peers = map[domain.NodeID]string{9: "127.0.0.1:1"} // unreachable: backing off
			var err error
			if trs[i], err = New(o); err != nil {
				t.Fatal(err)
			}
		}
		for i, a := range trs {
			for j, b := range trs {
				if i != j {
					_ = a.SetPeer(domain.NodeID(j+1), b.Addr().String())
				}
			}
		}
		eventually(t, 5*time.Second, "connected", func() bool { return trs[0].Stats().Connects >= 2 })
		_ = trs[0].Send(domain.Message{Type: domain.MsgSnap, From: 1, To: 2, Snapshot: &domain.Snapshot{Data: make([]byte, 4<<20)}})
		_ = trs[0].Send(domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 3})
		receive(t, trs[2], 1, 5*time.Second)
		// A raw connection that never sends its handshake.
		c, err := net.Dial("tcp", trs[1].Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, tr := range trs {
			_ = tr.Close()
		}
	}()
	eventually(t, 5*time.Second, fmt.Sprintf("goroutines back to %d", base), func() bool {
		return runtime.NumGoroutine() <= base
	})
}

func TestBackoffDelay(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	lo, hi := 10*time.Millisecond, 300*time.Millisecond
	for failures := 1; failures < 70; failures++ {
		d := min(lo<<min(failures-1, 20), hi)
		for range 100 {
			if got := backoffDelay(lo, hi, failures, rng); got < d/2 || got > d {
				t.Fatalf("failures=%d: delay %v outside [%v, %v]", failures, got, d/2, d)
			}
		}
	}
	// Jitter: the draws differ.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoffDelay(lo, hi, 3, rng)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d distinct delays in 20 draws", len(seen))
	}
}

// Keep-alives hold an idle connection open past the peer's ReadTimeout; a
// connection that stays silent is dropped after it, and one that never
// sends its handshake after DialTimeout.
func TestIdleConnectionsAndTimeouts(t *testing.T) {
	const rt = time.Second
	trs, _ := mesh(t, 2, func(o *Options) { o.ReadTimeout = rt; o.DialTimeout = rt })
	addr := trs[1].Addr().String()
	if err := trs[1].SetPeer(3, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	silent, typ, _ := rawHandshake(t, addr, handshakePayload{ClusterID: "test", From: 3, To: 2})
	if typ != frameHandshakeAck {
		t.Fatalf("answered with %v", typ)
	}
	mute, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	start := time.Now()
	waitClosed(t, mute)
	waitClosed(t, silent)
	if d := time.Since(start); d < rt/2 {
		t.Fatalf("silent connections closed after %v, before the timeouts", d)
	}
	// Node 1's connection, idle all along, is still the first one.
	time.Sleep(2 * rt)
	if st := trs[0].Stats(); st.Connects != 1 || trs[1].Stats().BadConns != 0 {
		t.Fatalf("idle connection was not kept alive: %+v", st)
	}
	m := domain.Message{Type: domain.MsgHeartbeat, From: 1, To: 2}
	if err := trs[0].Send(m); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, trs[1], 1, 5*time.Second); !cmp.Equal(m, got[0], equateEmpty) {
		t.Fatalf("got %v", got[0])
	}
}

// A writer backing off from a peer that was down dials it again as soon
// as that peer connects to us, not after the backoff: a restarted node
// must hear from its leader within a heartbeat, not BackoffMax later.
func TestPeerDialsBackWhenItConnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bAddr := ln.Addr().String()
	ln.Close() // b is down, for now

	optsA, _ := testOptions(1)
	optsA.BackoffMin, optsA.BackoffMax = 10*time.Second, 20*time.Second
	a := newTransport(t, optsA)
	if err := a.SetPeer(2, bAddr); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a's first dial fails: 10s+ of backoff

	optsB, _ := testOptions(2)
	optsB.ListenAddr = bAddr
	b := newTransport(t, optsB)
	if err := b.SetPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "a connected to b", func() bool { return a.Stats().Connects >= 1 })
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a reconnected after %v: it waited out its backoff", d)
	}
}

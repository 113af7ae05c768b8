package tcp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

const testSecret = "correct horse battery staple"

func withSecret(s string) func(*Options) {
	return func(o *Options) { o.PeerSecret = []byte(s) }
}

// Every input of a proof changes it: the role, the cluster, both ids, both
// nonces and the secret. So a proof is good for one handshake only.
func TestProofBindsEveryInput(t *testing.T) {
	n1, n2 := bytes.Repeat([]byte{1}, nonceSize), bytes.Repeat([]byte{2}, nonceSize)
	base := proof([]byte(testSecret), roleDialer, "c", 1, 2, n1, n2)
	variants := map[string][]byte{
		"role":           proof([]byte(testSecret), roleAcceptor, "c", 1, 2, n1, n2),
		"cluster":        proof([]byte(testSecret), roleDialer, "d", 1, 2, n1, n2),
		"dialer":         proof([]byte(testSecret), roleDialer, "c", 3, 2, n1, n2),
		"acceptor":       proof([]byte(testSecret), roleDialer, "c", 1, 3, n1, n2),
		"ids swapped":    proof([]byte(testSecret), roleDialer, "c", 2, 1, n1, n2),
		"dialer nonce":   proof([]byte(testSecret), roleDialer, "c", 1, 2, n2, n2),
		"acceptor nonce": proof([]byte(testSecret), roleDialer, "c", 1, 2, n1, n1),
		"nonces swapped": proof([]byte(testSecret), roleDialer, "c", 1, 2, n2, n1),
		"secret":         proof([]byte(testSecret+"!"), roleDialer, "c", 1, 2, n1, n2),
	}
	if len(base) != macSize {
		t.Fatalf("proof of %d bytes", len(base))
	}
	if !bytes.Equal(base, proof([]byte(testSecret), roleDialer, "c", 1, 2, n1, n2)) {
		t.Fatal("proof is not deterministic")
	}
	for name, v := range variants {
		if bytes.Equal(base, v) {
			t.Errorf("changing the %s leaves the proof unchanged", name)
		}
	}
}

func TestPeerSecretOptions(t *testing.T) {
	o, _ := testOptions(1)
	o.PeerSecret = []byte("short")
	if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a %d-byte secret: %v, want ErrInvalidOptions", len(o.PeerSecret), err)
	}
	o.PeerSecret = []byte(testSecret)
	c := o.Clone()
	c.PeerSecret[0] = 'X'
	if o.PeerSecret[0] != testSecret[0] {
		t.Fatal("Clone shares the secret")
	}
}

// Nodes that share the secret exchange messages as before.
func TestPeerSecretMesh(t *testing.T) {
	trs, logs := mesh(t, 3, withSecret(testSecret))
	for i, a := range trs {
		for j := range trs {
			if i != j {
				_ = a.Send(domain.Message{Type: domain.MsgHeartbeat, From: domain.NodeID(i + 1), To: domain.NodeID(j + 1), Term: 7})
			}
		}
	}
	for _, tr := range trs {
		for _, m := range receive(t, tr, 2, 5*time.Second) {
			if m.Term != 7 {
				t.Fatalf("got %v", m)
			}
		}
	}
	for i, l := range logs {
		if strings.Contains(l.String(), testSecret) {
			t.Fatalf("node %d logged the secret:\n%s", i+1, l)
		}
		// (A dial may come before mesh has told its target about the
		// dialer: refused as an unknown peer, and retried.)
		if strings.Contains(l.String(), `"auth":true`) {
			t.Fatalf("node %d refused a peer's authentication:\n%s", i+1, l)
		}
	}
}

// refusedBothWays starts a and b with the given options and checks that
// neither connects to the other, that both log why, and that a message
// never gets through.
func refusedBothWays(t *testing.T, ma, mb func(*Options), want string) {
	t.Helper()
	oa, logsA := testOptions(1)
	ob, logsB := testOptions(2)
	ma(&oa)
	mb(&ob)
	a, b := newTransport(t, oa), newTransport(t, ob)
	if err := a.SetPeer(2, b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPeer(1, a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "refusals both ways", func() bool {
		_ = a.Send(domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 9})
		_ = b.Send(domain.Message{Type: domain.MsgVote, From: 2, To: 1, Term: 9})
		return a.Stats().RejectedConns >= 1 && b.Stats().RejectedConns >= 1
	})
	expectNothing(t, a, 50*time.Millisecond)
	expectNothing(t, b, 50*time.Millisecond)
	for i, tr := range []*Transport{a, b} {
		if st := tr.Stats(); st.Connects != 0 || st.Received != 0 {
			t.Fatalf("node %d got through: %+v", i+1, st)
		}
	}
	for i, l := range []string{logsA.String(), logsB.String()} {
		if !strings.Contains(l, want) || !strings.Contains(l, `"auth":true`) {
			t.Fatalf("node %d logged no refusal saying %q:\n%s", i+1, want, l)
		}
		for _, s := range [][]byte{oa.PeerSecret, ob.PeerSecret} {
			if len(s) > 0 && strings.Contains(l, string(s)) {
				t.Fatalf("node %d logged a secret:\n%s", i+1, l)
			}
		}
	}
}

func TestWrongSecretRefused(t *testing.T) {
	refusedBothWays(t, withSecret(testSecret), withSecret("another secret, as long"), "does not match")
}

func TestOneSidedSecretRefused(t *testing.T) {
	refusedBothWays(t, withSecret(testSecret), func(*Options) {}, "peer secret")
}

// handshakeAs runs the dialer's side of a handshake on c as node from,
// towards node to, with secret, recording every byte it sends.
func handshakeAs(t *testing.T, c net.Conn, from, to domain.NodeID, secret string, sent *bytes.Buffer) error {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	h := &handshaker{cluster: "test", self: from, secret: []byte(secret)}
	err := h.dial(newFrameReader(c, handshakeMaxBytes), bufio.NewWriter(io.MultiWriter(c, sent)), to, laneControl)
	_ = c.SetDeadline(time.Time{})
	return err
}

// secretNode starts node 1 with the test secret and node 2 as a known peer
// (not running), and returns it with its logs.
func secretNode(t *testing.T) (*Transport, *syncBuffer) {
	o, logs := testOptions(1)
	o.PeerSecret = []byte(testSecret)
	o.Peers = map[domain.NodeID]string{2: "127.0.0.1:1"}
	return newTransport(t, o), logs
}

func dialTo(t *testing.T, tr *Transport) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// An eavesdropper who recorded a whole successful handshake cannot replay
// it: the acceptor's challenge is new, so the recorded proof no longer
// matches.
func TestReplayedHandshakeRefused(t *testing.T) {
	b, logs := secretNode(t)
	c := dialTo(t, b)
	var transcript bytes.Buffer
	if err := handshakeAs(t, c, 2, 1, testSecret, &transcript); err != nil {
		t.Fatalf("the honest handshake failed: %v", err)
	}
	_ = c.Close()

	replay := dialTo(t, b)
	forged := frameBytes(t, msgFrame(domain.Message{Type: domain.MsgVote, From: 2, To: 1, Term: 99}))
	if _, err := replay.Write(append(transcript.Bytes(), forged...)); err != nil {
		t.Fatal(err)
	}
	_ = replay.SetReadDeadline(time.Now().Add(3 * time.Second))
	fr := newFrameReader(replay, handshakeMaxBytes)
	if typ, _, err := fr.readFrame(); err != nil || typ != frameChallenge {
		t.Fatalf("first answer %v, %v; want a challenge", typ, err)
	}
	if typ, p, err := fr.readFrame(); err != nil || typ != frameReject {
		t.Fatalf("answer to the replayed proof %v %q, %v; want a reject", typ, p, err)
	}
	waitClosed(t, replay)
	expectNothing(t, b, 50*time.Millisecond)
	if st := b.Stats(); st.RejectedConns != 1 || st.Received != 0 {
		t.Fatalf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "does not match") {
		t.Fatalf("no refusal logged:\n%s", logs)
	}
}

// A dialer that sends the acceptor's own proof back (a reflection) is
// refused: the two sides' proofs differ by their role.
func TestReflectedProofRefused(t *testing.T) {
	b, _ := secretNode(t)
	c := dialTo(t, b)
	hs := handshakePayload{ClusterID: "test", From: 2, To: 1, Nonce: newNonce()}
	if _, err := c.Write(frameBytes(t, frame(frameHandshake, hs.append(nil)))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	fr := newFrameReader(c, handshakeMaxBytes)
	typ, p, err := fr.readFrame()
	if err != nil || typ != frameChallenge {
		t.Fatalf("answer %v, %v; want a challenge", typ, err)
	}
	ch, err := decodeHandshake(p)
	if err != nil {
		t.Fatal(err)
	}
	pr := handshakePayload{ClusterID: "test", From: 2, To: 1, MAC: ch.MAC}
	if _, err := c.Write(frameBytes(t, frame(frameProof, pr.append(nil)))); err != nil {
		t.Fatal(err)
	}
	if typ, _, err := fr.readFrame(); err != nil || typ != frameReject {
		t.Fatalf("answer to the reflected proof %v, %v; want a reject", typ, err)
	}
	waitClosed(t, c) // the refusal is counted before the close
	if st := b.Stats(); st.RejectedConns != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A dialer does not trust an acceptor that replays a challenge recorded
// from another handshake: the dialer's nonce is new.
func TestDialerRefusesReplayedChallenge(t *testing.T) {
	acceptor := &handshaker{cluster: "test", self: 1, secret: []byte(testSecret),
		known: func(id domain.NodeID) bool { return id == 2 }}
	dialer := &handshaker{cluster: "test", self: 2, secret: []byte(testSecret)}

	// A recorded honest exchange: what the acceptor answered.
	c1, c2 := net.Pipe()
	var answers bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, _, err := acceptor.accept(newFrameReader(c2, handshakeMaxBytes), bufio.NewWriter(io.MultiWriter(c2, &answers)))
		done <- err
		_ = c2.Close()
	}()
	if err := dialer.dial(newFrameReader(c1, handshakeMaxBytes), bufio.NewWriter(c1), 1, laneControl); err != nil {
		t.Fatalf("honest handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("honest handshake, acceptor: %v", err)
	}
	_ = c1.Close()

	// Replayed to a new dial: refused before the dialer proves anything.
	var sent bytes.Buffer
	err := dialer.dial(newFrameReader(bytes.NewReader(answers.Bytes()), handshakeMaxBytes), bufio.NewWriter(&sent), 1, laneControl)
	if !errors.Is(err, errAuth) {
		t.Fatalf("replayed challenge: %v, want errAuth", err)
	}
	fr := newFrameReader(&sent, handshakeMaxBytes)
	if typ, _, err := fr.readFrame(); err != nil || typ != frameHandshake {
		t.Fatalf("first frame sent %v, %v", typ, err)
	}
	if typ, _, err := fr.readFrame(); err != nil || typ != frameReject {
		t.Fatalf("the dialer answered a bad challenge with a %v frame (%v), want a reject", typ, err)
	}
	if typ, _, err := fr.readFrame(); err != io.EOF {
		t.Fatalf("the dialer sent a %v frame after its reject (%v)", typ, err)
	}
}

// A process that knows the cluster id and a member's id but not the
// secret, running the real transport, gets not one message delivered.
func TestForgedMessagesNeverDelivered(t *testing.T) {
	ov, logs := testOptions(1)
	ov.PeerSecret = []byte(testSecret)
	ov.Peers = map[domain.NodeID]string{2: "127.0.0.1:1", 3: "127.0.0.1:1"}
	victim := newTransport(t, ov)
	for name, secret := range map[string]string{"no secret": "", "wrong secret": "not the secret but long"} {
		oa, _ := testOptions(2)
		oa.PeerSecret = []byte(secret)
		oa.Peers = map[domain.NodeID]string{1: victim.Addr().String()}
		attacker := newTransport(t, oa)
		before := victim.Stats().RejectedConns
		eventually(t, 5*time.Second, name+": refusals", func() bool {
			_ = attacker.Send(domain.Message{Type: domain.MsgVote, From: 2, To: 1, Term: 1000, LogTerm: 1000, Index: 1000})
			_ = attacker.Send(domain.Message{Type: domain.MsgApp, From: 2, To: 1, Term: 1000, Commit: 5,
				Entries: []domain.Entry{{Index: 1, Term: 1000, Data: []byte("forged")}}})
			return victim.Stats().RejectedConns >= before+3
		})
		_ = attacker.Close()
	}
	expectNothing(t, victim, 50*time.Millisecond)
	if st := victim.Stats(); st.Received != 0 || st.BadConns != 0 {
		t.Fatalf("victim stats %+v", st)
	}
	if !strings.Contains(logs.String(), "requires a peer secret") || !strings.Contains(logs.String(), "does not match") {
		t.Fatalf("refusals not logged with their reason:\n%s", logs)
	}
}

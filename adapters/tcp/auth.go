package tcp

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// Peer authentication: a mutual challenge-response on a shared secret,
// inside the handshake (see the package documentation for the exchange).
const (
	// nonceSize is the length of each side's fresh random challenge.
	nonceSize = 32
	// macSize is the length of a proof: HMAC-SHA256.
	macSize = sha256.Size
	// MinPeerSecretLen is the shortest Options.PeerSecret accepted. A proof
	// and both nonces cross the wire in the clear, so a short secret could
	// be guessed offline from one recorded handshake.
	MinPeerSecretLen = 16
	// authLabel starts every proof's input, so that no other use of the
	// secret can produce a valid proof.
	authLabel = "seshat peer auth v1\x00"
)

// The side a proof speaks for, so that one side's proof is never valid as
// the other's (a reflection).
const (
	roleAcceptor byte = 'a'
	roleDialer   byte = 'd'
)

// errAuth marks a refusal for a failed authentication (a wrong or missing
// secret on one side): the handshake was well formed, the peer is not
// trusted.
var errAuth = errors.New("peer authentication failed")

// errRejected marks the dialer's error when the acceptor refused it.
var errRejected = errors.New("tcp: handshake refused")

// newNonce returns nonceSize fresh random bytes (crypto/rand never fails).
func newNonce() []byte {
	b := make([]byte, nonceSize)
	_, _ = rand.Read(b)
	return b
}

// proof is HMAC-SHA256 under secret of everything that identifies one
// handshake: the role proving, the cluster, the dialer's and the
// acceptor's ids, the dialer's nonce and the acceptor's nonce. Both nonces
// are fresh per connection, so no proof is valid twice.
func proof(secret []byte, role byte, cluster string, dialer, acceptor domain.NodeID, dialerNonce, acceptorNonce []byte) []byte {
	m := hmac.New(sha256.New, secret)
	var b []byte
	b = append(b, authLabel...)
	b = append(b, role)
	b = binary.AppendUvarint(b, uint64(len(cluster)))
	b = append(b, cluster...)
	b = binary.BigEndian.AppendUint64(b, uint64(dialer))
	b = binary.BigEndian.AppendUint64(b, uint64(acceptor))
	b = append(b, dialerNonce...)
	b = append(b, acceptorNonce...)
	m.Write(b)
	return m.Sum(nil)
}

// handshaker runs one side of a connection's handshake over frames. It does
// no I/O of its own beyond the frame reader and writer it is given, so tests
// and fuzzers drive it with any byte stream.
type handshaker struct {
	cluster string // as on the wire: wireCluster(name, uuid)
	self    domain.NodeID
	secret  []byte                   // empty: no authentication
	known   func(domain.NodeID) bool // may this node connect?
	removed func(domain.NodeID) bool // was it removed from the cluster? may be nil
}

func (t *Transport) handshaker() *handshaker {
	return &handshaker{cluster: wireCluster(t.opts.ClusterID, t.opts.ClusterUUID), self: t.opts.ID, secret: t.opts.PeerSecret, known: t.knownPeer,
		removed: t.removedPeer}
}

// refusal is a handshake the acceptor turns down: the reason is sent to the
// dialer in a reject frame, and err (which wraps errAuth for a failed
// authentication) is logged.
type refusal struct {
	reason string
	auth   bool
}

func (r *refusal) Error() string { return "tcp: handshake refused: " + r.reason }

func (r *refusal) Unwrap() error {
	if r.auth {
		return errAuth
	}
	return nil
}

func refuse(auth bool, format string, args ...any) error {
	return &refusal{reason: fmt.Sprintf(format, args...), auth: auth}
}

// accept runs the acceptor's side: it reads the dialer's handshake, checks
// who it is, and with a secret sends a challenge carrying its own proof and
// checks the dialer's proof; then it acks. It returns the dialer's node id,
// or an error: a *refusal (already sent to the dialer in a reject frame), an
// error wrapping domain.ErrCorrupt for a malformed exchange, or the
// stream's error. It also returns the lane the dialer opens the
// connection for.
func (h *handshaker) accept(fr *frameReader, bw *bufio.Writer) (domain.NodeID, lane, error) {
	hs, err := h.read(fr, frameHandshake)
	if err != nil {
		return domain.None, laneControl, err
	}
	return hs.From, hs.Lane, h.acceptFrom(hs, fr, bw)
}

// acceptFrom runs the rest of accept once the dialer's handshake hs is read.
func (h *handshaker) acceptFrom(hs handshakePayload, fr *frameReader, bw *bufio.Writer) error {
	if err := h.checkDialer(hs); err != nil {
		return h.reject(bw, err)
	}
	if len(h.secret) > 0 {
		nonce := newNonce()
		ch := handshakePayload{ClusterID: h.cluster, From: h.self, To: hs.From, Nonce: nonce,
			MAC: proof(h.secret, roleAcceptor, h.cluster, hs.From, h.self, hs.Nonce, nonce)}
		if err := writeFlush(bw, frameChallenge, ch.append(nil)); err != nil {
			return err
		}
		pr, err := h.read(fr, frameProof)
		var rej rejectedError
		if errors.As(err, &rej) {
			return refuse(true, "node %d refused node %d's proof: %q", hs.From, h.self, rej.reason)
		}
		if err != nil {
			return err
		}
		want := proof(h.secret, roleDialer, h.cluster, hs.From, h.self, hs.Nonce, nonce)
		if err := h.checkProof(pr, hs.From, want); err != nil {
			return h.reject(bw, err)
		}
	}
	ack := handshakePayload{ClusterID: h.cluster, From: h.self, To: hs.From}
	return writeFlush(bw, frameHandshakeAck, ack.append(nil))
}

// checkDialer checks a dialer's opening handshake.
func (h *handshaker) checkDialer(hs handshakePayload) error {
	switch {
	case hs.ClusterID != h.cluster:
		return refuseCluster(hs.From, h.self, hs.ClusterID, h.cluster)
	case hs.To != h.self:
		return refuse(false, "this is node %d, not node %d", h.self, hs.To)
	case hs.From != h.self && h.removed != nil && h.removed(hs.From):
		return refuse(false, "node %d was removed from the cluster (its id is retired): node %d refuses it; "+
			"a replacement joins under a new id", hs.From, h.self)
	case hs.From == h.self || !h.known(hs.From):
		return refuse(false, "node %d is not a known peer of node %d", hs.From, h.self)
	case len(hs.MAC) != 0:
		return fmt.Errorf("tcp: handshake carries a proof: %w", domain.ErrCorrupt)
	case len(h.secret) > 0 && len(hs.Nonce) == 0:
		return refuse(true, "node %d requires a peer secret and node %d offered none (set the same --peer-secret on every node)", h.self, hs.From)
	case len(h.secret) == 0 && len(hs.Nonce) != 0:
		return refuse(true, "node %d offers peer authentication and node %d has no peer secret (set the same --peer-secret on every node)", hs.From, h.self)
	}
	return nil
}

// The cluster UUID travels in the handshake's cluster id field, after the
// cluster's name and a zero byte (none without a UUID), so that a handshake
// keeps its layout and a node without a UUID talks to another without one
// as before.
const uuidSep = 0

// wireCluster is the cluster id field of a handshake.
func wireCluster(name, uuid string) string {
	if uuid == "" {
		return name
	}
	return name + string(rune(uuidSep)) + uuid
}

// splitCluster undoes wireCluster.
func splitCluster(wire string) (name, uuid string) {
	name, uuid, _ = strings.Cut(wire, string(rune(uuidSep)))
	return name, uuid
}

// refuseCluster refuses a dialer of another cluster, naming the field
// that differs: the name (--cluster-id) or the UUID (the data dir's).
func refuseCluster(dialer, self domain.NodeID, theirs, ours string) error {
	tn, tu := splitCluster(theirs)
	on, ou := splitCluster(ours)
	if tn != on {
		return refuse(false, "node %d is of cluster id %q, node %d of %q", dialer, tn, self, on)
	}
	return refuse(false, "node %d is of cluster UUID %s, node %d of cluster UUID %s: "+
		"a node of another cluster, or one whose data dir was recreated (replace it, see README)", dialer, uuidText(tu), self, uuidText(ou))
}

func uuidText(u string) string {
	if u == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", u)
}

// checkProof checks the dialer's answer to a challenge in constant time.
func (h *handshaker) checkProof(pr handshakePayload, dialer domain.NodeID, want []byte) error {
	switch {
	case pr.ClusterID != h.cluster || pr.From != dialer || pr.To != h.self || len(pr.Nonce) != 0:
		return fmt.Errorf("tcp: proof names node %d of %q for node %d, want node %d of %q for node %d: %w",
			pr.From, pr.ClusterID, pr.To, dialer, h.cluster, h.self, domain.ErrCorrupt)
	case !hmac.Equal(pr.MAC, want):
		return refuse(true, "node %d's proof does not match (is --peer-secret the same on both nodes?)", dialer)
	}
	return nil
}

// reject sends a refusal's reason to the dialer (best effort) and returns
// err. A malformed exchange gets no answer.
func (h *handshaker) reject(bw *bufio.Writer, err error) error {
	var r *refusal
	if errors.As(err, &r) {
		_ = writeFlush(bw, frameReject, rejectPayload(r.reason))
	}
	return err
}

// dial runs the dialer's side towards node peer: it sends the handshake
// (with a fresh nonce if it has a secret), and, when challenged, checks the
// acceptor's proof before sending its own; then it expects an ack. A
// dialer with a secret never settles for an acceptor that does not prove
// it knows it. Errors: a refusal by the acceptor, errAuth (wrapped) for an
// acceptor that failed to prove itself or was not asked to, an error
// wrapping domain.ErrCorrupt for a malformed answer, or the stream's error.
func (h *handshaker) dial(fr *frameReader, bw *bufio.Writer, peer domain.NodeID, ln lane) error {
	hs := handshakePayload{ClusterID: h.cluster, From: h.self, To: peer, Lane: ln}
	if len(h.secret) > 0 {
		hs.Nonce = newNonce()
	}
	if err := writeFlush(bw, frameHandshake, hs.append(nil)); err != nil {
		return err
	}
	typ, ans, err := h.answer(fr, peer)
	if err != nil {
		return err
	}
	if typ == frameChallenge {
		if len(h.secret) == 0 {
			return fmt.Errorf("node %d asks for peer authentication and this node has no peer secret: %w", peer, errAuth)
		}
		want := proof(h.secret, roleAcceptor, h.cluster, h.self, peer, hs.Nonce, ans.Nonce)
		if len(ans.Nonce) == 0 || !hmac.Equal(ans.MAC, want) {
			// Tell the acceptor why, so that both sides log the cause.
			reason := fmt.Sprintf("node %d's proof does not match (is --peer-secret the same on both nodes?)", peer)
			_ = writeFlush(bw, frameReject, rejectPayload(reason))
			return fmt.Errorf("%s: %w", reason, errAuth)
		}
		pr := handshakePayload{ClusterID: h.cluster, From: h.self, To: peer,
			MAC: proof(h.secret, roleDialer, h.cluster, h.self, peer, hs.Nonce, ans.Nonce)}
		if err := writeFlush(bw, frameProof, pr.append(nil)); err != nil {
			return err
		}
		if typ, _, err = h.answer(fr, peer); err != nil {
			return err
		}
		if typ != frameHandshakeAck {
			return fmt.Errorf("tcp: node %d answered a proof with a %s frame: %w", peer, typ, domain.ErrCorrupt)
		}
		return nil
	}
	if len(h.secret) > 0 {
		return fmt.Errorf("node %d accepted without proving it knows the peer secret (has it none?): %w", peer, errAuth)
	}
	return nil
}

// answer reads the acceptor's answer, a challenge or an ack, and checks
// that it speaks for peer of this cluster, to this node.
func (h *handshaker) answer(fr *frameReader, peer domain.NodeID) (frameType, handshakePayload, error) {
	typ, payload, err := fr.readFrame()
	if err != nil {
		return 0, handshakePayload{}, err
	}
	switch typ {
	case frameReject:
		return typ, handshakePayload{}, fmt.Errorf("node %d rejected the handshake: %q: %w", peer, payload, errRejected)
	case frameHandshakeAck, frameChallenge:
	default:
		return typ, handshakePayload{}, fmt.Errorf("tcp: node %d answered the handshake with a %s frame: %w", peer, typ, domain.ErrCorrupt)
	}
	ans, err := decodeHandshake(payload)
	if err != nil {
		return typ, ans, err
	}
	if ans.ClusterID != h.cluster || ans.From != peer || ans.To != h.self {
		return typ, ans, fmt.Errorf("tcp: answered as node %d of cluster %q for node %d, want node %d of %q for %d: %w",
			ans.From, ans.ClusterID, ans.To, peer, h.cluster, h.self, domain.ErrCorrupt)
	}
	if (typ == frameChallenge) != (len(ans.MAC) != 0) || (typ == frameHandshakeAck && len(ans.Nonce) != 0) {
		return typ, ans, fmt.Errorf("tcp: %s frame with a nonce of %d bytes and a proof of %d: %w",
			typ, len(ans.Nonce), len(ans.MAC), domain.ErrCorrupt)
	}
	return typ, ans, nil
}

// rejectedError is a reject frame received where a proof was due: the
// dialer refused the acceptor's proof.
type rejectedError struct{ reason string }

func (r rejectedError) Error() string { return "tcp: rejected: " + r.reason }

// read reads one handshake frame of type want (or a reject frame where a
// proof is due, returned as a rejectedError).
func (h *handshaker) read(fr *frameReader, want frameType) (handshakePayload, error) {
	typ, payload, err := fr.readFrame()
	if err != nil {
		return handshakePayload{}, fmt.Errorf("tcp: reading the %s: %w", want, err)
	}
	if typ == frameReject && want == frameProof {
		return handshakePayload{}, rejectedError{reason: string(payload)}
	}
	if typ != want {
		return handshakePayload{}, fmt.Errorf("tcp: a %s frame where a %s was due: %w", typ, want, domain.ErrCorrupt)
	}
	return decodeHandshake(payload)
}

func writeFlush(bw *bufio.Writer, typ frameType, payload []byte) error {
	if err := writeFrame(bw, typ, payload); err != nil {
		return err
	}
	return bw.Flush()
}

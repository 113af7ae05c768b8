package tcp

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

// messageFromBytes builds a valid message from arbitrary bytes, so that
// the fuzzer explores the encoder's input space as well as the decoder's.
func messageFromBytes(b []byte) domain.Message {
	next := func() uint64 { // a varint-ish draw, often small
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		if c < 0xf0 || len(b) < 8 {
			return uint64(c)
		}
		v := binary.LittleEndian.Uint64(b)
		b = b[8:]
		return v
	}
	take := func() []byte {
		n := int(next() % 64)
		n = min(n, len(b))
		out := b[:n]
		b = b[n:]
		return out
	}
	types := allTypes()
	m := domain.Message{
		Type: types[next()%uint64(len(types))], From: domain.NodeID(next()), To: domain.NodeID(next()),
		Term: domain.Term(next()), LogTerm: domain.Term(next()), Index: domain.Index(next()),
		Commit: domain.Index(next()), Reject: next()%2 == 1, RejectHint: domain.Index(next()),
		Context: take(),
	}
	for range next() % 8 {
		m.Entries = append(m.Entries, domain.Entry{Index: domain.Index(next()), Term: domain.Term(next()),
			Type: domain.EntryType(next() % 3), Data: take()})
	}
	if next()%3 == 0 {
		s := &domain.Snapshot{Meta: domain.SnapshotMeta{Index: domain.Index(next()), Term: domain.Term(next())}}
		for id := range domain.NodeID(next() % 5) {
			if next()%2 == 0 {
				s.Meta.Membership.Voters = append(s.Meta.Membership.Voters, id+1)
			} else {
				s.Meta.Membership.Learners = append(s.Meta.Membership.Learners, id+1)
			}
		}
		s.Data = take()
		m.Snapshot = s
	}
	return m
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages(1, 2) {
		f.Add(EncodeMessage(nil, m))
	}
	f.Add([]byte{})
	f.Add([]byte{byte(domain.MsgApp), 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Arbitrary input: an error wrapping ErrCorrupt, or a message that
		// re-encodes to something that decodes to the same message.
		m, err := DecodeMessage(data)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
		} else {
			m2, err := DecodeMessage(EncodeMessage(nil, m))
			if err != nil {
				t.Fatalf("re-encoding of %v does not decode: %v", m, err)
			}
			if d := cmp.Diff(m, m2, equateEmpty); d != "" {
				t.Fatalf("re-encoding changed the message (-first +second):\n%s", d)
			}
		}
		// A message built from the input round-trips exactly.
		want := messageFromBytes(data)
		got, err := DecodeMessage(EncodeMessage(nil, want))
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		if d := cmp.Diff(want, got, equateEmpty); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
	})
}

// FuzzReadFrame feeds arbitrary byte streams to the frame reader and to the
// session that turns frames into messages, as a hostile peer would after a
// handshake as node 2.
func FuzzReadFrame(f *testing.F) {
	seed := func(fs ...func(w *bufio.Writer) error) { f.Add(frameBytes(f, fs...)) }
	snap := sampleMessages(2, 1)[8]
	for _, m := range sampleMessages(2, 1) {
		seed(msgFrame(m))
	}
	seed(snapFrames(snap, 700)...)
	seed(append([]func(w *bufio.Writer) error{frame(frameKeepalive, nil)}, snapFrames(snap, 5000)...)...)
	seed(frame(frameHandshake, handshakePayload{ClusterID: "c", From: 2, To: 1}.append(nil)))
	f.Add([]byte(frameMagic))
	f.Add([]byte("SSHT\x01\x04\xff\xff\xff\xff\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The frame layer alone.
		fr := newFrameReader(bytes.NewReader(data), 1<<16)
		for {
			typ, p, err := fr.readFrame()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, domain.ErrCorrupt) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if typ < frameHandshake || typ > frameTypeMax || len(p) > 1<<16 {
				t.Fatalf("accepted a %v frame of %d bytes", typ, len(p))
			}
			if typ == frameHandshake {
				_, _ = decodeHandshake(p)
			}
		}
		// The session on top: whatever it delivers is a valid message from
		// node 2 to node 1.
		var delivered int
		s := &session{peer: 2, self: 1, maxSnap: 1 << 20, deliver: func(m domain.Message) {
			delivered++
			if m.From != 2 || m.To != 1 || validateOutgoing(&m) != nil {
				t.Fatalf("delivered %v", m)
			}
			if m.Type == domain.MsgSnap && m.Snapshot == nil {
				t.Fatalf("delivered a MsgSnap without a snapshot")
			}
		}}
		err := s.run(newFrameReader(bytes.NewReader(data), 1<<16))
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, domain.ErrCorrupt) {
			t.Fatalf("session ended with %v after %d messages", err, delivered)
		}
	})
}

// FuzzHandshake feeds arbitrary byte streams to both sides of an
// authenticated handshake, as a party that does not know the secret
// would: the acceptor never accepts, the dialer never trusts, and every
// failure is a refusal, a protocol error or the end of the stream. The
// same input also goes to an acceptor without a secret, which accepts only
// a well-formed handshake from a known peer.
func FuzzHandshake(f *testing.F) {
	nonce := bytes.Repeat([]byte{5}, nonceSize)
	hs := handshakePayload{ClusterID: "c", From: 2, To: 1, Nonce: nonce}
	f.Add(frameBytes(f, frame(frameHandshake, hs.append(nil)),
		frame(frameProof, handshakePayload{ClusterID: "c", From: 2, To: 1, MAC: make([]byte, macSize)}.append(nil))))
	f.Add(frameBytes(f, frame(frameHandshake, handshakePayload{ClusterID: "c", From: 2, To: 1}.append(nil))))
	f.Add(frameBytes(f, frame(frameHandshake, handshakePayload{ClusterID: "c", From: 2, To: 1, Lane: laneBulk}.append(nil))))
	f.Add(frameBytes(f, frame(frameHandshake, hs.append(nil)), frame(frameReject, []byte("no"))))
	f.Add(frameBytes(f, frame(frameChallenge, handshakePayload{ClusterID: "c", From: 1, To: 2, Nonce: nonce, MAC: make([]byte, macSize)}.append(nil)),
		frame(frameHandshakeAck, handshakePayload{ClusterID: "c", From: 1, To: 2}.append(nil))))
	f.Add(frameBytes(f, frame(frameHandshakeAck, handshakePayload{ClusterID: "c", From: 1, To: 2}.append(nil))))
	f.Add([]byte{})
	known := func(id domain.NodeID) bool { return id == 2 || id == 3 }
	expected := func(t *testing.T, side string, err error) {
		var r *refusal
		if err == nil {
			t.Fatalf("%s: accepted without the secret", side)
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
			!errors.Is(err, domain.ErrCorrupt) && !errors.Is(err, errAuth) && !errors.As(err, &r) &&
			!errors.Is(err, errRejected) {
			t.Fatalf("%s: unexpected error %v", side, err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acceptor := &handshaker{cluster: "c", self: 1, secret: []byte("fuzz secret, long enough"), known: known}
		_, _, err := acceptor.accept(newFrameReader(bytes.NewReader(data), handshakeMaxBytes), bufio.NewWriter(io.Discard))
		expected(t, "acceptor", err)

		dialer := &handshaker{cluster: "c", self: 2, secret: []byte("fuzz secret, long enough")}
		err = dialer.dial(newFrameReader(bytes.NewReader(data), handshakeMaxBytes), bufio.NewWriter(io.Discard), 1, laneControl)
		expected(t, "dialer", err)

		open := &handshaker{cluster: "c", self: 1, known: known}
		var out bytes.Buffer
		from, ln, err := open.accept(newFrameReader(bytes.NewReader(data), handshakeMaxBytes), bufio.NewWriter(&out))
		if err == nil {
			typ, p, rerr := newFrameReader(&out, handshakeMaxBytes).readFrame()
			if rerr != nil || typ != frameHandshakeAck || !known(from) || ln != laneControl && ln != laneBulk {
				t.Fatalf("accepted node %d on lane %d, answered %v %x (%v)", from, ln, typ, p, rerr)
			}
		}
	})
}

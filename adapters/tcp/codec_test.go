package tcp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seshat-kv/seshat/domain"
)

// equateEmpty: the codec decodes empty byte strings and lists as nil. It
// also compares non-empty byte slices with bytes.Equal (cmp's element-wise
// comparison takes seconds on megabytes).
var equateEmpty = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.FilterValues(func(a, b []byte) bool { return len(a) > 0 || len(b) > 0 }, cmp.Comparer(bytes.Equal)),
}

// allTypes lists every known message type.
func allTypes() []domain.MessageType {
	var ts []domain.MessageType
	for t := domain.MessageType(0); t < 255; t++ {
		if t.Valid() {
			ts = append(ts, t)
		}
	}
	return ts
}

// sampleMessages returns one message of every type from -> to, with every
// field the type uses (and some it does not) set.
func sampleMessages(from, to domain.NodeID) []domain.Message {
	var ms []domain.Message
	for i, typ := range allTypes() {
		m := domain.Message{
			Type: typ, From: from, To: to,
			Term: domain.Term(7 + i), LogTerm: domain.Term(6), Index: domain.Index(100 + i),
			Commit: domain.Index(99), Reject: i%2 == 1, RejectHint: domain.Index(i * 1000),
		}
		switch typ {
		case domain.MsgApp:
			m.Entries = []domain.Entry{
				{Index: 101, Term: 7, Type: domain.EntryNormal, Data: []byte("set k v")},
				{Index: 102, Term: 7, Type: domain.EntryBlank},
				{Index: 103, Term: 7, Type: domain.EntryMembership, Data: []byte{1, 2, 3}},
			}
		case domain.MsgSnap:
			m.Snapshot = &domain.Snapshot{
				Meta: domain.SnapshotMeta{Index: 90, Term: 5, Membership: domain.Membership{
					Voters: []domain.NodeID{1, 2, 3}, Learners: []domain.NodeID{4}}},
				Data: bytes.Repeat([]byte("snap"), 1000),
			}
		case domain.MsgHeartbeat, domain.MsgHeartbeatResp, domain.MsgReadIndex, domain.MsgReadIndexResp:
			m.Context = []byte{0xde, 0xad, 0xbe, 0xef}
		}
		ms = append(ms, m)
	}
	return ms
}

func TestMessageRoundTrip(t *testing.T) {
	ms := sampleMessages(1, 2)
	ms = append(ms,
		domain.Message{Type: domain.MsgVote},
		domain.Message{Type: domain.MsgSnap, From: ^domain.NodeID(0), To: 1 << 63, Term: ^domain.Term(0),
			Snapshot: &domain.Snapshot{}},
		domain.Message{Type: domain.MsgApp, Entries: []domain.Entry{{Index: 1, Term: 1, Data: bytes.Repeat([]byte{9}, 1<<20)}}},
	)
	for _, m := range ms {
		enc := EncodeMessage(nil, m)
		got, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("%v: decode: %v", m, err)
		}
		if d := cmp.Diff(m, got, equateEmpty); d != "" {
			t.Fatalf("%v: round trip (-want +got):\n%s", m, d)
		}
		// Appending keeps the prefix.
		if enc2 := EncodeMessage([]byte("xy"), m); !bytes.Equal(enc2[2:], enc) || string(enc2[:2]) != "xy" {
			t.Fatalf("%v: EncodeMessage does not append", m)
		}
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	for _, m := range sampleMessages(3, 4) {
		enc := EncodeMessage(nil, m)
		for n := 0; n < len(enc); n++ {
			if _, err := DecodeMessage(enc[:n]); !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("%v truncated to %d of %d bytes: err %v, want ErrCorrupt", m.Type, n, len(enc), err)
			}
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	valid := EncodeMessage(nil, domain.Message{Type: domain.MsgApp, From: 1, To: 2,
		Entries: []domain.Entry{{Index: 1, Term: 1, Data: []byte("x")}}})
	// Layout of valid: type, flags, 7 one-byte uvarints, context len (0),
	// entry count, entry type, term, index, data len, data.
	mod := func(i int, b byte) []byte { c := bytes.Clone(valid); c[i] = b; return c }
	cases := map[string][]byte{
		"empty":               nil,
		"unknown type 0":      mod(0, 0),
		"unknown type 200":    mod(0, 200),
		"unknown flag":        mod(1, 0x80),
		"trailing byte":       append(bytes.Clone(valid), 0),
		"huge entry count":    mod(10, 0x7f),
		"unknown entry type":  mod(11, 9),
		"data past the end":   mod(14, 5),
		"varint overflow":     append([]byte{1, 0}, bytes.Repeat([]byte{0xff}, 11)...),
		"context past end":    append([]byte{1, 0, 1, 2, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f),
		"duplicate voter":     EncodeMessage(nil, domain.Message{Type: domain.MsgSnap, Snapshot: &domain.Snapshot{Meta: domain.SnapshotMeta{Membership: domain.Membership{Voters: []domain.NodeID{1, 1}}}}}),
		"voter zero":          EncodeMessage(nil, domain.Message{Type: domain.MsgSnap, Snapshot: &domain.Snapshot{Meta: domain.SnapshotMeta{Membership: domain.Membership{Learners: []domain.NodeID{0}}}}}),
		"snapshot flag, none": mod(1, flagSnapshot),
	}
	for name, b := range cases {
		if m, err := DecodeMessage(b); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("%s: got %v, err %v; want ErrCorrupt", name, m, err)
		}
	}
	if _, err := DecodeMessage(valid); err != nil {
		t.Fatalf("valid: %v", err)
	}
}

func TestHandshakeRoundTrip(t *testing.T) {
	h := handshakePayload{ClusterID: "prod-eu", From: 3, To: 1 << 40}
	authed := handshakePayload{ClusterID: "c", From: 1, To: 2, Nonce: bytes.Repeat([]byte{7}, nonceSize), MAC: bytes.Repeat([]byte{9}, macSize)}
	bulk := handshakePayload{ClusterID: "c", From: 1, To: 2, Nonce: bytes.Repeat([]byte{7}, nonceSize), Lane: laneBulk}
	for _, want := range []handshakePayload{h, authed, bulk} {
		got, err := decodeHandshake(want.append(nil))
		if d := cmp.Diff(want, got); err != nil || d != "" {
			t.Fatalf("err %v, (-want +got):\n%s", err, d)
		}
	}
	shortNonce := handshakePayload{ClusterID: "c", From: 1, To: 2, Nonce: []byte{1}}
	longMAC := handshakePayload{ClusterID: "c", From: 1, To: 2, MAC: make([]byte, macSize+1)}
	for _, b := range [][]byte{nil, {1}, append(h.append(nil), 0), append([]byte{0x80, 0x02}, make([]byte, 256+2)...),
		shortNonce.append(nil), longMAC.append(nil), h.append(nil)[:len(h.append(nil))-1],
		append(h.append(nil), 2), append(bulk.append(nil), 1)} {
		if _, err := decodeHandshake(b); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("decodeHandshake(%x): err %v, want ErrCorrupt", b, err)
		}
	}
}

// benchApp is a MsgApp with 64 entries of 100 bytes.
func benchApp() domain.Message {
	m := domain.Message{Type: domain.MsgApp, From: 1, To: 2, Term: 12, LogTerm: 12, Index: 100000, Commit: 99990}
	for i := range 64 {
		m.Entries = append(m.Entries, domain.Entry{Index: domain.Index(100001 + i), Term: 12, Data: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	return m
}

func BenchmarkEncodeMsgApp64x100(b *testing.B) {
	m := benchApp()
	buf := EncodeMessage(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = EncodeMessage(buf[:0], m)
	}
}

func BenchmarkDecodeMsgApp64x100(b *testing.B) {
	buf := EncodeMessage(nil, benchApp())
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(buf); err != nil {
			b.Fatal(err)
		}
	}
}

package domain_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/seshat-kv/seshat/domain"
)

func set(k, v string) domain.Op {
	return domain.Op{Kind: domain.OpSet, Key: []byte(k), Value: []byte(v)}
}
func del(k string) domain.Op { return domain.Op{Kind: domain.OpDel, Key: []byte(k)} }

// The wire form is fixed: entries written by one version are read by the
// next, so these bytes must not change by accident.
func TestCommandEncoding(t *testing.T) {
	for _, c := range []struct {
		name string
		cmd  domain.Command
		wire []byte
	}{
		{"no ops", domain.Command{}, []byte{1, 0}},
		{"set", domain.Command{Ops: []domain.Op{set("k", "v")}}, []byte{1, 1, 1, 1, 'k', 1, 'v'}},
		{"del", domain.Command{Ops: []domain.Op{del("ab")}}, []byte{1, 1, 2, 2, 'a', 'b', 0}},
		{"empty key and value", domain.Command{Ops: []domain.Op{set("", "")}}, []byte{1, 1, 1, 0, 0}},
		{"two ops", domain.Command{Ops: []domain.Op{set("a", "1"), del("a")}},
			[]byte{1, 2, 1, 1, 'a', 1, '1', 2, 1, 'a', 0}},
		{"long value", domain.Command{Ops: []domain.Op{set("k", string(bytes.Repeat([]byte{'x'}, 200)))}},
			append([]byte{1, 1, 1, 1, 'k', 0xc8, 0x01}, bytes.Repeat([]byte{'x'}, 200)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.wire, domain.EncodeCommand(c.cmd)); d != "" {
				t.Fatalf("EncodeCommand (-want +got):\n%s", d)
			}
			got, err := domain.DecodeCommand(c.wire)
			if err != nil {
				t.Fatalf("DecodeCommand: %v", err)
			}
			if d := cmp.Diff(c.cmd, got, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("DecodeCommand (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for name, wire := range map[string][]byte{
		"empty":                     nil,
		"unknown version":           {2, 0},
		"version 0":                 {0, 0},
		"no op count":               {1},
		"overlong op count":         cat([]byte{1}, bytes.Repeat([]byte{0xff}, 10), []byte{1}),
		"op count past MaxOps":      cat([]byte{1}, uv(domain.MaxOps+1), bytes.Repeat([]byte{byte(domain.OpSet), 0, 0}, domain.MaxOps+1)),
		"op count past data":        {1, 2, 1, 0, 0},
		"truncated op":              {1, 1, 1, 1},
		"op kind 0":                 {1, 1, 0, 0, 0},
		"op kind 3":                 {1, 1, 3, 0, 0},
		"key length past data":      {1, 1, 1, 5, 'a', 0},
		"value length past data":    {1, 1, 1, 1, 'a', 2, 'b'},
		"key past MaxKeySize":       cat([]byte{1, 1, 1}, uv(domain.MaxKeySize+1), make([]byte, domain.MaxKeySize+1), []byte{0}),
		"value length overflowing":  cat([]byte{1, 1, 1, 0}, bytes.Repeat([]byte{0xff}, 9), []byte{0x01}),
		"value length huge":         cat([]byte{1, 1, 1, 0}, uv(1<<63)),
		"trailing bytes":            {1, 1, 1, 0, 0, 0},
		"one op missing of two":     {1, 2, 1, 0, 0, 0},
		"truncated mid varint":      {1, 1, 1, 0x80},
		"valid op then bad kind":    {1, 2, 1, 0, 0, 9, 0, 0},
		"count says 0, op follows":  {1, 0, 1, 0, 0},
		"membership bytes as a cmd": domain.EncodeMembership(domain.Membership{Voters: []domain.NodeID{1, 2}}),
	} {
		if _, err := domain.DecodeCommand(wire); !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("DecodeCommand(%s): error %v, want one wrapping ErrCorrupt", name, err)
		}
	}
	// The limits themselves are accepted.
	atLimit := cat([]byte{1, 1, 1}, uv(domain.MaxKeySize), make([]byte, domain.MaxKeySize), []byte{0})
	if _, err := domain.DecodeCommand(atLimit); err != nil {
		t.Errorf("DecodeCommand of a key of MaxKeySize: %v", err)
	}
}

// Decoded keys and values alias the input, as documented, but their
// capacity is clipped: appending to one never writes into the input.
func TestDecodeCommandClipsSlices(t *testing.T) {
	wire := []byte{1, 2, 1, 1, 'a', 1, '1', 1, 1, 'b', 1, '2'}
	c, err := domain.DecodeCommand(wire)
	if err != nil {
		t.Fatal(err)
	}
	before := bytes.Clone(wire)
	for _, op := range c.Ops {
		_ = append(op.Key, 'X')
		_ = append(op.Value, 'X')
	}
	if !bytes.Equal(before, wire) {
		t.Fatalf("appending to decoded keys and values wrote into the input: %q, was %q", wire, before)
	}
}

func TestMembershipEncoding(t *testing.T) {
	for _, c := range []struct {
		name string
		m    domain.Membership
		wire []byte
	}{
		{"empty", domain.Membership{}, []byte{1, 0, 0}},
		{"voters", domain.Membership{Voters: []domain.NodeID{1, 2, 3}}, []byte{1, 3, 1, 2, 3, 0}},
		{"voters and learners", domain.Membership{Voters: []domain.NodeID{2}, Learners: []domain.NodeID{300, 4}},
			[]byte{1, 1, 2, 2, 0xac, 0x02, 4}},
		{"order kept", domain.Membership{Voters: []domain.NodeID{3, 1}}, []byte{1, 2, 3, 1, 0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := cmp.Diff(c.wire, domain.EncodeMembership(c.m)); d != "" {
				t.Fatalf("EncodeMembership (-want +got):\n%s", d)
			}
			got, err := domain.DecodeMembership(c.wire)
			if err != nil {
				t.Fatalf("DecodeMembership: %v", err)
			}
			if d := cmp.Diff(c.m, got, cmpopts.EquateEmpty()); d != "" {
				t.Fatalf("DecodeMembership (-want +got):\n%s", d)
			}
		})
	}
}

func TestDecodeMembershipRejects(t *testing.T) {
	for name, c := range map[string]struct {
		wire    []byte
		invalid bool // also ErrInvalidMembership
	}{
		"empty":                  {wire: nil},
		"unknown version":        {wire: []byte{2, 0, 0}},
		"no learner count":       {wire: []byte{1, 0}},
		"voter count past data":  {wire: []byte{1, 3, 1, 2}},
		"truncated voter id":     {wire: []byte{1, 1, 0x80}},
		"learner count too big":  {wire: []byte{1, 0, 9, 1}},
		"trailing bytes":         {wire: []byte{1, 0, 0, 0}},
		"overlong voter count":   {wire: append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...)},
		"node 0":                 {wire: []byte{1, 2, 1, 0, 0}, invalid: true},
		"voter twice":            {wire: []byte{1, 2, 5, 5, 0}, invalid: true},
		"voter also a learner":   {wire: []byte{1, 1, 5, 1, 5}, invalid: true},
		"learner twice":          {wire: []byte{1, 0, 2, 7, 7}, invalid: true},
		"learner node 0":         {wire: []byte{1, 0, 1, 0}, invalid: true},
		"command bytes as a set": {wire: domain.EncodeCommand(domain.Command{Ops: []domain.Op{set("k", "v")}})},
	} {
		_, err := domain.DecodeMembership(c.wire)
		if !errors.Is(err, domain.ErrCorrupt) {
			t.Errorf("DecodeMembership(%s): error %v, want one wrapping ErrCorrupt", name, err)
		}
		if c.invalid && !errors.Is(err, domain.ErrInvalidMembership) {
			t.Errorf("DecodeMembership(%s): error %v, want one wrapping ErrInvalidMembership too", name, err)
		}
	}
}

func TestOpKindString(t *testing.T) {
	for k, want := range map[domain.OpKind]string{domain.OpSet: "set", domain.OpDel: "del", 9: "OpKind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("OpKind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// commandFromRecipe builds a valid command out of arbitrary bytes, so that
// the fuzzer explores encode-then-decode round trips too.
func commandFromRecipe(r []byte) domain.Command {
	var c domain.Command
	for len(r) > 0 {
		kind := domain.OpSet
		if r[0]&1 == 1 {
			kind = domain.OpDel
		}
		kl := int(r[0]>>1) % (len(r))
		r = r[1:]
		kl = min(kl, len(r))
		key := r[:kl]
		r = r[kl:]
		vl := 0
		if len(r) > 0 {
			vl = int(r[0]) % len(r)
			r = r[1:]
		}
		vl = min(vl, len(r))
		c.Ops = append(c.Ops, domain.Op{Kind: kind, Key: key, Value: r[:vl]})
		r = r[vl:]
	}
	return c
}

func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []domain.Command{
		{},
		{Ops: []domain.Op{set("k", "v")}},
		{Ops: []domain.Op{set("a", "1"), del("a"), set("", ""), del("")}},
		{Ops: []domain.Op{set("key", string(bytes.Repeat([]byte{0xfe}, 300)))}},
		v2Commands[0], v2Commands[1], v2Commands[2],
	} {
		f.Add(domain.EncodeCommand(c))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 1, 3, 0, 0})
	f.Add([]byte{1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		c, err := domain.DecodeCommand(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("DecodeCommand changed its input")
		}
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeCommand(%x): error %v does not wrap ErrCorrupt", b, err)
			}
		} else {
			// What decodes re-encodes to something that decodes the
			// same, never longer (uvarints may have been padded).
			for _, op := range c.Ops {
				if op.Kind != domain.OpSet && op.Kind != domain.OpDel {
					t.Fatalf("DecodeCommand(%x) accepted op kind %d", b, op.Kind)
				}
				if len(op.Key) > domain.MaxKeySize || len(op.Value) > domain.MaxValueSize {
					t.Fatalf("DecodeCommand(%x) accepted a key of %d or value of %d bytes", b, len(op.Key), len(op.Value))
				}
			}
			wire := domain.EncodeCommand(c)
			if len(wire) > len(b) {
				t.Fatalf("re-encoding %x gave the longer %x", b, wire)
			}
			again, err := domain.DecodeCommand(wire)
			if err != nil {
				t.Fatalf("DecodeCommand(EncodeCommand(%+v)): %v", c, err)
			}
			if !commandsEqual(c, again) {
				t.Fatalf("decode, encode, decode of %x (-first +second):\n%s", b, cmp.Diff(c, again, cmpopts.EquateEmpty()))
			}
		}
		// The same bytes as a recipe for a valid command round-trip.
		want := commandFromRecipe(b)
		got, err := domain.DecodeCommand(domain.EncodeCommand(want))
		if err != nil {
			t.Fatalf("DecodeCommand(EncodeCommand(%+v)): %v", want, err)
		}
		if !commandsEqual(want, got) {
			t.Fatalf("round trip (-want +got):\n%s", cmp.Diff(want, got, cmpopts.EquateEmpty()))
		}
	})
}

// commandsEqual is a cheap equality for the fuzzers' hot path (cmp is
// slow there, and its own code would distract the coverage guidance);
// cmp.Diff only explains a mismatch. Nil and empty slices are equal.
func commandsEqual(a, b domain.Command) bool {
	return slices.EqualFunc(a.Ops, b.Ops, func(x, y domain.Op) bool {
		return x.Kind == y.Kind && bytes.Equal(x.Key, y.Key) && bytes.Equal(x.Value, y.Value)
	})
}

func membershipsEqual(a, b domain.Membership) bool {
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.Learners, b.Learners)
}

func FuzzDecodeMembership(f *testing.F) {
	for _, m := range []domain.Membership{
		{},
		{Voters: []domain.NodeID{1}},
		{Voters: []domain.NodeID{1, 2, 3}, Learners: []domain.NodeID{4, 5}},
		{Voters: []domain.NodeID{1 << 62, 300}, Learners: []domain.NodeID{1<<64 - 1}},
	} {
		f.Add(domain.EncodeMembership(m))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 1, 1, 0})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := domain.DecodeMembership(b)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeMembership(%x): error %v does not wrap ErrCorrupt", b, err)
			}
		} else {
			if err := m.Validate(); err != nil {
				t.Fatalf("DecodeMembership(%x) returned an invalid membership %+v: %v", b, m, err)
			}
			again, err := domain.DecodeMembership(domain.EncodeMembership(m))
			if err != nil {
				t.Fatalf("DecodeMembership(EncodeMembership(%+v)): %v", m, err)
			}
			if !membershipsEqual(m, again) {
				t.Fatalf("decode, encode, decode of %x (-first +second):\n%s", b, cmp.Diff(m, again, cmpopts.EquateEmpty()))
			}
		}
		// A valid membership built from the bytes round-trips.
		var want domain.Membership
		seen := map[domain.NodeID]bool{}
		for i := 0; i+2 <= len(b); i += 2 {
			id := domain.NodeID(binary.LittleEndian.Uint16(b[i:]))
			if id == domain.None || seen[id] {
				continue
			}
			seen[id] = true
			if b[i]&1 == 0 {
				want.Voters = append(want.Voters, id)
			} else {
				want.Learners = append(want.Learners, id)
			}
		}
		got, err := domain.DecodeMembership(domain.EncodeMembership(want))
		if err != nil {
			t.Fatalf("DecodeMembership(EncodeMembership(%+v)): %v", want, err)
		}
		if !membershipsEqual(want, got) {
			t.Fatalf("round trip (-want +got):\n%s", cmp.Diff(want, got, cmpopts.EquateEmpty()))
		}
	})
}

var v2Commands = []domain.Command{
	{Time: 1_700_000_000_123, Calls: []domain.Call{{DB: 3, Args: [][]byte{[]byte("SET"), []byte("k\r\n\x00"), []byte("")}}}},
	{Time: -5, Tx: true, Calls: []domain.Call{{Args: [][]byte{[]byte("INCR"), []byte("n")}}, {DB: 15, Args: [][]byte{[]byte("GET"), []byte("n")}}},
		Watch: []domain.Watch{{DB: 2, Key: []byte("w"), Version: 1 << 40}, {Key: []byte{}, Version: 0}}},
	{Ops: []domain.Op{set("a", "1")}, Tx: true},
}

// Version 2 commands (time, calls, transactions, watches) round-trip.
func TestCommandV2RoundTrip(t *testing.T) {
	for _, c := range v2Commands {
		got, err := domain.DecodeCommand(domain.EncodeCommand(c))
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if d := cmp.Diff(c, got, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
	}
}

// Replies round-trip through AppendReply and DecodeReply.
func TestReplyRoundTrip(t *testing.T) {
	replies := []domain.Reply{
		domain.OK, domain.NilReply, domain.IntReply(-42), domain.StringReply("a\r\nb"), domain.BulkReply(nil),
		domain.ErrorReply("ERR x"), {Kind: domain.ReplyNilArray}, {Kind: domain.ReplyDouble, Str: "1.5"},
		domain.ArrayReply(domain.IntReply(1), domain.ArrayReply(domain.NilReply), domain.EmptyArray),
		{Kind: domain.ReplyMap, Array: []domain.Reply{domain.StringReply("k"), domain.IntReply(2)}},
		{Kind: domain.ReplyVerbatim, Bulk: []byte("# Server")},
	}
	var b []byte
	for _, r := range replies {
		b = domain.AppendReply(b, r)
	}
	for i, want := range replies {
		got, rest, err := domain.DecodeReply(b)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("reply %d (-want +got):\n%s", i, d)
		}
		b = rest
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes left", len(b))
	}
}

// DecodeReply never panics on garbage and reports it as ErrCorrupt; what
// it accepts re-encodes to the same bytes.
func FuzzDecodeReply(f *testing.F) {
	f.Add(domain.AppendReply(nil, domain.ArrayReply(domain.OK, domain.IntReply(7), domain.StringReply("x"))))
	f.Add([]byte{byte(domain.ReplyArray), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(bytes.Repeat([]byte{byte(domain.ReplyArray), 1}, 20))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := domain.DecodeReply(b)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeReply(%x): %v does not wrap ErrCorrupt", b, err)
			}
			return
		}
		used := b[:len(b)-len(rest)]
		again, _, err := domain.DecodeReply(domain.AppendReply(nil, r))
		if err != nil {
			t.Fatalf("re-decoding %v: %v (from %x)", r, err, used)
		}
		if d := cmp.Diff(r, again, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("re-decoded differently (-first +again):\n%s", d)
		}
	})
}

func TestAppendInSteps(t *testing.T) {
	for _, n := range []int{0, 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 5} {
		a := make([]byte, n)
		for i := range a {
			a[i] = byte(i * 7)
		}
		got := domain.AppendInSteps([]byte("head"), a)
		if want := append([]byte("head"), a...); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: appended wrong", n)
		}
		// In place, into a buffer that has the room.
		buf := make([]byte, n+1)
		domain.AppendInSteps(buf[1:1], a)
		if !bytes.Equal(buf[1:], a) {
			t.Fatalf("%d bytes: not copied in place", n)
		}
	}
}

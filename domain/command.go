package domain

import (
	"encoding/binary"
	"fmt"
)

// OpKind is a key-value operation the state machine applies.
type OpKind uint8

const (
	// OpSet stores Value under Key.
	OpSet OpKind = iota + 1
	// OpDel removes Key; deleting a missing key is not an error.
	OpDel
)

func (k OpKind) String() string {
	switch k {
	case OpSet:
		return "set"
	case OpDel:
		return "del"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one key-value operation.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
}

// Command is what a Normal entry carries: operations applied together,
// atomically, in order.
type Command struct {
	Ops []Op
}

// Result is what applying one entry produced, handed back to whoever
// proposed it. N counts (keys deleted, keys set); Err is an application
// error such as a type mismatch, never a Raft error.
type Result struct {
	N     int64
	Value []byte
	Err   error
}

// Limits on a decoded command, so a corrupt or hostile entry cannot make a
// node allocate without bound.
const (
	MaxKeySize   = 64 << 10
	MaxValueSize = 512 << 20
	MaxOps       = 1 << 20
)

const commandVersion = 1

// EncodeCommand returns the wire form of c: a version byte, the op count,
// then per op its kind and length-prefixed key and value (uvarints).
func EncodeCommand(c Command) []byte {
	n := 1 + binary.MaxVarintLen64
	for _, op := range c.Ops {
		n += 1 + 2*binary.MaxVarintLen64 + len(op.Key) + len(op.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, commandVersion)
	b = binary.AppendUvarint(b, uint64(len(c.Ops)))
	for _, op := range c.Ops {
		b = append(b, byte(op.Kind))
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		b = append(b, op.Key...)
		b = binary.AppendUvarint(b, uint64(len(op.Value)))
		b = append(b, op.Value...)
	}
	return b
}

// DecodeCommand parses what EncodeCommand wrote. Malformed input returns an
// error wrapping ErrCorrupt; it never panics. Keys and values alias b.
func DecodeCommand(b []byte) (Command, error) {
	fail := func(what string) (Command, error) {
		return Command{}, fmt.Errorf("%w: command: %s", ErrCorrupt, what)
	}
	if len(b) == 0 {
		return fail("empty")
	}
	if b[0] != commandVersion {
		return fail(fmt.Sprintf("unknown version %d", b[0]))
	}
	b = b[1:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > MaxOps {
		return fail("bad op count")
	}
	b = b[n:]
	// Every op takes at least 3 bytes, so count cannot exceed len(b)/3.
	if count > uint64(len(b))/3 {
		return fail("op count exceeds data")
	}
	c := Command{Ops: make([]Op, 0, count)}
	readBytes := func(limit uint64) ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > limit || l > uint64(len(b)-n) {
			return nil, false
		}
		out := b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
		return out, true
	}
	for i := uint64(0); i < count; i++ {
		if len(b) == 0 {
			return fail("truncated op")
		}
		kind := OpKind(b[0])
		if kind != OpSet && kind != OpDel {
			return fail(fmt.Sprintf("unknown op kind %d", b[0]))
		}
		b = b[1:]
		key, ok := readBytes(MaxKeySize)
		if !ok {
			return fail("bad key")
		}
		val, ok := readBytes(MaxValueSize)
		if !ok {
			return fail("bad value")
		}
		c.Ops = append(c.Ops, Op{Kind: kind, Key: key, Value: val})
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	return c, nil
}

// EncodeMembership returns the wire form of m for a Membership entry.
func EncodeMembership(m Membership) []byte {
	b := []byte{commandVersion}
	b = binary.AppendUvarint(b, uint64(len(m.Voters)))
	for _, id := range m.Voters {
		b = binary.AppendUvarint(b, uint64(id))
	}
	b = binary.AppendUvarint(b, uint64(len(m.Learners)))
	for _, id := range m.Learners {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

// DecodeMembership parses what EncodeMembership wrote and validates it.
func DecodeMembership(b []byte) (Membership, error) {
	fail := func(what string) (Membership, error) {
		return Membership{}, fmt.Errorf("%w: membership: %s", ErrCorrupt, what)
	}
	if len(b) == 0 || b[0] != commandVersion {
		return fail("bad version")
	}
	b = b[1:]
	readIDs := func() ([]NodeID, bool) {
		count, n := binary.Uvarint(b)
		if n <= 0 || count > uint64(len(b)) {
			return nil, false
		}
		b = b[n:]
		var ids []NodeID
		for i := uint64(0); i < count; i++ {
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, false
			}
			b = b[n:]
			ids = append(ids, NodeID(v))
		}
		return ids, true
	}
	var m Membership
	var ok bool
	if m.Voters, ok = readIDs(); !ok {
		return fail("bad voters")
	}
	if m.Learners, ok = readIDs(); !ok {
		return fail("bad learners")
	}
	if len(b) != 0 {
		return fail("trailing bytes")
	}
	if err := m.Validate(); err != nil {
		return Membership{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}

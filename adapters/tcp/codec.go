package tcp

import (
	"encoding/binary"
	"fmt"

	"github.com/seshat-kv/seshat/domain"
)

// The message encoding (the payload of a message frame). Integers are
// unsigned varints (encoding/binary's Uvarint); byte strings are a uvarint
// length then the bytes; lists are a uvarint count then the elements.
//
//	Type          1 byte (a known domain.MessageType)
//	flags         1 byte: bit 0 Reject, bit 1 Snapshot present; others zero
//	From, To, Term, LogTerm, Index, Commit, RejectHint   uvarint each
//	Context       bytes
//	Entries       list of: Type (1 byte, a known EntryType), Term, Index
//	              (uvarints), Data (bytes)
//	Snapshot      if flagged: Meta.Index, Meta.Term (uvarints),
//	              Meta.Membership.Voters, .Learners (lists of uvarint ids),
//	              Data (bytes)
//
// A message ends exactly where its payload does: trailing bytes are corrupt.
const (
	flagReject   = 1 << 0
	flagSnapshot = 1 << 1
	knownFlags   = flagReject | flagSnapshot

	// minEntryBytes is the smallest encoded entry: type, term, index and
	// data length take at least one byte each.
	minEntryBytes = 4
)

// EncodeMessage appends the encoding of m to dst and returns the result. It
// does not validate m: DecodeMessage rejects a message whose Type or entry
// types are unknown, or whose snapshot membership is invalid.
func EncodeMessage(dst []byte, m domain.Message) []byte {
	return appendMessage(dst, &m, true)
}

// appendMessage encodes m; withSnapData false encodes Snapshot.Data as empty
// (the header of a snapshot stream, whose data follows in chunks).
func appendMessage(dst []byte, m *domain.Message, withSnapData bool) []byte {
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
	}
	dst = append(dst, byte(m.Type), flags)
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = binary.AppendUvarint(dst, uint64(m.Term))
	dst = binary.AppendUvarint(dst, uint64(m.LogTerm))
	dst = binary.AppendUvarint(dst, uint64(m.Index))
	dst = binary.AppendUvarint(dst, uint64(m.Commit))
	dst = binary.AppendUvarint(dst, uint64(m.RejectHint))
	dst = appendBytes(dst, m.Context)
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		dst = append(dst, byte(e.Type))
		dst = binary.AppendUvarint(dst, uint64(e.Term))
		dst = binary.AppendUvarint(dst, uint64(e.Index))
		dst = appendBytes(dst, e.Data)
	}
	if s := m.Snapshot; s != nil {
		dst = binary.AppendUvarint(dst, uint64(s.Meta.Index))
		dst = binary.AppendUvarint(dst, uint64(s.Meta.Term))
		dst = appendIDs(dst, s.Meta.Membership.Voters)
		dst = appendIDs(dst, s.Meta.Membership.Learners)
		if withSnapData {
			dst = appendBytes(dst, s.Data)
		} else {
			dst = appendBytes(dst, nil)
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendIDs(dst []byte, ids []domain.NodeID) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, uint64(id))
	}
	return dst
}

// DecodeMessage decodes a message encoded by EncodeMessage. Every length
// and count is checked against the bytes that remain, and every enum
// against its known values; malformed input returns an error wrapping
// domain.ErrCorrupt (it never panics). The result aliases data (entry,
// snapshot and context bytes are subslices of it); empty byte strings and
// lists decode as nil.
func DecodeMessage(data []byte) (domain.Message, error) {
	d := decoder{b: data}
	m := d.message()
	if err := d.finish("message"); err != nil {
		return domain.Message{}, err
	}
	return m, nil
}

// decoder reads the encoding with a sticky error: after the first failure
// every read returns zero values, and finish reports the failure.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("tcp: decode at byte %d: %s: %w", d.off, fmt.Sprintf(format, args...), domain.ErrCorrupt)
	}
}

func (d *decoder) remaining() int { return len(d.b) - d.off }

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.remaining() < 1 {
		d.fail("%s: truncated", what)
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("%s: truncated varint", what)
		} else {
			d.fail("%s: varint overflows 64 bits", what)
		}
		return 0
	}
	d.off += n
	return v
}

// count reads a list length and checks that the rest of the input can hold
// that many elements of at least minSize bytes each.
func (d *decoder) count(what string, minSize int) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(d.remaining()/minSize) {
		d.fail("%s: %d elements in %d bytes", what, n, d.remaining())
		return 0
	}
	return int(n)
}

// bytes reads a length-prefixed byte string, aliasing the input; empty is
// nil.
func (d *decoder) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail("%s: length %d with %d bytes left", what, n, d.remaining())
		return nil
	}
	if n == 0 {
		return nil
	}
	b := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) ids(what string) []domain.NodeID {
	n := d.count(what, 1)
	if n == 0 {
		return nil
	}
	ids := make([]domain.NodeID, n)
	for i := range ids {
		ids[i] = domain.NodeID(d.uvarint(what))
	}
	return ids
}

func (d *decoder) finish(what string) error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("%d trailing bytes after the %s", len(d.b)-d.off, what)
	}
	return d.err
}

func (d *decoder) message() domain.Message {
	var m domain.Message
	m.Type = domain.MessageType(d.byte("type"))
	if d.err == nil && !m.Type.Valid() {
		d.fail("unknown message type %d", uint8(m.Type))
	}
	flags := d.byte("flags")
	if d.err == nil && flags&^knownFlags != 0 {
		d.fail("unknown flags %#02x", flags)
	}
	m.Reject = flags&flagReject != 0
	m.From = domain.NodeID(d.uvarint("from"))
	m.To = domain.NodeID(d.uvarint("to"))
	m.Term = domain.Term(d.uvarint("term"))
	m.LogTerm = domain.Term(d.uvarint("log term"))
	m.Index = domain.Index(d.uvarint("index"))
	m.Commit = domain.Index(d.uvarint("commit"))
	m.RejectHint = domain.Index(d.uvarint("reject hint"))
	m.Context = d.bytes("context")
	if n := d.count("entries", minEntryBytes); n > 0 {
		m.Entries = make([]domain.Entry, n)
		for i := range m.Entries {
			e := &m.Entries[i]
			e.Type = domain.EntryType(d.byte("entry type"))
			if d.err == nil && e.Type > domain.EntryMembership {
				d.fail("entry %d: unknown entry type %d", i, uint8(e.Type))
			}
			e.Term = domain.Term(d.uvarint("entry term"))
			e.Index = domain.Index(d.uvarint("entry index"))
			e.Data = d.bytes("entry data")
		}
	}
	if flags&flagSnapshot != 0 && d.err == nil {
		s := &domain.Snapshot{}
		s.Meta.Index = domain.Index(d.uvarint("snapshot index"))
		s.Meta.Term = domain.Term(d.uvarint("snapshot term"))
		s.Meta.Membership.Voters = d.ids("voters")
		s.Meta.Membership.Learners = d.ids("learners")
		if d.err == nil {
			if err := s.Meta.Membership.Validate(); err != nil {
				d.fail("snapshot membership: %v", err)
			}
		}
		s.Data = d.bytes("snapshot data")
		m.Snapshot = s
	}
	if d.err != nil {
		return domain.Message{}
	}
	return m
}

// validateOutgoing checks what DecodeMessage or the receiving session would
// reject, so that a sender drops a bad message instead of getting its
// connection cut by the peer.
func validateOutgoing(m *domain.Message) error {
	if !m.Type.Valid() {
		return fmt.Errorf("tcp: unknown message type %d: %w", uint8(m.Type), domain.ErrCorrupt)
	}
	for i := range m.Entries {
		if t := m.Entries[i].Type; t > domain.EntryMembership {
			return fmt.Errorf("tcp: entry %d has unknown type %d: %w", m.Entries[i].Index, uint8(t), domain.ErrCorrupt)
		}
	}
	if m.Type == domain.MsgSnap && m.Snapshot == nil {
		return fmt.Errorf("tcp: MsgSnap without a snapshot: %w", domain.ErrCorrupt)
	}
	if m.Snapshot != nil {
		if err := m.Snapshot.Meta.Membership.Validate(); err != nil {
			return fmt.Errorf("tcp: snapshot membership: %w (%w)", domain.ErrCorrupt, err)
		}
	}
	return nil
}

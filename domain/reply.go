package domain

import (
	"encoding/binary"
	"fmt"
	"math"
)

// ReplyKind says which fields of a Reply hold the answer. The kinds are
// RESP's, so that a reply computed on any node can be written to a client
// in RESP2 or RESP3 as Redis would.
type ReplyKind uint8

const (
	// ReplyNil: no value (RESP2 $-1, RESP3 _).
	ReplyNil ReplyKind = iota
	// ReplyStatus: a simple string in Str ("OK", "QUEUED").
	ReplyStatus
	// ReplyError: an error reply; Str is its text without the '-'
	// ("ERR syntax error", "WRONGTYPE ...").
	ReplyError
	// ReplyInt: Int.
	ReplyInt
	// ReplyBulk: a bulk string in Bulk (non-nil, possibly empty).
	ReplyBulk
	// ReplyArray: Array, whose elements are Replies.
	ReplyArray
	// ReplyNilArray: an absent array (RESP2 *-1, RESP3 _), as EXEC answers
	// when a watched key changed.
	ReplyNilArray
	// ReplyDouble: a floating point number in Str, formatted; RESP2 sends it
	// as a bulk string, RESP3 as a double.
	ReplyDouble
	// ReplyMap: Array holds keys and values alternately; RESP2 sends it as
	// a flat array, RESP3 as a map.
	ReplyMap
	// ReplyVerbatim: a text in Bulk; RESP2 sends it as a bulk string, RESP3
	// as a verbatim string of format "txt".
	ReplyVerbatim
)

// Reply is the answer to one command.
type Reply struct {
	Kind  ReplyKind
	Str   string
	Int   int64
	Bulk  []byte
	Array []Reply
}

// Reply constructors, for brevity where replies are built.
var (
	OK         = Reply{Kind: ReplyStatus, Str: "OK"}
	NilReply   = Reply{Kind: ReplyNil}
	EmptyArray = Reply{Kind: ReplyArray, Array: []Reply{}}
)

// IntReply returns an integer reply.
func IntReply(n int64) Reply { return Reply{Kind: ReplyInt, Int: n} }

// BulkReply returns a bulk string reply of b (never nil).
func BulkReply(b []byte) Reply {
	if b == nil {
		b = []byte{}
	}
	return Reply{Kind: ReplyBulk, Bulk: b}
}

// StringReply returns a bulk string reply of s.
func StringReply(s string) Reply { return Reply{Kind: ReplyBulk, Bulk: []byte(s)} }

// ErrorReply returns an error reply with text (no leading '-').
func ErrorReply(text string) Reply { return Reply{Kind: ReplyError, Str: text} }

// ArrayReply returns an array reply of elems.
func ArrayReply(elems ...Reply) Reply {
	if elems == nil {
		elems = []Reply{}
	}
	return Reply{Kind: ReplyArray, Array: elems}
}

// IsError reports whether r is an error reply.
func (r Reply) IsError() bool { return r.Kind == ReplyError }

// String renders r for logs and test failures.
func (r Reply) String() string {
	switch r.Kind {
	case ReplyNil:
		return "(nil)"
	case ReplyStatus:
		return r.Str
	case ReplyError:
		return "(error) " + r.Str
	case ReplyInt:
		return fmt.Sprintf("(integer) %d", r.Int)
	case ReplyBulk, ReplyVerbatim:
		return fmt.Sprintf("%q", r.Bulk)
	case ReplyNilArray:
		return "(nil array)"
	case ReplyDouble:
		return "(double) " + r.Str
	case ReplyArray, ReplyMap:
		s := "["
		for i, e := range r.Array {
			if i > 0 {
				s += " "
			}
			s += e.String()
		}
		return s + "]"
	}
	return fmt.Sprintf("Reply(%d)", r.Kind)
}

// maxReplyDepth bounds the nesting a decoded reply may have.
const maxReplyDepth = 8

// AppendReply appends r's binary form to b: the kind, then per kind the
// string, integer, bytes or elements (uvarint lengths). Nodes use it to
// relay replies between them.
func AppendReply(b []byte, r Reply) []byte {
	b = append(b, byte(r.Kind))
	switch r.Kind {
	case ReplyStatus, ReplyError, ReplyDouble:
		b = binary.AppendUvarint(b, uint64(len(r.Str)))
		b = append(b, r.Str...)
	case ReplyInt:
		b = binary.AppendVarint(b, r.Int)
	case ReplyBulk, ReplyVerbatim:
		b = binary.AppendUvarint(b, uint64(len(r.Bulk)))
		b = append(b, r.Bulk...)
	case ReplyArray, ReplyMap:
		b = binary.AppendUvarint(b, uint64(len(r.Array)))
		for _, e := range r.Array {
			b = AppendReply(b, e)
		}
	}
	return b
}

// DecodeReply parses one reply AppendReply wrote at the start of b and
// returns the rest. Malformed input is an error wrapping ErrCorrupt.
func DecodeReply(b []byte) (Reply, []byte, error) {
	return decodeReply(b, 0)
}

func decodeReply(b []byte, depth int) (Reply, []byte, error) {
	fail := func(what string) (Reply, []byte, error) {
		return Reply{}, nil, fmt.Errorf("%w: reply: %s", ErrCorrupt, what)
	}
	if len(b) == 0 {
		return fail("truncated")
	}
	if depth > maxReplyDepth {
		return fail("nested too deep")
	}
	r := Reply{Kind: ReplyKind(b[0])}
	b = b[1:]
	readBytes := func() ([]byte, bool) {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, false
		}
		out := b[n : n+int(l) : n+int(l)]
		b = b[n+int(l):]
		return out, true
	}
	switch r.Kind {
	case ReplyNil, ReplyNilArray:
	case ReplyStatus, ReplyError, ReplyDouble:
		s, ok := readBytes()
		if !ok {
			return fail("bad string")
		}
		r.Str = string(s)
	case ReplyInt:
		v, n := binary.Varint(b)
		if n <= 0 {
			return fail("bad integer")
		}
		r.Int, b = v, b[n:]
	case ReplyBulk, ReplyVerbatim:
		s, ok := readBytes()
		if !ok {
			return fail("bad bulk")
		}
		r.Bulk = s
	case ReplyArray, ReplyMap:
		count, n := binary.Uvarint(b)
		// Every element takes at least one byte.
		if n <= 0 || count > uint64(len(b)-n) || count > math.MaxInt32 {
			return fail("bad array length")
		}
		b = b[n:]
		r.Array = make([]Reply, count)
		for i := range r.Array {
			var err error
			if r.Array[i], b, err = decodeReply(b, depth+1); err != nil {
				return Reply{}, nil, err
			}
		}
	default:
		return fail(fmt.Sprintf("unknown kind %d", r.Kind))
	}
	return r, b, nil
}

package keyspace

import (
	"bytes"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

var stringCommands = []*Spec{
	{Name: "get", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: get},
	{Name: "set", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: set},
	{Name: "mget", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "string", run: mget},
	{Name: "mset", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", run: mset},
	{Name: "setnx", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: setnx},
	{Name: "setex", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: setex},
	{Name: "psetex", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: psetex},
	{Name: "getset", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: getset},
	{Name: "getdel", Arity: 2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: getdel},
	{Name: "getex", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: getex},
	{Name: "msetnx", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", run: msetnx},
	{Name: "append", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: appendCmd},
	{Name: "strlen", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: strlenCmd},
	{Name: "getrange", Arity: 4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: getrange},
	{Name: "substr", Arity: 4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: getrange},
	{Name: "setrange", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: setrange},
	{Name: "incr", Arity: 2, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: incr},
	{Name: "decr", Arity: 2, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: decr},
	{Name: "incrby", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: incrby},
	{Name: "decrby", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: decrby},
	{Name: "incrbyfloat", Arity: 3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: incrbyfloat},
	{Name: "setbit", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "bitmap", run: setbit},
	{Name: "getbit", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "bitmap", run: getbit},
	{Name: "bitcount", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "bitmap", run: bitcount},
	{Name: "bitpos", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "bitmap", run: bitpos},
}

func get(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupString(args[1])
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.NilReply
	}
	return domain.BulkReply(r.Value)
}

func mget(c *ctx, args [][]byte) domain.Reply {
	out := make([]domain.Reply, len(args)-1)
	for i, k := range args[1:] {
		out[i] = domain.NilReply
		if r, ok, wrong := c.lookupString(k); ok && !wrong {
			out[i] = domain.BulkReply(r.Value)
		}
	}
	return domain.ArrayReply(out...)
}

func mset(c *ctx, args [][]byte) domain.Reply {
	if len(args)%2 != 1 {
		return WrongArity("mset")
	}
	for i := 1; i < len(args); i += 2 {
		c.put(args[i], Record{Value: args[i+1]})
	}
	return domain.OK
}

// setFlags are SET's (and GETEX's) options, parsed as Redis's
// parseExtendedStringArgumentsOrReply does.
type setFlags struct {
	nx, xx, get, keepTTL, persist bool
	unit                          string // "EX", "PX", "EXAT", "PXAT" or ""
	expire                        []byte
}

// parseSetFlags parses args (after the key, and for SET the value). getex
// selects GETEX's options (PERSIST, and no NX, XX, GET or KEEPTTL).
func parseSetFlags(args [][]byte, getex bool) (setFlags, bool) {
	var f setFlags
	for j := 0; j < len(args); j++ {
		opt := strings.ToUpper(string(args[j]))
		hasNext := j+1 < len(args)
		switch {
		case opt == "NX" && !f.xx && !getex:
			f.nx = true
		case opt == "XX" && !f.nx && !getex:
			f.xx = true
		case opt == "GET" && !getex:
			f.get = true
		case opt == "KEEPTTL" && !f.persist && f.unit == "" && !getex:
			f.keepTTL = true
		case opt == "PERSIST" && getex && f.unit == "" && !f.keepTTL:
			f.persist = true
		case (opt == "EX" || opt == "PX" || opt == "EXAT" || opt == "PXAT") &&
			!f.keepTTL && !f.persist && (f.unit == "" || f.unit == opt) && hasNext:
			f.unit = opt
			f.expire = args[j+1]
			j++
		default:
			return f, false
		}
	}
	return f, true
}

// deadline turns an expire argument into an absolute deadline (Unix ms)
// as Redis's getExpireMillisecondsOrReply does; cmd names the command in
// the error.
func (c *ctx) deadline(unit string, arg []byte, cmd string) (int64, domain.Reply, bool) {
	ms, ok := ParseInt(arg)
	if !ok {
		return 0, ErrNotInteger, false
	}
	bad := domain.ErrorReply("ERR invalid expire time in '" + cmd + "' command")
	seconds := unit == "EX" || unit == "EXAT"
	if ms <= 0 || (seconds && ms > math.MaxInt64/1000) {
		return 0, bad, false
	}
	if seconds {
		ms *= 1000
	}
	if unit == "EX" || unit == "PX" {
		if ms > math.MaxInt64-c.now {
			return 0, bad, false
		}
		ms += c.now
	}
	if ms <= 0 {
		return 0, bad, false
	}
	return ms, domain.Reply{}, true
}

func set(c *ctx, args [][]byte) domain.Reply {
	f, ok := parseSetFlags(args[3:], false)
	if !ok {
		return ErrSyntax
	}
	var at int64
	if f.unit != "" {
		var rep domain.Reply
		if at, rep, ok = c.deadline(f.unit, f.expire, "set"); !ok {
			return rep
		}
	}
	key := args[1]
	var old Record
	var found, wrong bool
	if f.get {
		old, found, wrong = c.lookupString(key)
	} else {
		// Not the old value: it may be hundreds of megabytes.
		old, _, found, wrong = c.statString(key)
	}
	if wrong && f.get {
		return ErrWrongType
	}
	reply := domain.OK
	if f.get {
		reply = domain.NilReply
		if found {
			reply = domain.BulkReply(old.Value)
		}
	}
	if (f.nx && found) || (f.xx && !found) {
		if f.get {
			return reply
		}
		return domain.NilReply
	}
	r := Record{Value: args[2], ExpireAt: at}
	if f.keepTTL && found {
		r.ExpireAt = old.ExpireAt
	}
	if r.ExpireAt != 0 && r.ExpireAt <= c.now {
		// A deadline already past (EXAT or PXAT): the key is gone at
		// once. Redis stores it and drops it on its next access; deleting
		// it here is the same to every command and keeps DBSIZE right on
		// nodes whose reads cannot delete.
		// Storing and deleting it leaves the tombstone a WATCH of it needs
		// (Redis counts the SET as a change of the key).
		c.put(key, r)
		c.del(key)
		return reply
	}
	c.put(key, r)
	return reply
}

// setWithExpire is SETEX and PSETEX: the deadline checked first, then
// the value set with it.
func setWithExpire(c *ctx, args [][]byte, unit, name string) domain.Reply {
	at, rep, ok := c.deadline(unit, args[2], name)
	if !ok {
		return rep
	}
	c.put(args[1], Record{Value: args[3], ExpireAt: at})
	return domain.OK
}

func setex(c *ctx, args [][]byte) domain.Reply  { return setWithExpire(c, args, "EX", "setex") }
func psetex(c *ctx, args [][]byte) domain.Reply { return setWithExpire(c, args, "PX", "psetex") }

func setnx(c *ctx, args [][]byte) domain.Reply {
	if _, _, found := c.stat(args[1]); found {
		return domain.IntReply(0)
	}
	c.put(args[1], Record{Value: args[2]})
	return domain.IntReply(1)
}

// getset replies with the old value and sets the new one without a
// deadline.
func getset(c *ctx, args [][]byte) domain.Reply {
	reply := domain.NilReply
	old, found, wrong := c.lookupString(args[1])
	if wrong {
		return ErrWrongType
	}
	if found {
		reply = domain.BulkReply(bytes.Clone(old.Value))
	}
	c.put(args[1], Record{Value: args[2]})
	return reply
}

func getdel(c *ctx, args [][]byte) domain.Reply {
	old, found, wrong := c.lookupString(args[1])
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.NilReply
	}
	reply := domain.BulkReply(bytes.Clone(old.Value))
	c.del(args[1])
	return reply
}

// getex replies with the value and changes its deadline as Redis's
// getexCommand does: options checked first, then the key (absent: nil,
// whatever the deadline argument), then the deadline.
func getex(c *ctx, args [][]byte) domain.Reply {
	f, ok := parseSetFlags(args[2:], true)
	if !ok {
		return ErrSyntax
	}
	key := args[1]
	old, found, wrong := c.lookupString(key)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.NilReply
	}
	var at int64
	if f.unit != "" {
		var rep domain.Reply
		if at, rep, ok = c.deadline(f.unit, f.expire, "getex"); !ok {
			return rep
		}
	}
	reply := domain.BulkReply(bytes.Clone(old.Value))
	switch {
	case (f.unit == "EXAT" || f.unit == "PXAT") && at <= c.now:
		c.del(key)
	case f.unit != "":
		c.put(key, Record{Value: old.Value, ExpireAt: at})
	case f.persist && old.ExpireAt != 0:
		c.put(key, Record{Value: old.Value})
	}
	return reply
}

// msetnx sets every pair, without deadlines, if none of the keys exists.
func msetnx(c *ctx, args [][]byte) domain.Reply {
	if len(args)%2 != 1 {
		return WrongArity("msetnx")
	}
	for i := 1; i < len(args); i += 2 {
		if _, _, found := c.stat(args[i]); found {
			return domain.IntReply(0)
		}
	}
	for i := 1; i < len(args); i += 2 {
		c.put(args[i], Record{Value: args[i+1]})
	}
	return domain.IntReply(1)
}

// tooBig reports whether a string of size bytes with n more would exceed
// the value limit, as Redis's checkStringLength.
func (c *ctx) tooBig(size, n int64) bool {
	return size > int64(c.maxValue) || n > int64(c.maxValue)-size
}

// appendCmd appends to the value, keeping its deadline; an absent key is
// created, even with an empty value.
func appendCmd(c *ctx, args [][]byte) domain.Reply {
	key, add := args[1], args[2]
	old, size, found, wrong := c.statString(key)
	if wrong {
		return ErrWrongType
	}
	if !found {
		c.put(key, Record{Value: add})
		return domain.IntReply(int64(len(add)))
	}
	if c.tooBig(int64(size), int64(len(add))) {
		return ErrTooBig
	}
	c.writeAt(key, old, size, add)
	return domain.IntReply(int64(size + len(add)))
}

func strlenCmd(c *ctx, args [][]byte) domain.Reply {
	_, size, _, wrong := c.statString(args[1])
	if wrong {
		return ErrWrongType
	}
	return domain.IntReply(int64(size))
}

// getrange is GETRANGE and SUBSTR: the bytes from start to end inclusive,
// negative indexes counting from the end.
func getrange(c *ctx, args [][]byte) domain.Reply {
	start, ok1 := ParseInt(args[2])
	end, ok2 := ParseInt(args[3])
	if !ok1 || !ok2 {
		return ErrNotInteger
	}
	_, size, found, wrong := c.statString(args[1])
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.BulkReply(nil)
	}
	n := int64(size)
	if start < 0 && end < 0 && start > end {
		return domain.BulkReply(nil)
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if start > end || n == 0 {
		return domain.BulkReply(nil)
	}
	out := make([]byte, end+1-start)
	c.readAt(args[1], int(start), out)
	return domain.BulkReply(out)
}

// setrange overwrites the value from offset, padding with zero bytes; the
// deadline stays. An empty value changes nothing and creates no key.
func setrange(c *ctx, args [][]byte) domain.Reply {
	key, val := args[1], args[3]
	offset, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	if offset < 0 {
		return domain.ErrorReply("ERR offset is out of range")
	}
	old, size, found, wrong := c.statString(key)
	if wrong {
		return ErrWrongType
	}
	if len(val) == 0 {
		return domain.IntReply(int64(size))
	}
	if c.tooBig(offset, int64(len(val))) {
		return ErrTooBig
	}
	if !found {
		c.put(key, Record{Value: PatchValue(nil, int(offset), val)})
		return domain.IntReply(offset + int64(len(val)))
	}
	c.writeAt(key, old, int(offset), val)
	return domain.IntReply(int64(max(size, int(offset)+len(val))))
}

func incr(c *ctx, args [][]byte) domain.Reply { return incrDecr(c, args[1], 1) }
func decr(c *ctx, args [][]byte) domain.Reply { return incrDecr(c, args[1], -1) }

func incrby(c *ctx, args [][]byte) domain.Reply {
	n, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	return incrDecr(c, args[1], n)
}

func decrby(c *ctx, args [][]byte) domain.Reply {
	n, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	if n == math.MinInt64 {
		return domain.ErrorReply("ERR decrement would overflow")
	}
	return incrDecr(c, args[1], -n)
}

// incrDecr adds by to the integer at key (absent: 0), keeping the
// deadline.
func incrDecr(c *ctx, key []byte, by int64) domain.Reply {
	old, found, wrong := c.lookupString(key)
	if wrong {
		return ErrWrongType
	}
	var v int64
	if found {
		var ok bool
		if v, ok = ParseInt(old.Value); !ok {
			return ErrNotInteger
		}
	}
	if (by < 0 && v < 0 && by < math.MinInt64-v) || (by > 0 && v > 0 && by > math.MaxInt64-v) {
		return ErrOverflow
	}
	v += by
	c.put(key, Record{Value: strconv.AppendInt(nil, v, 10), ExpireAt: old.ExpireAt})
	return domain.IntReply(v)
}

// incrbyfloat adds in long double, as Redis does, and stores and replies
// with the sum formatted as ld2string's human-friendly form; the deadline
// stays.
func incrbyfloat(c *ctx, args [][]byte) domain.Reply {
	key := args[1]
	old, found, wrong := c.lookupString(key)
	if wrong {
		return ErrWrongType
	}
	v := new(big.Float).SetPrec(ldPrec)
	if found {
		var ok bool
		if v, ok = ParseLongDouble(old.Value); !ok {
			return ErrNotFloat
		}
	}
	by, ok := ParseLongDouble(args[2])
	if !ok {
		return ErrNotFloat
	}
	sum, ok := addLongDouble(v, by)
	if !ok {
		return ErrNaNInf
	}
	s := []byte(FormatLongDouble(sum))
	c.put(key, Record{Value: s, ExpireAt: old.ExpireAt})
	return domain.BulkReply(s)
}

// bitOffset parses a SETBIT or GETBIT offset as Redis's
// getBitOffsetFromArgument: an integer, not negative, within the value
// limit (2^32 bits by default).
func (c *ctx) bitOffset(arg []byte) (int64, bool) {
	off, ok := ParseInt(arg)
	if !ok || off < 0 || off>>3 >= int64(c.maxValue) {
		return 0, false
	}
	return off, true
}

var errBitOffset = domain.ErrorReply("ERR bit offset is not an integer or out of range")

// setbit sets or clears one bit, growing the value with zero bytes as
// needed, keeping the deadline; it replies with the bit's old value. A
// write that changes nothing is not made, as Redis does not touch the key.
func setbit(c *ctx, args [][]byte) domain.Reply {
	off, ok := c.bitOffset(args[2])
	if !ok {
		return errBitOffset
	}
	on, ok := ParseInt(args[3])
	if !ok || on&^1 != 0 {
		return domain.ErrorReply("ERR bit is not an integer or out of range")
	}
	key := args[1]
	old, size, found, wrong := c.statString(key)
	if wrong {
		return ErrWrongType
	}
	byteAt := int(off >> 3)
	mask := byte(1) << (7 - uint(off&7))
	var b [1]byte
	if byteAt < size {
		c.readAt(key, byteAt, b[:])
	}
	was := b[0]&mask != 0
	if found && byteAt < size && was == (on == 1) {
		return domain.IntReply(b2i(was))
	}
	if on == 1 {
		b[0] |= mask
	} else {
		b[0] &^= mask
	}
	if !found {
		c.put(key, Record{Value: PatchValue(nil, byteAt, b[:])})
		return domain.IntReply(0)
	}
	c.writeAt(key, old, byteAt, b[:])
	return domain.IntReply(b2i(was))
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func getbit(c *ctx, args [][]byte) domain.Reply {
	off, ok := c.bitOffset(args[2])
	if !ok {
		return errBitOffset
	}
	_, size, _, wrong := c.statString(args[1])
	if wrong {
		return ErrWrongType
	}
	byteAt := int(off >> 3)
	if byteAt >= size {
		return domain.IntReply(0)
	}
	var v [1]byte
	c.readAt(args[1], byteAt, v[:])
	return domain.IntReply(b2i(v[0]&(1<<(7-uint(off&7))) != 0))
}

// bitUnit parses BITCOUNT's and BITPOS's BYTE|BIT word: true for BIT.
func bitUnit(arg []byte) (isBit, ok bool) {
	switch strings.ToUpper(string(arg)) {
	case "BIT":
		return true, true
	case "BYTE":
		return false, true
	}
	return false, false
}

// bitAt is bit i (0 the most significant of byte 0) of v.
func bitAt(v []byte, i int64) bool { return v[i>>3]&(1<<(7-uint(i&7))) != 0 }

// bitcount counts the set bits of the value, or of the range start to end
// in bytes or bits. An absent key counts 0 before any argument is looked
// at, as Redis 7.0 does.
func bitcount(c *ctx, args [][]byte) domain.Reply {
	r, found, wrong := c.lookupString(args[1])
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(0)
	}
	v := r.Value
	if len(args) == 2 {
		return domain.IntReply(popcount(v))
	}
	if len(args) > 5 || len(args) == 3 {
		return ErrSyntax
	}
	start, ok1 := ParseInt(args[2])
	if !ok1 {
		return ErrNotInteger
	}
	end, ok2 := ParseInt(args[3])
	if !ok2 {
		return ErrNotInteger
	}
	if start < 0 && end < 0 && start > end {
		return domain.IntReply(0)
	}
	isBit := false
	if len(args) == 5 {
		var ok bool
		if isBit, ok = bitUnit(args[4]); !ok {
			return ErrSyntax
		}
	}
	total := int64(len(v))
	if isBit {
		total <<= 3
	}
	start, end = clampRange(start, end, total)
	if start > end {
		return domain.IntReply(0)
	}
	if !isBit {
		return domain.IntReply(popcount(v[start : end+1]))
	}
	// Whole bytes in the middle, single bits at the edges.
	var n int64
	for ; start <= end && start&7 != 0; start++ {
		n += b2i(bitAt(v, start))
	}
	for ; start <= end && end&7 != 7; end-- {
		n += b2i(bitAt(v, end))
	}
	if start <= end {
		n += popcount(v[start>>3 : end>>3+1])
	}
	return domain.IntReply(n)
}

// clampRange turns negative indexes into offsets from total and clamps
// both to the value, as BITCOUNT and BITPOS do.
func clampRange(start, end, total int64) (int64, int64) {
	if start < 0 {
		start += total
	}
	if end < 0 {
		end += total
	}
	start, end = max(start, 0), max(end, 0)
	return start, min(end, total-1)
}

func popcount(v []byte) int64 {
	var n int
	for len(v) >= 8 {
		n += bits.OnesCount64(uint64(v[0]) | uint64(v[1])<<8 | uint64(v[2])<<16 | uint64(v[3])<<24 |
			uint64(v[4])<<32 | uint64(v[5])<<40 | uint64(v[6])<<48 | uint64(v[7])<<56)
		v = v[8:]
	}
	for _, b := range v {
		n += bits.OnesCount8(b)
	}
	return int64(n)
}

// bitpos finds the first bit set to 1 or 0, in the value or the range
// start to end in bytes or bits. An absent key is all zeros (0 for a clear
// bit, -1 for a set one), answered before the range is looked at. Looking
// for a 0 without an end, the value counts as padded with zeros: all ones
// gives the bit after the range.
func bitpos(c *ctx, args [][]byte) domain.Reply {
	bit, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	if bit != 0 && bit != 1 {
		return domain.ErrorReply("ERR The bit argument must be 1 or 0.")
	}
	r, found, wrong := c.lookupString(args[1])
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(-bit)
	}
	v := r.Value
	if len(args) > 6 {
		return ErrSyntax
	}
	isBit, endGiven := false, false
	start, end := int64(0), int64(len(v))-1
	if len(args) >= 4 {
		total := int64(len(v))
		if start, ok = ParseInt(args[3]); !ok {
			return ErrNotInteger
		}
		if len(args) == 6 {
			if isBit, ok = bitUnit(args[5]); !ok {
				return ErrSyntax
			}
		}
		if len(args) >= 5 {
			if end, ok = ParseInt(args[4]); !ok {
				return ErrNotInteger
			}
			endGiven = true
		} else {
			end = total - 1
			if isBit {
				end = total<<3 - 1
			}
		}
		if isBit {
			total <<= 3
		}
		start, end = clampRange(start, end, total)
	}
	if start > end {
		return domain.IntReply(-1)
	}
	if !isBit {
		start, end = start<<3, end<<3+7
	}
	want := bit == 1
	for i := start; i <= end; {
		if i&7 == 0 && i+7 <= end {
			// A whole byte: skip it if it has no wanted bit.
			b := v[i>>3]
			if (want && b == 0) || (!want && b == 0xff) {
				i += 8
				continue
			}
		}
		if bitAt(v, i) == want {
			return domain.IntReply(i)
		}
		i++
	}
	if want || endGiven {
		return domain.IntReply(-1)
	}
	return domain.IntReply(end + 1)
}

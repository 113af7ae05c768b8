package keyspace

import (
	"bytes"
	"math"
	"strconv"

	"github.com/seshat-kv/seshat/domain"
)

// A hash's elements: sub-key the field, value the value.

var hashCommands = []*Spec{
	{Name: "hset", Arity: -4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hset},
	{Name: "hmset", Arity: -4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hmset},
	{Name: "hsetnx", Arity: 4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hsetnx},
	{Name: "hget", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hget},
	{Name: "hmget", Arity: -3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hmget},
	{Name: "hgetall", Arity: 2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hgetall},
	{Name: "hkeys", Arity: 2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hkeys},
	{Name: "hvals", Arity: 2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hvals},
	{Name: "hdel", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hdel},
	{Name: "hexists", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hexists},
	{Name: "hlen", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hlen},
	{Name: "hstrlen", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hstrlen},
	{Name: "hincrby", Arity: 4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hincrby},
	{Name: "hincrbyfloat", Arity: 4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hincrbyfloat},
	{Name: "hrandfield", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hrandfield},
	{Name: "hscan", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "hash", run: hscan},
}

// hashForWrite opens key's hash, or a new empty one if it has none.
func (c *ctx) hashForWrite(key []byte) (Record, bool) {
	r, ok, wrong := c.lookupType(key, TypeHash)
	if wrong {
		return Record{}, false
	}
	if !ok {
		r = c.newColl(TypeHash)
	}
	return r, true
}

// hsetField sets one field and counts a new one in r.
func (c *ctx) hsetField(r *Record, f, v []byte) bool {
	_, had := c.eget(*r, f)
	c.eput(*r, f, v)
	if !had {
		r.Count++
	}
	return !had
}

func hsetPairs(c *ctx, args [][]byte, name string) (int64, domain.Reply, bool) {
	if len(args)%2 != 0 {
		return 0, WrongArity(name), false
	}
	r, ok := c.hashForWrite(args[1])
	if !ok {
		return 0, ErrWrongType, false
	}
	var added int64
	for i := 2; i < len(args); i += 2 {
		if c.hsetField(&r, args[i], args[i+1]) {
			added++
		}
	}
	c.save(args[1], r)
	return added, domain.Reply{}, true
}

func hset(c *ctx, args [][]byte) domain.Reply {
	n, rep, ok := hsetPairs(c, args, "hset")
	if !ok {
		return rep
	}
	return domain.IntReply(n)
}

func hmset(c *ctx, args [][]byte) domain.Reply {
	if _, rep, ok := hsetPairs(c, args, "hmset"); !ok {
		return rep
	}
	return domain.OK
}

func hsetnx(c *ctx, args [][]byte) domain.Reply {
	r, ok := c.hashForWrite(args[1])
	if !ok {
		return ErrWrongType
	}
	if _, had := c.eget(r, args[2]); had {
		return domain.IntReply(0)
	}
	c.hsetField(&r, args[2], args[3])
	c.save(args[1], r)
	return domain.IntReply(1)
}

func hget(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.NilReply
	}
	if v, ok := c.eget(r, args[2]); ok {
		return domain.BulkReply(bytes.Clone(v))
	}
	return domain.NilReply
}

func hmget(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	out := make([]domain.Reply, len(args)-2)
	for i, f := range args[2:] {
		out[i] = domain.NilReply
		if !ok {
			continue
		}
		if v, found := c.eget(r, f); found {
			out[i] = domain.BulkReply(bytes.Clone(v))
		}
	}
	return domain.ArrayReply(out...)
}

// hashList replies with a hash's fields, values or both, in field order.
func hashList(c *ctx, key []byte, fields, values bool) domain.Reply {
	r, ok, wrong := c.lookupType(key, TypeHash)
	if wrong {
		return ErrWrongType
	}
	out := []domain.Reply{}
	if ok {
		for _, p := range c.elems(r) {
			if fields {
				out = append(out, domain.BulkReply(p.sub))
			}
			if values {
				out = append(out, domain.BulkReply(p.val))
			}
		}
	}
	if fields && values {
		return domain.Reply{Kind: domain.ReplyMap, Array: out}
	}
	return domain.ArrayReply(out...)
}

func hgetall(c *ctx, args [][]byte) domain.Reply { return hashList(c, args[1], true, true) }
func hkeys(c *ctx, args [][]byte) domain.Reply   { return hashList(c, args[1], true, false) }
func hvals(c *ctx, args [][]byte) domain.Reply   { return hashList(c, args[1], false, true) }

func hdel(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.IntReply(0)
	}
	var n int64
	for _, f := range args[2:] {
		if _, had := c.eget(r, f); had {
			c.edel(r, f)
			r.Count--
			n++
		}
	}
	if n > 0 {
		c.save(args[1], r)
	}
	return domain.IntReply(n)
}

func hexists(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.IntReply(0)
	}
	_, had := c.eget(r, args[2])
	return domain.IntReply(b2i(had))
}

func hlen(c *ctx, args [][]byte) domain.Reply {
	r, _, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	return domain.IntReply(r.Count)
}

func hstrlen(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeHash)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.IntReply(0)
	}
	v, _ := c.eget(r, args[2])
	return domain.IntReply(int64(len(v)))
}

func hincrby(c *ctx, args [][]byte) domain.Reply {
	by, ok := ParseInt(args[3])
	if !ok {
		return ErrNotInteger
	}
	r, ok := c.hashForWrite(args[1])
	if !ok {
		return ErrWrongType
	}
	var v int64
	if old, had := c.eget(r, args[2]); had {
		if v, ok = ParseInt(old); !ok {
			return domain.ErrorReply("ERR hash value is not an integer")
		}
	}
	if (by < 0 && v < math.MinInt64-by) || (by > 0 && v > math.MaxInt64-by) {
		return ErrOverflow
	}
	v += by
	c.hsetField(&r, args[2], strconv.AppendInt(nil, v, 10))
	c.save(args[1], r)
	return domain.IntReply(v)
}

func hincrbyfloat(c *ctx, args [][]byte) domain.Reply {
	by, ok := ParseLongDouble(args[3])
	if !ok {
		return ErrNotFloat
	}
	if by.IsInf() {
		return domain.ErrorReply("ERR value is NaN or Infinity")
	}
	r, ok := c.hashForWrite(args[1])
	if !ok {
		return ErrWrongType
	}
	v, _ := ParseLongDouble([]byte("0"))
	if old, had := c.eget(r, args[2]); had {
		if v, ok = ParseLongDouble(old); !ok {
			return domain.ErrorReply("ERR hash value is not a float")
		}
	}
	sum, ok := addLongDouble(v, by)
	if !ok {
		return ErrNaNInf
	}
	s := []byte(FormatLongDouble(sum))
	c.hsetField(&r, args[2], s)
	c.save(args[1], r)
	return domain.BulkReply(s)
}

func hrandfield(c *ctx, args [][]byte) domain.Reply {
	return randMembers(c, args, TypeHash, "WITHVALUES")
}

func hscan(c *ctx, args [][]byte) domain.Reply { return scanColl(c, args, TypeHash) }

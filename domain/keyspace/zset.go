package keyspace

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

var zsetCommands = []*Spec{
	{Name: "zadd", Arity: -4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zadd},
	{Name: "zincrby", Arity: 4, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zincrby},
	{Name: "zrem", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrem},
	{Name: "zscore", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zscore},
	{Name: "zmscore", Arity: -3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zmscore},
	{Name: "zcard", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zcard},
	{Name: "zcount", Arity: 4, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zcount},
	{Name: "zlexcount", Arity: 4, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zlexcount},
	{Name: "zrank", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrank},
	{Name: "zrevrank", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrevrank},
	{Name: "zrange", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrange},
	{Name: "zrangestore", Arity: -5, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "sorted-set", run: zrangestore},
	{Name: "zrevrange", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrevrange},
	{Name: "zrangebyscore", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrangebyscore},
	{Name: "zrevrangebyscore", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrevrangebyscore},
	{Name: "zrangebylex", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrangebylex},
	{Name: "zrevrangebylex", Arity: -4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrevrangebylex},
	{Name: "zremrangebyrank", Arity: 4, Flags: Write, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zremrangebyrank},
	{Name: "zremrangebyscore", Arity: 4, Flags: Write, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zremrangebyscore},
	{Name: "zremrangebylex", Arity: 4, Flags: Write, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zremrangebylex},
	{Name: "zpopmin", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zpopmin},
	{Name: "zpopmax", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zpopmax},
	{Name: "zmpop", Arity: -4, Flags: Write, Group: "sorted-set", run: zmpop},
	{Name: "zrandmember", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zrandmember},
	{Name: "zunion", Arity: -3, Flags: ReadOnly, Group: "sorted-set", run: zunion},
	{Name: "zinter", Arity: -3, Flags: ReadOnly, Group: "sorted-set", run: zinter},
	{Name: "zdiff", Arity: -3, Flags: ReadOnly, Group: "sorted-set", run: zdiff},
	{Name: "zunionstore", Arity: -4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zunionstore},
	{Name: "zinterstore", Arity: -4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zinterstore},
	{Name: "zdiffstore", Arity: -4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zdiffstore},
	{Name: "zintercard", Arity: -3, Flags: ReadOnly, Group: "sorted-set", run: zintercard},
	{Name: "zscan", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "sorted-set", run: zscan},
}

var (
	errNotFloatRange = domain.ErrorReply("ERR min or max is not a float")
	errLexRange      = domain.ErrorReply("ERR min or max not valid string range item")
	errNaNScore      = domain.ErrorReply("ERR resulting score is not a number (NaN)")
)

// zElem is a member and its score, copied out of the store.
type zElem struct {
	member []byte
	score  float64
}

// scoreReply is a score as Redis replies with one.
func scoreReply(f float64) domain.Reply {
	return domain.Reply{Kind: domain.ReplyDouble, Str: string(formatScore(f))}
}

func (c *ctx) zscoreOf(r Record, m []byte) (float64, bool) {
	v, ok := c.eget(r, zMemberKey(m))
	if !ok {
		return 0, false
	}
	return decodeScore(v), true
}

// zset stores member m at score (had: it was there at old), keeping both
// the member's record and the score index, and the count.
func (c *ctx) zset(r *Record, m []byte, score, old float64, had bool) {
	if score == 0 {
		score = 0 // -0 is stored as 0, as Redis's compact encoding does
	}
	if had {
		if old == score { // as Redis: -0 and 0 are the same score
			return
		}
		c.edel(*r, zScoreKey(old, m))
	} else {
		r.Count++
	}
	c.eput(*r, zMemberKey(m), encodeScore(score))
	c.eput(*r, zScoreKey(score, m), nil)
}

func (c *ctx) zdel(r *Record, m []byte, score float64) {
	c.edel(*r, zMemberKey(m))
	c.edel(*r, zScoreKey(score, m))
	r.Count--
}

// zwalk visits r's members in score order (reverse: descending) from the
// index key from (nil: the first or the last), until fn returns false.
func (c *ctx) zwalk(r Record, from []byte, reverse bool, fn func(e zElem) bool) {
	if from == nil {
		from = []byte{zScoreTag}
		if reverse {
			from = []byte{zScoreTag + 1}
		}
	}
	c.escan(r, from, reverse, func(sub, _ []byte) bool {
		if len(sub) < 9 || sub[0] != zScoreTag {
			return false
		}
		return fn(zElem{bytes.Clone(sub[9:]), unsortScore(binary.BigEndian.Uint64(sub[1:9]))})
	})
}

// zall returns every member in score order.
func (c *ctx) zall(r Record) []zElem {
	out := make([]zElem, 0, min(r.Count, 1024))
	c.zwalk(r, nil, false, func(e zElem) bool { out = append(out, e); return true })
	return out
}

// zaddFlags are ZADD's options.
type zaddFlags struct{ nx, xx, gt, lt, ch, incr bool }

func parseZaddFlags(args [][]byte) (zaddFlags, int) {
	var f zaddFlags
	i := 0
	for ; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "gt":
			f.gt = true
		case "lt":
			f.lt = true
		case "ch":
			f.ch = true
		case "incr":
			f.incr = true
		default:
			return f, i
		}
	}
	return f, i
}

func zadd(c *ctx, args [][]byte) domain.Reply {
	f, n := parseZaddFlags(args[2:])
	pairs := args[2+n:]
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		return ErrSyntax
	}
	switch {
	case f.nx && f.xx:
		return domain.ErrorReply("ERR XX and NX options at the same time are not compatible")
	case f.gt && f.nx || f.lt && f.nx || f.gt && f.lt:
		return domain.ErrorReply("ERR GT, LT, and/or NX options at the same time are not compatible")
	case f.incr && len(pairs) > 2:
		return domain.ErrorReply("ERR INCR option supports a single increment-element pair")
	}
	scores := make([]float64, len(pairs)/2)
	for i := range scores {
		s, ok := parseDouble(pairs[2*i])
		if !ok {
			return ErrNotFloat
		}
		scores[i] = s
	}
	key := args[1]
	r, ok, wrong := c.lookupType(key, TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if !ok && f.xx {
		if f.incr {
			return domain.NilReply
		}
		return domain.IntReply(0)
	}
	if !ok {
		r = c.newColl(TypeZSet)
	}
	var added, updated int64
	processed := false
	var last float64
	for i, score := range scores {
		m := pairs[2*i+1]
		cur, had := c.zscoreOf(r, m)
		switch {
		case had && f.nx, !had && f.xx:
			continue
		case had && f.incr:
			score += cur
			if math.IsNaN(score) {
				return errNaNScore
			}
		}
		if had && (f.lt && score >= cur || f.gt && score <= cur) {
			continue
		}
		processed, last = true, score
		switch {
		case !had:
			added++
		case score != cur:
			updated++
		}
		c.zset(&r, m, score, cur, had)
	}
	if added+updated > 0 {
		c.save(key, r)
	}
	if f.incr {
		if !processed {
			return domain.NilReply
		}
		return scoreReply(last)
	}
	if f.ch {
		return domain.IntReply(added + updated)
	}
	return domain.IntReply(added)
}

func zincrby(c *ctx, args [][]byte) domain.Reply {
	return zadd(c, [][]byte{args[0], args[1], []byte("INCR"), args[2], args[3]})
}

func zrem(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.IntReply(0)
	}
	var n int64
	for _, m := range args[2:] {
		if s, had := c.zscoreOf(r, m); had {
			c.zdel(&r, m, s)
			n++
		}
	}
	if n > 0 {
		c.save(args[1], r)
	}
	return domain.IntReply(n)
}

func zscore(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if s, had := c.zscoreOf(r, args[2]); ok && had {
		return scoreReply(s)
	}
	return domain.NilReply
}

func zmscore(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	out := make([]domain.Reply, len(args)-2)
	for i, m := range args[2:] {
		out[i] = domain.NilReply
		if s, had := c.zscoreOf(r, m); ok && had {
			out[i] = scoreReply(s)
		}
	}
	return domain.ArrayReply(out...)
}

func zcard(c *ctx, args [][]byte) domain.Reply {
	r, _, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	return domain.IntReply(r.Count)
}

func zrandmember(c *ctx, args [][]byte) domain.Reply {
	return randMembers(c, args, TypeZSet, "WITHSCORES")
}

func zscan(c *ctx, args [][]byte) domain.Reply { return scanColl(c, args, TypeZSet) }

// zrank is ZRANK and ZREVRANK: the member's position, found by counting
// the index from the start (O(rank)).
func zrankGeneric(c *ctx, args [][]byte, rev bool) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	s, had := c.zscoreOf(r, args[2])
	if !ok || !had {
		return domain.NilReply
	}
	target := zScoreKey(s, args[2])
	var rank int64
	c.escan(r, []byte{zScoreTag}, false, func(sub, _ []byte) bool {
		if bytes.Equal(sub, target) {
			return false
		}
		rank++
		return true
	})
	if rev {
		rank = r.Count - 1 - rank
	}
	return domain.IntReply(rank)
}

func zrank(c *ctx, args [][]byte) domain.Reply    { return zrankGeneric(c, args, false) }
func zrevrank(c *ctx, args [][]byte) domain.Reply { return zrankGeneric(c, args, true) }

package keyspace

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// scoreRange is a ZRANGEBYSCORE range, as Redis's zrangespec.
type scoreRange struct {
	min, max     float64
	minex, maxex bool
}

func parseScoreRange(lo, hi []byte) (scoreRange, bool) {
	var sr scoreRange
	var ok bool
	if len(lo) > 0 && lo[0] == '(' {
		sr.minex, lo = true, lo[1:]
	}
	if len(hi) > 0 && hi[0] == '(' {
		sr.maxex, hi = true, hi[1:]
	}
	if sr.min, ok = parseRangeDouble(lo); !ok {
		return sr, false
	}
	if sr.max, ok = parseRangeDouble(hi); !ok {
		return sr, false
	}
	return sr, true
}

func (sr scoreRange) gteMin(f float64) bool {
	if sr.minex {
		return f > sr.min
	}
	return f >= sr.min
}

func (sr scoreRange) lteMax(f float64) bool {
	if sr.maxex {
		return f < sr.max
	}
	return f <= sr.max
}

func (sr scoreRange) empty() bool {
	return sr.min > sr.max || sr.min == sr.max && (sr.minex || sr.maxex)
}

// lexBound is one end of a ZRANGEBYLEX range: -inf (-1), +inf (1), or
// a member (0), exclusive or not.
type lexBound struct {
	inf int
	s   []byte
	ex  bool
}

type lexRange struct{ min, max lexBound }

func parseLexBound(b []byte) (lexBound, bool) {
	switch {
	case len(b) == 1 && b[0] == '+':
		return lexBound{inf: 1}, true
	case len(b) == 1 && b[0] == '-':
		return lexBound{inf: -1}, true
	case len(b) > 0 && b[0] == '(':
		return lexBound{s: b[1:], ex: true}, true
	case len(b) > 0 && b[0] == '[':
		return lexBound{s: b[1:]}, true
	}
	return lexBound{}, false
}

func parseLexRange(lo, hi []byte) (lexRange, bool) {
	a, ok1 := parseLexBound(lo)
	b, ok2 := parseLexBound(hi)
	return lexRange{a, b}, ok1 && ok2
}

// cmpLex orders bounds as Redis's sdscmplex: -inf < members < +inf.
func cmpLex(a, b lexBound) int {
	if a.inf != 0 || b.inf != 0 {
		return a.inf - b.inf
	}
	return bytes.Compare(a.s, b.s)
}

func (lr lexRange) empty() bool {
	c := cmpLex(lr.min, lr.max)
	return c > 0 || c == 0 && (lr.min.ex || lr.max.ex)
}

func (lr lexRange) gteMin(m []byte) bool {
	switch lr.min.inf {
	case -1:
		return true
	case 1:
		return false
	}
	c := bytes.Compare(m, lr.min.s)
	return c > 0 || c == 0 && !lr.min.ex
}

func (lr lexRange) lteMax(m []byte) bool {
	switch lr.max.inf {
	case 1:
		return true
	case -1:
		return false
	}
	c := bytes.Compare(m, lr.max.s)
	return c < 0 || c == 0 && !lr.max.ex
}

// zrangeKind is what a range counts in.
type zrangeKind int

const (
	byRank zrangeKind = iota
	byScore
	byLex
)

// zrangeQuery is a parsed range of any kind.
type zrangeQuery struct {
	kind          zrangeKind
	rev           bool
	start, stop   int64 // byRank
	score         scoreRange
	lex           lexRange
	offset, limit int64 // limit < 0: no limit
}

// zselect returns the members q selects, in its order. It walks the
// score index from the range's first end, so it reads the members it
// returns and those before them in the range's own order (for ranks and
// offsets), never the whole set.
func (c *ctx) zselect(r Record, q zrangeQuery) []zElem {
	var out []zElem
	switch q.kind {
	case byRank:
		n := r.Count
		start, stop := q.start, q.stop
		if start < 0 {
			start += n
		}
		if stop < 0 {
			stop += n
		}
		start = max(start, 0)
		if start > stop || start >= n {
			return nil
		}
		stop = min(stop, n-1)
		var i int64
		c.zwalk(r, nil, q.rev, func(e zElem) bool {
			if i >= start {
				out = append(out, e)
			}
			i++
			return i <= stop
		})
		return out
	case byScore:
		sr := q.score
		if sr.empty() {
			return nil
		}
		var from []byte
		if q.rev {
			from = zScoreKey(sr.max, nil)
			// Every member at max sorts after "s"|max, before the next.
			binary.BigEndian.PutUint64(from[1:], sortableScore(sr.max)+1)
			if sortableScore(sr.max) == math.MaxUint64 {
				from = nil
			}
		} else {
			from = zScoreKey(sr.min, nil)
		}
		in := func(e zElem) (skip, stop bool) {
			if q.rev {
				return !sr.lteMax(e.score), !sr.gteMin(e.score)
			}
			return !sr.gteMin(e.score), !sr.lteMax(e.score)
		}
		return c.zcollect(r, from, q, in)
	default:
		lr := q.lex
		if lr.empty() || !c.lexInRange(r, lr) {
			return nil
		}
		// As Redis's compact encoding: the first member at or past the
		// near end, in score order, starts the range, which runs while
		// members stay within the far end.
		started := false
		in := func(e zElem) (skip, stop bool) {
			near, far := lr.gteMin, lr.lteMax
			if q.rev {
				near, far = lr.lteMax, lr.gteMin
			}
			if !started {
				if !near(e.member) {
					return true, false
				}
				started = true
			}
			return false, !far(e.member)
		}
		return c.zcollect(r, nil, q, in)
	}
}

// zcollect walks from from, skipping members before the range (skip) and
// ending at the first past it (stop), applying q's offset and limit.
func (c *ctx) zcollect(r Record, from []byte, q zrangeQuery, in func(zElem) (skip, stop bool)) []zElem {
	var out []zElem
	offset, limit := q.offset, q.limit
	if offset < 0 || limit == 0 {
		return nil
	}
	c.zwalk(r, from, q.rev, func(e zElem) bool {
		skip, stop := in(e)
		if stop {
			return false
		}
		if skip {
			return true
		}
		if offset > 0 {
			offset--
			return true
		}
		out = append(out, e)
		return limit < 0 || int64(len(out)) < limit
	})
	return out
}

// lexInRange is Redis's precheck: the set's first member is within max
// and its last within min.
func (c *ctx) lexInRange(r Record, lr lexRange) bool {
	var first, last []byte
	c.zwalk(r, nil, false, func(e zElem) bool { first = e.member; return false })
	c.zwalk(r, nil, true, func(e zElem) bool { last = e.member; return false })
	return first != nil && lr.lteMax(first) && lr.gteMin(last)
}

// zrangeOpts says which options a ZRANGE form takes.
type zrangeOpts struct {
	kind     zrangeKind
	rev      bool
	fixed    bool // the form fixes kind and direction (ZRANGEBYSCORE...)
	store    bool
	argStart int // index of the key
}

// zrangeGeneric is Redis's zrangeGenericCommand: every ZRANGE form.
func zrangeGeneric(c *ctx, args [][]byte, o zrangeOpts) domain.Reply {
	q := zrangeQuery{kind: o.kind, rev: o.rev, limit: -1}
	kindSet, dirSet := o.fixed, o.fixed
	withScores := false
	base := o.argStart
	for j := base + 3; j < len(args); j++ {
		opt := strings.ToLower(string(args[j]))
		left := len(args) - j - 1
		switch {
		case !o.store && opt == "withscores":
			withScores = true
		case opt == "limit" && left >= 2:
			var ok1, ok2 bool
			q.offset, ok1 = ParseInt(args[j+1])
			q.limit, ok2 = ParseInt(args[j+2])
			if !ok1 || !ok2 {
				return ErrNotInteger
			}
			j += 2
		case !dirSet && opt == "rev":
			q.rev, dirSet = true, true
		case !kindSet && opt == "bylex":
			q.kind, kindSet = byLex, true
		case !kindSet && opt == "byscore":
			q.kind, kindSet = byScore, true
		default:
			return ErrSyntax
		}
	}
	// As Redis, which takes a limit of -1 for none given.
	if q.limit != -1 && q.kind == byRank {
		return domain.ErrorReply("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
	}
	if withScores && q.kind == byLex {
		return domain.ErrorReply("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
	}
	lo, hi := args[base+1], args[base+2]
	if q.rev && q.kind != byRank {
		lo, hi = hi, lo
	}
	switch q.kind {
	case byRank:
		var ok1, ok2 bool
		q.start, ok1 = ParseInt(lo)
		q.stop, ok2 = ParseInt(hi)
		if !ok1 || !ok2 {
			return ErrNotInteger
		}
	case byScore:
		var ok bool
		if q.score, ok = parseScoreRange(lo, hi); !ok {
			return errNotFloatRange
		}
	case byLex:
		var ok bool
		if q.lex, ok = parseLexRange(lo, hi); !ok {
			return errLexRange
		}
	}
	r, found, wrong := c.lookupType(args[base], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	var res []zElem
	if found {
		res = c.zselect(r, q)
	}
	if o.store {
		c.storeZSet(args[1], res)
		return domain.IntReply(int64(len(res)))
	}
	return zelemsReply(res, withScores)
}

func zelemsReply(es []zElem, withScores bool) domain.Reply {
	out := make([]domain.Reply, 0, len(es)*(1+b2iInt(withScores)))
	for _, e := range es {
		out = append(out, domain.BulkReply(e.member))
		if withScores {
			out = append(out, scoreReply(e.score))
		}
	}
	return domain.ArrayReply(out...)
}

// storeZSet replaces whatever dst holds with a sorted set of es (none:
// dst is deleted).
func (c *ctx) storeZSet(dst []byte, es []zElem) {
	if len(es) == 0 {
		if _, _, ok := c.stat(dst); ok {
			c.del(dst)
		}
		return
	}
	r := c.newColl(TypeZSet)
	for _, e := range es {
		old, had := c.zscoreOf(r, e.member)
		c.zset(&r, e.member, e.score, old, had)
	}
	c.put(dst, r)
}

func zrange(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1})
}
func zrangestore(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 2, store: true})
}
func zrevrange(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1, rev: true, fixed: true})
}
func zrangebyscore(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1, kind: byScore, fixed: true})
}
func zrevrangebyscore(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1, kind: byScore, rev: true, fixed: true})
}
func zrangebylex(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1, kind: byLex, fixed: true})
}
func zrevrangebylex(c *ctx, args [][]byte) domain.Reply {
	return zrangeGeneric(c, args, zrangeOpts{argStart: 1, kind: byLex, rev: true, fixed: true})
}

// zcountGeneric is ZCOUNT and ZLEXCOUNT.
func zcountGeneric(c *ctx, args [][]byte, kind zrangeKind) domain.Reply {
	q := zrangeQuery{kind: kind, limit: -1}
	var ok bool
	if kind == byScore {
		if q.score, ok = parseScoreRange(args[2], args[3]); !ok {
			return errNotFloatRange
		}
	} else if q.lex, ok = parseLexRange(args[2], args[3]); !ok {
		return errLexRange
	}
	r, found, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(0)
	}
	return domain.IntReply(int64(len(c.zselect(r, q))))
}

func zcount(c *ctx, args [][]byte) domain.Reply    { return zcountGeneric(c, args, byScore) }
func zlexcount(c *ctx, args [][]byte) domain.Reply { return zcountGeneric(c, args, byLex) }

// zremrange is ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX.
func zremrange(c *ctx, args [][]byte, kind zrangeKind) domain.Reply {
	q := zrangeQuery{kind: kind, limit: -1}
	var ok bool
	switch kind {
	case byRank:
		var ok2 bool
		q.start, ok = ParseInt(args[2])
		q.stop, ok2 = ParseInt(args[3])
		if !ok || !ok2 {
			return ErrNotInteger
		}
	case byScore:
		if q.score, ok = parseScoreRange(args[2], args[3]); !ok {
			return errNotFloatRange
		}
	default:
		if q.lex, ok = parseLexRange(args[2], args[3]); !ok {
			return errLexRange
		}
	}
	r, found, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(0)
	}
	gone := c.zselect(r, q)
	for _, e := range gone {
		c.zdel(&r, e.member, e.score)
	}
	if len(gone) > 0 {
		c.save(args[1], r)
	}
	return domain.IntReply(int64(len(gone)))
}

func zremrangebyrank(c *ctx, args [][]byte) domain.Reply  { return zremrange(c, args, byRank) }
func zremrangebyscore(c *ctx, args [][]byte) domain.Reply { return zremrange(c, args, byScore) }
func zremrangebylex(c *ctx, args [][]byte) domain.Reply   { return zremrange(c, args, byLex) }

// zpopFrom removes up to count members from r's low (or, max, high) end.
func (c *ctx) zpopFrom(key []byte, r Record, count int64, max bool) []zElem {
	es := c.zselect(r, zrangeQuery{kind: byRank, rev: max, start: 0, stop: count - 1})
	for _, e := range es {
		c.zdel(&r, e.member, e.score)
	}
	c.save(key, r)
	return es
}

func zpopGeneric(c *ctx, args [][]byte, max bool) domain.Reply {
	if len(args) > 3 {
		return ErrSyntax
	}
	count := int64(1)
	if len(args) == 3 {
		n, ok := ParseInt(args[2])
		if !ok || n < 0 {
			return errPositive
		}
		count = n
	}
	r, found, wrong := c.lookupType(args[1], TypeZSet)
	if wrong {
		return ErrWrongType
	}
	if !found || count == 0 {
		return domain.EmptyArray
	}
	return zelemsReply(c.zpopFrom(args[1], r, count, max), true)
}

func zpopmin(c *ctx, args [][]byte) domain.Reply { return zpopGeneric(c, args, false) }
func zpopmax(c *ctx, args [][]byte) domain.Reply { return zpopGeneric(c, args, true) }

// parseMPop parses what LMPOP and ZMPOP share after numkeys: the keys,
// the end (one of ends, upper case), and COUNT. It returns the keys, the
// index of the chosen end in ends, and the count (1 if not given).
func parseMPop(args [][]byte, ends [2]string) (keys [][]byte, end int, count int64, rep domain.Reply, ok bool) {
	n, rep, ok := parseNumKeys(args[1], math.MaxInt32)
	if !ok {
		return nil, 0, 0, rep, false
	}
	where := 2 + n
	if where >= len(args) {
		return nil, 0, 0, ErrSyntax, false
	}
	switch w := strings.ToUpper(string(args[where])); w {
	case ends[0]:
		end = 0
	case ends[1]:
		end = 1
	default:
		return nil, 0, 0, ErrSyntax, false
	}
	count = -1
	for j := where + 1; j < len(args); j++ {
		if count == -1 && strings.EqualFold(string(args[j]), "count") && j+1 < len(args) {
			j++
			v, ok := ParseInt(args[j])
			if !ok || v <= 0 {
				return nil, 0, 0, domain.ErrorReply("ERR count should be greater than 0"), false
			}
			count = v
			continue
		}
		return nil, 0, 0, ErrSyntax, false
	}
	if count == -1 {
		count = 1
	}
	return args[2:where], end, count, domain.Reply{}, true
}

// mpop is LMPOP and ZMPOP: pop runs on the first key of args holding a
// t (absent keys skipped, another type WRONGTYPE) and its reply follows
// the key's name; no such key: a nil array.
func mpop(c *ctx, args [][]byte, t Type, ends [2]string, pop func(key []byte, r Record, count int64, end int) domain.Reply) domain.Reply {
	keys, end, count, rep, ok := parseMPop(args, ends)
	if !ok {
		return rep
	}
	for _, k := range keys {
		r, found, wrong := c.lookupType(k, t)
		if wrong {
			return ErrWrongType
		}
		if found {
			return domain.ArrayReply(domain.BulkReply(bytes.Clone(k)), pop(k, r, count, end))
		}
	}
	return domain.Reply{Kind: domain.ReplyNilArray}
}

func zmpop(c *ctx, args [][]byte) domain.Reply {
	return mpop(c, args, TypeZSet, [2]string{"MIN", "MAX"}, func(k []byte, r Record, count int64, end int) domain.Reply {
		es := c.zpopFrom(k, r, count, end == 1)
		pairs := make([]domain.Reply, len(es))
		for i, e := range es {
			pairs[i] = domain.ArrayReply(domain.BulkReply(e.member), scoreReply(e.score))
		}
		return domain.ArrayReply(pairs...)
	})
}

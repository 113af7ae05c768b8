package keyspace

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// zsetOp is which of ZUNION, ZINTER and ZDIFF runs.
type zsetOp int

const (
	opUnion zsetOp = iota
	opInter
	opDiff
)

// zsource is one input of a sorted-set operation: a sorted set, or a set
// (every member scoring 1), or nothing for an absent key.
type zsource struct {
	elems  []zElem // member order
	weight float64
}

func (s zsource) score(m []byte) (float64, bool) {
	i, ok := slices.BinarySearchFunc(s.elems, m, func(e zElem, m []byte) int { return bytes.Compare(e.member, m) })
	if !ok {
		return 0, false
	}
	return s.elems[i].score, true
}

// loadZSource reads key as an input: members in member order.
func (c *ctx) loadZSource(key []byte) (zsource, bool) {
	r, ok := c.lookup(key)
	src := zsource{weight: 1}
	if !ok {
		return src, true
	}
	switch r.Type {
	case TypeZSet:
		for _, p := range c.members(r) {
			f, _ := parseDouble(p.val)
			src.elems = append(src.elems, zElem{p.sub, f})
		}
	case TypeSet:
		for _, m := range c.setMembers(r) {
			src.elems = append(src.elems, zElem{m, 1})
		}
	default:
		return src, false
	}
	return src, true
}

// zsetOpGeneric is Redis's zunionInterDiffGenericCommand: dst is nil for
// the forms that reply, numkeysAt the index of numkeys.
func zsetOpGeneric(c *ctx, args [][]byte, dst []byte, numkeysAt int, op zsetOp, cardOnly bool) domain.Reply {
	n, ok := ParseInt(args[numkeysAt])
	if !ok {
		return ErrNotInteger
	}
	if n < 1 {
		return domain.ErrorReply(fmt.Sprintf("ERR at least 1 input key is needed for '%s' command", strings.ToLower(string(args[0]))))
	}
	if n > int64(len(args)-numkeysAt-1) {
		return ErrSyntax
	}
	keys := args[numkeysAt+1 : numkeysAt+1+int(n)]
	srcs := make([]zsource, len(keys))
	for i, k := range keys {
		if srcs[i], ok = c.loadZSource(k); !ok {
			return ErrWrongType
		}
	}
	aggregate := "sum"
	withScores := false
	limit := int64(0)
	for j := numkeysAt + 1 + int(n); j < len(args); {
		opt := strings.ToLower(string(args[j]))
		left := len(args) - j
		switch {
		case op != opDiff && !cardOnly && left >= int(n)+1 && opt == "weights":
			for i := range srcs {
				w, ok := parseDouble(args[j+1+i])
				if !ok {
					return domain.ErrorReply("ERR weight value is not a float")
				}
				srcs[i].weight = w
			}
			j += 1 + int(n)
		case op != opDiff && !cardOnly && left >= 2 && opt == "aggregate":
			aggregate = strings.ToLower(string(args[j+1]))
			if aggregate != "sum" && aggregate != "min" && aggregate != "max" {
				return ErrSyntax
			}
			j += 2
		case dst == nil && !cardOnly && opt == "withscores":
			withScores = true
			j++
		case cardOnly && left >= 2 && opt == "limit":
			l, ok := ParseInt(args[j+1])
			if !ok || l < 0 {
				return domain.ErrorReply("ERR LIMIT can't be negative")
			}
			limit = l
			j += 2
		default:
			return ErrSyntax
		}
	}
	res := zcombine(srcs, op, aggregate)
	switch {
	case cardOnly:
		if limit > 0 {
			return domain.IntReply(min(int64(len(res)), limit))
		}
		return domain.IntReply(int64(len(res)))
	case dst != nil:
		c.storeZSet(dst, res)
		return domain.IntReply(int64(len(res)))
	}
	return zelemsReply(res, withScores)
}

// zcombine computes an operation's result in score order.
func zcombine(srcs []zsource, op zsetOp, aggregate string) []zElem {
	weighted := func(s zsource, f float64) float64 {
		v := s.weight * f
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	agg := func(acc, v float64) float64 {
		switch aggregate {
		case "min":
			return min(acc, v)
		case "max":
			return max(acc, v)
		}
		if s := acc + v; !math.IsNaN(s) {
			return s
		}
		return 0
	}
	var out []zElem
	switch op {
	case opDiff:
		for _, e := range srcs[0].elems {
			in := false
			for _, s := range srcs[1:] {
				if _, ok := s.score(e.member); ok {
					in = true
					break
				}
			}
			if !in {
				out = append(out, e)
			}
		}
	case opInter:
		// As Redis: the smallest input first, the others in size order.
		order := slices.Clone(srcs)
		slices.SortStableFunc(order, func(a, b zsource) int { return cmp.Compare(len(a.elems), len(b.elems)) })
		for _, e := range order[0].elems {
			acc := weighted(order[0], e.score)
			in := true
			for _, s := range order[1:] {
				f, ok := s.score(e.member)
				if !ok {
					in = false
					break
				}
				acc = agg(acc, weighted(s, f))
			}
			if in {
				out = append(out, zElem{e.member, acc})
			}
		}
	default:
		acc := map[string]float64{}
		var members []string
		for _, s := range srcs {
			for _, e := range s.elems {
				v := weighted(s, e.score)
				if cur, ok := acc[string(e.member)]; ok {
					acc[string(e.member)] = agg(cur, v)
					continue
				}
				acc[string(e.member)] = v
				members = append(members, string(e.member))
			}
		}
		for _, m := range members {
			out = append(out, zElem{[]byte(m), acc[m]})
		}
	}
	slices.SortFunc(out, func(a, b zElem) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return bytes.Compare(a.member, b.member)
	})
	return out
}

func zunion(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, nil, 1, opUnion, false)
}
func zinter(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, nil, 1, opInter, false)
}
func zdiff(c *ctx, args [][]byte) domain.Reply { return zsetOpGeneric(c, args, nil, 1, opDiff, false) }
func zunionstore(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, args[1], 2, opUnion, false)
}
func zinterstore(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, args[1], 2, opInter, false)
}
func zdiffstore(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, args[1], 2, opDiff, false)
}
func zintercard(c *ctx, args [][]byte) domain.Reply {
	return zsetOpGeneric(c, args, nil, 1, opInter, true)
}

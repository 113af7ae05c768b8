package keyspace

import (
	"bytes"
	"math"
	"slices"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// A set's elements: sub-key the member, value empty.

var setCommands = []*Spec{
	{Name: "sadd", Arity: -3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: sadd},
	{Name: "srem", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: srem},
	{Name: "smembers", Arity: 2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: smembers},
	{Name: "sismember", Arity: 3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: sismember},
	{Name: "smismember", Arity: -3, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: smismember},
	{Name: "scard", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: scard},
	{Name: "spop", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: spop},
	{Name: "srandmember", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: srandmember},
	{Name: "smove", Arity: 4, Flags: Write | Fast, FirstKey: 1, LastKey: 2, Step: 1, Group: "set", run: smove},
	{Name: "sinter", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sinter},
	{Name: "sintercard", Arity: -3, Flags: ReadOnly, Group: "set", run: sintercard},
	{Name: "sinterstore", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sinterstore},
	{Name: "sunion", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sunion},
	{Name: "sunionstore", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sunionstore},
	{Name: "sdiff", Arity: -2, Flags: ReadOnly, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sdiff},
	{Name: "sdiffstore", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 1, Group: "set", run: sdiffstore},
	{Name: "sscan", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "set", run: sscan},
}

// saddTo adds members to r, counting the new ones.
func (c *ctx) saddTo(r *Record, members [][]byte) int64 {
	var n int64
	for _, m := range members {
		if _, had := c.eget(*r, m); had {
			continue
		}
		c.eput(*r, m, nil)
		r.Count++
		n++
	}
	return n
}

func sadd(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		r = c.newColl(TypeSet)
	}
	n := c.saddTo(&r, args[2:])
	if n > 0 {
		c.save(args[1], r)
	}
	return domain.IntReply(n)
}

func srem(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.IntReply(0)
	}
	var n int64
	for _, m := range args[2:] {
		if _, had := c.eget(r, m); had {
			c.edel(r, m)
			r.Count--
			n++
		}
	}
	if n > 0 {
		c.save(args[1], r)
	}
	return domain.IntReply(n)
}

// bulks turns members into an array reply.
func bulks(ms [][]byte) domain.Reply {
	out := make([]domain.Reply, len(ms))
	for i, m := range ms {
		out[i] = domain.BulkReply(m)
	}
	return domain.ArrayReply(out...)
}

func smembers(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.EmptyArray
	}
	return bulks(c.setMembers(r))
}

// setMembers returns copies of a set's members, in member order.
func (c *ctx) setMembers(r Record) [][]byte {
	out := make([][]byte, 0, min(r.Count, 1024))
	c.escan(r, nil, false, func(sub, _ []byte) bool {
		out = append(out, bytes.Clone(sub))
		return true
	})
	return out
}

func sismember(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	_, had := c.eget(r, args[2])
	return domain.IntReply(b2i(ok && had))
}

func smismember(c *ctx, args [][]byte) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	out := make([]domain.Reply, len(args)-2)
	for i, m := range args[2:] {
		_, had := c.eget(r, m)
		out[i] = domain.IntReply(b2i(ok && had))
	}
	return domain.ArrayReply(out...)
}

func scard(c *ctx, args [][]byte) domain.Reply {
	r, _, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	return domain.IntReply(r.Count)
}

var errPositive = domain.ErrorReply("ERR value is out of range, must be positive")

// spop removes and replies with random members, drawn from the entry's
// generator so that every replica removes the same ones.
func spop(c *ctx, args [][]byte) domain.Reply {
	if len(args) > 3 {
		return ErrSyntax
	}
	count := int64(-1) // none given
	if len(args) == 3 {
		n, ok := ParseInt(args[2])
		if !ok || n < 0 {
			return errPositive
		}
		count = n
	}
	r, ok, wrong := c.lookupType(args[1], TypeSet)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		if count < 0 {
			return domain.NilReply
		}
		return domain.EmptyArray
	}
	if count == 0 {
		return domain.EmptyArray
	}
	take := min(max(count, 1), r.Count)
	var popped [][]byte
	if take == r.Count {
		popped = c.setMembers(r)
	} else {
		for _, p := range c.membersAt(r, sample(c.rand(args[1]), r.Count, take)) {
			popped = append(popped, p.sub)
		}
	}
	for _, m := range popped {
		c.edel(r, m)
	}
	r.Count -= take
	c.save(args[1], r)
	if count < 0 {
		return domain.BulkReply(popped[0])
	}
	return bulks(popped)
}

func srandmember(c *ctx, args [][]byte) domain.Reply {
	return randMembers(c, args, TypeSet, "")
}

func smove(c *ctx, args [][]byte) domain.Reply {
	src, dst, m := args[1], args[2], args[3]
	sr, sok, swrong := c.lookupType(src, TypeSet)
	dr, dok, dwrong := c.lookupType(dst, TypeSet)
	if !sok && !swrong {
		return domain.IntReply(0)
	}
	if swrong || dwrong {
		return ErrWrongType
	}
	if _, had := c.eget(sr, m); !had {
		return domain.IntReply(0)
	}
	if bytes.Equal(src, dst) {
		return domain.IntReply(1)
	}
	c.edel(sr, m)
	sr.Count--
	c.save(src, sr)
	if !dok {
		dr = c.newColl(TypeSet)
	}
	c.saddTo(&dr, [][]byte{m})
	c.save(dst, dr)
	return domain.IntReply(1)
}

// setOf is one operand of a set operation: nil members for an absent key.
type setOf struct {
	found   bool
	members [][]byte
}

// loadSets looks up keys as sets: wrong reports a key of another type,
// missing an absent key (then, if skipIfMissing, no members are read:
// an intersection is empty).
func (c *ctx) loadSets(keys [][]byte, skipIfMissing bool) (sets []setOf, wrong, missing bool) {
	for _, k := range keys {
		if _, ok, w := c.lookupType(k, TypeSet); w {
			return nil, true, false
		} else if !ok {
			missing = true
		}
	}
	if missing && skipIfMissing {
		return nil, false, true
	}
	for _, k := range keys {
		r, ok, _ := c.lookupType(k, TypeSet)
		s := setOf{found: ok}
		if ok {
			s.members = c.setMembers(r)
		}
		sets = append(sets, s)
	}
	return sets, false, missing
}

// inter returns the members of the first set in every other, in order,
// stopping after limit (0: no limit).
func inter(sets []setOf, limit int64) [][]byte {
	if len(sets) == 0 {
		return nil
	}
	slices.SortStableFunc(sets, func(a, b setOf) int { return len(a.members) - len(b.members) })
	var out [][]byte
	for _, m := range sets[0].members {
		in := true
		for _, s := range sets[1:] {
			if _, found := slices.BinarySearchFunc(s.members, m, bytes.Compare); !found {
				in = false
				break
			}
		}
		if in {
			out = append(out, m)
			if limit > 0 && int64(len(out)) >= limit {
				break
			}
		}
	}
	return out
}

func union(sets []setOf) [][]byte {
	var all [][]byte
	for _, s := range sets {
		all = append(all, s.members...)
	}
	slices.SortFunc(all, bytes.Compare)
	return slices.CompactFunc(all, bytes.Equal)
}

func diff(sets []setOf) [][]byte {
	if len(sets) == 0 || !sets[0].found {
		return nil
	}
	var out [][]byte
	for _, m := range sets[0].members {
		in := false
		for _, s := range sets[1:] {
			if _, found := slices.BinarySearchFunc(s.members, m, bytes.Compare); found {
				in = true
				break
			}
		}
		if !in {
			out = append(out, m)
		}
	}
	return out
}

// setOp runs SINTER, SUNION or SDIFF over keys and replies with the
// result, or stores it at dst (dst non-nil) and replies with its size.
func setOp(c *ctx, keys [][]byte, dst []byte, op func([]setOf) [][]byte, isInter bool) domain.Reply {
	sets, wrong, missing := c.loadSets(keys, isInter)
	if wrong {
		return ErrWrongType
	}
	var res [][]byte
	if !missing || !isInter {
		res = op(sets)
	}
	if dst == nil {
		if res == nil {
			return domain.EmptyArray
		}
		return bulks(res)
	}
	c.storeSet(dst, res)
	return domain.IntReply(int64(len(res)))
}

// storeSet replaces whatever dst holds with a set of members (none:
// dst is deleted).
func (c *ctx) storeSet(dst []byte, members [][]byte) {
	if len(members) == 0 {
		if _, _, ok := c.stat(dst); ok {
			c.del(dst)
		}
		return
	}
	r := c.newColl(TypeSet)
	c.saddTo(&r, members)
	c.put(dst, r)
}

func sinter(c *ctx, args [][]byte) domain.Reply {
	return setOp(c, args[1:], nil, func(s []setOf) [][]byte { return inter(s, 0) }, true)
}

func sinterstore(c *ctx, args [][]byte) domain.Reply {
	return setOp(c, args[2:], args[1], func(s []setOf) [][]byte { return inter(s, 0) }, true)
}

func sunion(c *ctx, args [][]byte) domain.Reply { return setOp(c, args[1:], nil, union, false) }
func sunionstore(c *ctx, args [][]byte) domain.Reply {
	return setOp(c, args[2:], args[1], union, false)
}
func sdiff(c *ctx, args [][]byte) domain.Reply { return setOp(c, args[1:], nil, diff, false) }
func sdiffstore(c *ctx, args [][]byte) domain.Reply {
	return setOp(c, args[2:], args[1], diff, false)
}

// parseNumKeys parses the numkeys of SINTERCARD, ZINTERCARD, LMPOP and
// the like: positive, and no more than the arguments after it.
func parseNumKeys(arg []byte, rest int) (int, domain.Reply, bool) {
	n, ok := ParseInt(arg)
	if !ok || n <= 0 {
		return 0, domain.ErrorReply("ERR numkeys should be greater than 0"), false
	}
	if n > int64(rest) {
		return 0, domain.ErrorReply("ERR Number of keys can't be greater than number of args"), false
	}
	return int(n), domain.Reply{}, true
}

func sintercard(c *ctx, args [][]byte) domain.Reply {
	n, rep, ok := parseNumKeys(args[1], len(args)-2)
	if !ok {
		return rep
	}
	var limit int64
	for i := 2 + n; i < len(args); i += 2 {
		if !strings.EqualFold(string(args[i]), "limit") || i+1 >= len(args) {
			return ErrSyntax
		}
		l, ok := ParseInt(args[i+1])
		if !ok || l < 0 {
			return domain.ErrorReply("ERR LIMIT can't be negative")
		}
		limit = l
	}
	sets, wrong, missing := c.loadSets(args[2:2+n], true)
	if wrong {
		return ErrWrongType
	}
	if missing {
		return domain.IntReply(0)
	}
	return domain.IntReply(int64(len(inter(sets, min(limit, math.MaxInt64)))))
}

func sscan(c *ctx, args [][]byte) domain.Reply { return scanColl(c, args, TypeSet) }

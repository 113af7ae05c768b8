package keyspace

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// A list's elements: sub-key the element's position (a sortable 8-byte
// form of an int64), value the element. Element i is at Record.Head+i,
// so LINDEX, LSET and the start of LRANGE go straight to it, and a push
// or a pop at either end touches one element.

var listCommands = []*Spec{
	{Name: "lpush", Arity: -3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lpush},
	{Name: "rpush", Arity: -3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: rpush},
	{Name: "lpushx", Arity: -3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lpushx},
	{Name: "rpushx", Arity: -3, Flags: Write | DenyOOM | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: rpushx},
	{Name: "lpop", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lpop},
	{Name: "rpop", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: rpop},
	{Name: "llen", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: llen},
	{Name: "lrange", Arity: 4, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lrange},
	{Name: "lindex", Arity: 3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lindex},
	{Name: "lset", Arity: 4, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lset},
	{Name: "linsert", Arity: 5, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: linsert},
	{Name: "lrem", Arity: 4, Flags: Write, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lrem},
	{Name: "ltrim", Arity: 4, Flags: Write, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: ltrim},
	{Name: "lpos", Arity: -3, Flags: ReadOnly, FirstKey: 1, LastKey: 1, Step: 1, Group: "list", run: lpos},
	{Name: "lmove", Arity: 5, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list", run: lmove},
	{Name: "rpoplpush", Arity: 3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "list", run: rpoplpush},
	{Name: "lmpop", Arity: -4, Flags: Write, Group: "list", run: lmpop},
}

func posKey(pos int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(pos)^1<<63)
}

// lget returns a copy of element i of r.
func (c *ctx) lget(r Record, i int64) []byte {
	v, _ := c.eget(r, posKey(r.Head+i))
	return bytes.Clone(v)
}

func (c *ctx) lpushOne(r *Record, v []byte, left bool) {
	if left {
		r.Head--
		c.eput(*r, posKey(r.Head), v)
	} else {
		c.eput(*r, posKey(r.Head+r.Count), v)
	}
	r.Count++
}

func (c *ctx) lpopOne(r *Record, left bool) []byte {
	i := r.Count - 1
	if left {
		i = 0
	}
	v := c.lget(*r, i)
	c.edel(*r, posKey(r.Head+i))
	if left {
		r.Head++
	}
	r.Count--
	return v
}

// lslice returns copies of elements [start, stop] of r (valid indexes).
func (c *ctx) lslice(r Record, start, stop int64) [][]byte {
	out := make([][]byte, 0, min(stop-start+1, 1024))
	c.escan(r, posKey(r.Head+start), false, func(_, v []byte) bool {
		out = append(out, bytes.Clone(v))
		return int64(len(out)) < stop-start+1
	})
	return out
}

// lrewrite makes r's elements next (r holds old now), writing only the
// positions from the first that differs.
func (c *ctx) lrewrite(r *Record, old, next [][]byte) {
	first := 0
	for first < len(old) && first < len(next) && bytes.Equal(old[first], next[first]) {
		first++
	}
	for i := first; i < len(next); i++ {
		c.eput(*r, posKey(r.Head+int64(i)), next[i])
	}
	for i := len(next); i < len(old); i++ {
		c.edel(*r, posKey(r.Head+int64(i)))
	}
	r.Count = int64(len(next))
}

func pushGeneric(c *ctx, args [][]byte, left, onlyIfExists bool) domain.Reply {
	r, ok, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		if onlyIfExists {
			return domain.IntReply(0)
		}
		r = c.newColl(TypeList)
	}
	for _, v := range args[2:] {
		c.lpushOne(&r, v, left)
	}
	c.save(args[1], r)
	return domain.IntReply(r.Count)
}

func lpush(c *ctx, args [][]byte) domain.Reply  { return pushGeneric(c, args, true, false) }
func rpush(c *ctx, args [][]byte) domain.Reply  { return pushGeneric(c, args, false, false) }
func lpushx(c *ctx, args [][]byte) domain.Reply { return pushGeneric(c, args, true, true) }
func rpushx(c *ctx, args [][]byte) domain.Reply { return pushGeneric(c, args, false, true) }

func popGeneric(c *ctx, args [][]byte, left bool) domain.Reply {
	if len(args) > 3 {
		return WrongArity(strings.ToLower(string(args[0])))
	}
	count := int64(-1)
	if len(args) == 3 {
		n, ok := ParseInt(args[2])
		if !ok || n < 0 {
			return errPositive
		}
		count = n
	}
	r, ok, wrong := c.lookupType(args[1], TypeList)
	if !ok && !wrong {
		if count >= 0 {
			return domain.Reply{Kind: domain.ReplyNilArray}
		}
		return domain.NilReply
	}
	if wrong {
		return ErrWrongType
	}
	if count == 0 {
		return domain.EmptyArray
	}
	if count < 0 {
		v := c.lpopOne(&r, left)
		c.save(args[1], r)
		return domain.BulkReply(v)
	}
	out := make([][]byte, 0, min(count, r.Count))
	for range min(count, r.Count) {
		out = append(out, c.lpopOne(&r, left))
	}
	c.save(args[1], r)
	return bulks(out)
}

func lpop(c *ctx, args [][]byte) domain.Reply { return popGeneric(c, args, true) }
func rpop(c *ctx, args [][]byte) domain.Reply { return popGeneric(c, args, false) }

func llen(c *ctx, args [][]byte) domain.Reply {
	r, _, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	return domain.IntReply(r.Count)
}

// clampListRange turns LRANGE-style start and stop into valid indexes of a
// list of n, or ok false for an empty range.
func clampListRange(start, stop, n int64) (int64, int64, bool) {
	if start < 0 {
		start += n
	}
	if stop < 0 {
		stop += n
	}
	start = max(start, 0)
	if start > stop || start >= n {
		return 0, 0, false
	}
	return start, min(stop, n-1), true
}

func lrange(c *ctx, args [][]byte) domain.Reply {
	start, ok1 := ParseInt(args[2])
	stop, ok2 := ParseInt(args[3])
	if !ok1 || !ok2 {
		return ErrNotInteger
	}
	r, ok, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !ok {
		return domain.EmptyArray
	}
	start, stop, ok = clampListRange(start, stop, r.Count)
	if !ok {
		return domain.EmptyArray
	}
	return bulks(c.lslice(r, start, stop))
}

// listIndex resolves a possibly negative index of a list of n.
func listIndex(i, n int64) (int64, bool) {
	if i < 0 {
		i += n
	}
	return i, i >= 0 && i < n
}

// lindex and lset look the key up before the index, as Redis does.
func lindex(c *ctx, args [][]byte) domain.Reply {
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.NilReply
	}
	i, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	if i, ok = listIndex(i, r.Count); !ok {
		return domain.NilReply
	}
	return domain.BulkReply(c.lget(r, i))
}

func lset(c *ctx, args [][]byte) domain.Reply {
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return ErrNoSuchKey
	}
	i, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	if i, ok = listIndex(i, r.Count); !ok {
		return domain.ErrorReply("ERR index out of range")
	}
	c.eput(r, posKey(r.Head+i), args[3])
	c.save(args[1], r)
	return domain.OK
}

func linsert(c *ctx, args [][]byte) domain.Reply {
	var after bool
	switch strings.ToLower(string(args[2])) {
	case "after":
		after = true
	case "before":
	default:
		return ErrSyntax
	}
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(0)
	}
	old := c.lslice(r, 0, r.Count-1)
	at := -1
	for i, v := range old {
		if bytes.Equal(v, args[3]) {
			at = i
			break
		}
	}
	if at < 0 {
		return domain.IntReply(-1)
	}
	if after {
		at++
	}
	next := make([][]byte, 0, len(old)+1)
	next = append(append(append(next, old[:at]...), args[4]), old[at:]...)
	c.lrewrite(&r, old, next)
	c.save(args[1], r)
	return domain.IntReply(r.Count)
}

func lrem(c *ctx, args [][]byte) domain.Reply {
	count, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.IntReply(0)
	}
	old := c.lslice(r, 0, r.Count-1)
	drop := make([]bool, len(old))
	var removed int64
	for k := range old {
		i := k
		if count < 0 {
			i = len(old) - 1 - k
		}
		if count != 0 && removed == max(count, -count) {
			break
		}
		if bytes.Equal(old[i], args[3]) {
			drop[i] = true
			removed++
		}
	}
	if removed == 0 {
		return domain.IntReply(0)
	}
	next := make([][]byte, 0, len(old)-int(removed))
	for i, v := range old {
		if !drop[i] {
			next = append(next, v)
		}
	}
	c.lrewrite(&r, old, next)
	c.save(args[1], r)
	return domain.IntReply(removed)
}

func ltrim(c *ctx, args [][]byte) domain.Reply {
	start, ok1 := ParseInt(args[2])
	stop, ok2 := ParseInt(args[3])
	if !ok1 || !ok2 {
		return ErrNotInteger
	}
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		return domain.OK
	}
	start, stop, ok := clampListRange(start, stop, r.Count)
	if !ok {
		start, stop = r.Count, r.Count-1 // everything goes
	}
	for i := int64(0); i < start; i++ {
		c.edel(r, posKey(r.Head+i))
	}
	for i := stop + 1; i < r.Count; i++ {
		c.edel(r, posKey(r.Head+i))
	}
	r.Head += start
	r.Count = stop - start + 1
	c.save(args[1], r)
	return domain.OK
}

func lpos(c *ctx, args [][]byte) domain.Reply {
	rank, count, maxlen := int64(1), int64(-1), int64(0)
	for j := 3; j < len(args); j += 2 {
		opt := strings.ToLower(string(args[j]))
		if j+1 >= len(args) {
			return ErrSyntax
		}
		v, ok := ParseInt(args[j+1])
		switch opt {
		case "rank":
			if !ok {
				return ErrNotInteger
			}
			if v == 0 {
				return domain.ErrorReply("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list")
			}
			rank = v
		case "count":
			if !ok || v < 0 {
				return domain.ErrorReply("ERR COUNT can't be negative")
			}
			count = v
		case "maxlen":
			if !ok || v < 0 {
				return domain.ErrorReply("ERR MAXLEN can't be negative")
			}
			maxlen = v
		default:
			return ErrSyntax
		}
	}
	r, found, wrong := c.lookupType(args[1], TypeList)
	if wrong {
		return ErrWrongType
	}
	if !found {
		if count >= 0 {
			return domain.EmptyArray
		}
		return domain.NilReply
	}
	want := count
	if want <= 0 {
		want = 1 << 62
		if count < 0 {
			want = 1
		}
	}
	skip := max(rank, -rank) - 1
	if rank == math.MinInt64 {
		// As Redis 7.0, where -rank wraps to itself: every match from the
		// tail counts (none is skipped), and COUNT's test overflows, so
		// every match is answered whatever COUNT says; MAXLEN still
		// bounds the scan, and without COUNT the first match answers.
		skip = 0
		if count >= 0 {
			want = 1 << 62
		}
	}
	var hits []domain.Reply
	var seen int64
	var from []byte
	if rank < 0 {
		from = posKey(r.Head + r.Count - 1)
	}
	c.escan(r, from, rank < 0, func(_, v []byte) bool {
		idx := seen
		if rank < 0 {
			idx = r.Count - 1 - seen
		}
		seen++
		if bytes.Equal(v, args[2]) {
			if skip > 0 {
				skip--
			} else {
				hits = append(hits, domain.IntReply(idx))
			}
		}
		return int64(len(hits)) < want && (maxlen == 0 || seen < maxlen)
	})
	if count < 0 {
		if len(hits) == 0 {
			return domain.NilReply
		}
		return hits[0]
	}
	return domain.ArrayReply(hits...)
}

// parseEnd parses LEFT or RIGHT: left reports LEFT.
func parseEnd(b []byte) (left, ok bool) {
	switch strings.ToLower(string(b)) {
	case "left":
		return true, true
	case "right":
		return false, true
	}
	return false, false
}

// lmoveGeneric pops from src's end and pushes to dst's, as Redis's
// lmoveGenericCommand (src == dst rotates the list).
func lmoveGeneric(c *ctx, src, dst []byte, fromLeft, toLeft bool) domain.Reply {
	sr, ok, wrong := c.lookupType(src, TypeList)
	if !ok && !wrong {
		return domain.NilReply
	}
	if wrong {
		return ErrWrongType
	}
	dr, dok, dwrong := c.lookupType(dst, TypeList)
	if dwrong {
		return ErrWrongType
	}
	v := c.lpopOne(&sr, fromLeft)
	if bytes.Equal(src, dst) {
		c.lpushOne(&sr, v, toLeft)
		c.save(src, sr)
		return domain.BulkReply(v)
	}
	c.save(src, sr)
	if !dok {
		dr = c.newColl(TypeList)
	}
	c.lpushOne(&dr, v, toLeft)
	c.save(dst, dr)
	return domain.BulkReply(v)
}

func lmove(c *ctx, args [][]byte) domain.Reply {
	from, ok1 := parseEnd(args[3])
	to, ok2 := parseEnd(args[4])
	if !ok1 || !ok2 {
		return ErrSyntax
	}
	return lmoveGeneric(c, args[1], args[2], from, to)
}

func rpoplpush(c *ctx, args [][]byte) domain.Reply {
	return lmoveGeneric(c, args[1], args[2], false, true)
}

func lmpop(c *ctx, args [][]byte) domain.Reply {
	return mpop(c, args, TypeList, [2]string{"LEFT", "RIGHT"}, func(k []byte, r Record, count int64, end int) domain.Reply {
		out := make([][]byte, 0, min(count, r.Count))
		for range min(count, r.Count) {
			out = append(out, c.lpopOne(&r, end == 0))
		}
		c.save(k, r)
		return bulks(out)
	})
}

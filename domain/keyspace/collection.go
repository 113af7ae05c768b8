package keyspace

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// ErrWrongType is Redis's reply to a command run on a key of another type.
var ErrWrongType = domain.ErrorReply("WRONGTYPE Operation against a key holding the wrong kind of value")

// instBits is how many instances one entry may create: an instance is
// the entry's index shifted left by instBits plus a counter, so it is
// unique for ever and the same on every replica.
const instBits = 24

// newInst returns a fresh instance for a collection this entry creates.
func (c *ctx) newInst() uint64 {
	c.insts++
	if c.insts >= 1<<instBits {
		c.fail(fmt.Errorf("keyspace: entry %d creates more than %d collections", c.index, 1<<instBits))
	}
	return c.index<<instBits | c.insts
}

// rand returns a generator that is the same on every replica: seeded by
// the entry's index (or, in a read, by the read's time and key, so a read
// is reproducible but need not agree across nodes, as in Redis) and by
// the number of generators this run handed out before.
func (c *ctx) rand(key []byte) *rand.Rand {
	c.draws++
	seed := c.index
	if !c.write {
		seed = uint64(c.now) ^ Hash(key)
	}
	return rand.New(rand.NewPCG(seed, c.draws))
}

// lookupString returns key's live record and whether it exists; wrong
// reports that it exists but is not a string.
func (c *ctx) lookupString(key []byte) (Record, bool, bool) {
	r, ok := c.lookup(key)
	return r, ok, ok && r.Type != TypeString
}

// lookupType returns key's live record if it is of type t, and whether
// it exists; wrong reports that it exists as another type.
func (c *ctx) lookupType(key []byte, t Type) (r Record, ok, wrong bool) {
	return c.lookupTypeIn(c.db, key, t)
}

func (c *ctx) lookupTypeIn(db int, key []byte, t Type) (r Record, ok, wrong bool) {
	if t == TypeString {
		r, ok = c.lookupIn(db, key)
	} else {
		// A collection's record holds no value: a string in its place,
		// which makes the command fail, need not be read.
		r, _, ok = c.statIn(db, key)
	}
	if ok && r.Type != t {
		return Record{}, false, true
	}
	return r, ok, false
}

// dropOld removes the elements of key's stored collection in db unless
// they are keep's (the record replacing it keeps them).
func (c *ctx) dropOld(db int, key []byte, keep uint64) {
	if c.err != nil {
		return
	}
	old, _, ok, err := c.st.Stat(db, key)
	if err != nil {
		c.fail(err)
		return
	}
	if ok && old.Inst != 0 && old.Inst != keep && old.Count > 0 {
		if err := c.st.DropElems(db, old.Inst, old.Count); err != nil {
			c.fail(err)
		}
	}
}

// newColl returns the record of a new, empty collection of type t.
func (c *ctx) newColl(t Type) Record { return Record{Type: t, Inst: c.newInst()} }

// save stores a changed collection, or deletes its key if it is empty
// now (Redis never keeps an empty collection); its elements are already
// gone then.
func (c *ctx) save(key []byte, r Record) { c.saveIn(c.db, key, r) }

func (c *ctx) saveIn(db int, key []byte, r Record) {
	if r.Count > 0 {
		c.putIn(db, key, r)
		return
	}
	if _, _, ok, err := c.st.Stat(db, key); err != nil {
		c.fail(err)
	} else if ok {
		c.removeIn(db, key, false)
	}
}

// eget returns the element at sub of the collection r in the current
// database, valid until the next store call.
func (c *ctx) eget(r Record, sub []byte) ([]byte, bool) {
	if c.err != nil || r.Inst == 0 {
		return nil, false
	}
	v, ok, err := c.st.ElemGet(c.db, r.Inst, sub)
	if err != nil {
		c.fail(err)
		return nil, false
	}
	return v, ok
}

func (c *ctx) eput(r Record, sub, val []byte) { c.eputIn(c.db, r, sub, val) }

func (c *ctx) eputIn(db int, r Record, sub, val []byte) {
	if c.err != nil {
		return
	}
	if !c.write {
		c.fail(fmt.Errorf("keyspace: internal error: element write in a read"))
		return
	}
	if err := c.st.ElemPut(db, r.Inst, sub, val); err != nil {
		c.fail(err)
	}
}

func (c *ctx) edel(r Record, sub []byte) {
	if c.err != nil {
		return
	}
	if !c.write {
		c.fail(fmt.Errorf("keyspace: internal error: element delete in a read"))
		return
	}
	if err := c.st.ElemDelete(c.db, r.Inst, sub); err != nil {
		c.fail(err)
	}
}

// escan is Store.ElemScan over r's elements in the current database.
func (c *ctx) escan(r Record, from []byte, reverse bool, fn func(sub, val []byte) bool) {
	c.escanIn(c.db, r, from, reverse, fn)
}

func (c *ctx) escanIn(db int, r Record, from []byte, reverse bool, fn func(sub, val []byte) bool) {
	if c.err != nil || r.Inst == 0 {
		return
	}
	if err := c.st.ElemScan(db, r.Inst, from, reverse, fn); err != nil {
		c.fail(err)
	}
}

// pair is an element copied out of the store.
type pair struct{ sub, val []byte }

// elems returns copies of r's elements in sub-key order.
func (c *ctx) elems(r Record) []pair { return c.elemsIn(c.db, r) }

func (c *ctx) elemsIn(db int, r Record) []pair {
	out := make([]pair, 0, min(r.Count, 1024))
	c.escanIn(db, r, nil, false, func(sub, val []byte) bool {
		out = append(out, pair{append([]byte(nil), sub...), append([]byte(nil), val...)})
		return true
	})
	return out
}

// cloneColl copies the collection r of srcDB into a new instance in
// dstDB and returns its record (not yet stored). O(elements), as Redis's
// COPY; MOVE between databases costs the same here.
func (c *ctx) cloneColl(srcDB int, r Record, dstDB int) Record {
	n := r
	n.Inst = c.newInst()
	for _, p := range c.elemsIn(srcDB, r) {
		c.eputIn(dstDB, n, p.sub, p.val)
	}
	return n
}

// members returns copies of a hash's, set's or sorted set's members (in
// member order) with what a reply shows beside each: a hash's value, a
// sorted set's score, nothing for a set.
func (c *ctx) members(r Record) []pair { return c.membersPage(r, 0, -1) }

// membersPage is members from the skip-th on, at most limit of them
// (limit < 0: all); the skipped ones are passed over, not copied.
func (c *ctx) membersPage(r Record, skip, limit int64) []pair {
	var out []pair
	c.eachMember(r, func(i int64, m, val []byte) bool {
		if i < skip {
			return true
		}
		if limit >= 0 && int64(len(out)) >= limit {
			return false
		}
		out = append(out, memberPair(r, m, val))
		return true
	})
	return out
}

// membersAt returns copies of the members at the ascending positions
// idx (in member order), passing over the others without copying them.
func (c *ctx) membersAt(r Record, idx []int64) []pair {
	out := make([]pair, 0, len(idx))
	c.eachMember(r, func(i int64, m, val []byte) bool {
		if len(out) == len(idx) {
			return false
		}
		if i == idx[len(out)] {
			out = append(out, memberPair(r, m, val))
		}
		return true
	})
	return out
}

// eachMember calls fn with each member of r in member order, its
// position and its stored value (a sorted set's score bytes), until fn
// returns false. The slices are valid only during the call.
func (c *ctx) eachMember(r Record, fn func(i int64, m, val []byte) bool) {
	var from []byte
	if r.Type == TypeZSet {
		from = []byte{zMemberTag}
	}
	var i int64
	c.escan(r, from, false, func(sub, val []byte) bool {
		if r.Type == TypeZSet {
			if len(sub) == 0 || sub[0] != zMemberTag {
				return false
			}
			sub = sub[1:]
		}
		i++
		return fn(i-1, sub, val)
	})
}

// memberPair copies a member out with what a reply shows beside it.
func memberPair(r Record, m, val []byte) pair {
	if r.Type == TypeZSet {
		return pair{bytes.Clone(m), formatScore(decodeScore(val))}
	}
	return pair{bytes.Clone(m), bytes.Clone(val)}
}

// sample returns k distinct positions of [0, n) drawn from rng,
// ascending (Floyd's algorithm: k draws, whatever n).
func sample(rng *rand.Rand, n, k int64) []int64 {
	chosen := make(map[int64]bool, k)
	out := make([]int64, 0, k)
	for j := n - k; j < n; j++ {
		t := rng.Int64N(j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// parseCount parses the count of HRANDFIELD, SRANDMEMBER, SPOP and
// ZRANDMEMBER: an integer within ±LONG_MAX.
func parseCount(arg []byte) (int64, domain.Reply, bool) {
	n, ok := ParseInt(arg)
	if !ok {
		return 0, ErrNotInteger, false
	}
	if n == math.MinInt64 {
		return 0, domain.ErrorReply("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"), false
	}
	return n, domain.Reply{}, true
}

// randMembers is HRANDFIELD, SRANDMEMBER and ZRANDMEMBER: one random
// member, or count distinct ones (count > 0), or -count with repeats;
// with the option word (WITHVALUES, WITHSCORES) each followed by what
// members shows beside it. Members are drawn uniformly from one pass over
// the collection (O(n); Redis's hash tables make it O(count)).
func randMembers(c *ctx, args [][]byte, t Type, with string) domain.Reply {
	var count int64
	withValues := false
	if with == "" && len(args) > 3 { // SRANDMEMBER takes no option
		return ErrSyntax
	}
	if len(args) >= 3 {
		n, rep, ok := parseCount(args[2])
		if !ok {
			return rep
		}
		count = n
		switch {
		case len(args) == 4 && with != "" && strings.EqualFold(string(args[3]), with):
			withValues = true
		case len(args) > 3:
			return ErrSyntax
		}
	}
	r, ok, wrong := c.lookupType(args[1], t)
	if wrong {
		return ErrWrongType
	}
	if len(args) == 2 {
		if !ok {
			return domain.NilReply
		}
		i := c.rand(args[1]).Int64N(r.Count)
		return domain.BulkReply(c.membersAt(r, []int64{i})[0].sub)
	}
	if !ok || count == 0 {
		return domain.EmptyArray
	}
	var picked []pair
	rng := c.rand(args[1])
	switch {
	case count < -maxRandRepeats:
		// Redis would build the reply (and cut the client off at its
		// output limit); a node refuses rather than run out of memory.
		return domain.ErrorReply("ERR value is out of range")
	case count < 0:
		draws := make([]int64, -count)
		for i := range draws {
			draws[i] = rng.Int64N(r.Count)
		}
		idx := slices.Compact(slices.Sorted(slices.Values(draws)))
		at := map[int64]pair{}
		for i, p := range c.membersAt(r, idx) {
			at[idx[i]] = p
		}
		picked = make([]pair, len(draws))
		for i, d := range draws {
			picked[i] = at[d]
		}
	case count >= r.Count:
		picked = c.members(r)
	default:
		picked = c.membersAt(r, sample(rng, r.Count, count))
	}
	out := make([]domain.Reply, 0, len(picked)*(1+b2iInt(withValues)))
	for _, p := range picked {
		out = append(out, domain.BulkReply(p.sub))
		if withValues {
			out = append(out, domain.BulkReply(p.val))
		}
	}
	return domain.ArrayReply(out...)
}

func b2iInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxRandRepeats bounds the replies of a negative count (members may
// repeat, so the count is not bounded by the collection's size).
const maxRandRepeats = 1 << 24

// scanAllBelow is the size up to which HSCAN, SSCAN and ZSCAN answer a
// whole collection at once with cursor 0, as Redis does for its compact
// encodings; a larger one is paged by position (see scanColl).
const scanAllBelow = 512

// scanColl is HSCAN, SSCAN and ZSCAN. A cursor is the position of the
// next member in member order: a member present for the whole iteration
// is returned, unless members before it are removed meanwhile (Redis's
// cursor guarantees more; its small collections come whole, as here).
func scanColl(c *ctx, args [][]byte, t Type) domain.Reply {
	cursor, ok := parseCursor(args[2])
	if !ok {
		return domain.ErrorReply("ERR invalid cursor")
	}
	if _, found, wrong := c.lookupType(args[1], t); !found && !wrong {
		return domain.ArrayReply(domain.StringReply("0"), domain.EmptyArray)
	}
	// As Redis: an absent key answers an empty page before the options
	// are looked at.
	r, found, wrong := c.lookupType(args[1], t)
	if wrong {
		return ErrWrongType
	}
	o, rep, ok := parseScanOptions(args[3:], false)
	if !ok {
		return rep
	}
	count, pattern, usePattern := o.count, o.pattern, o.usePattern
	out := []domain.Reply{}
	next := uint64(0)
	if found {
		var ms []pair
		if r.Count <= scanAllBelow {
			ms = c.members(r)
		} else {
			// A page is at least a 64th of the collection (COUNT is a
			// hint), so a whole iteration reads the collection at most
			// 64 times over, however small COUNT is.
			page := max(uint64(count), uint64(r.Count)/64)
			skip := min(cursor, uint64(r.Count))
			ms = c.membersPage(r, int64(skip), int64(page))
			if skip+uint64(len(ms)) < uint64(r.Count) {
				next = skip + uint64(len(ms))
			}
		}
		for _, p := range ms {
			if usePattern && !Match(pattern, p.sub, false) {
				continue
			}
			out = append(out, domain.BulkReply(p.sub))
			if t != TypeSet {
				out = append(out, domain.BulkReply(p.val))
			}
		}
	}
	return domain.ArrayReply(
		domain.StringReply(strconv.FormatUint(next, 10)),
		domain.ArrayReply(out...),
	)
}

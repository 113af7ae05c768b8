package keyspace

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

var keyCommands = []*Spec{
	{Name: "del", Arity: -2, Flags: Write, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: del},
	{Name: "unlink", Arity: -2, Flags: Write | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: del},
	{Name: "exists", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: exists},
	{Name: "touch", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "generic", run: exists},
	{Name: "type", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: typeCmd},
	{Name: "rename", Arity: 3, Flags: Write, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", run: rename},
	{Name: "renamenx", Arity: 3, Flags: Write | Fast, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", run: renamenx},
	{Name: "copy", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", run: copyCmd},
	{Name: "move", Arity: 3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: move},
	{Name: "keys", Arity: 2, Flags: ReadOnly, Group: "generic", run: keys},
	{Name: "scan", Arity: -2, Flags: ReadOnly, Group: "generic", run: scan},
	{Name: "randomkey", Arity: 1, Flags: ReadOnly, Group: "generic", run: randomkey},
	{Name: "dbsize", Arity: 1, Flags: ReadOnly | Fast, Group: "server", run: dbsize},
	{Name: "flushdb", Arity: -1, Flags: Write, Group: "server", run: flushdb},
	{Name: "flushall", Arity: -1, Flags: Write, Group: "server", run: flushall},
	{Name: "swapdb", Arity: 3, Flags: Write | Fast, Group: "server", run: swapdb},
}

func del(c *ctx, args [][]byte) domain.Reply {
	var n int64
	for _, k := range args[1:] {
		if _, _, ok := c.stat(k); ok {
			c.del(k)
			n++
		}
	}
	return domain.IntReply(n)
}

// exists is EXISTS and TOUCH: the number of arguments naming live keys.
func exists(c *ctx, args [][]byte) domain.Reply {
	var n int64
	for _, k := range args[1:] {
		if _, _, ok := c.stat(k); ok {
			n++
		}
	}
	return domain.IntReply(n)
}

func typeCmd(c *ctx, args [][]byte) domain.Reply {
	if r, _, ok := c.stat(args[1]); ok {
		return domain.Reply{Kind: domain.ReplyStatus, Str: r.Type.Name()}
	}
	return domain.Reply{Kind: domain.ReplyStatus, Str: "none"}
}

func rename(c *ctx, args [][]byte) domain.Reply   { return renameGeneric(c, args, false) }
func renamenx(c *ctx, args [][]byte) domain.Reply { return renameGeneric(c, args, true) }

// renameGeneric is Redis's renameGenericCommand: the value and its
// deadline move to the new name.
func renameGeneric(c *ctx, args [][]byte, nx bool) domain.Reply {
	src, dst := args[1], args[2]
	r, ok := c.lookup(src)
	if !ok {
		return ErrNoSuchKey
	}
	if bytes.Equal(src, dst) {
		if nx {
			return domain.IntReply(0)
		}
		return domain.OK
	}
	r.Value = bytes.Clone(r.Value) // valid only until the next store call
	if _, _, found := c.stat(dst); found && nx {
		return domain.IntReply(0)
	}
	// A collection's elements stay where they are: the record, with its
	// instance, changes name (O(1) as in Redis).
	c.put(dst, r)
	c.removeIn(c.db, src, false)
	if nx {
		return domain.IntReply(1)
	}
	return domain.OK
}

// parseDBIndex parses a database index as Redis's getIntFromObjectOrReply
// does: an integer, then within C's int. It does not check the range of
// databases.
func parseDBIndex(arg []byte) (int, domain.Reply, bool) {
	n, ok := ParseInt(arg)
	if !ok {
		return 0, ErrNotInteger, false
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, errIntRange, false
	}
	return int(n), domain.Reply{}, true
}

var errIntRange = domain.ErrorReply("ERR value is out of range, value must between -2147483648 and 2147483647")

func (c *ctx) validDB(db int) bool { return db >= 0 && db < c.dbs }

func copyCmd(c *ctx, args [][]byte) domain.Reply {
	dst := c.db
	replace := false
	for j := 3; j < len(args); j++ {
		opt := strings.ToLower(string(args[j]))
		switch {
		case opt == "replace":
			replace = true
		case opt == "db" && j+1 < len(args):
			db, rep, ok := parseDBIndex(args[j+1])
			if !ok {
				return rep
			}
			if !c.validDB(db) {
				return ErrDBRange
			}
			dst = db
			j++
		default:
			return ErrSyntax
		}
	}
	src, newkey := args[1], args[2]
	if dst == c.db && bytes.Equal(src, newkey) {
		return ErrSameObjects
	}
	r, ok := c.lookup(src)
	if !ok {
		return domain.IntReply(0)
	}
	r.Value = bytes.Clone(r.Value)
	if _, _, found := c.statIn(dst, newkey); found && !replace {
		return domain.IntReply(0)
	}
	if r.Type != TypeString {
		r = c.cloneColl(c.db, r, dst)
	}
	c.putIn(dst, newkey, r)
	return domain.IntReply(1)
}

func move(c *ctx, args [][]byte) domain.Reply {
	dst, rep, ok := parseDBIndex(args[2])
	if !ok {
		return rep
	}
	if !c.validDB(dst) {
		return ErrDBRange
	}
	if dst == c.db {
		return ErrSameObjects
	}
	key := args[1]
	r, ok := c.lookup(key)
	if !ok {
		return domain.IntReply(0)
	}
	r.Value = bytes.Clone(r.Value)
	if _, _, found := c.statIn(dst, key); found {
		return domain.IntReply(0)
	}
	if r.Type != TypeString {
		// Elements live under their database: they are copied.
		r = c.cloneColl(c.db, r, dst)
	}
	c.putIn(dst, key, r)
	c.del(key)
	return domain.IntReply(1)
}

func swapdb(c *ctx, args [][]byte) domain.Reply {
	a, ok := ParseInt(args[1])
	if !ok || a < math.MinInt32 || a > math.MaxInt32 {
		return domain.ErrorReply("ERR invalid first DB index")
	}
	b, ok := ParseInt(args[2])
	if !ok || b < math.MinInt32 || b > math.MaxInt32 {
		return domain.ErrorReply("ERR invalid second DB index")
	}
	if !c.validDB(int(a)) || !c.validDB(int(b)) {
		return ErrDBRange
	}
	if a == b || c.err != nil {
		return domain.OK
	}
	// Tombstones stay with the database number. As Redis, a watched key
	// of either database that exists in either is touched: it gets a new
	// version even if a second SWAPDB brings its record back.
	if err := c.st.SwapDB(int(a), int(b)); err != nil {
		c.fail(err)
		return domain.OK
	}
	for _, db := range []int{int(a), int(b)} {
		for _, k := range c.watchedIn(db) {
			_, _, inA := c.statIn(int(a), k)
			_, _, inB := c.statIn(int(b), k)
			if inA || inB {
				c.touch(db, k)
			}
		}
	}
	return domain.OK
}

// matchAll reports whether pattern is exactly "*", which KEYS and SCAN
// take to match every key, the empty one included.
func matchAll(pattern []byte) bool { return len(pattern) == 1 && pattern[0] == '*' }

func keys(c *ctx, args [][]byte) domain.Reply {
	pattern := args[1]
	all := matchAll(pattern)
	out := []domain.Reply{}
	if c.err != nil {
		return domain.ArrayReply()
	}
	err := c.st.Scan(c.db, 0, func(key []byte, r Record) bool {
		if (all || Match(pattern, key, false)) && !r.expiredAt(c.now) {
			out = append(out, domain.BulkReply(bytes.Clone(key)))
		}
		return true
	})
	if err != nil {
		c.fail(err)
	}
	return domain.ArrayReply(out...)
}

// scanPage visits db's keys from hash from in (Hash, key) order: at least
// count of them (if there are as many), and then the rest of those sharing
// the last visited key's hash, so that a page never splits a hash. It
// returns the hash of the first key not visited, or 0 if none is left.
func scanPage(st Store, db int, from uint64, count int, visit func(key []byte, r Record)) (uint64, error) {
	var (
		n, next uint64
		last    uint64
	)
	err := st.Scan(db, from, func(key []byte, r Record) bool {
		h := Hash(key)
		if n >= uint64(count) && h != last {
			next = h
			return false
		}
		n++
		last = h
		visit(key, r)
		return true
	})
	return next, err
}

// parseCursor parses a SCAN cursor as Redis's parseScanCursorOrReply does
// with C's strtoul: the argument ends at its first NUL; it must not start
// with a space; an optional sign, then decimal digits to the end (none at
// all when the argument is empty, which is 0); a negative value wraps
// modulo 2^64; more than 64 bits is an error.
func parseCursor(arg []byte) (uint64, bool) {
	if i := bytes.IndexByte(arg, 0); i >= 0 {
		arg = arg[:i]
	}
	if len(arg) == 0 {
		return 0, true
	}
	switch arg[0] {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return 0, false
	}
	neg := false
	digits := arg
	if arg[0] == '+' || arg[0] == '-' {
		neg = arg[0] == '-'
		digits = arg[1:]
	}
	if len(digits) == 0 {
		return 0, false // no conversion: strtoul's end is the start
	}
	v, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// scanOptions are the options of SCAN and of HSCAN, SSCAN and ZSCAN.
type scanOptions struct {
	count               int64
	pattern, typ        []byte
	usePattern, useType bool
}

// parseScanOptions parses COUNT, MATCH and (withType: SCAN's) TYPE.
func parseScanOptions(args [][]byte, withType bool) (scanOptions, domain.Reply, bool) {
	o := scanOptions{count: 10}
	for i := 0; i < len(args); i += 2 {
		opt := strings.ToLower(string(args[i]))
		hasArg := i+1 < len(args)
		switch {
		case opt == "count" && hasArg:
			n, ok := ParseInt(args[i+1])
			if !ok {
				return o, ErrNotInteger, false
			}
			if n < 1 {
				return o, ErrSyntax, false
			}
			o.count = n
		case opt == "match" && hasArg:
			o.pattern = args[i+1]
			o.usePattern = !matchAll(o.pattern)
		case opt == "type" && hasArg && withType:
			o.typ = args[i+1]
			if k := bytes.IndexByte(o.typ, 0); k >= 0 {
				o.typ = o.typ[:k] // strcasecmp stops there
			}
			o.useType = true
		default:
			return o, ErrSyntax, false
		}
	}
	return o, domain.Reply{}, true
}

func scan(c *ctx, args [][]byte) domain.Reply {
	cursor, ok := parseCursor(args[1])
	if !ok {
		return domain.ErrorReply("ERR invalid cursor")
	}
	o, rep, ok := parseScanOptions(args[2:], true)
	if !ok {
		return rep
	}
	count, pattern, usePattern, typ, useType := o.count, o.pattern, o.usePattern, o.typ, o.useType
	if c.err != nil {
		return domain.ArrayReply()
	}
	count = min(count, math.MaxInt32)
	out := []domain.Reply{}
	next, err := scanPage(c.st, c.db, cursor, int(count), func(key []byte, r Record) {
		if usePattern && !Match(pattern, key, false) {
			return
		}
		if useType && !strings.EqualFold(string(typ), r.Type.Name()) {
			return
		}
		if r.expiredAt(c.now) {
			return
		}
		out = append(out, domain.BulkReply(bytes.Clone(key)))
	})
	if err != nil {
		c.fail(err)
	}
	return domain.ArrayReply(
		domain.StringReply(strconv.FormatUint(next, 10)),
		domain.ArrayReply(out...),
	)
}

// randomkey answers a live key chosen without a random source, so that
// replicas agree: the first at or after the hash of the command's time
// (its 8 bytes little-endian, so that the fast-changing low byte is mixed
// by every round of FNV and nearby times start far apart), wrapping
// around to the start.
func randomkey(c *ctx, _ [][]byte) domain.Reply {
	if c.err != nil {
		return domain.NilReply
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(c.now))
	start := Hash(b[:])
	var found []byte
	pick := func(key []byte, r Record) bool {
		if r.expiredAt(c.now) {
			return true
		}
		found = bytes.Clone(key)
		return false
	}
	if err := c.st.Scan(c.db, start, pick); err != nil {
		c.fail(err)
		return domain.NilReply
	}
	if found == nil && start > 0 {
		err := c.st.Scan(c.db, 0, func(key []byte, r Record) bool {
			if Hash(key) >= start {
				return false
			}
			return pick(key, r)
		})
		if err != nil {
			c.fail(err)
			return domain.NilReply
		}
	}
	if found == nil {
		return domain.NilReply
	}
	return domain.BulkReply(found)
}

func dbsize(c *ctx, _ [][]byte) domain.Reply {
	if c.err != nil {
		return domain.IntReply(0)
	}
	n, _, err := c.st.Len(c.db)
	if err != nil {
		c.fail(err)
	}
	return domain.IntReply(n)
}

// flushMode checks FLUSHDB's and FLUSHALL's optional ASYNC or SYNC, which
// change nothing here.
func flushMode(args [][]byte) bool {
	if len(args) == 1 {
		return true
	}
	if len(args) == 2 {
		m := strings.ToLower(string(args[1]))
		return m == "sync" || m == "async"
	}
	return false
}

func flushdb(c *ctx, args [][]byte) domain.Reply {
	if !flushMode(args) {
		return ErrSyntax
	}
	c.flush(c.db)
	return domain.OK
}

// flushall empties the client databases, never SystemDB.
func flushall(c *ctx, args [][]byte) domain.Reply {
	if !flushMode(args) {
		return ErrSyntax
	}
	for db := 0; db < c.dbs; db++ {
		c.flush(db)
	}
	return domain.OK
}

func (c *ctx) flush(db int) {
	if c.err != nil {
		return
	}
	// A watched key the flush removes must change version, as Redis
	// touches every watched key that existed: it gets a tombstone. Only
	// watched keys do (see watch.go), so the flush stays one range
	// delete, not a write per key.
	var gone [][]byte
	for _, k := range c.watchedIn(db) {
		if _, _, ok := c.statIn(db, k); ok {
			gone = append(gone, k)
		}
	}
	if err := c.st.FlushDB(db); err != nil {
		c.fail(err)
		return
	}
	for _, k := range gone {
		c.putIn(ShadowBase+db, k, Record{ExpireAt: c.now + TombstoneTTL})
	}
}

// touch gives key in db a new version, as a write would: a live record is
// stored again, an absent key gets a tombstone.
func (c *ctx) touch(db int, key []byte) {
	if r, size, ok := c.statIn(db, key); ok {
		c.keepIn(db, key, r, size)
		return
	}
	c.putIn(ShadowBase+db, key, Record{ExpireAt: c.now + TombstoneTTL})
}

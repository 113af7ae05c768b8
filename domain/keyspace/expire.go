package keyspace

import (
	"bytes"
	"math"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

// ReapCommand is the name of the internal write command by which the
// leader deletes expired keys: "seshat.reap db key deadline".
const ReapCommand = "seshat.reap"

var expireCommands = []*Spec{
	{Name: "expire", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: expire},
	{Name: "pexpire", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: pexpire},
	{Name: "expireat", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: expireat},
	{Name: "pexpireat", Arity: -3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: pexpireat},
	{Name: "ttl", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: ttl},
	{Name: "pttl", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: pttl},
	{Name: "expiretime", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: expiretime},
	{Name: "pexpiretime", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: pexpiretime},
	{Name: "persist", Arity: 2, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", run: persist},
	{Name: ReapCommand, Arity: 4, Flags: Write | Internal, FirstKey: 2, LastKey: 2, Step: 1, Group: "generic", run: reap},
}

func expire(c *ctx, args [][]byte) domain.Reply { return expireGeneric(c, args, c.now, true, "expire") }
func pexpire(c *ctx, args [][]byte) domain.Reply {
	return expireGeneric(c, args, c.now, false, "pexpire")
}
func expireat(c *ctx, args [][]byte) domain.Reply { return expireGeneric(c, args, 0, true, "expireat") }
func pexpireat(c *ctx, args [][]byte) domain.Reply {
	return expireGeneric(c, args, 0, false, "pexpireat")
}

// expireGeneric is Redis 7.0's expireGenericCommand: the deadline is
// basetime plus the argument (in seconds or milliseconds), subject to NX,
// XX, GT and LT; a deadline not after now deletes the key.
func expireGeneric(c *ctx, args [][]byte, basetime int64, seconds bool, name string) domain.Reply {
	var nx, xx, gt, lt bool
	for _, a := range args[3:] {
		switch strings.ToLower(string(a)) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "gt":
			gt = true
		case "lt":
			lt = true
		default:
			if i := bytes.IndexByte(a, 0); i >= 0 {
				a = a[:i] // printed as a C string
			}
			// As addReplyErrorFormat: trailing CR and LF trimmed, the
			// others made spaces.
			return domain.ErrorReply(OneLine(strings.TrimRight("ERR Unsupported option "+string(a), "\r\n")))
		}
	}
	if nx && (xx || gt || lt) {
		return domain.ErrorReply("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if gt && lt {
		return domain.ErrorReply("ERR GT and LT options at the same time are not compatible")
	}
	when, ok := ParseInt(args[2])
	if !ok {
		return ErrNotInteger
	}
	bad := domain.ErrorReply("ERR invalid expire time in '" + name + "' command")
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			return bad
		}
		when *= 1000
	}
	if when > math.MaxInt64-basetime {
		return bad
	}
	when += basetime

	key := args[1]
	r, size, found := c.stat(key)
	if !found {
		return domain.IntReply(0)
	}
	cur := r.ExpireAt // 0: none
	switch {
	case nx && cur != 0,
		xx && cur == 0,
		gt && (cur == 0 || when <= cur),
		lt && cur != 0 && when >= cur:
		return domain.IntReply(0)
	}
	if when <= c.now {
		c.del(key)
		return domain.IntReply(1)
	}
	r.ExpireAt = when
	c.keepIn(c.db, key, r, size)
	return domain.IntReply(1)
}

func ttl(c *ctx, args [][]byte) domain.Reply         { return ttlGeneric(c, args, false, false) }
func pttl(c *ctx, args [][]byte) domain.Reply        { return ttlGeneric(c, args, true, false) }
func expiretime(c *ctx, args [][]byte) domain.Reply  { return ttlGeneric(c, args, false, true) }
func pexpiretime(c *ctx, args [][]byte) domain.Reply { return ttlGeneric(c, args, true, true) }

// ttlGeneric is Redis's ttlGenericCommand: -2 for no key, -1 for no
// deadline, else the time left (or the deadline, abs) in ms or rounded
// seconds.
func ttlGeneric(c *ctx, args [][]byte, ms, abs bool) domain.Reply {
	r, _, ok := c.stat(args[1])
	if !ok {
		return domain.IntReply(-2)
	}
	if r.ExpireAt == 0 {
		return domain.IntReply(-1)
	}
	t := r.ExpireAt
	if !abs {
		t -= c.now
	}
	t = max(t, 0)
	if !ms {
		// Rounded to the nearest second as (t+500)/1000, computed so
		// that a deadline near the largest int64 does not wrap (Redis's
		// build gives the unwrapped answer too).
		t = t/1000 + (t%1000+500)/1000
	}
	return domain.IntReply(t)
}

func persist(c *ctx, args [][]byte) domain.Reply {
	r, size, ok := c.stat(args[1])
	if !ok || r.ExpireAt == 0 {
		return domain.IntReply(0)
	}
	r.ExpireAt = 0
	c.keepIn(c.db, args[1], r, size)
	return domain.IntReply(1)
}

// reap is "seshat.reap db key deadline": it deletes key from db if its
// deadline is still exactly deadline and has passed, and answers the
// number of keys deleted. A key written again since the leader found it
// expired keeps its new life.
func reap(c *ctx, args [][]byte) domain.Reply {
	db, ok := ParseInt(args[1])
	if !ok {
		return ErrNotInteger
	}
	if (db < 0 || db >= int64(c.dbs)) && (db < ShadowBase || db >= ShadowBase+int64(c.dbs)) && db != SystemDB {
		return ErrDBRange
	}
	deadline, ok := ParseInt(args[3])
	if !ok {
		return ErrNotInteger
	}
	if c.err != nil {
		return domain.IntReply(0)
	}
	r, _, found, err := c.st.Stat(int(db), args[2])
	if err != nil {
		c.fail(err)
		return domain.IntReply(0)
	}
	if !found || r.ExpireAt == 0 || r.ExpireAt != deadline || deadline > c.now {
		return domain.IntReply(0)
	}
	c.delIn(int(db), args[2])
	return domain.IntReply(1)
}

// Expired scans at most max keys of db (at least 1) from the hash from, as
// a SCAN page does, and returns those expired at now with their deadlines,
// and the cursor to continue from: 0 when the scan reached the end. The
// leader proposes a seshat.reap for each. A database with no deadline is
// not scanned: the leader samples every database ten times a second, and
// scanning a page of one that has none cost it a tenth of its CPU under
// write load.
func (e Engine) Expired(st Store, now int64, db int, from uint64, max int) (keys [][]byte, deadlines []int64, next uint64, err error) {
	if _, expires, err := st.Len(db); err != nil || expires == 0 {
		return nil, nil, 0, err
	}
	next, err = scanPage(st, db, from, maxInt(max, 1), func(key []byte, r Record) {
		if r.expiredAt(now) {
			keys = append(keys, bytes.Clone(key))
			deadlines = append(deadlines, r.ExpireAt)
		}
	})
	if err != nil {
		return nil, nil, 0, err
	}
	return keys, deadlines, next, nil
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

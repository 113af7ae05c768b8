package keyspace

import (
	"math"
	"strings"

	"github.com/seshat-kv/seshat/domain"
)

var stringCommands = []*Spec{
	{Name: "get", Arity: 2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: get},
	{Name: "set", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: "string", run: set},
	{Name: "mget", Arity: -2, Flags: ReadOnly | Fast, FirstKey: 1, LastKey: -1, Step: 1, Group: "string", run: mget},
	{Name: "mset", Arity: -3, Flags: Write | DenyOOM, FirstKey: 1, LastKey: -1, Step: 2, Group: "string", run: mset},
}

func get(c *ctx, args [][]byte) domain.Reply {
	r, ok := c.lookup(args[1])
	if !ok {
		return domain.NilReply
	}
	return domain.BulkReply(r.Value)
}

func mget(c *ctx, args [][]byte) domain.Reply {
	out := make([]domain.Reply, len(args)-1)
	for i, k := range args[1:] {
		out[i] = get(c, [][]byte{nil, k})
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
	old, found := c.lookup(key)
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
	c.put(key, r)
	return reply
}

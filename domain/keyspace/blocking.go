package keyspace

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strconv"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

// The blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP) run here as their non-blocking forms: on apply they
// pop what there is and answer Redis's "nothing" (a nil array, or a nil
// bulk for BLMOVE and BRPOPLPUSH) when every key is empty, which is also
// what Redis answers for them inside MULTI. Waiting is not the engine's:
// a node keeps its blocked clients (app) and proposes the same call again
// when one of their keys may have something to pop, so every replica
// applies the same pop and each element goes to exactly one client.

var blockingCommands = []*Spec{
	{Name: "blpop", Arity: -3, Flags: Write | Blocking, FirstKey: 1, LastKey: -2, Step: 1, Group: "list", run: blpop},
	{Name: "brpop", Arity: -3, Flags: Write | Blocking, FirstKey: 1, LastKey: -2, Step: 1, Group: "list", run: brpop},
	{Name: "blmove", Arity: 6, Flags: Write | DenyOOM | Blocking, FirstKey: 1, LastKey: 2, Step: 1, Group: "list", run: blmove},
	{Name: "brpoplpush", Arity: 4, Flags: Write | DenyOOM | Blocking, FirstKey: 1, LastKey: 2, Step: 1, Group: "list", run: brpoplpush},
	{Name: "blmpop", Arity: -5, Flags: Write | Blocking, Group: "list", run: blmpop},
	{Name: "bzpopmin", Arity: -3, Flags: Write | Fast | Blocking, FirstKey: 1, LastKey: -2, Step: 1, Group: "sorted-set", run: bzpopmin},
	{Name: "bzpopmax", Arity: -3, Flags: Write | Fast | Blocking, FirstKey: 1, LastKey: -2, Step: 1, Group: "sorted-set", run: bzpopmax},
	{Name: "bzmpop", Arity: -5, Flags: Write | Blocking, Group: "sorted-set", run: bzmpop},
}

// ParseTimeout parses a blocking command's timeout, seconds as a decimal
// number, as Redis 7.0's getTimeoutFromObjectOrReply: it returns
// milliseconds (rounded up; 0: wait for ever) or Redis's error. Redis
// converts seconds*1000 to a long long, so a value of 2^63 ms or more
// (inf and 1e400 included) comes out negative there and is refused as
// negative; a smaller one, however large, is accepted.
func ParseTimeout(b []byte) (int64, domain.Reply, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if errors.Is(err, strconv.ErrRange) && math.IsInf(f, 0) && inLongDouble(b) {
		err = nil // Redis parses a long double: 1e400 is a number
	}
	if err != nil || math.IsNaN(f) || len(b) == 0 || b[0] == ' ' || b[0] == '\t' {
		return 0, domain.ErrorReply("ERR timeout is not a float or out of range"), false
	}
	ms := f * 1000
	if ms <= -1 || pastInt64(b, ms) {
		return 0, domain.ErrorReply("ERR timeout is negative"), false
	}
	if ms > maxTimeoutMs {
		return 0, domain.Reply{}, true // longer than a Go timer counts (292 years): for ever
	}
	return int64(math.Ceil(ms)), domain.Reply{}, true // -0.5 ms is 0, as Redis's ceill
}

// pastInt64 reports whether ms, the timeout b in ms, is 2^63 or more,
// computed near that bound as Redis does, in a long double's 64-bit
// mantissa (float64 rounds 9223372036854775 s up past it; Redis does not).
func pastInt64(b []byte, ms float64) bool {
	if ms < 1<<62 {
		return false
	}
	f, _, err := big.ParseFloat(string(b), 10, 64, big.ToNearestEven)
	if err != nil {
		return true
	}
	f.SetPrec(64).Mul(f, big.NewFloat(1000))
	return f.Cmp(new(big.Float).SetFloat64(1<<63)) >= 0
}

// maxTimeoutMs is the longest timeout, in ms, a time.Duration holds.
const maxTimeoutMs = float64(math.MaxInt64 / int64(time.Millisecond))

// inLongDouble reports whether the decimal number b, too large for a
// float64, fits an x87 long double (as strtold parses it, up to about
// 1.19e4932).
func inLongDouble(b []byte) bool {
	f, _, err := big.ParseFloat(string(b), 10, 64, big.ToNearestEven)
	if err != nil {
		return false
	}
	return f.Abs(f).Cmp(maxLongDouble) < 0
}

var maxLongDouble, _, _ = big.ParseFloat("1.18973149535723176502e4932", 10, 64, big.ToNearestEven)

// BlockingCall is what a node needs to wait for a blocking command.
type BlockingCall struct {
	// Keys are the keys the command waits on, in its order.
	Keys [][]byte
	// Type is the type the keys must hold to be served (TypeList or
	// TypeZSet).
	Type Type
	// Timeout is how long to wait, in ms; 0 waits for ever.
	Timeout int64
	// NilReply is what the command answers when its timeout passes: a nil
	// array, for BLMOVE and BRPOPLPUSH too, as Redis 7.0 does (their
	// non-blocking forms, inside MULTI, answer a nil bulk).
	NilReply domain.Reply
}

var nilArray = domain.Reply{Kind: domain.ReplyNilArray}

// ParseBlocking checks a blocking command's arguments (arity included) as
// Redis does before it looks at any key, and returns what waiting needs,
// or Redis's error reply. ok is false for any other command too.
func ParseBlocking(args [][]byte) (BlockingCall, domain.Reply, bool) {
	spec := Lookup(args[0])
	if spec == nil || spec.Flags&Blocking == 0 {
		return BlockingCall{}, domain.ErrorReply("ERR not a blocking command"), false
	}
	if !spec.ArityOK(len(args)) {
		return BlockingCall{}, domain.ErrorReply("ERR wrong number of arguments for '" + spec.Name + "' command"), false
	}
	bc := BlockingCall{Type: TypeList, NilReply: nilArray}
	if spec.Group == "sorted-set" {
		bc.Type = TypeZSet
	}
	timeoutArg := args[len(args)-1]
	switch spec.Name {
	case "blmove":
		_, ok1 := parseEnd(args[3])
		_, ok2 := parseEnd(args[4])
		if !ok1 || !ok2 {
			return bc, ErrSyntax, false
		}
		bc.Keys = args[1:2]
	case "brpoplpush":
		bc.Keys = args[1:2]
	case "blmpop", "bzmpop":
		ends := [2]string{"LEFT", "RIGHT"}
		if bc.Type == TypeZSet {
			ends = [2]string{"MIN", "MAX"}
		}
		keys, _, _, rep, ok := parseMPop(args[1:], ends)
		if !ok {
			return bc, rep, false
		}
		bc.Keys, timeoutArg = keys, args[1]
	default:
		bc.Keys = args[1 : len(args)-1]
	}
	t, rep, ok := ParseTimeout(timeoutArg)
	if !ok {
		return bc, rep, false
	}
	bc.Timeout = t
	return bc, domain.Reply{}, true
}

// checkBlocking is the blocking forms' argument check on apply.
func checkBlocking(c *ctx, args [][]byte) (domain.Reply, bool) {
	_, rep, ok := ParseBlocking(args)
	return rep, ok
}

// bpop pops one element of the first key of keys holding a t: BLPOP,
// BRPOP, BZPOPMIN and BZPOPMAX.
func bpop(c *ctx, args [][]byte, t Type, pop func(key []byte, r Record) []domain.Reply) domain.Reply {
	if rep, ok := checkBlocking(c, args); !ok {
		return rep
	}
	for _, k := range args[1 : len(args)-1] {
		r, found, wrong := c.lookupType(k, t)
		if wrong {
			return ErrWrongType
		}
		if found {
			return domain.ArrayReply(append([]domain.Reply{domain.BulkReply(bytes.Clone(k))}, pop(k, r)...)...)
		}
	}
	return nilArray
}

func blistPop(c *ctx, args [][]byte, left bool) domain.Reply {
	return bpop(c, args, TypeList, func(k []byte, r Record) []domain.Reply {
		v := c.lpopOne(&r, left)
		c.save(k, r)
		return []domain.Reply{domain.BulkReply(v)}
	})
}

func bzPop(c *ctx, args [][]byte, max bool) domain.Reply {
	return bpop(c, args, TypeZSet, func(k []byte, r Record) []domain.Reply {
		es := c.zpopFrom(k, r, 1, max)
		if len(es) == 0 {
			return nil
		}
		return []domain.Reply{domain.BulkReply(es[0].member), scoreReply(es[0].score)}
	})
}

func blpop(c *ctx, args [][]byte) domain.Reply    { return blistPop(c, args, true) }
func brpop(c *ctx, args [][]byte) domain.Reply    { return blistPop(c, args, false) }
func bzpopmin(c *ctx, args [][]byte) domain.Reply { return bzPop(c, args, false) }
func bzpopmax(c *ctx, args [][]byte) domain.Reply { return bzPop(c, args, true) }

func blmove(c *ctx, args [][]byte) domain.Reply {
	if rep, ok := checkBlocking(c, args); !ok {
		return rep
	}
	return lmove(c, args[:5])
}

func brpoplpush(c *ctx, args [][]byte) domain.Reply {
	if rep, ok := checkBlocking(c, args); !ok {
		return rep
	}
	return rpoplpush(c, args[:3])
}

func blmpop(c *ctx, args [][]byte) domain.Reply {
	if rep, ok := checkBlocking(c, args); !ok {
		return rep
	}
	return lmpop(c, args[1:])
}

func bzmpop(c *ctx, args [][]byte) domain.Reply {
	if rep, ok := checkBlocking(c, args); !ok {
		return rep
	}
	return zmpop(c, args[1:])
}

// OnceCommand runs a blocking pop at most once whatever the number of
// times it is proposed: "seshat.bpop token command args..." runs the
// command (one of the blocking forms) and, if it popped, records its reply
// under token (SystemDB, key "b" | token, for TombstoneTTL); proposed
// again with the same token, it answers the recorded reply without
// popping. A node whose pop's outcome is unknown (leadership lost after
// it was appended, a relay broken after sending) proposes it again, so an
// element popped for a blocked client reaches it even across a failover.
const OnceCommand = "seshat.bpop"

var onceCommands = []*Spec{
	{Name: OnceCommand, Arity: -4, Flags: Write | Internal, Group: "list", run: bpopOnce},
}

func onceKey(token []byte) []byte {
	return append([]byte{'b'}, token...)
}

func bpopOnce(c *ctx, args [][]byte) domain.Reply {
	key := onceKey(args[1])
	r, ok, err := c.st.Get(SystemDB, key)
	if err != nil {
		c.fail(err)
		return domain.Reply{}
	}
	if ok && !r.expiredAt(c.now) {
		if rep, _, err := domain.DecodeReply(r.Value); err == nil {
			return rep
		}
	}
	spec := Lookup(args[2])
	if spec == nil || spec.Flags&Blocking == 0 {
		return domain.ErrorReply("ERR " + OnceCommand + " runs blocking pops only")
	}
	if !spec.ArityOK(len(args) - 2) {
		return WrongArity(spec.Name)
	}
	rep := spec.run(c, args[2:])
	switch rep.Kind {
	case domain.ReplyNil, domain.ReplyNilArray, domain.ReplyError:
	default:
		c.putIn(SystemDB, key, Record{Value: domain.AppendReply(nil, rep), ExpireAt: c.now + TombstoneTTL})
	}
	return rep
}

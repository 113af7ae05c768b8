package keyspace

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
)

type mapStore = MapStore

func newMapStore() *mapStore { return NewMapStore() }

// tester runs commands against one engine and store, as a client of
// database db would: writes through Apply at increasing indexes, reads
// through Read, both at the time now.
type tester struct {
	t     *testing.T
	e     Engine
	st    *mapStore
	index uint64
	now   int64
	db    int
}

func newTester(t *testing.T) *tester {
	return &tester{t: t, st: newMapStore(), now: 1_700_000_000_000}
}

// do runs one command and returns its reply.
func (x *tester) do(args ...string) domain.Reply {
	x.t.Helper()
	call := domain.Call{DB: x.db}
	for _, a := range args {
		call.Args = append(call.Args, []byte(a))
	}
	spec := Lookup(call.Args[0])
	if spec != nil && spec.Flags&Write == 0 {
		r, err := x.e.Read(x.st, x.now, call)
		if err != nil {
			x.t.Fatalf("%q: %v", args, err)
		}
		return r
	}
	x.index++
	res, err := x.e.Apply(x.st, x.index, domain.Command{Time: x.now, Calls: []domain.Call{call}})
	if err != nil {
		x.t.Fatalf("%q: %v", args, err)
	}
	return res.Reply
}

// expect runs one command and compares its reply with want.
func (x *tester) expect(want domain.Reply, args ...string) {
	x.t.Helper()
	got := x.do(args...)
	if diff := cmp.Diff(want, got); diff != "" {
		x.t.Errorf("%q: reply mismatch (-want +got):\n%s", args, diff)
	}
}

// Shorthands for expected replies.
func bulk(s string) domain.Reply         { return domain.StringReply(s) }
func num(n int64) domain.Reply           { return domain.IntReply(n) }
func errr(s string) domain.Reply         { return domain.ErrorReply(s) }
func arr(r ...domain.Reply) domain.Reply { return domain.ArrayReply(r...) }

var (
	ok   = domain.OK
	nil_ = domain.NilReply
)

func TestSetOptions(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "SET", "k", "v")
	x.expect(bulk("v"), "get", "k")
	x.expect(nil_, "set", "k", "w", "NX")
	x.expect(bulk("v"), "set", "k", "w", "xx", "get")
	x.expect(nil_, "set", "absent", "w", "XX")
	x.expect(nil_, "get", "absent")
	x.expect(errr("ERR syntax error"), "set", "k", "v", "NX", "XX")
	x.expect(errr("ERR syntax error"), "set", "k", "v", "EX")
	x.expect(errr("ERR syntax error"), "set", "k", "v", "EX", "10", "KEEPTTL")
	x.expect(errr("ERR value is not an integer or out of range"), "set", "k", "v", "EX", "+10")
	x.expect(errr("ERR invalid expire time in 'set' command"), "set", "k", "v", "PX", "0")
	x.expect(errr("ERR wrong number of arguments for 'set' command"), "set", "k")
	x.expect(ok, "set", "t", "v", "PX", "50")
	x.expect(bulk("v"), "get", "t")
	x.now += 50
	x.expect(nil_, "get", "t")
	x.expect(ok, "set", "t", "v", "PXAT", "1")
	x.expect(nil_, "get", "t")
	x.expect(ok, "set", "t", "v", "EX", "1")
	x.expect(ok, "set", "t", "w", "KEEPTTL")
	x.now += 999
	x.expect(bulk("w"), "get", "t")
	x.now++
	x.expect(nil_, "get", "t")
	x.expect(arr(bulk("w"), nil_, nil_), "mget", "k", "t", "nope")
	x.expect(num(1), "del", "k", "k", "t")
	x.expect(num(0), "exists", "k")
}

func TestParseInt(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "-1": -1, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63}
	for s, want := range good {
		if got, ok := ParseInt([]byte(s)); !ok || got != want {
			t.Errorf("ParseInt(%q) = %d, %v; want %d", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "+1", "01", "-0", " 1", "1 ", "9223372036854775808", "-9223372036854775809", "1a", "-", "00"} {
		if got, ok := ParseInt([]byte(s)); ok {
			t.Errorf("ParseInt(%q) = %d, true; want false", s, got)
		}
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	x := newTester(t)
	x.expect(ok, "set", "k", "v", "PX", "100")
	x.now += 200
	x.expect(ok, "set", "other", "v")
	// A later entry stamped earlier (a new leader whose clock lags) still
	// runs at the greatest time applied: the key stays expired.
	x.now -= 150
	x.expect(nil_, "set", "k", "w", "XX")
	if now, _ := Clock(x.st); now != x.now+150 {
		t.Fatalf("clock %d, want %d", now, x.now+150)
	}
}

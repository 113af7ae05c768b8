package keyspace

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

// checkReply fails if r could not be written as RESP: error and status
// texts on one line, no unknown kind.
func checkReply(t *testing.T, r domain.Reply) {
	t.Helper()
	switch r.Kind {
	case domain.ReplyError, domain.ReplyStatus, domain.ReplyDouble:
		if strings.ContainsAny(r.Str, "\r\n") {
			t.Fatalf("reply text %q spans lines", r.Str)
		}
		if r.Kind == domain.ReplyError && (r.Str == "" || strings.ToUpper(r.Str[:1]) != r.Str[:1]) {
			t.Fatalf("error reply %q does not start with an error code", r.Str)
		}
	case domain.ReplyArray, domain.ReplyMap:
		for _, e := range r.Array {
			checkReply(t, e)
		}
	case domain.ReplyNil, domain.ReplyInt, domain.ReplyBulk, domain.ReplyNilArray, domain.ReplyVerbatim:
	default:
		t.Fatalf("reply of unknown kind %d", r.Kind)
	}
}

// FuzzCommands runs arbitrary commands (a command chosen from the table or
// a garbage name, then arguments split at 0xff) against a small keyspace,
// through Apply and Read. Nothing may panic or hang, every reply must be
// writable as RESP, and an unknown name must get an error.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"\x00k\xffv\xffEX\xff10", "\x01k", "\x05k\xff-1\xff5", "\x07k\xff0\xff-1", "\x09*\xffa",
		"\x0bk\xff9223372036854775807", "\x10k\xff4294967296\xff1", "\xfegarbage\xff\r\n",
		"\x20k\xff0\xffMATCH\xff[a-\xffCOUNT\xff3", "\x30k\xff100\xffGT\xffLT",
	} {
		f.Add([]byte(seed))
	}
	names := make([]string, 0, len(table))
	for name := range table {
		names = append(names, name)
	}
	slices.Sort(names)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 || len(data) > 4096 {
			return
		}
		var args [][]byte
		if int(data[0]) < len(names) {
			args = append(args, []byte(names[data[0]]))
		}
		args = append(args, bytes.Split(data[1:], []byte{0xff})...)
		if len(args[0]) == 0 {
			return
		}
		x := &tester{t: t, st: NewMapStore(), now: 1_700_000_000_000, e: Engine{MaxValueBytes: 1 << 16}}
		// A string at k, a and n, and a collection of each type at h, s,
		// z and l.
		for _, setup := range [][]string{{"SET", "k", "12"}, {"SET", "a", "12"}, {"SET", "n", "12"},
			{"HSET", "h", "f", "1"}, {"SADD", "s", "1", "m"}, {"ZADD", "z", "1", "m", "2", "n"}, {"RPUSH", "l", "a", "b"}} {
			x.index++
			call := domain.Call{}
			for _, a := range setup {
				call.Args = append(call.Args, []byte(a))
			}
			if _, err := x.e.Apply(x.st, x.index, domain.Command{Time: x.now, Calls: []domain.Call{call}}); err != nil {
				t.Fatal(err)
			}
		}
		call := domain.Call{DB: int(data[0] % 3), Args: args}
		spec := Lookup(args[0])
		var r domain.Reply
		if spec != nil && spec.Flags&Write == 0 {
			var err error
			if r, err = x.e.Read(x.st, x.now, call); err != nil {
				t.Fatalf("Read %q: %v", args, err)
			}
		} else {
			x.index++
			res, err := x.e.Apply(x.st, x.index, domain.Command{Time: x.now, Calls: []domain.Call{call}})
			if err != nil {
				t.Fatalf("Apply %q: %v", args, err)
			}
			r = res.Reply
		}
		checkReply(t, r)
		if spec == nil && r.Kind != domain.ReplyError {
			t.Fatalf("unknown command %q answered %v", args[0], r)
		}
	})
}

// FuzzDecodeRecord: any bytes decode to a record or an error wrapping
// domain.ErrCorrupt, never a panic, and a decoded record encodes back to
// bytes that decode to the same record.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range []Record{
		{Value: []byte("v"), ExpireAt: 5, Version: 7},
		{Type: TypeHash, Count: 3, Inst: 1 << 30, Version: 9},
		{Type: TypeList, Count: 2, Inst: 5, Head: -4, ExpireAt: 1_700_000_000_000},
	} {
		f.Add(EncodeRecord(r))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeRecord: %v, want ErrCorrupt", err)
			}
			return
		}
		again, err := DecodeRecord(EncodeRecord(r))
		if err != nil {
			t.Fatalf("re-decode of %+v: %v", r, err)
		}
		if !bytes.Equal(again.Value, r.Value) || again.Type != r.Type || again.Count != r.Count ||
			again.Inst != r.Inst || again.Head != r.Head || again.ExpireAt != r.ExpireAt || again.Version != r.Version {
			t.Fatalf("round trip: %+v became %+v", r, again)
		}
	})
}

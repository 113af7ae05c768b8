package keyspace

import (
	"bytes"
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
		for _, kv := range []string{"k", "a", "n"} {
			x.index++
			if _, err := x.e.Apply(x.st, x.index, domain.Command{Time: x.now, Calls: []domain.Call{{Args: [][]byte{[]byte("SET"), []byte(kv), []byte("12")}}}}); err != nil {
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

package keyspace

import (
	"strings"
	"testing"

	"github.com/seshat-kv/seshat/domain"
)

func TestMemberCommandKeepsTheAddressBook(t *testing.T) {
	st, e := NewMapStore(), Engine{}
	index := uint64(0)
	run := func(args ...string) domain.Reply {
		t.Helper()
		call := domain.Call{}
		for _, a := range args {
			call.Args = append(call.Args, []byte(a))
		}
		index++
		res, err := e.Apply(st, index, domain.Command{Time: 1000, Calls: []domain.Call{call}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Reply
	}
	if r := run(MemberCommand, "set", "2", "h:7002", "h:6002", "1"); r.String() != "OK" {
		t.Fatalf("set = %v", r)
	}
	run(MemberCommand, "set", "1", "h:7001", "h:6001", "0")
	run(MemberCommand, "set", "2", "h:7102", "h:6102", "1") // moved
	b, err := ReadAddressBook(st)
	if err != nil {
		t.Fatal(err)
	}
	want := []MemberAddr{{ID: 1, Peer: "h:7001", Client: "h:6001"}, {ID: 2, Peer: "h:7102", Client: "h:6102", AutoPromote: true}}
	if len(b.Members) != 2 || b.Members[0] != want[0] || b.Members[1] != want[1] {
		t.Fatalf("book %+v, want %+v", b.Members, want)
	}
	run(MemberCommand, "retire", "2")
	if r := run(MemberCommand, "set", "2", "h:7002", "h:6002", "1"); !r.IsError() || !strings.Contains(r.Str, "removed") {
		t.Fatalf("set of a retired id = %v", r)
	}
	b, _ = ReadAddressBook(st)
	if _, ok := b.Get(2); ok || !b.IsRetired(2) || len(b.Members) != 1 {
		t.Fatalf("book after retire %+v", b)
	}
	for _, bad := range [][]string{{MemberCommand, "set", "0", "a", "b", "1"}, {MemberCommand, "set", "3", "a b", "c", "1"}, {MemberCommand, "nope", "3"}} {
		if r := run(bad...); !r.IsError() {
			t.Errorf("%v = %v, want an error", bad, r)
		}
	}
	// Clients cannot send it: it is internal.
	if Lookup([]byte(MemberCommand)).Flags&Internal == 0 {
		t.Fatal("seshat.member is not internal")
	}
}

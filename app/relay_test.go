package app

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// The relay carries a batch in the ports relay form and gets replies back
// whole, transactions and watches included.
func TestRelayFormRoundTrip(t *testing.T) {
	reqs := []ports.Request{
		req("MSET", "a", "1", "b", ""),
		{Call: domain.Call{DB: 3, Args: [][]byte{[]byte("get"), []byte("\r\n\x00")}}},
		{IsTx: true, Tx: []domain.Call{req("INCR", "a").Call}, Watch: []domain.Watch{{DB: 1, Key: []byte("w"), Version: 9}}},
		{IsTx: true},
	}
	got, err := ports.DecodeRequests(ports.EncodeRequests(reqs))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(reqs, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); d != "" {
		t.Fatalf("requests (-want +got):\n%s", d)
	}
	replies := []ports.Reply{
		value(domain.ArrayReply(domain.OK, domain.NilReply, domain.Reply{Kind: domain.ReplyNilArray})),
		ports.ErrReply(domain.ErrNoLeader),
	}
	vals, err := ports.DecodeReplies(ports.EncodeReplies(replies, func(err error) string { return "CLUSTERDOWN x" }), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.Reply{replies[0].Value, domain.ErrorReply("CLUSTERDOWN x")}
	if d := cmp.Diff(want, vals); d != "" {
		t.Fatalf("replies (-want +got):\n%s", d)
	}
	if !refusal(vals[1]) {
		t.Fatalf("a relayed CLUSTERDOWN is not seen as a refusal")
	}
	if _, err := ports.DecodeRequests([]byte{2, 1}); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("DecodeRequests of garbage: %v", err)
	}
}

func TestRelayReadsReplies(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("+OK\r\n-MOVED 0 h:1\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n"))
	want := []domain.Reply{domain.OK, domain.ErrorReply("MOVED 0 h:1"), domain.StringReply("abc"), domain.StringReply(""), domain.NilReply}
	var got []domain.Reply
	for range want {
		rep, err := readReply(r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rep)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{"?x\r\n", "$5\r\nab\r\n", ":1\r\n", "$-2\r\n", "*1\r\n:1\r\n", "+OK\n"} {
		if _, err := readReply(bufio.NewReader(strings.NewReader(bad))); err == nil || (!errors.Is(err, errBadReply) && err.Error() != "unexpected EOF" && err.Error() != "EOF") {
			t.Errorf("readReply(%q) = %v, want an error", bad, err)
		}
	}
}

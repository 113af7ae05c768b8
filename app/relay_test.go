package app

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/ports"
)

func TestRelayEncodesRequestsAsRedisCommands(t *testing.T) {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeCommand(w, requestArgs(req(ports.ReqMSet, "a", "1", "b", "")))
	writeCommand(w, requestArgs(req(ports.ReqDel, "a", "b")))
	w.Flush()
	want := "*5\r\n$4\r\nmset\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$0\r\n\r\n*3\r\n$3\r\ndel\r\n$1\r\na\r\n$1\r\nb\r\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}

func TestRelayReadsReplies(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("+OK\r\n-MOVED 0 h:1\r\n:42\r\n$3\r\nabc\r\n$0\r\n\r\n$-1\r\n*3\r\n$1\r\nx\r\n$-1\r\n$0\r\n\r\n"))
	want := []ports.Reply{
		{Kind: ports.ReplyOK},
		ports.ErrReply(&ports.RemoteError{Text: "MOVED 0 h:1"}),
		{Kind: ports.ReplyInt, Int: 42},
		{Kind: ports.ReplyBulk, Value: []byte("abc")},
		{Kind: ports.ReplyBulk, Value: []byte{}},
		{Kind: ports.ReplyNil},
		{Kind: ports.ReplyArray, Values: [][]byte{[]byte("x"), nil, {}}},
	}
	var got []ports.Reply
	for range want {
		rep, err := readReply(r)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rep)
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error()) })); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if !refusal(got[1].Err) {
		t.Fatalf("a relayed MOVED is not seen as a refusal")
	}
	for _, bad := range []string{"?x\r\n", "$5\r\nab\r\n", ":x\r\n", "$-2\r\n", "*1\r\n:1\r\n", "+OK\n"} {
		if _, err := readReply(bufio.NewReader(strings.NewReader(bad))); err == nil || (!errors.Is(err, errBadReply) && err.Error() != "unexpected EOF" && err.Error() != "EOF") {
			t.Errorf("readReply(%q) = %v, want an error", bad, err)
		}
	}
}

package resp

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// blockingKV is a fakeKV whose Block hands each call to the test, which
// answers it (or sees it end).
type blockingKV struct {
	*fakeKV
	calls chan blockCall
}

type blockCall struct {
	req     ports.BlockRequest
	ctx     context.Context
	unblock <-chan domain.Reply
	answer  chan ports.Reply
}

func newBlockingKV() *blockingKV {
	return &blockingKV{fakeKV: newFakeKV(), calls: make(chan blockCall, 8)}
}

func (b *blockingKV) Block(ctx context.Context, req ports.BlockRequest, unblock <-chan domain.Reply) ports.Reply {
	c := blockCall{req: req, ctx: ctx, unblock: unblock, answer: make(chan ports.Reply, 1)}
	b.calls <- c
	select {
	case r := <-c.answer:
		return r
	case v := <-unblock:
		return ports.Reply{Value: v}
	case <-ctx.Done():
		return ports.ErrReply(ctx.Err())
	}
}

func (b *blockingKV) next(t *testing.T) blockCall {
	t.Helper()
	select {
	case c := <-b.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no Block call")
	}
	return blockCall{}
}

func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// A blocking command waits in Block once the commands before it are
// answered; the commands after it, pipelined or sent while it waits,
// are answered after it, in order.
func TestBlockingCommandWaitsInOrder(t *testing.T) {
	kv := newBlockingKV()
	addr := serve(t, kv, Options{})
	c, r := dialRaw(t, addr)
	io.WriteString(c, cmd("SET", "a", "1")+cmd("BLPOP", "q", "1.5")+cmd("GET", "a"))
	if got := readRaw(t, r); got != "+OK\r\n" {
		t.Fatalf("SET before BLPOP = %q", got)
	}
	call := kv.next(t)
	if got := string(call.req.Call.Args[0]); got != "BLPOP" || call.req.Blocking.Timeout != 1500 ||
		len(call.req.Blocking.Keys) != 1 || string(call.req.Blocking.Keys[0]) != "q" {
		t.Fatalf("Block got %q, %+v", call.req.Call.Args, call.req.Blocking)
	}
	io.WriteString(c, cmd("PING"))
	time.Sleep(50 * time.Millisecond) // read by the watch, kept for later
	call.answer <- ports.Reply{Value: domain.ArrayReply(domain.StringReply("q"), domain.StringReply("x"))}
	want := []string{"*2\r\n$1\r\nq\r\n$1\r\nx\r\n", "$1\r\n1\r\n", "+PONG\r\n"}
	for _, w := range want {
		if got := readRaw(t, r); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// Bad arguments are answered without blocking; inside MULTI the command
// is queued and runs through Do; a KV without Block runs it once.
func TestBlockingErrorsMultiAndNoBlocker(t *testing.T) {
	kv := newBlockingKV()
	addr := serve(t, kv, Options{})
	got := exchange(t, addr, cmd("BLPOP", "q", "x")+cmd("BLPOP", "q", "-1")+cmd("BLMOVE", "a", "b", "UP", "LEFT", "0")+
		cmd("BLMPOP", "0", "0", "k", "LEFT")+cmd("BZPOPMIN", "q")+
		cmd("MULTI")+cmd("BLPOP", "q", "0")+cmd("BRPOPLPUSH", "q", "d", "0")+cmd("EXEC"), 9)
	want := []string{
		"-ERR timeout is not a float or out of range\r\n",
		"-ERR timeout is negative\r\n",
		"-ERR syntax error\r\n",
		"-ERR numkeys should be greater than 0\r\n",
		"-ERR wrong number of arguments for 'bzpopmin' command\r\n",
		"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n",
		"*2\r\n*-1\r\n$-1\r\n",
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("reply %d = %q, want %q", i, got[i], want[i])
		}
	}
	select {
	case c := <-kv.calls:
		t.Fatalf("Block called with %q", c.req.Call.Args)
	default:
	}
	plain := serve(t, newFakeKV(), Options{})
	if got := exchange(t, plain, cmd("BLPOP", "q", "0"), 1)[0]; got != "*-1\r\n" {
		t.Fatalf("BLPOP without a Blocker = %q", got)
	}
}

// CLIENT UNBLOCK answers a blocked client as a timeout or with an error;
// INFO counts blocked clients; a client that disconnects or is killed
// ends its wait.
func TestBlockingUnblockKillAndDisconnect(t *testing.T) {
	kv := newBlockingKV()
	addr := serve(t, kv, Options{})
	admin, ar := dialRaw(t, addr)
	ask := func(args ...string) string {
		t.Helper()
		io.WriteString(admin, cmd(args...))
		return readRaw(t, ar)
	}
	for _, tc := range []struct{ how, want string }{
		{"TIMEOUT", "*-1\r\n"},
		{"ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
	} {
		c, r := dialRaw(t, addr)
		io.WriteString(c, cmd("CLIENT", "ID"))
		id := strings.TrimSpace(readRaw(t, r)[1:])
		io.WriteString(c, cmd("BRPOP", "q", "0"))
		kv.next(t)
		if got := ask("INFO", "clients"); !strings.Contains(got, "blocked_clients:1\r\n") {
			t.Fatalf("INFO clients while blocked: %q", got)
		}
		if got := ask("CLIENT", "UNBLOCK", id, tc.how); got != ":1\r\n" {
			t.Fatalf("CLIENT UNBLOCK %s = %q", tc.how, got)
		}
		if got := readRaw(t, r); got != tc.want {
			t.Fatalf("unblocked with %s: %q, want %q", tc.how, got, tc.want)
		}
		if got := ask("CLIENT", "UNBLOCK", id); got != ":0\r\n" {
			t.Fatalf("CLIENT UNBLOCK of a client not blocked = %q", got)
		}
	}
	if got := ask("CLIENT", "UNBLOCK", "x"); got != "-ERR value is not an integer or out of range\r\n" {
		t.Fatalf("CLIENT UNBLOCK x = %q", got)
	}
	if got := ask("CLIENT", "UNBLOCK", "1", "NOW"); got != "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n" {
		t.Fatalf("CLIENT UNBLOCK 1 NOW = %q", got)
	}

	// Disconnect.
	c, _ := dialRaw(t, addr)
	io.WriteString(c, cmd("BLPOP", "q", "0"))
	call := kv.next(t)
	c.Close()
	select {
	case <-call.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a client that disconnected is still waiting")
	}

	// CLIENT KILL.
	c, r := dialRaw(t, addr)
	io.WriteString(c, cmd("BZPOPMIN", "z", "0"))
	call = kv.next(t)
	if got := ask("CLIENT", "KILL", "ADDR", c.LocalAddr().String()); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL = %q", got)
	}
	select {
	case <-call.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a killed client is still waiting")
	}
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("a killed client got a reply")
	}
	if got := ask("INFO", "clients"); !strings.Contains(got, "blocked_clients:0\r\n") {
		t.Fatalf("INFO clients after: %q", got)
	}
}

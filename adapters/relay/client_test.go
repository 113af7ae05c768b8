package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/redcon"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// fakeLeader serves the relay protocol on loopback: it checks the hello
// and answers each batch with serve's replies.
type fakeLeader struct {
	t        *testing.T
	addr     string
	password string
	serve    func(reqs []ports.Request) []ports.Reply // nil: echo each key
	// onDo, if set, runs first for each batch and says what to do next.
	onDo func(conn redcon.Conn, reqs []ports.Request) action

	accepted, closed atomic.Int64
	maxPipelined     atomic.Int64 // most batches seen queued behind one
}

func newFakeLeader(t *testing.T) *fakeLeader {
	t.Helper()
	f := &fakeLeader{t: t}
	srv := redcon.NewServerNetwork("tcp", "127.0.0.1:0", f.handle, func(redcon.Conn) bool {
		f.accepted.Add(1)
		return true
	}, func(redcon.Conn, error) { f.closed.Add(1) })
	listening := make(chan error, 1)
	go srv.ListenServeAndSignal(listening)
	if err := <-listening; err != nil {
		t.Fatal(err)
	}
	f.addr = srv.Addr().String()
	t.Cleanup(func() { srv.Close() })
	return f
}

type connState struct{ authed, hello bool }

type action int

const (
	reply    action = iota // answer with serve's replies
	answered               // onDo wrote the reply
	hangUp                 // close the connection unanswered
)

func (f *fakeLeader) handle(conn redcon.Conn, cmd redcon.Command) {
	st, _ := conn.Context().(*connState)
	if st == nil {
		st = &connState{authed: f.password == ""}
		conn.SetContext(st)
	}
	switch name := strings.ToUpper(string(cmd.Args[0])); {
	case name == "AUTH":
		if len(cmd.Args) != 2 || string(cmd.Args[1]) != f.password {
			conn.WriteError("WRONGPASS invalid password")
			return
		}
		st.authed = true
		conn.WriteString("OK")
	case !st.authed:
		conn.WriteError("NOAUTH Authentication required.")
	case name == Hello:
		st.hello = true
		conn.WriteString("OK")
	case name == Do && st.hello && len(cmd.Args) == 2:
		if n := int64(len(conn.PeekPipeline())); n > f.maxPipelined.Load() {
			f.maxPipelined.Store(n)
		}
		reqs, err := ports.DecodeRequests(cmd.Args[1])
		if err != nil {
			conn.WriteError("ERR " + err.Error())
			return
		}
		if f.onDo != nil {
			switch f.onDo(conn, reqs) {
			case answered:
				return
			case hangUp:
				conn.Close()
				return
			}
		}
		replies := echo(reqs)
		if f.serve != nil {
			replies = f.serve(reqs)
		}
		conn.WriteBulk(ports.EncodeReplies(replies, errText))
	default:
		conn.WriteError("ERR unexpected " + name)
	}
}

func errText(err error) string {
	var re *ports.RedirectError
	if errors.As(err, &re) {
		return "MOVED 0 " + re.Addr
	}
	return "ERR " + err.Error()
}

// echo answers each request with its second argument.
func echo(reqs []ports.Request) []ports.Reply {
	out := make([]ports.Reply, len(reqs))
	for i, r := range reqs {
		out[i] = ports.Reply{Value: domain.BulkReply(r.Call.Args[1])}
	}
	return out
}

func get(keys ...string) []ports.Request {
	out := make([]ports.Request, len(keys))
	for i, k := range keys {
		out[i] = ports.Request{Call: domain.Call{Args: [][]byte{[]byte("GET"), []byte(k)}}}
	}
	return out
}

func newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantReplies(t *testing.T, got []domain.Reply, keys ...string) {
	t.Helper()
	want := make([]domain.Reply, len(keys))
	for i, k := range keys {
		want[i] = domain.BulkReply([]byte(k))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("replies (-want +got):\n%s", d)
	}
}

// Many callers share a few connections, several batches in flight on
// each, and every caller gets its own replies, in order.
func TestPipelinedBatches(t *testing.T) {
	f := newFakeLeader(t)
	f.onDo = func(redcon.Conn, []ports.Request) action {
		time.Sleep(50 * time.Microsecond) // let batches pile up behind
		return reply
	}
	c := newClient(t, Options{Conns: 2})
	const callers, batches = 40, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for b := range batches {
				keys := make([]string, 1+(g+b)%3)
				for i := range keys {
					keys[i] = fmt.Sprintf("g%d-b%d-%d", g, b, i)
				}
				got, err := c.Do(context.Background(), f.addr, get(keys...))
				if err != nil {
					errs <- err
					return
				}
				for i, k := range keys {
					if string(got[i].Bulk) != k {
						errs <- fmt.Errorf("caller %d batch %d: reply %d is %q, want %q", g, b, i, got[i].Bulk, k)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.accepted.Load(); n > 2 {
		t.Errorf("%d connections for Conns 2", n)
	}
	if f.maxPipelined.Load() == 0 {
		t.Errorf("never more than one batch in flight on a connection")
	}
	t.Logf("%d connections, up to %d batches queued behind one", f.accepted.Load(), f.maxPipelined.Load())
}

func TestHelloAndAuth(t *testing.T) {
	f := newFakeLeader(t)
	f.password = "s3cret"
	_, err := newClient(t, Options{Password: "wrong"}).Do(context.Background(), f.addr, get("a"))
	if !errors.Is(err, domain.ErrUnreachable) || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("wrong password: %v, want ErrUnreachable with WRONGPASS", err)
	}
	got, err := newClient(t, Options{Password: "s3cret"}).Do(context.Background(), f.addr, get("a"))
	if err != nil {
		t.Fatal(err)
	}
	wantReplies(t, got, "a")
}

// A leader that refuses the whole batch (it no longer leads) is told
// apart by the relay form's flag: ErrRelayRefused, nothing ran.
func TestRefusedBatch(t *testing.T) {
	f := newFakeLeader(t)
	f.serve = func(reqs []ports.Request) []ports.Reply {
		out := make([]ports.Reply, len(reqs))
		for i := range out {
			out[i] = ports.ErrReply(&ports.RedirectError{Leader: 3, Addr: "h:3"})
		}
		return out
	}
	c := newClient(t, Options{})
	_, err := c.Do(context.Background(), f.addr, get("a", "b"))
	if !errors.Is(err, domain.ErrRelayRefused) || !strings.Contains(err.Error(), "MOVED 0 h:3") {
		t.Fatalf("refused batch: %v, want ErrRelayRefused naming the redirect", err)
	}
	// A batch with a failure that is not a refusal comes back as replies.
	f.serve = func(reqs []ports.Request) []ports.Reply {
		return []ports.Reply{ports.ErrReply(domain.ErrDiskFull), {Value: domain.OK}}
	}
	got, err := c.Do(context.Background(), f.addr, get("a", "b"))
	if err != nil || len(got) != 2 || got[0].Kind != domain.ReplyError || got[1].Kind != domain.ReplyStatus {
		t.Fatalf("replies %v, %v", got, err)
	}
}

// A leader that cannot be reached: nothing was sent.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = newClient(t, Options{}).Do(context.Background(), addr, get("a"))
	if !errors.Is(err, domain.ErrUnreachable) {
		t.Fatalf("closed port: %v, want ErrUnreachable", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := newFakeLeader(t)
	if _, err := newClient(t, Options{}).Do(ctx, f.addr, get("a")); !errors.Is(err, domain.ErrUnreachable) {
		t.Fatalf("canceled context: %v, want ErrUnreachable", err)
	}
}

// A connection that breaks after a batch went out leaves its outcome
// unknown; the next batch dials again.
func TestBrokenAfterSending(t *testing.T) {
	f := newFakeLeader(t)
	f.onDo = func(_ redcon.Conn, reqs []ports.Request) action {
		if string(reqs[0].Call.Args[1]) == "crash" {
			return hangUp
		}
		return reply
	}
	c := newClient(t, Options{Conns: 1})
	if _, err := c.Do(context.Background(), f.addr, get("crash")); !errors.Is(err, domain.ErrLeadershipLost) {
		t.Fatalf("connection closed after sending: %v, want ErrLeadershipLost", err)
	}
	got, err := c.Do(context.Background(), f.addr, get("after"))
	if err != nil {
		t.Fatalf("after a broken connection: %v", err)
	}
	wantReplies(t, got, "after")
	if n := f.accepted.Load(); n != 2 {
		t.Fatalf("%d connections, want a second one after the break", n)
	}
}

// A batch whose reply does not come before its deadline has an unknown
// outcome, and so do the batches behind it: the connection is dropped.
func TestDeadlineAfterSending(t *testing.T) {
	f := newFakeLeader(t)
	release := make(chan struct{})
	f.onDo = func(_ redcon.Conn, reqs []ports.Request) action {
		if string(reqs[0].Call.Args[1]) == "slow" {
			<-release
		}
		return reply
	}
	defer close(release)
	c := newClient(t, Options{Conns: 1})
	behind := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, err := c.Do(context.Background(), f.addr, get("behind"))
		behind <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Do(ctx, f.addr, get("slow")); !errors.Is(err, domain.ErrLeadershipLost) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow batch: %v, want ErrLeadershipLost after the deadline", err)
	}
	if err := <-behind; !errors.Is(err, domain.ErrLeadershipLost) {
		t.Fatalf("batch behind it: %v, want an unknown outcome", err)
	}
	got, err := c.Do(context.Background(), f.addr, get("fresh"))
	if err != nil {
		t.Fatal(err)
	}
	wantReplies(t, got, "fresh")
}

// A reply that is not the relay form breaks the connection, outcome
// unknown; a whole-batch error reply is the batch's answer.
func TestBadReplies(t *testing.T) {
	f := newFakeLeader(t)
	f.onDo = func(conn redcon.Conn, reqs []ports.Request) action {
		switch string(reqs[0].Call.Args[1]) {
		case "int":
			conn.WriteInt(1)
		case "garbage":
			conn.WriteBulkString("not the relay form")
		case "refuse":
			conn.WriteError("ERR relayed batch holds a bad call")
		default:
			return reply
		}
		return answered
	}
	c := newClient(t, Options{Conns: 1})
	for _, k := range []string{"int", "garbage"} {
		if _, err := c.Do(context.Background(), f.addr, get(k)); !errors.Is(err, domain.ErrLeadershipLost) {
			t.Fatalf("%s reply: %v, want ErrLeadershipLost", k, err)
		}
	}
	got, err := c.Do(context.Background(), f.addr, get("refuse", "x"))
	if err != nil || len(got) != 2 || got[1].Kind != domain.ReplyError || !strings.Contains(got[1].Str, "bad call") {
		t.Fatalf("whole-batch error: %v, %v", got, err)
	}
}

// When the leader changes, the connections to the old one take no new
// batches and close once the replies in flight are in.
func TestLeaderChangeRetiresConnections(t *testing.T) {
	a, b := newFakeLeader(t), newFakeLeader(t)
	release := make(chan struct{})
	a.onDo = func(_ redcon.Conn, reqs []ports.Request) action {
		if string(reqs[0].Call.Args[1]) == "slow" {
			<-release
		}
		return reply
	}
	c := newClient(t, Options{Conns: 2})
	for range 4 {
		if _, err := c.Do(context.Background(), a.addr, get("a")); err != nil {
			t.Fatal(err)
		}
	}
	slow := make(chan error, 1)
	go func() {
		got, err := c.Do(context.Background(), a.addr, get("slow"))
		if err == nil && string(got[0].Bulk) != "slow" {
			err = fmt.Errorf("reply %v", got)
		}
		slow <- err
	}()
	time.Sleep(20 * time.Millisecond) // the slow batch is out
	if _, err := c.Do(context.Background(), b.addr, get("b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if a.closed.Load() == a.accepted.Load() {
		t.Fatal("every connection to the old leader closed with a reply in flight")
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the batch in flight to the old leader: %v, want its reply", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.closed.Load() != a.accepted.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections to the old leader closed", a.closed.Load(), a.accepted.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClosed(t *testing.T) {
	f := newFakeLeader(t)
	c := newClient(t, Options{})
	if _, err := c.Do(context.Background(), f.addr, get("a")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Do(context.Background(), f.addr, get("a")); !errors.Is(err, domain.ErrStopped) {
		t.Fatalf("after Close: %v, want ErrStopped", err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{Conns: -1}, {DialTimeout: -1}, {MaxReplyBytes: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

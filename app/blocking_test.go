package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/domain/keyspace"
	"github.com/seshat-kv/seshat/ports"
)

// signalNode is a fakeNode that signals each applied proposal, as the
// wrapped state machine of a real node does, and may run a hook after.
type signalNode struct {
	*fakeNode
	sig   *AppliedSignal
	mu    sync.Mutex
	after func(args []byte) // called with each applied command's encoding
	lose  int               // the next lose proposals apply, then fail as if leadership was lost
}

func (n *signalNode) Propose(ctx context.Context, cmds ...[]byte) ([]domain.Result, error) {
	res, err := n.fakeNode.Propose(ctx, cmds...)
	n.sig.notify()
	n.mu.Lock()
	after := n.after
	n.mu.Unlock()
	if after != nil {
		for _, c := range cmds {
			after(c)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lose > 0 && err == nil {
		n.lose--
		return nil, domain.ErrLeadershipLost
	}
	return res, err
}

func newBlockingService(t *testing.T) (*Service, *signalNode) {
	t.Helper()
	n := &signalNode{fakeNode: newFakeNode(), sig: NewAppliedSignal()}
	return newService(t, n, n.kv, Config{Applied: n.sig}), n
}

// blockReq parses a blocking command as the RESP adapter does.
func blockReq(t *testing.T, args ...string) ports.BlockRequest {
	t.Helper()
	r := req(args...)
	bc, rep, ok := keyspace.ParseBlocking(r.Call.Args)
	if !ok {
		t.Fatalf("%q: %v", args, rep)
	}
	return ports.BlockRequest{Call: r.Call, Blocking: bc}
}

// waiters counts the service's waiters on key (database 0).
func waiters(s *Service, key string) int {
	s.blk.mu.Lock()
	defer s.blk.mu.Unlock()
	return len(s.blk.byKey[waitKey{key: key}])
}

func waitWaiters(t *testing.T, s *Service, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for waiters(s, key) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters on %s, want %d", waiters(s, key), key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func show(r ports.Reply) string {
	if r.Err != nil {
		return "error " + r.Err.Error()
	}
	return fmt.Sprint(r.Value)
}

// Clients blocked on one key are served in the order they blocked, each
// element once; a pop that finds its key non-empty does not wait.
func TestBlockServedFirstComeFirstServed(t *testing.T) {
	s, _ := newBlockingService(t)
	ctx := context.Background()
	const n = 5
	got := make([]chan ports.Reply, n)
	for i := range n {
		got[i] = make(chan ports.Reply, 1)
		go func() { got[i] <- s.Block(ctx, blockReq(t, "BLPOP", "other", "q", "0"), nil) }()
		waitWaiters(t, s, "q", i+1)
	}
	s.Do(ctx, []ports.Request{req("RPUSH", "q", "e0", "e1", "e2", "e3", "e4", "e5")}, ports.DoOptions{})
	for i := range n {
		select {
		case r := <-got[i]:
			want := show(ports.Reply{Value: domain.ArrayReply(domain.StringReply("q"), domain.StringReply(fmt.Sprintf("e%d", i)))})
			if show(r) != want {
				t.Fatalf("waiter %d got %s, want %s", i, show(r), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("waiter %d not served", i)
		}
	}
	waitWaiters(t, s, "q", 0)
	// e5 is left: the next pop takes it at once.
	r := s.Block(ctx, blockReq(t, "BRPOP", "q", "0"), nil)
	if !strings.Contains(show(r), "e5") {
		t.Fatalf("BRPOP = %s, want e5", show(r))
	}
}

// A blocked sorted-set pop is not woken by a list, and a list pop not by a
// sorted set; each is served by its own type.
func TestBlockWaitsForItsType(t *testing.T) {
	s, _ := newBlockingService(t)
	ctx := context.Background()
	z := make(chan ports.Reply, 1)
	go func() { z <- s.Block(ctx, blockReq(t, "BZPOPMAX", "k", "0"), nil) }()
	waitWaiters(t, s, "k", 1)
	s.Do(ctx, []ports.Request{req("RPUSH", "k", "x")}, ports.DoOptions{})
	select {
	case r := <-z:
		t.Fatalf("BZPOPMAX served by a list: %s", show(r))
	case <-time.After(200 * time.Millisecond):
	}
	s.Do(ctx, []ports.Request{req("DEL", "k"), req("ZADD", "k", "1", "a", "2", "b")}, ports.DoOptions{})
	select {
	case r := <-z:
		if want := `[k b 2]`; !strings.Contains(show(r), "b") {
			t.Fatalf("BZPOPMAX = %s, want %s", show(r), want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("BZPOPMAX not served")
	}
}

// A timeout answers the command's nil; CLIENT UNBLOCK's reply is answered
// as given; a closed service answers ErrStopped; WRONGTYPE does not wait.
func TestBlockTimeoutUnblockStopAndErrors(t *testing.T) {
	s, _ := newBlockingService(t)
	ctx := context.Background()
	t0 := time.Now()
	r := s.Block(ctx, blockReq(t, "BLPOP", "none", "0.05"), nil)
	if r.Err != nil || r.Value.Kind != domain.ReplyNilArray || time.Since(t0) < 50*time.Millisecond {
		t.Fatalf("BLPOP timing out = %s after %v, want a nil array after 50ms", show(r), time.Since(t0))
	}
	r = s.Block(ctx, blockReq(t, "BLMOVE", "none", "d", "LEFT", "LEFT", "0.01"), nil)
	if r.Err != nil || r.Value.Kind != domain.ReplyNilArray { // as Redis 7.0
		t.Fatalf("BLMOVE timing out = %s, want a nil array", show(r))
	}
	unblock := make(chan domain.Reply, 1)
	done := make(chan ports.Reply, 1)
	go func() { done <- s.Block(ctx, blockReq(t, "BRPOP", "none", "0"), unblock) }()
	waitWaiters(t, s, "none", 1)
	unblock <- domain.ErrorReply("UNBLOCKED client unblocked via CLIENT UNBLOCK")
	if r := <-done; r.Value.Str != "UNBLOCKED client unblocked via CLIENT UNBLOCK" {
		t.Fatalf("unblocked: %s", show(r))
	}
	waitWaiters(t, s, "none", 0)

	s.Do(ctx, []ports.Request{req("SET", "str", "v")}, ports.DoOptions{})
	if r := s.Block(ctx, blockReq(t, "BLPOP", "str", "0"), nil); !strings.Contains(show(r), "WRONGTYPE") {
		t.Fatalf("BLPOP on a string = %s, want WRONGTYPE", show(r))
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- s.Block(cctx, blockReq(t, "BZMPOP", "0", "1", "none", "MIN"), nil) }()
	waitWaiters(t, s, "none", 1)
	cancel()
	if r := <-done; !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("client gone: %s", show(r))
	}
	waitWaiters(t, s, "none", 0)

	go func() { done <- s.Block(ctx, blockReq(t, "BLPOP", "none", "0"), nil) }()
	waitWaiters(t, s, "none", 1)
	s.Close()
	if r := <-done; !errors.Is(r.Err, domain.ErrStopped) {
		t.Fatalf("after Close: %s", show(r))
	}
}

// A client that leaves while its pop applies loses nothing: what was
// popped for it is put back where it was.
func TestBlockClientGoneDuringPopPutsBack(t *testing.T) {
	for _, tc := range []struct {
		setup [][]string
		block []string
		key   string
		read  []string
		want  string
	}{
		{[][]string{{"RPUSH", "l", "a", "b", "c"}}, []string{"BLPOP", "l", "0"}, "l", []string{"LRANGE", "l", "0", "-1"}, "[a b c]"},
		{[][]string{{"RPUSH", "l", "a", "b", "c"}}, []string{"BRPOP", "l", "0"}, "l", []string{"LRANGE", "l", "0", "-1"}, "[a b c]"},
		{[][]string{{"RPUSH", "l", "a", "b", "c"}}, []string{"BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2"}, "l", []string{"LRANGE", "l", "0", "-1"}, "[a b c]"},
		{[][]string{{"RPUSH", "l", "a", "b", "c"}}, []string{"BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "5"}, "l", []string{"LRANGE", "l", "0", "-1"}, "[a b c]"},
		{[][]string{{"ZADD", "z", "1", "a", "2.5", "b"}}, []string{"BZPOPMIN", "z", "0"}, "z", []string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, "[a 1 b 2.5]"},
		{[][]string{{"ZADD", "z", "1", "a", "2.5", "b"}}, []string{"BZPOPMAX", "z", "0"}, "z", []string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, "[a 1 b 2.5]"},
		{[][]string{{"ZADD", "z", "1", "a", "inf", "b"}}, []string{"BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"}, "z", []string{"ZRANGE", "z", "0", "-1", "WITHSCORES"}, "[a 1 b inf]"},
		// A move stays done: the element is in its destination.
		{[][]string{{"RPUSH", "l", "a", "b"}}, []string{"BLMOVE", "l", "d", "LEFT", "RIGHT", "0"}, "l", []string{"LRANGE", "d", "0", "-1"}, "[a]"},
	} {
		t.Run(strings.Join(tc.block, " "), func(t *testing.T) {
			s, n := newBlockingService(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan ports.Reply, 1)
			go func() { done <- s.Block(ctx, blockReq(t, tc.block...), nil) }()
			waitWaiters(t, s, tc.key, 1)
			// The client leaves as its pop applies.
			n.mu.Lock()
			n.after = func(cmd []byte) {
				if strings.Contains(strings.ToLower(string(cmd)), strings.ToLower(tc.block[0])) {
					cancel()
				}
			}
			n.mu.Unlock()
			for _, c := range tc.setup {
				s.Do(context.Background(), []ports.Request{req(c...)}, ports.DoOptions{})
			}
			r := <-done
			if r.Err != nil && !errors.Is(r.Err, context.Canceled) {
				t.Fatal(show(r))
			}
			got := s.Do(context.Background(), []ports.Request{req(tc.read...)}, ports.DoOptions{})[0]
			if g := plain(got.Value); g != tc.want {
				t.Fatalf("after the client left: %v = %s, want %s", tc.read, g, tc.want)
			}
		})
	}
}

// plain renders an array of bulk strings and doubles as [a b c].
func plain(v domain.Reply) string {
	var parts []string
	for _, e := range v.Array {
		if e.Kind == domain.ReplyDouble || e.Kind == domain.ReplyStatus {
			parts = append(parts, e.Str)
		} else {
			parts = append(parts, string(e.Bulk))
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Two services over one log (two nodes' waiters) racing for elements get
// each exactly once.
func TestBlockRacingWaitersEachElementOnce(t *testing.T) {
	s, n := newBlockingService(t)
	s2 := newService(t, n, n.kv, Config{Applied: n.sig})
	ctx := context.Background()
	const clients, elems = 8, 40
	out := make(chan string, elems)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range clients {
		svc := s
		if i%2 == 1 {
			svc = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := svc.Block(ctx, blockReq(t, "BLPOP", "q", "0.05"), nil)
				if r.Err == nil && r.Value.Kind == domain.ReplyArray {
					out <- string(r.Value.Array[1].Bulk)
				}
			}
		}()
	}
	for i := range elems {
		s.Do(ctx, []ports.Request{req("RPUSH", "q", fmt.Sprintf("e%02d", i))}, ports.DoOptions{})
	}
	seen := map[string]bool{}
	for range elems {
		select {
		case e := <-out:
			if seen[e] {
				t.Fatalf("%s delivered twice", e)
			}
			seen[e] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d delivered", len(seen), elems)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case e := <-out:
		t.Fatalf("%s delivered after all %d were", e, elems)
	default:
	}
}

// A pop whose outcome is unknown (it applied, but the leadership was lost
// before it was answered) is proposed again under the same token: the
// client gets the element popped the first time, and nothing more is
// popped.
func TestBlockUnknownOutcomePopsOnce(t *testing.T) {
	s, n := newBlockingService(t)
	ctx := context.Background()
	s.Do(ctx, []ports.Request{req("RPUSH", "l", "a", "b", "c")}, ports.DoOptions{})
	n.mu.Lock()
	n.lose = 2
	n.mu.Unlock()
	r := s.Block(ctx, blockReq(t, "BLPOP", "l", "0"), nil)
	if got := plain(r.Value); r.Err != nil || got != "[l a]" {
		t.Fatalf("BLPOP = %s, want [l a]", show(r))
	}
	got := s.Do(ctx, []ports.Request{req("LRANGE", "l", "0", "-1")}, ports.DoOptions{})[0]
	if g := plain(got.Value); g != "[b c]" {
		t.Fatalf("after: %s, want [b c]", g)
	}
}

package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seshat-kv/seshat/domain"
	"github.com/seshat-kv/seshat/ports"
)

// fakeRelay answers relayed batches from a script of errors, then by
// echoing each request's key.
type fakeRelay struct {
	mu    sync.Mutex
	errs  []error // the results of the next calls, in order
	then  error   // the result of every call after those
	calls []string
	short bool // answer one reply too few
}

func (f *fakeRelay) Do(_ context.Context, addr string, reqs []ports.Request) ([]domain.Reply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, addr)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return nil, err
		}
	} else if f.then != nil {
		return nil, f.then
	}
	out := make([]domain.Reply, len(reqs))
	for i, r := range reqs {
		out[i] = domain.BulkReply(r.Call.Args[1])
	}
	if f.short {
		out = out[1:]
	}
	return out, nil
}

func (f *fakeRelay) Close() error { return nil }

func (f *fakeRelay) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// A follower relays a batch with writes to the leader's address through
// the Relay port and returns the leader's replies; what the port's error
// says decides whether the batch is tried again.
func TestRelay(t *testing.T) {
	addrs := map[domain.NodeID]string{1: "h1:1", 2: "h2:2"}
	refused := fmt.Errorf("relay: h2:2 refused the batch (MOVED 0 h3:3): %w", domain.ErrRelayRefused)
	unsent := fmt.Errorf("relay: dial h2:2: %w", domain.ErrUnreachable)
	unknown := fmt.Errorf("relay to h2:2 broke after sending: %w", domain.ErrLeadershipLost)
	for _, tc := range []struct {
		name  string
		errs  []error
		then  error
		short bool
		calls int
		want  func(t *testing.T, got []ports.Reply)
	}{
		{"served", nil, nil, false, 1, wantEcho},
		{"refused, then served", []error{refused}, nil, false, 2, wantEcho},
		{"unreachable, then served", []error{unsent, unsent}, nil, false, 3, wantEcho},
		{"outcome unknown", []error{unknown}, nil, false, 1, wantErr(domain.ErrLeadershipLost)},
		{"stopped", []error{fmt.Errorf("relay: %w", domain.ErrStopped)}, nil, false, 1, wantErr(domain.ErrStopped)},
		{"refused until the leader wait ends", nil, refused, false, -1, wantErr(domain.ErrNoLeader)},
		{"too few replies", nil, nil, true, 1, wantErr(domain.ErrLeadershipLost)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNode()
			n.leader = 2
			r := &fakeRelay{errs: tc.errs, then: tc.then, short: tc.short}
			s := newService(t, n, n.kv, Config{ClientAddrs: addrs, Relay: r})
			got := s.Do(context.Background(), []ports.Request{req("SET", "a", "1"), req("GET", "b")}, ports.DoOptions{})
			tc.want(t, got)
			if tc.calls >= 0 && r.count() != tc.calls {
				t.Fatalf("%d relay calls, want %d", r.count(), tc.calls)
			}
			for _, a := range r.calls {
				if a != "h2:2" {
					t.Fatalf("relayed to %s, want the leader's h2:2", a)
				}
			}
			if len(n.proposes) != 0 {
				t.Fatalf("the follower proposed %v itself", n.proposes)
			}
		})
	}
}

func wantEcho(t *testing.T, got []ports.Reply) {
	t.Helper()
	if d := cmp.Diff([]ports.Reply{bulk("a"), bulk("b")}, got); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

func wantErr(target error) func(*testing.T, []ports.Reply) {
	return func(t *testing.T, got []ports.Reply) {
		t.Helper()
		for i, r := range got {
			if !errors.Is(r.Err, target) {
				t.Fatalf("reply %d: %+v, want an error wrapping %v", i, r, target)
			}
		}
	}
}

// With no Relay a follower answers writes with a redirect; reads it serves
// itself.
func TestNoRelayRedirects(t *testing.T) {
	n := newFakeNode()
	n.leader = 2
	s := newService(t, n, n.kv, Config{ClientAddrs: map[domain.NodeID]string{2: "h2:2"}})
	got := s.Do(context.Background(), []ports.Request{req("SET", "a", "1")}, ports.DoOptions{})
	var re *ports.RedirectError
	if !errors.As(got[0].Err, &re) || re.Addr != "h2:2" {
		t.Fatalf("write on a follower without a relay: %+v, want a redirect", got[0])
	}
}

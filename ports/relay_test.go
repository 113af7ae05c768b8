package ports

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/seshat-kv/seshat/domain"
)

// A relayed batch comes from another node over the network: garbage must
// be refused as corrupt, never crash the leader, and what decodes must
// hold one call per plain request.
func FuzzDecodeRequests(f *testing.F) {
	f.Add(EncodeRequests([]Request{
		{Call: domain.Call{Args: [][]byte{[]byte("SET"), []byte("k"), []byte("v")}}},
		{IsTx: true, Tx: []domain.Call{{DB: 1, Args: [][]byte{[]byte("INCR"), []byte("n")}}}, Watch: []domain.Watch{{Key: []byte("n"), Version: 3}}},
	}))
	f.Add([]byte{1, 3, 2, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeRequests(b)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeRequests(%x): %v does not wrap ErrCorrupt", b, err)
			}
			return
		}
		for _, r := range reqs {
			if !r.IsTx && len(r.Call.Args) == 0 {
				t.Fatalf("DecodeRequests(%x) accepted a request with no command", b)
			}
		}
		if _, err := DecodeRequests(EncodeRequests(reqs)); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

func TestRelayFormRoundTrip(t *testing.T) {
	reqs := []Request{
		{Call: domain.Call{Args: [][]byte{[]byte("MSET"), []byte("a"), []byte("1"), []byte("b"), []byte("")}}},
		{Call: domain.Call{DB: 3, Args: [][]byte{[]byte("get"), []byte("\r\n\x00")}}},
		{IsTx: true, Tx: []domain.Call{{Args: [][]byte{[]byte("INCR"), []byte("a")}}}, Watch: []domain.Watch{{DB: 1, Key: []byte("w"), Version: 9}}},
		{IsTx: true},
	}
	got, err := DecodeRequests(EncodeRequests(reqs))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(reqs, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); d != "" {
		t.Fatalf("requests (-want +got):\n%s", d)
	}
	errText := func(err error) string { return "ERR " + err.Error() }
	for _, tc := range []struct {
		name    string
		replies []Reply
		refused bool
	}{
		{"values and an error", []Reply{
			{Value: domain.ArrayReply(domain.OK, domain.NilReply, domain.Reply{Kind: domain.ReplyNilArray})},
			ErrReply(domain.ErrNoLeader),
		}, false},
		{"all redirected", []Reply{
			ErrReply(&RedirectError{Leader: 2, Addr: "h:2"}),
			ErrReply(fmt.Errorf("app: %w", domain.ErrNoLeader)),
			ErrReply(domain.ErrProposalDropped),
		}, true},
		{"an outcome unknown", []Reply{
			ErrReply(domain.ErrNotLeader),
			ErrReply(fmt.Errorf("%w: %w", domain.ErrLeadershipLost, domain.ErrNotLeader)),
		}, false},
		{"a failure that ran", []Reply{ErrReply(domain.ErrNotLeader), ErrReply(domain.ErrDiskFull)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, refused, err := DecodeReplies(EncodeReplies(tc.replies, errText), len(tc.replies))
			if err != nil {
				t.Fatal(err)
			}
			want := make([]domain.Reply, len(tc.replies))
			for i, r := range tc.replies {
				want[i] = r.Value
				if r.Err != nil {
					want[i] = domain.ErrorReply(errText(r.Err))
				}
			}
			if d := cmp.Diff(want, vals); d != "" {
				t.Fatalf("replies (-want +got):\n%s", d)
			}
			if refused != tc.refused {
				t.Fatalf("refused %v, want %v", refused, tc.refused)
			}
		})
	}
	if _, err := DecodeRequests([]byte{2, 1}); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("DecodeRequests of garbage: %v", err)
	}
	if _, _, err := DecodeReplies([]byte{2, 0}, 0); !errors.Is(err, domain.ErrCorrupt) {
		t.Fatalf("DecodeReplies with a bad flag: %v", err)
	}
}

// Relayed replies come from another node: garbage is refused as corrupt.
func FuzzDecodeReplies(f *testing.F) {
	f.Add(EncodeReplies([]Reply{{Value: domain.OK}, ErrReply(domain.ErrNoLeader)}, func(error) string { return "CLUSTERDOWN" }), 2)
	f.Add([]byte{1, 1, '+'}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<10 {
			return
		}
		vals, _, err := DecodeReplies(b, n)
		if err != nil {
			if !errors.Is(err, domain.ErrCorrupt) {
				t.Fatalf("DecodeReplies(%x, %d): %v does not wrap ErrCorrupt", b, n, err)
			}
			return
		}
		if len(vals) != n {
			t.Fatalf("DecodeReplies(%x, %d) = %d replies", b, n, len(vals))
		}
	})
}

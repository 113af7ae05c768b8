package tcp

import (
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/domain"
)

const (
	uuidA = "0f8fad5b-d9cb-469f-a165-70867728950e"
	uuidB = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
)

// Two nodes with one cluster name but different cluster UUIDs (another
// cluster, or one recreated after a lost quorum) never connect; each logs
// a warning naming both UUIDs and the peer.
func TestWrongClusterUUIDRejected(t *testing.T) {
	for _, tc := range []struct{ a, b string }{{uuidA, uuidB}, {uuidA, ""}, {"", uuidB}} {
		oa, logsA := testOptions(1)
		ob, logsB := testOptions(2)
		oa.ClusterUUID, ob.ClusterUUID = tc.a, tc.b
		a, b := newTransport(t, oa), newTransport(t, ob)
		if err := a.SetPeer(2, b.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if err := b.SetPeer(1, a.Addr().String()); err != nil {
			t.Fatal(err)
		}
		_ = a.Send(domain.Message{Type: domain.MsgVote, From: 1, To: 2})
		_ = b.Send(domain.Message{Type: domain.MsgVote, From: 2, To: 1})
		eventually(t, 5*time.Second, "rejection", func() bool {
			return b.Stats().RejectedConns >= 1 && a.Stats().RejectedConns >= 1
		})
		expectNothing(t, b, 50*time.Millisecond)
		expectNothing(t, a, 10*time.Millisecond)
		if a.Stats().Connects != 0 || b.Stats().Connects != 0 {
			t.Fatalf("%+v: connected despite the UUID mismatch: %+v %+v", tc, a.Stats(), b.Stats())
		}
		for _, l := range []string{logsA.String(), logsB.String()} {
			for _, want := range []string{`"level":"warn"`, "cluster UUID", `"peer":`, uuidText(tc.a), uuidText(tc.b)} {
				if !strings.Contains(l, strings.ReplaceAll(want, `"`, `\"`)) && !strings.Contains(l, want) {
					t.Fatalf("%+v: log lacks %s:\n%s", tc, want, l)
				}
			}
		}
		_ = a.Close()
		_ = b.Close()
	}
}

// The same UUID on both sides connects, with and without a peer secret.
func TestSameClusterUUIDAccepted(t *testing.T) {
	for _, secret := range []string{"", "a secret of sixteen bytes or more"} {
		trs, _ := mesh(t, 2, func(o *Options) { o.ClusterUUID, o.PeerSecret = uuidA, []byte(secret) })
		if err := trs[0].Send(domain.Message{Type: domain.MsgVote, From: 1, To: 2, Term: 3}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-trs[1].Receive():
			if m.Term != 3 {
				t.Fatalf("received %+v", m)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("nothing received")
		}
	}
}

func TestClusterUUIDOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"too long":          {ID: 1, ClusterID: strings.Repeat("x", MaxClusterIDLen-len(uuidA)), ClusterUUID: uuidA},
		"zero byte in name": {ID: 1, ClusterID: "a\x00b"},
		"zero byte in uuid": {ID: 1, ClusterUUID: "a\x00b"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if got := wireCluster("seshat", uuidA); got != "seshat\x00"+uuidA {
		t.Fatalf("wireCluster = %q", got)
	}
	if n, u := splitCluster(wireCluster("seshat", uuidA)); n != "seshat" || u != uuidA {
		t.Fatalf("splitCluster = %q, %q", n, u)
	}
	if n, u := splitCluster("seshat"); n != "seshat" || u != "" {
		t.Fatalf("splitCluster without a UUID = %q, %q", n, u)
	}
}

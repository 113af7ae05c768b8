package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/tcp"
	"github.com/seshat-kv/seshat/domain"
)

// raftView is what INFO replication says of a node's Raft state.
type raftView struct {
	term, commit, last, leader string
}

func (c *cluster) raftViews(ctx context.Context, t *testing.T) []raftView {
	t.Helper()
	var out []raftView
	for id := 1; id <= c.n; id++ {
		inf, err := c.info(ctx, id)
		if err != nil {
			t.Fatalf("INFO of node %d: %v", id, err)
		}
		out = append(out, raftView{term: inf["term"], commit: inf["commit_index"], last: inf["last_index"], leader: inf["leader"]})
	}
	return out
}

// forge runs, for about a second, a process that knows the cluster id and
// UUID and the members' peer addresses (not secrets): as node 1 and as node 2 it
// sends every other member votes, pre-votes, appends with entries, a
// heartbeat with a huge commit index and TimeoutNow, all at a term far
// above the cluster's. It returns how many connections the attackers got
// acked.
func forge(t *testing.T, c *cluster, term uint64) uint64 {
	t.Helper()
	var connects uint64
	for _, as := range []domain.NodeID{1, 2} {
		peers := map[domain.NodeID]string{}
		for id := 1; id <= c.n; id++ {
			if domain.NodeID(id) != as {
				peers[domain.NodeID(id)] = c.peers[id-1]
			}
		}
		tr, err := tcp.New(tcp.Options{ID: as, ClusterID: "e2e", ClusterUUID: c.uuid, Peers: peers,
			BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		high := domain.Term(term + 100)
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			for to := range peers {
				for _, m := range []domain.Message{
					{Type: domain.MsgVote, Term: high, LogTerm: high, Index: 1 << 40},
					{Type: domain.MsgPreVote, Term: high, LogTerm: high, Index: 1 << 40},
					{Type: domain.MsgApp, Term: high, Index: 0, LogTerm: 0, Commit: 3,
						Entries: []domain.Entry{{Index: 1, Term: high, Data: []byte("forged")}, {Index: 2, Term: high}, {Index: 3, Term: high}}},
					{Type: domain.MsgHeartbeat, Term: high, Commit: 1 << 40},
					{Type: domain.MsgTimeoutNow, Term: high},
				} {
					m.From, m.To = as, to
					_ = tr.Send(m)
				}
			}
		}
		connects += tr.Stats().Connects
		_ = tr.Close()
	}
	return connects
}

// A process that knows the cluster id but not the peer secret (or has no
// peer certificate) dials every node's peer port and sends forged votes,
// appends, heartbeats and TimeoutNow: no node's term, leader, commit index
// or log moves, each logs the refusal, and the cluster keeps serving. The
// same attack on a cluster without either does move the term, so the
// check can fail.
func TestPeerAuthKeepsForgersOut(t *testing.T) {
	const secret = "e2e peer secret, 32 bytes long!!"
	f := newTLSFiles(t)
	for _, tc := range []struct {
		name, refusal string
		flags         []string
	}{
		{"PeerSecret", "requires a peer secret", []string{"--peer-secret", secret}},
		{"PeerTLS", "TLS handshake", []string{"--peer-tls-cert", f.server.CertFile, "--peer-tls-key", f.server.KeyFile, "--peer-tls-ca", f.caFile}},
	} {
		t.Run(tc.name, func(t *testing.T) { forgersKeptOut(t, newCluster(t, 3, tc.flags...), tc.refusal, secret) })
	}
	t.Run("ControlWithoutAuth", func(t *testing.T) {
		c := newCluster(t, 3)
		lead := c.leader(10 * time.Second)
		ctx := ctxT(t, 30*time.Second)
		before := c.raftViews(ctx, t)
		term, _ := strconv.ParseUint(before[lead-1].term, 10, 64)
		if connects := forge(t, c, term); connects == 0 {
			t.Fatal("the forger never connected to a cluster without a secret")
		}
		moved := false
		for i, v := range c.raftViews(ctx, t) {
			n, _ := strconv.ParseUint(v.term, 10, 64)
			t.Logf("node %d: term %d -> %d", i+1, term, n)
			moved = moved || n > term
		}
		if !moved {
			t.Fatal("forged messages did not move any term without a secret: the attack above proves nothing")
		}
	})
}

// forgersKeptOut runs the attack on c, whose nodes authenticate peers, and
// checks that nothing moved and that each node logged refusal.
func forgersKeptOut(t *testing.T, c *cluster, refusal, secret string) {
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	if err := c.client(lead).Set(ctx, "before", "attack", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Let every node apply and hear the commit index before looking.
	time.Sleep(200 * time.Millisecond)
	before := c.raftViews(ctx, t)
	term, _ := strconv.ParseUint(before[lead-1].term, 10, 64)
	if connects := forge(t, c, term); connects != 0 {
		t.Fatalf("the forger's connections were acked %d times", connects)
	}
	after := c.raftViews(ctx, t)
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("node %d moved under forged messages: before %+v, after %+v", i+1, before[i], after[i])
		}
	}
	if v, err := c.client(others(3, lead)[0]).Get(ctx, "before").Result(); err != nil || v != "attack" {
		t.Fatalf("GET after the attack = %q, %v", v, err)
	}
	if err := c.client(others(3, lead)[1]).Set(ctx, "after", "attack", 0).Err(); err != nil {
		t.Fatalf("SET after the attack: %v", err)
	}
	for id := 1; id <= 3; id++ {
		b, _ := os.ReadFile(filepath.Join(c.dir, "node"+strconv.Itoa(id)+".log"))
		if !strings.Contains(string(b), refusal) {
			t.Errorf("node %d logged no refusal (%q):\n%s", id, refusal, c.logTail(id))
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("node %d logged the peer secret", id)
		}
	}
}

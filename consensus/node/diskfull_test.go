package node_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/adapters/memory"
	"github.com/seshat-kv/seshat/consensus"
	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// TestDiskFullRefusesWrites: a single node (nobody to hand leadership to)
// whose disk is full refuses proposals with ErrDiskFull, appending
// nothing, still serves reads, and takes writes again once space returns.
func TestDiskFullRefusesWrites(t *testing.T) {
	var full atomic.Bool
	net := memory.NewNetwork(memory.NetworkOptions{Seed: 1})
	defer net.Close()
	kv := memory.NewKV()
	n, err := node.Start(node.Config{
		Raft:         consensus.Config{ID: 1, Peers: []domain.NodeID{1}, Rand: rand.New(rand.NewPCG(1, 1))},
		Log:          memory.NewLogStore(),
		Vote:         memory.NewVoteStore(),
		StateMachine: kv,
		Transport:    net.Endpoint(1),
		TickInterval: time.Millisecond,
		DiskFull:     full.Load,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for n.Status().Role != consensus.Leader {
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := n.Propose(ctx, set("a", "1")); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	time.Sleep(10 * time.Millisecond) // a few ticks: the node notices
	before := n.Status().LastIndex
	if _, err := n.Propose(ctx, set("b", "2")); !errors.Is(err, domain.ErrDiskFull) {
		t.Fatalf("proposal with a full disk: %v, want ErrDiskFull", err)
	}
	if after := n.Status().LastIndex; after != before {
		t.Fatalf("a refused proposal was appended: last index %d -> %d", before, after)
	}
	if err := n.ReadIndex(ctx); err != nil {
		t.Fatalf("read with a full disk: %v", err)
	}
	if v, err := kv.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("a = %q, %v", v, err)
	}
	full.Store(false)
	time.Sleep(10 * time.Millisecond)
	if _, err := n.Propose(ctx, set("b", "2")); err != nil {
		t.Fatalf("proposal after space returned: %v", err)
	}
}

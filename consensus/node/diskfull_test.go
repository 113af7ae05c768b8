package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seshat-kv/seshat/consensus/node"
	"github.com/seshat-kv/seshat/domain"
)

// TestDiskFullRefusesWrites: a single node (nobody to hand leadership to)
// whose disk is full refuses proposals with ErrDiskFull, appending
// nothing, still serves reads, and takes writes again once space returns.
func TestDiskFullRefusesWrites(t *testing.T) {
	var full atomic.Bool
	n, _, kv := startSingle(t, func(c *node.Config) { c.DiskFull = full.Load })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
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

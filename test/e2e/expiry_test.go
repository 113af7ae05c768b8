package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// expectGone checks that key reads as absent through every node in ids:
// GET nil, EXISTS 0, PTTL -2.
func expectGone(t *testing.T, c *cluster, key string, ids ...int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	for _, id := range ids {
		r := c.client(id)
		if v, err := r.Get(ctx, key).Result(); !errors.Is(err, redis.Nil) {
			t.Errorf("node %d: GET %s = %q, %v after its deadline, want nil", id, key, v, err)
		}
		if n, err := r.Exists(ctx, key).Result(); err != nil || n != 0 {
			t.Errorf("node %d: EXISTS %s = %d, %v, want 0", id, key, n, err)
		}
		if d, err := r.PTTL(ctx, key).Result(); err != nil || d != -2*time.Nanosecond && d != -2*time.Millisecond {
			t.Errorf("node %d: PTTL %s = %v, %v, want -2", id, key, d, err)
		}
	}
}

// A key set with PX 50 is gone on every node after its deadline: before
// and after a leader change, and on a node restarted from its data. The
// leader's reaper also removes the expired keys from every node's state.
func TestExpiryOnEveryNode(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(10 * time.Second)
	ctx := ctxT(t, 60*time.Second)
	all := []int{1, 2, 3}

	for _, id := range all {
		key := fmt.Sprintf("px-%d", id)
		if err := c.client(id).Set(ctx, key, "v", 50*time.Millisecond).Err(); err != nil {
			t.Fatalf("SET %s PX 50 through node %d: %v", key, id, err)
		}
		if v, err := c.client(id).Get(ctx, key).Result(); err != nil || v != "v" {
			t.Fatalf("GET %s right after SET = %q, %v", key, v, err)
		}
	}
	if err := c.client(lead).Set(ctx, "forever", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	for _, id := range all {
		expectGone(t, c, fmt.Sprintf("px-%d", id), all...)
	}

	// A leader change: the new leader stamps later times, expiry goes on.
	if err := c.client(lead).Set(ctx, "before-kill", "v", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	c.kill(lead)
	rest := others(3, lead)
	newLead := c.leader(10*time.Second, rest...)
	t.Logf("leader %d killed; node %d leads", lead, newLead)
	if err := c.client(newLead).Set(ctx, "after-kill", "v", 50*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(350 * time.Millisecond)
	expectGone(t, c, "before-kill", rest...)
	expectGone(t, c, "after-kill", rest...)

	// The killed node restarts from its data dir and agrees.
	c.start(lead)
	c.leader(10 * time.Second)
	expectGone(t, c, "before-kill", all...)
	expectGone(t, c, "after-kill", all...)
	if v, err := c.client(lead).Get(ctx, "forever").Result(); err != nil || v != "v" {
		t.Fatalf("restarted node: GET forever = %q, %v", v, err)
	}

	// The reaper deletes what expired: every node ends with one key.
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range all {
		for {
			n, err := c.client(id).DBSize(ctx).Result()
			if err == nil && n == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: DBSIZE = %d, %v; want 1 once expired keys are reaped", id, n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		s, err := c.client(id).Info(ctx, "keyspace").Result()
		if err != nil || !strings.Contains(s, "db0:keys=1,expires=0") {
			t.Errorf("node %d: INFO keyspace = %q, %v", id, s, err)
		}
	}
}

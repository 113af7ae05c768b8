package app

import (
	"bytes"
	"context"
	"testing"

	"github.com/seshat-kv/seshat/ports"
)

// Digest answers the applied index and a digest that changes with the
// data and not with reads.
func TestDigestFollowsTheAppliedState(t *testing.T) {
	n := newFakeNode()
	s := newService(t, n, n.kv, Config{})
	ctx := context.Background()
	i0, d0, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Do(ctx, []ports.Request{req("SET", "a", "1"), req("RPUSH", "l", "x")}, ports.DoOptions{})
	i1, d1, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i1 <= i0 || bytes.Equal(d0, d1) {
		t.Fatalf("after two writes: index %d -> %d, digest %x -> %x: want both to change", i0, i1, d0, d1)
	}
	s.Do(ctx, []ports.Request{req("GET", "a")}, ports.DoOptions{})
	i2, d2, err := s.Digest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i2 != i1 || !bytes.Equal(d1, d2) {
		t.Fatalf("after a read: index %d -> %d, digest %x -> %x: want neither to change", i1, i2, d1, d2)
	}
}

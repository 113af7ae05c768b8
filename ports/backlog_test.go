package ports

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A BacklogContext ends after base with no backlog, and later by a second
// per bytesPerSecond of the largest backlog seen, even one gone by then.
func TestBacklogContext(t *testing.T) {
	const base = 50 * time.Millisecond
	// 1000 bytes per second: a backlog of 2000 bytes is 2s longer. The
	// upper bounds leave room for a loaded machine.
	const rate = 1000
	cases := []struct {
		name     string
		backlog  func(*atomic.Uint64) func() uint64
		set      uint64        // the backlog at the start
		clearAt  time.Duration // when it drops to 0 (0: never)
		min, max time.Duration
	}{
		{"nil backlog", func(*atomic.Uint64) func() uint64 { return nil }, 0, 0, base, 1500 * time.Millisecond},
		{"no backlog", func(b *atomic.Uint64) func() uint64 { return b.Load }, 0, 0, base, 1500 * time.Millisecond},
		{"backlog", func(b *atomic.Uint64) func() uint64 { return b.Load }, 2000, 0, base + 2*time.Second, 10 * time.Second},
		{"backlog applied meanwhile", func(b *atomic.Uint64) func() uint64 { return b.Load }, 2000, 20 * time.Millisecond, base + 2*time.Second, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b atomic.Uint64
			b.Store(c.set)
			start := time.Now()
			ctx, cancel := BacklogContext(context.Background(), base, rate, c.backlog(&b))
			defer cancel()
			if c.clearAt > 0 {
				time.AfterFunc(c.clearAt, func() { b.Store(0) })
			}
			<-ctx.Done()
			took := time.Since(start)
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("Err %v, want DeadlineExceeded", ctx.Err())
			}
			if took < c.min || took > c.max {
				t.Fatalf("ended after %v, want [%v, %v]", took, c.min, c.max)
			}
		})
	}
}

// Cancelling it, or its parent, ends it at once with context.Canceled.
func TestBacklogContextCancel(t *testing.T) {
	ctx, cancel := BacklogContext(context.Background(), time.Hour, 1, func() uint64 { return 1 << 30 })
	cancel()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err %v after cancel", ctx.Err())
	}
	parent, pcancel := context.WithCancel(context.Background())
	ctx, cancel = BacklogContext(parent, time.Hour, 1, func() uint64 { return 0 })
	defer cancel()
	pcancel()
	<-ctx.Done()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err %v after the parent's cancel", ctx.Err())
	}
}

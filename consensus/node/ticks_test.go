package node

import (
	"testing"
	"time"
)

// TestTickClockCountsMissedTicks: a loop that runs late is fed every
// interval that passed, not the one tick a time.Ticker delivers.
func TestTickClockCountsMissedTicks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	c := newTickClock(10*ms, t0, 40)
	steps := []struct {
		at   time.Duration // since t0
		want int
	}{
		{10 * ms, 1},          // on time
		{20 * ms, 1},          // on time
		{75 * ms, 5},          // 55 ms late: the ticks of 30..70 ms
		{80 * ms, 1},          // the remainder carried over: 80 ms
		{85 * ms, 1},          // early against the reckoning: one, reckoning restarts at 85
		{95 * ms, 1},          // 85 + 10
		{2 * time.Second, 40}, // a long stall: capped
		{2*time.Second + 10*ms, 1},
	}
	total := 0
	for _, s := range steps {
		got := c.due(t0.Add(s.at))
		if got != s.want {
			t.Fatalf("due at %v = %d, want %d", s.at, got, s.want)
		}
		total += got
	}
	if total != 51 {
		t.Fatalf("total %d ticks, want 51", total)
	}
}

// TestTickClockNeverSlowerThanWallClock: however the ticker's deliveries
// are spread (late, bunched, dropped), the ticks fed by the time of each
// delivery are at least the whole intervals elapsed, less one, and at most
// one more than them, as long as no stall exceeds the cap.
func TestTickClockNeverSlowerThanWallClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	interval := 10 * time.Millisecond
	c := newTickClock(interval, t0, 1000)
	now, fed := t0, 0
	delays := []time.Duration{10, 10, 13, 47, 10, 2, 8, 100, 31, 10, 9, 11, 250, 10}
	for _, d := range delays {
		now = now.Add(d * time.Millisecond)
		fed += c.due(now)
		elapsed := int(now.Sub(t0) / interval)
		if fed < elapsed-1 || fed > elapsed+len(delays) {
			t.Fatalf("at %v: fed %d ticks, %d intervals elapsed", now.Sub(t0), fed, elapsed)
		}
	}
}

// TestTickClockMissed: a read arriving after a stall counts the ticks
// missed, leaving the one the ticker holds, which then counts one.
func TestTickClockMissed(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	c := newTickClock(10*ms, t0, 40)
	if n := c.missed(t0.Add(15 * ms)); n != 0 {
		t.Fatalf("on time: missed %d", n)
	}
	if n := c.missed(t0.Add(57 * ms)); n != 4 {
		t.Fatalf("after a 57 ms stall: missed %d, want 4", n)
	}
	if n := c.missed(t0.Add(58 * ms)); n != 0 {
		t.Fatalf("again at once: missed %d", n)
	}
	if n := c.due(t0.Add(58 * ms)); n != 1 {
		t.Fatalf("the ticker's held delivery: %d, want 1", n)
	}
	if n := c.missed(t0.Add(5 * time.Second)); n != 40 {
		t.Fatalf("a long stall: missed %d, want the cap 40", n)
	}
}

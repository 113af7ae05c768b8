package node

import "time"

// tickClock turns the shell's ticker into a count of tick intervals
// elapsed. A time.Ticker drops ticks while its receiver is late (its
// channel holds one), so a loop stalled by GC or a starved machine would
// feed the driver fewer ticks than the wall clock gave: the core's clock
// would run slow, and with it the lease of lease reads, which must expire
// no later than the wall clock says. due counts every interval that
// passed since the last tick fed, whatever the ticker delivered.
type tickClock struct {
	interval time.Duration
	last     time.Time // the time of the last tick counted
	max      int       // most ticks fed at once
}

func newTickClock(interval time.Duration, now time.Time, max int) tickClock {
	return tickClock{interval: interval, last: now, max: max}
}

// due returns the ticks to feed at now: the whole intervals elapsed since
// the last tick counted, at most max (past that many, more ticks change
// nothing a tick drives: every timeout has expired), and at least one, as
// the ticker fired. The remainder of an interval carries over to the next
// call; a clock that stepped back counts as one tick.
func (c *tickClock) due(now time.Time) int {
	elapsed := now.Sub(c.last)
	n := int(elapsed / c.interval)
	switch {
	case n < 1:
		// The ticker fired a little early against our reckoning (or the
		// clock stepped back): one tick, and the reckoning restarts.
		c.last = now
		return 1
	case n > c.max:
		c.last = now
		return c.max
	}
	c.last = c.last.Add(time.Duration(n) * c.interval)
	return n
}

// missed returns the ticks a loop that is about to answer a read at now
// has missed: the whole intervals elapsed since the last tick counted,
// less the one the ticker holds for the loop (a time.Ticker keeps one
// delivery), at most max, and counts them. It returns 0 while the loop is
// on time. The delivery the ticker holds then finds less than two
// intervals elapsed and counts one.
func (c *tickClock) missed(now time.Time) int {
	n := int(now.Sub(c.last)/c.interval) - 1
	if n < 1 {
		return 0
	}
	if n > c.max {
		c.last = now.Add(-c.interval)
		return c.max
	}
	c.last = c.last.Add(time.Duration(n) * c.interval)
	return n
}

package clock

import (
	"math"
	"time"
)

// Clock is a monotonic time source with one-shot timers.
type Clock interface {
	// Now returns monotonic nanoseconds since the clock's epoch.
	Now() int64
	// NewTimer returns a timer that fires once, d after Now; d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer for goroutines that wait on a channel.
//
// Stop and Reset discard a firing that has not been received yet, so after
// either returns, C never yields a value from an earlier arming (the rule Go
// 1.23 gave time.Timer). Do not drain C after Stop: there is nothing to drain.
type Timer interface {
	// C returns the channel that receives once when the timer fires; it is
	// buffered, so a firing never blocks the clock.
	C() <-chan struct{}
	// Stop disarms the timer. It returns true if the timer was pending or had
	// fired without its value being received: either way no value will arrive.
	Stop() bool
	// Reset re-arms the timer to fire d after the clock's Now, discarding any
	// unreceived firing. It returns what Stop would have returned.
	Reset(d time.Duration) bool
}

// addSat returns t+d, saturating at the int64 limits instead of wrapping, so a
// huge duration means "never" rather than "long ago".
func addSat(t int64, d time.Duration) int64 {
	s := t + int64(d)
	if d > 0 && s < t {
		return math.MaxInt64
	}
	if d < 0 && s > t {
		return math.MinInt64
	}
	return s
}

// drain discards a value waiting in c, reporting whether there was one.
func drain(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// signal puts the firing into c without blocking; c has room for exactly one.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

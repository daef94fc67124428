package seedexp

import "time"

// Network is a set of stacks on a virtual clock that runs event by event, as simnet.Net
// does: Now is its time in nanoseconds, and RunUntil advances it up to end, checking stop
// after each event.
type Network interface {
	Now() int64
	RunUntil(end int64, stop func() bool)
}

// VirtualClock is a Network's virtual time as a Clock: Advance runs the network to the
// next event, one event at a time, and calls wake after each.
type VirtualClock struct {
	net   Network
	epoch time.Time
}

// NewVirtualClock returns the Clock of n, whose zero stands for Epoch.
func NewVirtualClock(n Network) *VirtualClock { return &VirtualClock{net: n, epoch: Epoch} }

// Now returns the network's virtual time.
func (c *VirtualClock) Now() time.Duration { return time.Duration(c.net.Now()) }

// Advance runs the network until t, or until wake reports true after an event.
func (c *VirtualClock) Advance(t time.Duration, wake func() bool) { c.net.RunUntil(int64(t), wake) }

// Wall returns Epoch plus t.
func (c *VirtualClock) Wall(t time.Duration) time.Time { return c.epoch.Add(t) }

// DefaultPoll is how often a RealClock looks at the applications unless told otherwise.
const DefaultPoll = time.Millisecond

// RealClock is the real clock as a Clock. Its zero is when it was made; Advance sleeps
// towards its target in steps of at most the poll interval and calls wake after each.
type RealClock struct {
	start time.Time
	poll  time.Duration
}

// NewRealClock returns a RealClock that starts now and polls every poll (DefaultPoll if 0
// or less).
func NewRealClock(poll time.Duration) *RealClock {
	if poll <= 0 {
		poll = DefaultPoll
	}
	return &RealClock{start: time.Now(), poll: poll}
}

// Now returns the time since the clock was made.
func (c *RealClock) Now() time.Duration { return time.Since(c.start) }

// Advance sleeps until t, or until wake reports true at one of its polls.
func (c *RealClock) Advance(t time.Duration, wake func() bool) {
	for {
		if wake != nil && wake() {
			return
		}
		left := t - c.Now()
		if left <= 0 {
			return
		}
		time.Sleep(min(left, c.poll))
	}
}

// Wall returns the calendar time of the reading t.
func (c *RealClock) Wall(t time.Duration) time.Time { return c.start.Add(t) }

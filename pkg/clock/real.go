package clock

import (
	"sync"
	"time"
)

// Real is the machine's monotonic clock; Now counts from the moment the Real
// value was made.
type Real struct {
	base time.Time
}

var _ Clock = (*Real)(nil)

// NewReal returns a Real clock whose epoch is now.
func NewReal() *Real {
	return &Real{base: time.Now()}
}

// Now returns nanoseconds since the clock was made. time.Since uses the
// monotonic reading in base, so wall-clock steps do not move it.
func (r *Real) Now() int64 {
	return int64(time.Since(r.base))
}

// NewTimer returns a timer that fires d after Now. It wraps one time.Timer
// made by time.AfterFunc: a pending timer costs no goroutine, and the runtime
// runs a short callback only when it fires.
func (r *Real) NewTimer(d time.Duration) Timer {
	t := &realTimer{clock: r, c: make(chan struct{}, 1)}
	t.mu.Lock()
	t.armed = true
	t.deadline = addSat(r.Now(), d)
	t.t = time.AfterFunc(d, t.fire)
	t.mu.Unlock()
	return t
}

// realTimer delivers a time.Timer's firing as a struct{} on a buffered channel.
//
// An AfterFunc callback from an earlier arming can still be running when Stop
// or Reset returns. The mutex and the deadline check make such a callback
// harmless: it fires only if the timer is armed and the current arming's
// deadline has passed, in which case firing is correct anyway and the current
// arming's own callback finds the timer disarmed.
type realTimer struct {
	clock    *Real
	c        chan struct{}
	t        *time.Timer
	mu       sync.Mutex
	armed    bool
	deadline int64
}

func (t *realTimer) C() <-chan struct{} { return t.c }

// fire is the AfterFunc callback, bound once at NewTimer.
func (t *realTimer) fire() {
	t.mu.Lock()
	if t.armed && t.clock.Now() >= t.deadline {
		t.armed = false
		signal(t.c)
	}
	t.mu.Unlock()
}

func (t *realTimer) Stop() bool {
	t.mu.Lock()
	was := t.armed
	t.armed = false
	t.t.Stop()
	drained := drain(t.c)
	t.mu.Unlock()
	return was || drained
}

// Reset re-arms the timer. The deadline is taken before time.Timer.Reset so
// the runtime's own deadline is never earlier than ours: the callback of this
// arming always passes the deadline check. Reset allocates nothing.
func (t *realTimer) Reset(d time.Duration) bool {
	t.mu.Lock()
	was := t.armed
	drained := drain(t.c)
	t.armed = true
	t.deadline = addSat(t.clock.Now(), d)
	t.t.Reset(d)
	t.mu.Unlock()
	return was || drained
}

package clock

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"
)

// Virtual is a clock whose time moves only when Set or Advance is called.
// It is safe for concurrent use: Now is one atomic load; timers share a mutex
// (they are not on the packet path).
type Virtual struct {
	now atomic.Int64

	mu     sync.Mutex
	timers timerHeap
	seq    uint64 // arming order, to fire equal deadlines first-armed first
}

var _ Clock = (*Virtual)(nil)

// NewVirtual returns a Virtual clock that reads start until it is moved.
func NewVirtual(start int64) *Virtual {
	v := &Virtual{}
	v.now.Store(start)
	return v
}

// Now returns the clock's current time in nanoseconds.
func (v *Virtual) Now() int64 {
	return v.now.Load()
}

// Set moves the clock forward to t, then fires in deadline order every timer
// whose deadline is <= t; a goroutine woken by one reads Now() == t or later.
// A t earlier than Now is ignored: a monotonic clock never goes back.
func (v *Virtual) Set(t int64) {
	v.mu.Lock()
	v.setLocked(t)
	v.mu.Unlock()
}

// Advance moves the clock forward by d, as Set(Now()+d) does but atomically
// with respect to other Set and Advance calls. A negative d is ignored.
func (v *Virtual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	v.mu.Lock()
	v.setLocked(addSat(v.now.Load(), d))
	v.mu.Unlock()
}

// NextTimer returns the earliest deadline of a pending timer made by NewTimer;
// ok is false when none is pending.
func (v *Virtual) NextTimer() (when int64, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.timers) == 0 {
		return 0, false
	}
	return v.timers[0].deadline, true
}

// NewTimer returns a timer that fires when the clock reaches Now()+d. A timer
// whose deadline is not after Now fires at once, so a waiter on an already
// expired deadline never depends on someone moving the clock.
func (v *Virtual) NewTimer(d time.Duration) Timer {
	t := &virtualTimer{clock: v, c: make(chan struct{}, 1), index: -1}
	v.mu.Lock()
	v.armLocked(t, d)
	v.mu.Unlock()
	return t
}

// setLocked moves time to t and fires due timers; v.mu must be held.
func (v *Virtual) setLocked(t int64) {
	if t <= v.now.Load() {
		return
	}
	// Time moves before any firing, so no waiter can wake and read a Now
	// earlier than its deadline.
	v.now.Store(t)
	for len(v.timers) > 0 && v.timers[0].deadline <= t {
		signal(heap.Pop(&v.timers).(*virtualTimer).c)
	}
}

// armLocked arms t for Now()+d; v.mu must be held and t must not be in the heap.
func (v *Virtual) armLocked(t *virtualTimer, d time.Duration) {
	now := v.now.Load()
	t.deadline = addSat(now, d)
	if t.deadline <= now {
		signal(t.c)
		return
	}
	v.seq++
	t.seq = v.seq
	heap.Push(&v.timers, t)
}

// virtualTimer is a Timer of a Virtual clock; index is its place in the heap,
// -1 when it is not pending.
type virtualTimer struct {
	clock    *Virtual
	c        chan struct{}
	deadline int64
	seq      uint64
	index    int
}

func (t *virtualTimer) C() <-chan struct{} { return t.c }

func (t *virtualTimer) Stop() bool {
	v := t.clock
	v.mu.Lock()
	defer v.mu.Unlock()
	return t.disarmLocked()
}

func (t *virtualTimer) Reset(d time.Duration) bool {
	v := t.clock
	v.mu.Lock()
	defer v.mu.Unlock()
	was := t.disarmLocked()
	v.armLocked(t, d)
	return was
}

// disarmLocked removes t from the heap and discards an unreceived firing,
// reporting whether either was there.
func (t *virtualTimer) disarmLocked() bool {
	was := false
	if t.index >= 0 {
		heap.Remove(&t.clock.timers, t.index)
		was = true
	}
	return drain(t.c) || was
}

// timerHeap orders pending virtual timers by deadline, then arming order.
type timerHeap []*virtualTimer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*virtualTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	t.index = -1
	*h = old[:n]
	return t
}

package wheel

import (
	"math"
	"math/bits"
	"time"
)

const (
	levelBits = 6
	slots     = 1 << levelBits // slots per level
	slotMask  = slots - 1
	levels    = 6
	span      = 1 << (levelBits * levels) // ticks the levels reach ahead of cur
)

// DefaultTick is the granularity New uses when given 0.
const DefaultTick = time.Millisecond

// Wheel is a hierarchical timing wheel owned by one goroutine.
type Wheel struct {
	origin int64  // the time given to New; tick 0 starts here
	tick   uint64 // granularity in ns, > 0
	now    int64  // the latest time given to Advance (origin before any)
	cur    uint64 // tick of now while idle; the tick being processed in Advance
	n      int    // pending timers

	occ    [levels]uint64
	slot   [levels][slots]list
	min0   [slots]int64 // lower bound of each level-0 slot's earliest deadline
	due    list         // armed with a deadline <= now: fire at the next Advance
	dueLo  int64        // lower bound of due's earliest deadline
	over   list         // due span or more ticks ahead of cur: beyond the top level
	overLo uint64       // lower bound of over's earliest tick

	firing    list // the due list while Advance fires it
	curSorted bool // level-0 slot of cur is sorted by deadline
	advancing bool
}

// New makes a wheel whose granularity is tick (DefaultTick if tick <= 0),
// with its clock at now.
func New(now int64, tick time.Duration) *Wheel {
	if tick <= 0 {
		tick = DefaultTick
	}
	w := &Wheel{origin: now, tick: uint64(tick), now: now, dueLo: math.MaxInt64, overLo: math.MaxUint64}
	for i := range w.min0 {
		w.min0[i] = math.MaxInt64
	}
	return w
}

// Len returns the number of pending timers.
func (w *Wheel) Len() int { return w.n }

// Tick returns the wheel's granularity.
func (w *Wheel) Tick() time.Duration { return time.Duration(w.tick) }

// Now returns the latest time given to Advance, or New's now before any.
func (w *Wheel) Now() int64 { return w.now }

// Schedule arms t to fire at when (absolute ns), moving it if it is already
// pending. A deadline at or before the latest now given to Advance (for a fire
// callback, the now of the Advance in progress) fires at the next Advance, so
// a callback that re-arms into the past cannot loop inside one Advance. O(1).
func (w *Wheel) Schedule(t *Timer, when int64) {
	if t.list != nil {
		w.unlink(t)
	} else {
		w.n++
	}
	t.when = when
	if when <= w.now {
		t.level = noLevel
		w.due.pushBack(t)
		w.dueLo = min(w.dueLo, when)
		return
	}
	w.file(t, w.tickOf(when))
}

// Cancel disarms t. It returns false if t was not pending. O(1).
func (w *Wheel) Cancel(t *Timer) bool {
	if t.list == nil {
		return false
	}
	w.unlink(t)
	w.n--
	return true
}

// maxTick caps tick numbers so that cascade times computed from them, at most
// span ticks beyond, cannot overflow uint64. Only a 1 ns tick reaches it, 146
// years after New.
const maxTick = 1 << 62

// tickOf returns the tick containing at, which must be >= w.origin, capped at
// maxTick. The subtraction is done in uint64 so any int64 pair works. A capped
// timer is still never early: it sits in the tick of now, where deadlines are
// compared exactly.
func (w *Wheel) tickOf(at int64) uint64 {
	return min((uint64(at)-uint64(w.origin))/w.tick, maxTick)
}

// timeOf returns the start of tick k in ns, saturating at math.MaxInt64.
func (w *Wheel) timeOf(k uint64) int64 {
	hi, off := bits.Mul64(k, w.tick)
	if hi != 0 || off > uint64(math.MaxInt64)-uint64(w.origin) {
		return math.MaxInt64
	}
	return int64(uint64(w.origin) + off)
}

// file puts t, due at tick e >= w.cur, into its slot.
func (w *Wheel) file(t *Timer, e uint64) {
	delta := e - w.cur
	if delta < slots {
		s := uint8(e & slotMask)
		t.level, t.slot = 0, s
		l := &w.slot[0][s]
		if e == w.cur && w.curSorted {
			l.insertSorted(t)
		} else {
			l.pushBack(t)
		}
		w.occ[0] |= 1 << s
		w.min0[s] = min(w.min0[s], t.when)
		return
	}
	lv := (bits.Len64(delta) - 1) / levelBits
	if lv >= levels {
		// Beyond the top level's reach: park it until it comes within reach.
		t.level = noLevel
		w.over.pushBack(t)
		w.overLo = min(w.overLo, e)
		return
	}
	s := uint8((e >> (levelBits * lv)) & slotMask)
	t.level, t.slot = uint8(lv), s
	w.slot[lv][s].pushBack(t)
	w.occ[lv] |= 1 << s
}

// unlink removes a pending t from whichever list holds it and keeps the
// occupancy bitmaps and lower bounds right.
func (w *Wheel) unlink(t *Timer) {
	l := t.list
	l.remove(t)
	if !l.empty() {
		return
	}
	switch {
	case t.level < levels:
		w.occ[t.level] &^= 1 << t.slot
		if t.level == 0 {
			w.min0[t.slot] = math.MaxInt64
		}
	case l == &w.due:
		w.dueLo = math.MaxInt64
	case l == &w.over:
		w.overLo = math.MaxUint64
	}
}

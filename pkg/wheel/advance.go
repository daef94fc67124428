package wheel

import (
	"math"
	"math/bits"
)

// overBit marks the overflow list in a due mask; bits 0..levels-1 are levels.
const overBit = 1 << levels

// Advance moves the wheel to now and calls fire for each timer whose deadline
// is <= now, in deadline order at tick granularity (timers due in the same
// tick in any order), and returns how many fired. A timer never fires before
// its deadline. A now earlier than the latest one given is taken as that one.
//
// fire may Schedule or Cancel any timer, including the one firing and others
// due in this Advance: a cancelled timer does not fire and a rescheduled one
// fires at its new deadline; a deadline <= now armed from fire waits for the
// next Advance. fire must not call Advance (it panics), and a fire that
// panics leaves the wheel unusable.
//
// Empty time costs nothing: each step jumps to the nearest occupied slot over
// all levels (a bitmap rotation and a trailing-zeros count per level), so a
// jump of 120 s costs the same as one of 1 ms plus the cascades and firings
// the timers in between need.
func (w *Wheel) Advance(now int64, fire func(t *Timer, now int64)) int {
	if w.advancing {
		panic("wheel: Advance called from a fire callback")
	}
	w.advancing = true

	if now < w.now {
		now = w.now
	}
	w.now = now
	fired := w.fireDue(now, fire)
	target := w.tickOf(now)
walk:
	for {
		at, mask := w.nextTick()
		if mask == 0 || at > target {
			break
		}
		// Everything due at tick at is handled before the next nextTick:
		// once cur is at, a level-l slot whose cascade time is at could not
		// be told from one 64 slot widths ahead. Re-filed timers land in
		// slots strictly after at, or in level 0 at at or later.
		w.setCur(at)
		if mask&overBit != 0 {
			w.refileOver()
		}
		for lv := levels - 1; lv > 0; lv-- {
			if mask&(1<<lv) != 0 {
				w.cascade(lv, uint8((at>>(levelBits*lv))&slotMask))
			}
		}
		l0 := uint8(at & slotMask)
		switch {
		case w.slot[0][l0].empty():
			// Nothing due at at itself (cascades may have filed later ticks).
		case at < target:
			fired += w.fireSlot(l0, fire, now)
		default:
			// The slot of now's own tick: only part of it may be due, and
			// nothing later can be.
			fired += w.fireSorted(l0, fire, now)
			break walk
		}
	}
	w.setCur(target)
	w.advancing = false
	return fired
}

// setCur moves the current tick; the sorted mark belongs to the old tick.
func (w *Wheel) setCur(k uint64) {
	if k != w.cur {
		w.cur = k
		w.curSorted = false
	}
}

// fireDue fires the timers armed with deadlines at or before an earlier now.
// The list is moved aside first, so timers that fire re-arms into the past
// wait for the next Advance instead of looping here.
func (w *Wheel) fireDue(now int64, fire func(*Timer, int64)) int {
	if w.due.empty() {
		return 0
	}
	w.due.moveTo(&w.firing)
	w.dueLo = math.MaxInt64
	w.firing.sort()
	fired := 0
	for !w.firing.empty() {
		t := w.firing.popFront()
		w.n--
		fired++
		fire(t, now)
	}
	return fired
}

// fireSlot fires every timer of level-0 slot s, whose tick is before now's.
// Timers armed from fire cannot land in this slot: their ticks are >= now's.
func (w *Wheel) fireSlot(s uint8, fire func(*Timer, int64), now int64) int {
	l := &w.slot[0][s]
	fired := 0
	for !l.empty() {
		t := l.head
		w.unlink(t)
		w.n--
		fired++
		fire(t, now)
	}
	return fired
}

// fireSorted fires the due timers of level-0 slot s, the slot of now's tick,
// sorting it first if this is the first visit in this tick. Timers armed from
// fire into this slot are not due (their deadlines are > now), so they are
// inserted in order behind the due ones and the loop stops before them.
func (w *Wheel) fireSorted(s uint8, fire func(*Timer, int64), now int64) int {
	l := &w.slot[0][s]
	if !w.curSorted {
		l.sort()
		w.curSorted = true
	}
	fired := 0
	for !l.empty() && l.head.when <= now {
		t := l.head
		w.unlink(t)
		w.n--
		fired++
		fire(t, now)
	}
	if !l.empty() {
		w.min0[s] = l.head.when
	}
	return fired
}

// cascade re-files the timers of slot s of level lv > 0; w.cur is the slot's
// cascade time, so each lands on a lower level.
func (w *Wheel) cascade(lv int, s uint8) {
	l := &w.slot[lv][s]
	t := l.detach()
	w.occ[lv] &^= 1 << s
	for t != nil {
		next := t.next
		t.next, t.prev, t.list = nil, nil, nil
		w.file(t, w.tickOf(t.when))
		t = next
	}
}

// refileOver moves the overflow timers that are now within the levels' reach
// into their slots and recomputes the overflow's earliest tick exactly, so
// each visit either files a timer or moves the next visit later.
func (w *Wheel) refileOver() {
	lo := uint64(math.MaxUint64)
	for t := w.over.head; t != nil; {
		next := t.next
		if e := w.tickOf(t.when); e-w.cur < span {
			w.over.remove(t)
			w.file(t, e)
		} else {
			lo = min(lo, e)
		}
		t = next
	}
	w.overLo = lo
}

// nextTick returns the earliest tick at which Advance must act, and a mask of
// what is due then: bit l for level l (for level 0 the tick its timers are
// due, for higher levels the slot's cascade time) and overBit for the
// overflow (the first tick at which its earliest timer is within reach). The
// slot of level l due at tick at is (at >> 6l) & 63. mask is 0 when no timer
// is pending outside the due list.
func (w *Wheel) nextTick() (at uint64, mask uint) {
	at = math.MaxUint64
	if !w.over.empty() {
		at, mask = w.overLo-(span-1), overBit
	}
	for l := range levels {
		occ := w.occ[l]
		if occ == 0 {
			continue
		}
		shift := uint(levelBits * l)
		c := int((w.cur >> shift) & slotMask)
		var t uint64
		if l == 0 {
			// Level 0 holds ticks cur .. cur+63, starting at cur's own slot.
			t = w.cur + uint64(bits.TrailingZeros64(bits.RotateLeft64(occ, -c)))
		} else {
			// Higher levels hold cascade times 1 .. 64 slot widths ahead;
			// the farthest shares cur's slot index.
			k := bits.TrailingZeros64(bits.RotateLeft64(occ, -(c+1))) + 1
			t = ((w.cur >> shift) + uint64(k)) << shift
		}
		switch {
		case t < at:
			at, mask = t, 1<<l
		case t == at:
			mask |= 1 << l
		}
	}
	return at, mask
}

// NextDeadline returns a time at or before the earliest pending deadline at
// which Advance will make progress; ok is false when no timer is pending. It
// is exact for timers filed within 64 ticks and for timers already due (those
// can be earlier than the latest now); for farther timers it is the time
// their slot cascades. A simulation driver advances its virtual clock to it.
func (w *Wheel) NextDeadline() (when int64, ok bool) {
	if !w.due.empty() {
		return w.dueLo, true
	}
	at, mask := w.nextTick()
	switch {
	case mask == 0:
		return 0, false
	case mask != 1: // a cascade or the overflow, maybe with level 0 too
		return w.timeOf(at), true
	case at == w.cur:
		s := uint8(at & slotMask)
		l := &w.slot[0][s]
		if !w.curSorted {
			l.sort()
			w.curSorted = true
		}
		return l.head.when, true
	default:
		return w.min0[at&slotMask], true
	}
}

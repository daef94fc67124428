package wheel

import (
	"testing"
)

// checkInvariants verifies the wheel's structure: every slot's bitmap bit,
// every timer's level and slot against its deadline and the current tick, the
// lower bounds, and the pending count. It runs after every operation of the
// property test, so it uses plain comparisons rather than require.
func checkInvariants(t *testing.T, w *Wheel) {
	t.Helper()
	n := 0
	for lv := range levels {
		shift := uint(levelBits * lv)
		for s := range slots {
			l := &w.slot[lv][s]
			if l.empty() != (w.occ[lv]&(1<<s) == 0) {
				t.Fatalf("occupancy bit of level %d slot %d is wrong", lv, s)
			}
			for tm := l.head; tm != nil; tm = tm.next {
				n++
				e := w.tickOf(tm.when)
				switch {
				case tm.list != l || tm.level != uint8(lv) || tm.slot != uint8(s):
					t.Fatalf("timer in level %d slot %d is marked level %d slot %d", lv, s, tm.level, tm.slot)
				case tm.when <= w.now:
					t.Fatalf("level %d slot %d holds a timer due at %d, now %d", lv, s, tm.when, w.now)
				case (e>>shift)&slotMask != uint64(s):
					t.Fatalf("tick %d is not in level %d slot %d", e, lv, s)
				}
				if lv == 0 {
					if e < w.cur || e-w.cur >= slots || w.min0[s] > tm.when {
						t.Fatalf("level 0 slot %d: tick %d, cur %d, min %d, when %d", s, e, w.cur, w.min0[s], tm.when)
					}
					continue
				}
				cascade := (e >> shift) << shift
				if cascade <= w.cur || (cascade>>shift)-(w.cur>>shift) > slots {
					t.Fatalf("level %d slot %d cascades at %d, cur %d", lv, s, cascade, w.cur)
				}
			}
		}
	}
	for tm := w.due.head; tm != nil; tm = tm.next {
		n++
		if tm.when < w.dueLo || tm.when > w.now {
			t.Fatalf("due timer at %d, dueLo %d, now %d", tm.when, w.dueLo, w.now)
		}
	}
	for tm := w.over.head; tm != nil; tm = tm.next {
		n++
		if e := w.tickOf(tm.when); e < w.overLo || e-w.cur < span {
			t.Fatalf("overflow timer at tick %d, overLo %d, cur %d", e, w.overLo, w.cur)
		}
	}
	if !w.firing.empty() || w.tickOf(w.now) != w.cur || n != w.Len() {
		t.Fatalf("firing empty %v, cur %d for now %d, %d timers counted, Len %d",
			w.firing.empty(), w.cur, w.now, n, w.Len())
	}
}

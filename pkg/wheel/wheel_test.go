package wheel

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	ms = int64(time.Millisecond)
	s  = int64(time.Second)
)

// recorder collects firings; its fire method is bound once per test.
type recorder struct {
	t      *testing.T
	timers []*Timer
	whens  []int64
	nows   []int64
}

func (r *recorder) fire(t *Timer, now int64) {
	require.False(r.t, t.Pending(), "a firing timer is not pending")
	r.timers = append(r.timers, t)
	r.whens = append(r.whens, t.When())
	r.nows = append(r.nows, now)
}

func TestWheel_ZeroTimerNotPending(t *testing.T) {
	var tm Timer
	require.False(t, tm.Pending())
	w := New(0, 0)
	require.Equal(t, DefaultTick, w.Tick())
	require.False(t, w.Cancel(&tm))
	_, ok := w.NextDeadline()
	require.False(t, ok)
	require.Zero(t, w.Len())
}

func TestWheel_FiresAtDeadlineNotBefore(t *testing.T) {
	cases := []struct {
		name string
		tick time.Duration
		when int64
	}{
		{"same tick", time.Millisecond, 300_000},
		{"tick boundary", time.Millisecond, ms},
		{"mid tick", time.Millisecond, 5*ms + 1},
		{"level 1", time.Millisecond, 100 * ms},
		{"level 2", time.Millisecond, 63 * s},
		{"level 3", time.Millisecond, 2 * 3600 * s},
		{"level 5", time.Millisecond, 365 * 24 * 3600 * s},
		{"beyond top", time.Millisecond, 3 * 365 * 24 * 3600 * s},
		{"odd tick", 3 * time.Nanosecond, 1_000_003},
		{"1ns tick far", time.Nanosecond, 1 << 40},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := recorder{t: t}
			w := New(0, tc.tick)
			var tm Timer
			w.Schedule(&tm, tc.when)
			require.True(t, tm.Pending())
			require.Equal(t, tc.when, tm.When())
			require.Equal(t, 1, w.Len())

			require.Zero(t, w.Advance(tc.when-1, r.fire), "fired early")
			require.True(t, tm.Pending())
			require.Equal(t, 1, w.Advance(tc.when, r.fire))
			require.False(t, tm.Pending())
			require.Equal(t, []int64{tc.when}, r.nows)
			require.Zero(t, w.Len())
			require.Zero(t, w.Advance(tc.when+int64(time.Hour), r.fire))
		})
	}
}

func TestWheel_NegativeOrigin(t *testing.T) {
	r := recorder{t: t}
	w := New(-10*s, time.Millisecond)
	var a, b Timer
	w.Schedule(&a, -5*s)
	w.Schedule(&b, 5*s)
	require.Zero(t, w.Advance(-5*s-1, r.fire))
	require.Equal(t, 1, w.Advance(0, r.fire))
	require.Same(t, &a, r.timers[0])
	require.Equal(t, 1, w.Advance(5*s, r.fire))
	require.Same(t, &b, r.timers[1])
}

func TestWheel_ExtremeTimes(t *testing.T) {
	r := recorder{t: t}
	w := New(math.MinInt64, time.Nanosecond)
	var far, past Timer
	w.Schedule(&far, math.MaxInt64)
	w.Schedule(&past, math.MinInt64)
	require.Equal(t, 1, w.Advance(math.MinInt64, r.fire), "a deadline at now fires at the next Advance")
	require.Same(t, &past, r.timers[0])
	require.Zero(t, w.Advance(0, r.fire))
	require.Zero(t, w.Advance(math.MaxInt64-1, r.fire))
	require.True(t, far.Pending())
	when, ok := w.NextDeadline()
	require.True(t, ok)
	require.LessOrEqual(t, when, int64(math.MaxInt64))
	require.Equal(t, 1, w.Advance(math.MaxInt64, r.fire))
	require.Same(t, &far, r.timers[1])
}

func TestWheel_PastDeadlineFiresAtNextAdvance(t *testing.T) {
	r := recorder{t: t}
	w := New(0, time.Millisecond)
	require.Zero(t, w.Advance(10*s, r.fire))
	ts := make([]Timer, 4)
	for i, when := range []int64{9 * s, 10 * s, 1 * s, 5 * s} {
		w.Schedule(&ts[i], when)
	}
	when, ok := w.NextDeadline()
	require.True(t, ok)
	require.Equal(t, 1*s, when, "NextDeadline reports the earliest past deadline")
	// now going back is ignored: the wheel stays at 10 s and fires the past ones.
	require.Equal(t, 4, w.Advance(3*s, r.fire))
	require.Equal(t, []int64{1 * s, 5 * s, 9 * s, 10 * s}, r.whens, "past deadlines fire in deadline order")
	require.Equal(t, []int64{10 * s, 10 * s, 10 * s, 10 * s}, r.nows)
	require.Equal(t, 10*s, w.Now())
}

func TestWheel_CancelAndReschedule(t *testing.T) {
	r := recorder{t: t}
	w := New(0, time.Millisecond)
	var a, b Timer
	w.Schedule(&a, 10*ms)
	w.Schedule(&b, 20*ms)
	require.True(t, w.Cancel(&a))
	require.False(t, w.Cancel(&a))
	require.False(t, a.Pending())
	require.Equal(t, 1, w.Len())

	w.Schedule(&b, 5*s) // move later
	require.Equal(t, 1, w.Len())
	require.Zero(t, w.Advance(4*s, r.fire))
	w.Schedule(&b, 4*s+500_000) // move earlier, into the current tick
	w.Schedule(&a, 4*s+200_000)
	require.Equal(t, 2, w.Len())
	require.Equal(t, 1, w.Advance(4*s+300_000, r.fire))
	require.Same(t, &a, r.timers[0])
	require.Equal(t, 1, w.Advance(4*s+500_000, r.fire))
	require.Same(t, &b, r.timers[1])
	require.Zero(t, w.Len())
}

func TestWheel_SameTickManyAdvances(t *testing.T) {
	// A shard advances many times per tick; each Advance fires exactly the
	// timers due so far in the tick, in deadline order.
	r := recorder{t: t}
	w := New(0, time.Millisecond)
	ts := make([]Timer, 100)
	for i := range ts {
		w.Schedule(&ts[i], 5*ms+int64((len(ts)-i)*7_000)) // reverse order inside tick 5
	}
	for now := 5 * ms; now < 6*ms; now += 10_000 {
		w.Advance(now, r.fire)
		for i, when := range r.whens {
			require.LessOrEqual(t, when, now, "firing %d was early", i)
		}
		remain := 0
		for i := range ts {
			if ts[i].Pending() {
				require.Greater(t, ts[i].When(), now)
				remain++
			}
		}
		require.Equal(t, w.Len(), remain)
	}
	require.Len(t, r.whens, len(ts))
	for i := 1; i < len(r.whens); i++ {
		require.LessOrEqual(t, r.whens[i-1], r.whens[i])
	}
}

func TestWheel_AdvanceFromFirePanics(t *testing.T) {
	w := New(0, time.Millisecond)
	var tm Timer
	w.Schedule(&tm, ms)
	require.PanicsWithValue(t, "wheel: Advance called from a fire callback", func() {
		w.Advance(ms, func(*Timer, int64) { w.Advance(2*ms, func(*Timer, int64) {}) })
	})
}

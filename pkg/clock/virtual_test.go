package clock

import (
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fired reports whether t's channel holds a firing, consuming it.
func fired(t Timer) bool {
	select {
	case <-t.C():
		return true
	default:
		return false
	}
}

func TestVirtual_NowStartsAtStart(t *testing.T) {
	v := NewVirtual(42)
	require.Equal(t, int64(42), v.Now())
	v.Advance(8)
	require.Equal(t, int64(50), v.Now())
}

func TestVirtual_SetNeverGoesBack(t *testing.T) {
	v := NewVirtual(100)
	v.Set(50)
	require.Equal(t, int64(100), v.Now())
	v.Advance(-10)
	require.Equal(t, int64(100), v.Now())
	v.Set(200)
	require.Equal(t, int64(200), v.Now())
}

func TestVirtual_TimerFiresExactlyAtDeadline(t *testing.T) {
	cases := []struct {
		name string
		d    time.Duration
	}{
		{"1ns", 1},
		{"1ms", time.Millisecond},
		{"63s", 63 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVirtual(1000)
			tm := v.NewTimer(tc.d)
			deadline := 1000 + int64(tc.d)
			when, ok := v.NextTimer()
			require.True(t, ok)
			require.Equal(t, deadline, when)

			v.Set(deadline - 1)
			require.False(t, fired(tm), "fired before its deadline")
			v.Set(deadline)
			require.True(t, fired(tm), "did not fire at its deadline")
			_, ok = v.NextTimer()
			require.False(t, ok)
			v.Advance(time.Hour)
			require.False(t, fired(tm), "one-shot timer fired twice")
		})
	}
}

func TestVirtual_NonPositiveDurationFiresAtOnce(t *testing.T) {
	v := NewVirtual(0)
	for _, d := range []time.Duration{0, -1, math.MinInt64} {
		tm := v.NewTimer(d)
		require.True(t, fired(tm), "d=%v", d)
	}
	_, ok := v.NextTimer()
	require.False(t, ok)
}

func TestVirtual_HugeDurationNeverFires(t *testing.T) {
	v := NewVirtual(10)
	tm := v.NewTimer(math.MaxInt64)
	when, ok := v.NextTimer()
	require.True(t, ok)
	require.Equal(t, int64(math.MaxInt64), when, "deadline must saturate, not wrap")
	v.Set(math.MaxInt64 - 1)
	require.False(t, fired(tm))
}

// TestVirtual_SetFiresExactlyDueTimers checks that one Set fires every timer
// due by then, including equal deadlines, and leaves the rest pending.
func TestVirtual_SetFiresExactlyDueTimers(t *testing.T) {
	v := NewVirtual(0)
	ds := []time.Duration{30, 10, 20, 10, 50}
	timers := make([]Timer, len(ds))
	for i, d := range ds {
		timers[i] = v.NewTimer(d)
	}
	v.Set(40)
	require.Equal(t, int64(40), v.Now())
	for i, d := range ds {
		require.Equal(t, d <= 40, fired(timers[i]), "timer %d (d=%v)", i, d)
	}
	when, ok := v.NextTimer()
	require.True(t, ok)
	require.Equal(t, int64(50), when)
}

func TestVirtual_StopSemantics(t *testing.T) {
	cases := []struct {
		name     string
		prep     func(v *Virtual, tm Timer)
		wantStop bool
	}{
		{"pending", func(v *Virtual, tm Timer) {}, true},
		{"fired unreceived", func(v *Virtual, tm Timer) { v.Advance(time.Second) }, true},
		{"fired received", func(v *Virtual, tm Timer) { v.Advance(time.Second); <-tm.C() }, false},
		{"stopped", func(v *Virtual, tm Timer) { tm.Stop() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVirtual(0)
			tm := v.NewTimer(time.Second)
			tc.prep(v, tm)
			require.Equal(t, tc.wantStop, tm.Stop())
			require.False(t, fired(tm), "a stale firing survived Stop")
			v.Advance(time.Hour)
			require.False(t, fired(tm), "a stopped timer fired")
			_, ok := v.NextTimer()
			require.False(t, ok)
		})
	}
}

func TestVirtual_ResetSemantics(t *testing.T) {
	cases := []struct {
		name      string
		prep      func(v *Virtual, tm Timer)
		wantReset bool
	}{
		{"pending", func(v *Virtual, tm Timer) {}, true},
		{"fired unreceived", func(v *Virtual, tm Timer) { v.Advance(time.Second) }, true},
		{"fired received", func(v *Virtual, tm Timer) { v.Advance(time.Second); <-tm.C() }, false},
		{"stopped", func(v *Virtual, tm Timer) { tm.Stop() }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := NewVirtual(0)
			tm := v.NewTimer(time.Second)
			tc.prep(v, tm)
			base := v.Now()
			require.Equal(t, tc.wantReset, tm.Reset(5*time.Second))
			require.False(t, fired(tm), "a stale firing survived Reset")
			when, ok := v.NextTimer()
			require.True(t, ok)
			require.Equal(t, base+int64(5*time.Second), when, "Reset is relative to Now")
			v.Set(when - 1)
			require.False(t, fired(tm))
			v.Set(when)
			require.True(t, fired(tm))
		})
	}
}

func TestVirtual_ResetMovesEarlier(t *testing.T) {
	v := NewVirtual(0)
	a := v.NewTimer(10 * time.Second)
	b := v.NewTimer(20 * time.Second)
	require.True(t, b.Reset(time.Second))
	when, ok := v.NextTimer()
	require.True(t, ok)
	require.Equal(t, int64(time.Second), when)
	v.Advance(time.Second)
	require.True(t, fired(b))
	require.False(t, fired(a))
}

func TestVirtual_ConcurrentNowDuringAdvance(t *testing.T) {
	v := NewVirtual(0)
	const steps = 2000
	timers := make([]Timer, 100)
	for i := range timers {
		timers[i] = v.NewTimer(time.Duration(i*steps/len(timers)+1) * time.Microsecond)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := v.Now()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := v.Now()
				if n < last {
					t.Errorf("Now went back: %d after %d", n, last)
					return
				}
				last = n
			}
		}()
	}
	// Timers armed and stopped concurrently with the advancing goroutine.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			tm := v.NewTimer(time.Duration(i) * time.Microsecond)
			tm.Reset(time.Duration(i+1) * time.Microsecond)
			tm.Stop()
		}
	}()
	for range steps {
		v.Advance(time.Microsecond)
	}
	close(stop)
	wg.Wait()
	require.Equal(t, int64(steps*time.Microsecond), v.Now())
	for i, tm := range timers {
		require.True(t, fired(tm), "timer %d", i)
	}
}

func TestVirtual_ConcurrentAdvanceAddsUp(t *testing.T) {
	v := NewVirtual(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				v.Advance(1)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(8000), v.Now())
}

func TestVirtual_NowAllocs(t *testing.T) {
	v := NewVirtual(0)
	var sink int64
	allocs := testing.AllocsPerRun(1000, func() { sink += v.Now() })
	require.Zero(t, allocs)
	_ = sink
}

func BenchmarkVirtual_Now(b *testing.B) {
	v := NewVirtual(0)
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		sink += v.Now()
	}
	_ = sink
}

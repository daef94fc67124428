package clock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// liveness bounds how long a test waits for a real timer that must fire. It is
// a hang guard, not a timing assertion: a slow machine only makes it wait.
const liveness = 30 * time.Second

// waitBuffered polls until tm's channel holds a firing, without receiving it.
func waitBuffered(t *testing.T, tm Timer) {
	t.Helper()
	deadline := time.Now().Add(liveness)
	for len(tm.C()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("real timer never fired")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestReal_NowMonotonic(t *testing.T) {
	r := NewReal()
	last := r.Now()
	require.GreaterOrEqual(t, last, int64(0))
	for range 10000 {
		n := r.Now()
		require.GreaterOrEqual(t, n, last)
		last = n
	}
	time.Sleep(time.Millisecond)
	require.Greater(t, r.Now(), last, "Now must move with real time")
}

func TestReal_TimerFiresNotBeforeDeadline(t *testing.T) {
	r := NewReal()
	start := r.Now()
	tm := r.NewTimer(2 * time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(liveness):
		t.Fatal("real timer never fired")
	}
	require.GreaterOrEqual(t, r.Now()-start, int64(2*time.Millisecond))
	require.False(t, tm.Stop(), "a received timer is not pending")
}

func TestReal_StopPending(t *testing.T) {
	r := NewReal()
	tm := r.NewTimer(time.Hour)
	require.True(t, tm.Stop())
	require.False(t, tm.Stop())
	require.Empty(t, tm.C())
}

func TestReal_StopDiscardsUnreceivedFiring(t *testing.T) {
	r := NewReal()
	tm := r.NewTimer(time.Nanosecond)
	waitBuffered(t, tm)
	require.True(t, tm.Stop(), "an unreceived firing counts as pending")
	require.Empty(t, tm.C(), "Stop must discard the stale firing")
}

func TestReal_ResetRearms(t *testing.T) {
	r := NewReal()
	tm := r.NewTimer(time.Nanosecond)
	waitBuffered(t, tm)
	require.True(t, tm.Reset(time.Hour), "Reset reports the unreceived firing")
	require.Empty(t, tm.C(), "Reset must discard the stale firing")
	require.True(t, tm.Reset(time.Millisecond), "Reset of a pending timer reports true")
	select {
	case <-tm.C():
	case <-time.After(liveness):
		t.Fatal("reset timer never fired")
	}
	require.False(t, tm.Reset(time.Hour))
	require.True(t, tm.Stop())
}

func TestReal_NonPositiveDurationFires(t *testing.T) {
	r := NewReal()
	tm := r.NewTimer(-time.Second)
	select {
	case <-tm.C():
	case <-time.After(liveness):
		t.Fatal("expired timer never fired")
	}
}

func TestReal_NowAllocs(t *testing.T) {
	r := NewReal()
	var sink int64
	require.Zero(t, testing.AllocsPerRun(1000, func() { sink += r.Now() }))
	_ = sink
}

func TestReal_ResetAllocs(t *testing.T) {
	r := NewReal()
	tm := r.NewTimer(time.Hour)
	allocs := testing.AllocsPerRun(1000, func() { tm.Reset(time.Hour) })
	require.Zero(t, allocs)
	tm.Stop()
}

func BenchmarkReal_Now(b *testing.B) {
	r := NewReal()
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		sink += r.Now()
	}
	_ = sink
}

func BenchmarkReal_TimerReset(b *testing.B) {
	r := NewReal()
	tm := r.NewTimer(time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		tm.Reset(time.Hour)
	}
	tm.Stop()
}

package wheel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// counter is a fire callback that allocates nothing and re-arms a fraction of
// its timers, the way retransmission timers do.
type counter struct {
	w     *Wheel
	n     int
	rearm bool
}

func (c *counter) fire(t *Timer, now int64) {
	c.n++
	if c.rearm && c.n%2 == 0 {
		c.w.Schedule(t, now+int64(time.Second))
	}
}

func TestWheel_ScheduleCancelAllocs(t *testing.T) {
	w := New(0, time.Millisecond)
	ts := make([]Timer, 64)
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		tm := &ts[i%len(ts)]
		w.Schedule(tm, int64(i)*7*ms+s) // spread over levels 0..2
		w.Schedule(tm, int64(i)*ms+63*s)
		if i%3 == 0 {
			w.Cancel(tm)
		}
		i++
	})
	require.Zero(t, allocs)
}

func TestWheel_AdvanceAllocs(t *testing.T) {
	w := New(0, time.Millisecond)
	c := &counter{w: w, rearm: true}
	fire := c.fire // bound once
	ts := make([]Timer, 1000)
	now := int64(0)
	allocs := testing.AllocsPerRun(200, func() {
		for i := range ts {
			if !ts[i].Pending() {
				w.Schedule(&ts[i], now+int64(i)*37_000+int64(i%5)*s)
			}
		}
		w.Schedule(&ts[0], now) // a past deadline: the due list
		now += 20 * ms
		w.Advance(now, fire)
		w.Advance(now+100_000, fire) // inside the same tick: the sorted slot
		w.NextDeadline()
	})
	require.Zero(t, allocs)
	require.Positive(t, c.n)
}

func TestWheel_BigJumpAllocs(t *testing.T) {
	w := New(0, time.Millisecond)
	c := &counter{w: w, rearm: true}
	fire := c.fire
	ts := make([]Timer, 100)
	now := int64(0)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range ts {
			if !ts[i].Pending() {
				w.Schedule(&ts[i], now+int64(i+1)*3600*s) // hours to days ahead
			}
		}
		now += 120 * 3600 * s
		w.Advance(now, fire)
	})
	require.Zero(t, allocs)
}

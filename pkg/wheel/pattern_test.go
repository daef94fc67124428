package wheel

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/stretchr/testify/require"
)

// Timer kinds of the SYN-ACK test, dispatched on Timer.Kind as the stack does.
const (
	kindSynAckRetransmit uint8 = iota + 1
	kindRequestExpire
)

// request stands for a SYN table entry: it embeds its timer.
type request struct {
	tm      Timer
	start   int64
	retries int
	fired   []int64 // deadlines fired, relative to start
	late    []int64 // now minus deadline at each firing
	expired bool
}

// synAck re-arms from fire the way Linux's request timer does
// (reqsk_timer_handler): the SYN-ACK timeout starts at TCP_TIMEOUT_INIT, 1 s,
// and doubles per retransmission, so with tcp_synack_retries = 5 SYN-ACKs
// are retransmitted at 1, 3, 7, 15 and 31 s and the request expires at 63 s.
// It re-arms from the deadline, not from now, so a late Advance does not
// shift the schedule.
type synAck struct {
	w *Wheel
}

func (h *synAck) fire(t *Timer, now int64) {
	r := t.Owner.(*request)
	r.fired = append(r.fired, t.When()-r.start)
	r.late = append(r.late, now-t.When())
	switch t.Kind {
	case kindSynAckRetransmit:
		r.retries++
		if r.retries == 5 {
			t.Kind = kindRequestExpire
		}
		h.w.Schedule(t, t.When()+int64(time.Second)<<r.retries)
	case kindRequestExpire:
		r.expired = true
	}
}

func TestWheel_SynAckRetransmitPattern(t *testing.T) {
	want := []int64{1 * s, 3 * s, 7 * s, 15 * s, 31 * s, 63 * s}
	cases := []struct {
		name     string
		requests int
		// drive moves the clock and the wheel to 70 s and returns the
		// number of Advance calls it made.
		drive func(w *Wheel, v *clock.Virtual, fire func(*Timer, int64)) int
		exact bool // every firing happens at exactly its deadline
	}{
		{"NextDeadline driver", 1000, driveNextDeadline, true},
		{"1 ms steps", 1000, func(w *Wheel, v *clock.Virtual, fire func(*Timer, int64)) int {
			n := 0
			for v.Now() < 70*s {
				v.Advance(time.Millisecond)
				w.Advance(v.Now(), fire)
				n++
			}
			return n
		}, false},
		{"random steps", 1000, func(w *Wheel, v *clock.Virtual, fire func(*Timer, int64)) int {
			rng := rand.New(rand.NewPCG(7, 7))
			n := 0
			for v.Now() < 70*s {
				v.Advance(time.Duration(rng.Int64N(3 * s)))
				w.Advance(v.Now(), fire)
				n++
			}
			return n
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := clock.NewVirtual(0)
			w := New(v.Now(), time.Millisecond)
			h := &synAck{w: w}
			fire := h.fire
			rng := rand.New(rand.NewPCG(1, 1))
			reqs := make([]request, tc.requests)
			for i := range reqs {
				r := &reqs[i]
				r.start = rng.Int64N(s) // SYNs arrive over the first second
				r.tm.Kind = kindSynAckRetransmit
				r.tm.Owner = r
				w.Schedule(&r.tm, r.start+s)
			}
			tc.drive(w, v, fire)
			require.Zero(t, w.Len())
			for i := range reqs {
				r := &reqs[i]
				require.Equal(t, want, r.fired, "request %d", i)
				require.True(t, r.expired)
				for _, late := range r.late {
					require.GreaterOrEqual(t, late, int64(0))
					if tc.exact {
						require.Zero(t, late, "the driver must reach each deadline exactly")
					}
				}
			}
		})
	}
}

// driveNextDeadline is a simulation driver: it jumps the virtual clock to the
// wheel's next deadline instead of walking time.
func driveNextDeadline(w *Wheel, v *clock.Virtual, fire func(*Timer, int64)) int {
	n := 0
	for {
		next, ok := w.NextDeadline()
		if !ok {
			return n
		}
		v.Set(next)
		w.Advance(v.Now(), fire)
		n++
	}
}

// TestWheel_NextDeadlineDriverVisitsFirings checks that a driver following
// NextDeadline reaches every firing at its deadline in a number of steps that
// depends on the timers, not on the time covered: walking 63 s tick by tick
// would take 63,000 steps.
func TestWheel_NextDeadlineDriverVisitsFirings(t *testing.T) {
	cases := []struct {
		name string
		tick time.Duration
	}{
		{"1ms", time.Millisecond},
		{"1us", time.Microsecond},
		{"1ns", time.Nanosecond}, // 63 s is close to the levels' 69 s reach
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := clock.NewVirtual(0)
			w := New(0, tc.tick)
			h := &synAck{w: w}
			var r request
			r.start = 123_456_789
			r.tm.Kind = kindSynAckRetransmit
			r.tm.Owner = &r
			w.Schedule(&r.tm, r.start+s)
			steps := driveNextDeadline(w, v, h.fire)
			t.Logf("%d driver steps for 6 firings over 63 s", steps)
			require.Equal(t, []int64{1 * s, 3 * s, 7 * s, 15 * s, 31 * s, 63 * s}, r.fired)
			require.Equal(t, []int64{0, 0, 0, 0, 0, 0}, r.late)
			// Each firing needs at most one step per level it cascades
			// through, plus the step that fires it.
			require.LessOrEqual(t, steps, 6*(levels+1))
		})
	}
}

func TestWheel_CancelInsideFire(t *testing.T) {
	cases := []struct {
		name           string
		a, b, c        int64 // deadlines, all due at the Advance to 10 ms
		newC           int64 // c's new deadline, set by a's fire
		wantFirst      []string
		wantAtNewC     []string
		advanceToFirst int64
	}{
		{"same tick", 5 * ms, 5 * ms, 5 * ms, 20 * ms, []string{"a"}, []string{"c"}, 10 * ms},
		{"later ticks", 1 * ms, 2 * ms, 3 * ms, 20 * ms, []string{"a"}, []string{"c"}, 10 * ms},
		{"inside the tick of now", 10*ms + 1, 10*ms + 2, 10*ms + 3, 10*ms + 500_000, []string{"a"}, []string{"c"}, 10*ms + 3},
		{"c moved into the past", 1 * ms, 2 * ms, 3 * ms, 0, []string{"a"}, []string{"c"}, 10 * ms},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := New(0, time.Millisecond)
			var a, b, c Timer
			a.Owner, b.Owner, c.Owner = "a", "b", "c"
			w.Schedule(&a, tc.a)
			w.Schedule(&b, tc.b)
			w.Schedule(&c, tc.c)
			var got []string
			fire := func(tm *Timer, now int64) {
				got = append(got, tm.Owner.(string))
				if tm == &a {
					w.Cancel(&b)
					w.Schedule(&c, tc.newC)
				}
			}
			require.Equal(t, 1, w.Advance(tc.advanceToFirst, fire))
			require.Equal(t, tc.wantFirst, got)
			require.False(t, b.Pending())
			require.True(t, c.Pending())
			got = nil
			require.Equal(t, 1, w.Advance(max(tc.newC, tc.advanceToFirst), fire))
			require.Equal(t, tc.wantAtNewC, got)
			require.Zero(t, w.Len())
		})
	}
}

func TestWheel_FireRearmsIntoPastWaitsForNextAdvance(t *testing.T) {
	w := New(0, time.Millisecond)
	var tm Timer
	w.Schedule(&tm, 5*ms)
	calls := 0
	fire := func(tm *Timer, now int64) {
		calls++
		w.Schedule(tm, tm.When()) // its own, past, deadline: must not loop
	}
	require.Equal(t, 1, w.Advance(10*ms, fire))
	require.True(t, tm.Pending())
	require.Equal(t, 1, w.Advance(10*ms, fire))
	require.Equal(t, 2, calls)
	require.True(t, w.Cancel(&tm))
}

func TestWheel_FireCancelsItselfAfterRearm(t *testing.T) {
	w := New(0, time.Millisecond)
	var tm Timer
	w.Schedule(&tm, 5*ms)
	fire := func(tm *Timer, now int64) {
		w.Schedule(tm, now+s)
		require.True(t, w.Cancel(tm))
	}
	require.Equal(t, 1, w.Advance(10*ms, fire))
	require.False(t, tm.Pending())
	require.Zero(t, w.Len())
	_, ok := w.NextDeadline()
	require.False(t, ok)
}

func TestWheel_BigJumps(t *testing.T) {
	const day = 24 * 3600 * s
	const years3 = 3 * 365 * day // beyond the 2.2-year reach of 6 levels of 1 ms
	deadlines := []int64{years3, 30 * day, 1 * s, 3600 * s, 120*s + 1, 60 * s, 120 * s, 119*s + 999_999, 1 * day}
	w := New(0, time.Millisecond)
	ts := make([]Timer, len(deadlines))
	for i, d := range deadlines {
		w.Schedule(&ts[i], d)
	}
	var got []int64
	fire := func(tm *Timer, now int64) {
		require.LessOrEqual(t, tm.When(), now, "fired early")
		got = append(got, tm.When())
	}
	// A virtual clock moving 120 s at once.
	require.Equal(t, 4, w.Advance(120*s, fire))
	require.Equal(t, []int64{1 * s, 60 * s, 119*s + 999_999, 120 * s}, got)
	got = got[:0]
	require.Equal(t, 4, w.Advance(years3-1, fire))
	require.Equal(t, []int64{120*s + 1, 3600 * s, 1 * day, 30 * day}, got)
	got = got[:0]
	require.Equal(t, 1, w.Advance(years3, fire))
	require.Equal(t, []int64{years3}, got)
}

// TestWheel_BigJumpSkipsEmptyTime jumps a 1 ns wheel across 2^62 ticks. A
// wheel that walked tick by tick, or cascaded far timers once per top-level
// rotation (69 s here), would not finish; one that skips empty slots with its
// bitmaps takes a few steps per timer.
func TestWheel_BigJumpSkipsEmptyTime(t *testing.T) {
	w := New(0, time.Nanosecond)
	deadlines := []int64{1 << 20, 1 << 40, 1 << 50, 1 << 61, 1<<62 - 1, 1 << 62}
	ts := make([]Timer, len(deadlines))
	for i, d := range deadlines {
		w.Schedule(&ts[i], d)
	}
	var got []int64
	fire := func(tm *Timer, now int64) { got = append(got, tm.When()) }
	require.Equal(t, 5, w.Advance(1<<62-1, fire))
	require.Equal(t, deadlines[:5], got)
	require.Equal(t, 1, w.Advance(1<<62, fire))
	require.Equal(t, deadlines, got)
}

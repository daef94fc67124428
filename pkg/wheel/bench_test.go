package wheel

import (
	"math/rand/v2"
	"testing"
	"time"
)

// offsets returns n deterministic deadline offsets in [1 ms, 10 s].
func offsets(n int) []int64 {
	rng := rand.New(rand.NewPCG(42, 42))
	out := make([]int64, n)
	for i := range out {
		out[i] = ms + rng.Int64N(10*s)
	}
	return out
}

func BenchmarkScheduleCancel(b *testing.B) {
	w := New(0, time.Millisecond)
	off := offsets(1024)
	var tm Timer
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.Schedule(&tm, off[i&1023])
		w.Cancel(&tm)
		i++
	}
}

// BenchmarkScheduleCancel_Loaded arms and cancels with 1e5 other timers
// pending, as a busy SYN table does.
func BenchmarkScheduleCancel_Loaded(b *testing.B) {
	w := New(0, time.Millisecond)
	off := offsets(100_000)
	ts := make([]Timer, len(off))
	for i := range ts {
		w.Schedule(&ts[i], off[i])
	}
	var tm Timer
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.Schedule(&tm, off[i%len(off)])
		w.Cancel(&tm)
		i++
	}
}

// benchScheduleAdvance arms 1e5 timers over 10 s and advances in steps of
// step until all have fired; the reported ns/timer covers arm, cascades and
// fire.
func benchScheduleAdvance(b *testing.B, step int64) {
	const n = 100_000
	off := offsets(n)
	ts := make([]Timer, n)
	c := &counter{}
	fire := c.fire
	w := New(0, time.Millisecond)
	c.w = w
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		for i := range ts {
			w.Schedule(&ts[i], now+off[i])
		}
		for w.Len() > 0 {
			now += step
			w.Advance(now, fire)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/timer")
}

func BenchmarkScheduleAdvance_1e5_Step100us(b *testing.B) { benchScheduleAdvance(b, 100_000) }
func BenchmarkScheduleAdvance_1e5_Step1ms(b *testing.B)   { benchScheduleAdvance(b, ms) }
func BenchmarkScheduleAdvance_1e5_OneJump(b *testing.B)   { benchScheduleAdvance(b, 11*s) }

// BenchmarkAdvance_IdleInTick is a shard loop that advances far more often
// than the tick while timers are pending: most calls fire nothing.
func BenchmarkAdvance_IdleInTick(b *testing.B) {
	w := New(0, time.Millisecond)
	off := offsets(100_000)
	ts := make([]Timer, len(off))
	for i := range ts {
		w.Schedule(&ts[i], off[i]+100*s)
	}
	c := &counter{w: w}
	fire := c.fire
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000 // 1 µs per loop iteration
		w.Advance(now, fire)
	}
}

// BenchmarkAdvance_BigJump arms a timer per hour for 5 days and jumps the
// clock 5 days at once.
func BenchmarkAdvance_BigJump(b *testing.B) {
	w := New(0, time.Millisecond)
	ts := make([]Timer, 120)
	c := &counter{w: w}
	fire := c.fire
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		for i := range ts {
			w.Schedule(&ts[i], now+int64(i+1)*3600*s)
		}
		now += 120 * 3600 * s
		w.Advance(now, fire)
	}
}

package wheel

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// FuzzWheel runs arbitrary operations with arbitrary int64 times (extremes,
// going backwards, far beyond the levels) and checks the structure after each
// one, that nothing fires early and that every due timer fires. The input is
// an origin, a tick selector, then 9-byte operations: a code and a time.
func FuzzWheel(f *testing.F) {
	seed := func(origin int64, tick byte, ops ...any) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(origin))
		b = append(b, tick)
		for i := 0; i < len(ops); i += 2 {
			b = append(b, ops[i].(byte))
			b = binary.LittleEndian.AppendUint64(b, uint64(ops[i+1].(int64)))
		}
		return b
	}
	f.Add(seed(0, 0, byte(0), 5*ms, byte(3), 10*ms))
	f.Add(seed(math.MinInt64, 1, byte(0), int64(math.MaxInt64), byte(4), int64(math.MinInt64), byte(3), int64(math.MaxInt64)))
	f.Add(seed(-s, 2, byte(0), 63*s, byte(5), 62*s, byte(1), int64(0), byte(3), 70*s))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 9 {
			return
		}
		ticks := []time.Duration{time.Millisecond, time.Nanosecond, 7 * time.Nanosecond, time.Microsecond}
		origin := int64(binary.LittleEndian.Uint64(data))
		w := New(origin, ticks[int(data[8])%len(ticks)])
		data = data[9:]
		var ts [8]Timer
		model := map[*Timer]int64{}
		now := origin
		fire := func(tm *Timer, at int64) {
			when, ok := model[tm]
			if !ok || when != tm.When() || when > at {
				t.Fatalf("bad firing: pending %v, deadline %d, model %d, now %d", ok, tm.When(), when, at)
			}
			delete(model, tm)
		}
		for ; len(data) >= 9; data = data[9:] {
			op := data[0]
			v := int64(binary.LittleEndian.Uint64(data[1:]))
			tm := &ts[int(op>>3)%len(ts)]
			advanced := false
			switch op & 7 {
			case 0, 4, 5: // schedule at an absolute time or relative to now
				when := v
				if op&7 == 5 {
					when = now + v%int64(1000*time.Second)
				}
				w.Schedule(tm, when)
				model[tm] = when
			case 1:
				_, ok := model[tm]
				if w.Cancel(tm) != ok {
					t.Fatalf("Cancel disagrees with the model")
				}
				delete(model, tm)
			case 2:
				if when, ok := w.NextDeadline(); ok {
					now = max(now, when)
					w.Advance(when, fire)
					advanced = true
				}
			default: // advance to an absolute time or by a step
				if op&7 == 6 {
					v = now + v%int64(100*time.Second)
				}
				now = max(now, v)
				w.Advance(v, fire)
				advanced = true
			}
			for _, when := range model {
				if advanced && when <= now {
					t.Fatalf("timer due at %d still pending after Advance to %d", when, now)
				}
			}
			checkInvariants(t, w)
		}
	})
}

package wheel

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// prop drives a Wheel and a reference model with the same random operations.
// The model is a deadline per pending timer; at each Advance the expected
// firings are the model's deadlines <= now, as a sorted slice.
type prop struct {
	t     *testing.T
	rng   *rand.Rand
	w     *Wheel
	tick  int64
	far   int64 // the largest deadline offset used
	now   int64
	ts    []Timer
	model map[int]int64 // pending timer -> deadline

	// Per Advance: which timers a fire callback touched (they may not fire
	// in this Advance unless re-armed later than now, which then cannot
	// fire either), the firings seen and the latest tick fired.
	touched  map[int]bool
	fired    []int
	lastTick int64
	inFire   bool
	fire     func(*Timer, int64)
}

func newProp(t *testing.T, seed uint64, tick time.Duration, timers int, far int64) *prop {
	p := &prop{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		w:       New(0, tick),
		tick:    int64(tick),
		far:     far,
		ts:      make([]Timer, timers),
		model:   map[int]int64{},
		touched: map[int]bool{},
	}
	for i := range p.ts {
		p.ts[i].Owner = i
	}
	p.fire = p.onFire
	return p
}

// deadline picks a deadline: mostly absolute in [0, 10 s], some relative to
// now (past, inside the current tick, near), some far.
func (p *prop) deadline() int64 {
	switch r := p.rng.IntN(100); {
	case r < 50:
		return p.rng.Int64N(10*s + 1)
	case r < 60:
		return max(0, p.now-p.rng.Int64N(2*s))
	case r < 70:
		return p.now + p.rng.Int64N(2*p.tick)
	case r < 90:
		return p.now + p.rng.Int64N(200*p.tick)
	default:
		return p.now + p.rng.Int64N(p.far)
	}
}

func (p *prop) step() int64 {
	switch r := p.rng.IntN(100); {
	case r < 10:
		return 0
	case r < 40:
		return p.rng.Int64N(p.tick)
	case r < 80:
		return p.rng.Int64N(64 * p.tick)
	case r < 97:
		return p.rng.Int64N(2 * s)
	default:
		return p.rng.Int64N(p.far) // a big jump
	}
}

func (p *prop) schedule(i int) {
	when := p.deadline()
	p.w.Schedule(&p.ts[i], when)
	p.model[i] = when
	if p.inFire {
		p.touched[i] = true
	}
}

func (p *prop) cancel(i int) {
	_, pending := p.model[i]
	require.Equal(p.t, pending, p.w.Cancel(&p.ts[i]), "Cancel of timer %d", i)
	delete(p.model, i)
	if p.inFire {
		p.touched[i] = true
	}
}

func (p *prop) tickOf(when int64) int64 { return when / p.tick } // deadlines are >= 0

func (p *prop) onFire(t *Timer, now int64) {
	i := t.Owner.(int)
	require.Equal(p.t, p.now, now)
	when, pending := p.model[i]
	require.True(p.t, pending, "timer %d fired but is not pending in the model", i)
	require.Equal(p.t, when, t.When())
	require.LessOrEqual(p.t, when, now, "timer %d fired before its deadline", i)
	require.False(p.t, p.touched[i], "timer %d was cancelled or re-armed in this Advance, yet fired", i)
	require.GreaterOrEqual(p.t, p.tickOf(when), p.lastTick, "firing out of tick order")
	require.False(p.t, t.Pending())
	p.lastTick = p.tickOf(when)
	delete(p.model, i)
	p.fired = append(p.fired, i)

	// Callbacks act on the wheel: re-arm themselves (the SYN-ACK pattern),
	// cancel or re-arm others, including ones due in this same Advance.
	p.inFire = true
	switch r := p.rng.IntN(10); {
	case r < 2:
		p.schedule(i)
	case r < 4:
		p.cancel(p.rng.IntN(len(p.ts)))
	case r < 5:
		p.schedule(p.rng.IntN(len(p.ts)))
	}
	p.inFire = false
}

func (p *prop) advance() {
	p.now += p.step()
	// The expected firings: a sorted slice of the model's deadlines <= now.
	var want []int
	for i, when := range p.model {
		if when <= p.now {
			want = append(want, i)
		}
	}
	p.fired = p.fired[:0]
	p.lastTick = -1
	clear(p.touched)

	n := p.w.Advance(p.now, p.fire)

	require.Equal(p.t, len(p.fired), n)
	// A due timer a callback cancelled or re-armed before its turn must not
	// fire; one touched after it fired has fired once.
	got := slices.Sorted(slices.Values(p.fired))
	want = slices.DeleteFunc(want, func(i int) bool {
		_, done := slices.BinarySearch(got, i)
		return p.touched[i] && !done
	})
	slices.Sort(want)
	require.Equal(p.t, want, got, "fired set at now=%d", p.now)
	// Anything still due was armed into the past by a callback: it waits for
	// the next Advance, which must then fire it.
	for i, when := range p.model {
		if when <= p.now {
			require.True(p.t, p.touched[i], "timer %d due at %d missed at now=%d", i, when, p.now)
		}
	}
}

func (p *prop) check() {
	checkInvariants(p.t, p.w)
	if len(p.model) != p.w.Len() {
		p.t.Fatalf("Len %d, model %d", p.w.Len(), len(p.model))
	}
	for i := range p.ts {
		if _, pending := p.model[i]; pending != p.ts[i].Pending() {
			p.t.Fatalf("Pending of timer %d is %v", i, !pending)
		}
	}
	when, ok := p.w.NextDeadline()
	if ok != (len(p.model) > 0) {
		p.t.Fatalf("NextDeadline ok=%v with %d pending", ok, len(p.model))
	}
	for i, m := range p.model {
		if when > m {
			p.t.Fatalf("NextDeadline %d is after timer %d's deadline %d", when, i, m)
		}
	}
}

func TestWheel_PropertyAgainstSortedModel(t *testing.T) {
	cases := []struct {
		tick time.Duration
		far  int64
	}{
		{time.Millisecond, 1000 * s},                // the default: levels 0..3
		{time.Microsecond, 200 * s},                 // deep levels
		{7 * time.Nanosecond, 20 * s},               // odd tick, deadlines inside ticks
		{time.Nanosecond, 300 * s},                  // levels reach 69 s: overflow
		{50 * time.Millisecond, 24 * 3600 * s * 30}, // coarse tick, 30-day jumps
	}
	const ops = 30000
	for ci, tc := range cases {
		t.Run(fmt.Sprintf("tick=%v", tc.tick), func(t *testing.T) {
			p := newProp(t, uint64(ci+1), tc.tick, 300, tc.far)
			for range ops {
				switch r := p.rng.IntN(100); {
				case r < 45:
					p.schedule(p.rng.IntN(len(p.ts))) // arms or re-arms
				case r < 60:
					p.cancel(p.rng.IntN(len(p.ts)))
				default:
					p.advance()
				}
				p.check()
			}
			// Drain: everything pending fires once time passes it.
			for len(p.model) > 0 {
				when, ok := p.w.NextDeadline()
				require.True(t, ok)
				p.now = max(p.now, when)
				p.fired = p.fired[:0]
				p.lastTick = -1
				clear(p.touched)
				p.w.Advance(p.now, func(t *Timer, now int64) {
					i := t.Owner.(int)
					require.LessOrEqual(p.t, p.model[i], now)
					delete(p.model, i)
				})
				p.check()
			}
			require.Zero(t, p.w.Len())
		})
	}
}

// TestWheel_ExactFiringAgainstSortedSlice arms 10,000 timers with deadlines
// in [0, 10 s] in random order and advances in random steps: each Advance
// must fire exactly the next run of the sorted deadlines that are <= now, in
// order at tick granularity.
func TestWheel_ExactFiringAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	w := New(0, time.Millisecond)
	ts := make([]Timer, 10000)
	sorted := make([]int64, len(ts))
	for i := range ts {
		sorted[i] = rng.Int64N(10*s + 1)
		w.Schedule(&ts[i], sorted[i])
	}
	slices.Sort(sorted)
	var got []int64
	fire := func(tm *Timer, now int64) { got = append(got, tm.When()) }
	next := 0 // sorted[:next] have fired
	for now := int64(0); next < len(sorted); {
		now += rng.Int64N(30 * ms)
		got = got[:0]
		n := w.Advance(now, fire)
		end, _ := slices.BinarySearch(sorted, now+1)
		require.Equal(t, end-next, n, "at now=%d", now)
		for i := 1; i < len(got); i++ {
			require.LessOrEqual(t, got[i-1]/ms, got[i]/ms, "fired out of tick order")
		}
		require.ElementsMatch(t, sorted[next:end], got)
		next = end
		require.Equal(t, len(sorted)-next, w.Len())
	}
}

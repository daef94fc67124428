package tcp

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rtts runs ops over n round trips of a flow that is never limited: each round acknowledges
// the whole window, one segment per ACK.
func rtts(ops congestionOps, c *ccState, n int, rtt time.Duration, now *int64) {
	seq := uint32(0)
	for i := 0; i < n; i++ {
		w := c.cwnd
		end := seq + w
		for j := uint32(0); j < w; j++ {
			seq++
			ops.sample(c, int64(rtt), seq, end)
			ops.congAvoid(c, 1, *now)
		}
		*now += int64(rtt)
	}
}

func TestReno(t *testing.T) {
	ops := renoOps{}
	c := &ccState{cwnd: 10, ssthresh: 1 << 30}
	var now int64
	rtts(ops, c, 3, 10*time.Millisecond, &now)
	require.Equal(t, uint32(80), c.cwnd, "slow start doubles every round trip")
	c.ssthresh = ops.ssthresh(c)
	require.Equal(t, uint32(40), c.ssthresh)
	c.cwnd = c.ssthresh
	rtts(ops, c, 5, 10*time.Millisecond, &now)
	require.Equal(t, uint32(45), c.cwnd, "then one segment per round trip")
	c.cwnd = 20
	require.Equal(t, uint32(80), ops.undo(c), "undo goes back to the window before the loss")
}

// CUBIC after a loss at 100 segments: the window falls to 70, climbs back towards 100 in a
// concave curve, reaching it near K = cbrt(30/0.4) ≈ 4.2 s, and grows faster beyond.
func TestCubicCurve(t *testing.T) {
	ops := cubicOps{}
	c := &ccState{cwnd: 100, ssthresh: 1 << 30, hsDone: true}
	ops.init(c)
	c.ssthresh = ops.ssthresh(c)
	require.Equal(t, uint32(70), c.ssthresh)
	c.cwnd = c.ssthresh
	var now int64 = 1e9
	const rtt = 100 * time.Millisecond
	var at []uint32
	for i := 0; i < 80; i++ { // 8 s
		rtts(ops, c, 1, rtt, &now)
		at = append(at, c.cwnd)
	}
	k := math.Cbrt(30 / cubicC)
	near := at[int(k*10)]
	require.InDelta(t, 100, float64(near), 5, "back at W_max near K (%.1f s): %v", k, at)
	// Concave before K: the increments shrink; convex after: they grow.
	require.Greater(t, at[10]-at[0], at[35]-at[25], "concave: %v", at)
	require.Greater(t, at[79]-at[69], at[50]-at[40], "convex: %v", at)
	// Fast convergence: a second loss below the previous W_max remembers less.
	c.cwnd = 90
	ops.ssthresh(c)
	require.InDelta(t, 90*(1+cubicBeta)/2, c.lastMaxCwnd, 0.01)
}

// HyStart++: while the RTT stays flat, slow start doubles; once it rises by the threshold,
// growth drops to a quarter (CSS), and after five such rounds slow start ends.
func TestHyStartPlusPlus(t *testing.T) {
	ops := cubicOps{}
	c := &ccState{cwnd: 10, ssthresh: 1 << 30}
	var now int64
	rtts(ops, c, 3, 20*time.Millisecond, &now)
	require.Equal(t, uint32(80), c.cwnd)
	require.False(t, c.hsCSS)
	// The queue builds: RTT 20 -> 30 ms (more than 20/8 = 2.5 ms, clamped to 4 ms).
	rtts(ops, c, 1, 30*time.Millisecond, &now)
	require.True(t, c.hsCSS, "entered Conservative Slow Start")
	before := c.cwnd
	rtts(ops, c, 1, 30*time.Millisecond, &now)
	require.InDelta(t, float64(before)*1.25, float64(c.cwnd), 2, "a quarter of slow start's growth")
	rtts(ops, c, 5, 30*time.Millisecond, &now)
	require.True(t, c.hsDone, "slow start is over after five CSS rounds")
	require.Less(t, c.ssthresh, uint32(1<<30), "ssthresh was set where slow start ended")
	require.LessOrEqual(t, c.ssthresh, c.cwnd)

	// An RTT that falls back below the baseline during CSS resumes slow start.
	d := &ccState{cwnd: 10, ssthresh: 1 << 30}
	now = 0
	rtts(ops, d, 3, 20*time.Millisecond, &now)
	rtts(ops, d, 1, 30*time.Millisecond, &now)
	require.True(t, d.hsCSS)
	rtts(ops, d, 1, 20*time.Millisecond, &now)
	require.False(t, d.hsCSS, "back to slow start")
}

func TestCongestionAlgorithmsNamed(t *testing.T) {
	require.Contains(t, congestionAlgorithms, "cubic")
	require.Contains(t, congestionAlgorithms, "reno")
}

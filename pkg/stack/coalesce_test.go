package stack

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A core with RxCoalesce waits after a receive burst that came back less than half full,
// and only then: not after an empty one (it parks instead), not after a fuller one.
func TestCoalesceRx(t *testing.T) {
	c := newCore(0, nil)
	c.coalesce = 50 * time.Microsecond
	a, b := &shard{burst: 64}, &shard{burst: 64}
	c.shards = []*shard{a, b}
	var slept []time.Duration
	c.sleep = func(d time.Duration) { slept = append(slept, d) }
	for _, tc := range []struct {
		rxA, rxB int
		sleeps   bool
	}{{0, 0, false}, {1, 0, true}, {30, 33, true}, {32, 32, false}, {64, 0, false}, {0, 63, true}, {0, 64, false}} {
		slept = slept[:0]
		a.lastRx, b.lastRx = tc.rxA, tc.rxB
		c.coalesceRx()
		if tc.sleeps {
			require.Equal(t, []time.Duration{50 * time.Microsecond}, slept, "%+v", tc)
		} else {
			require.Empty(t, slept, "%+v", tc)
		}
	}
}

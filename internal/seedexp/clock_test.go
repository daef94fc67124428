package seedexp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRealClock_AdvanceStopsWhenWoken(t *testing.T) {
	c := NewRealClock(0)
	calls := 0
	c.Advance(c.Now()+time.Hour, func() bool { calls++; return calls == 3 })
	require.Equal(t, 3, calls)
}

func TestRealClock_AdvanceReachesItsTarget(t *testing.T) {
	c := NewRealClock(time.Millisecond)
	target := c.Now() + 3*time.Millisecond
	c.Advance(target, nil)
	require.GreaterOrEqual(t, c.Now(), target)
	require.Equal(t, 5*time.Second, c.Wall(7*time.Second).Sub(c.Wall(2*time.Second)))
}

// fakeNetwork records how the virtual clock drives it.
type fakeNetwork struct {
	now   int64
	calls []int64
	woken bool
}

func (n *fakeNetwork) Now() int64 { return n.now }

func (n *fakeNetwork) RunUntil(end int64, stop func() bool) {
	n.calls = append(n.calls, end)
	if stop != nil && stop() {
		n.woken = true
		return
	}
	n.now = max(n.now, end)
}

func TestVirtualClock(t *testing.T) {
	n := &fakeNetwork{}
	c := NewVirtualClock(n)
	c.Advance(3*time.Second, nil)
	require.Equal(t, 3*time.Second, c.Now())
	c.Advance(5*time.Second, func() bool { return true })
	require.True(t, n.woken)
	require.Equal(t, 3*time.Second, c.Now(), "woken before it got there")
	require.Equal(t, []int64{int64(3 * time.Second), int64(5 * time.Second)}, n.calls)
	require.Equal(t, "Thu Oct 17 15:25:37 2013", c.Wall(3*time.Second).Format(ctimeLayout))
}

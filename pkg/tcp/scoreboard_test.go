package tcp

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/seqnum"
)

// Segments go in, are found by sequence number (across the wrap), come out oldest first,
// and the ring grows as needed and goes back to the pool when empty.
func TestScoreboard(t *testing.T) {
	pools := &segPools{}
	b := &scoreboard{pools: pools}
	base := seqnum.Value(0xffff_ff00)
	for i := 0; i < 100; i++ {
		s := base.Add(uint32(i * 10))
		b.push(s, s.Add(10), int64(i), uint32(i), 0)
	}
	require.Equal(t, 100, b.len())
	require.Equal(t, 128, len(b.segs))
	for i := 0; i < 100; i++ {
		require.Equal(t, base.Add(uint32(i*10)), b.at(i).start)
	}
	require.Equal(t, 0, b.search(base))
	require.Equal(t, 0, b.search(base.Add(9)))
	require.Equal(t, 1, b.search(base.Add(10)))
	require.Equal(t, 50, b.search(base.Add(505)))
	require.Equal(t, 100, b.search(base.Add(1000)))
	for i := 0; i < 60; i++ {
		b.popFront()
	}
	require.Equal(t, base.Add(600), b.at(0).start)
	for i := 0; i < 100; i++ { // wrap around the ring
		s := base.Add(uint32(1000 + i*10))
		b.push(s, s.Add(10), 0, 0, 0)
	}
	require.Equal(t, 140, b.len())
	require.Equal(t, base.Add(1990), b.last().start)
	for b.len() > 0 {
		b.popFront()
	}
	require.Nil(t, b.segs, "an empty scoreboard holds no ring")
	require.NotEmpty(t, pools.free[segClass(256)], "the ring is back in the pool")
	// Once warm, a burst in and out allocates nothing.
	require.Zero(t, testing.AllocsPerRun(100, func() {
		for i := 0; i < 200; i++ {
			b.push(seqnum.Value(i), seqnum.Value(i+1), 0, 0, 0)
		}
		for b.len() > 0 {
			b.popFront()
		}
	}))
}

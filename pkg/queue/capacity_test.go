package queue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRingSize_RoundsUpToPowerOfTwo(t *testing.T) {
	cases := []struct{ in, want int }{
		{0, 2}, {1, 2}, {2, 2}, {3, 4}, {4, 4}, {5, 8},
		{1000, 1024}, {1024, 1024}, {1025, 2048}, {MaxCapacity, MaxCapacity},
	}
	for _, c := range cases {
		require.Equal(t, c.want, ringSize(c.in), "capacity %d", c.in)
	}
}

func TestRingSize_PanicsOnAbsurdSizes(t *testing.T) {
	require.Panics(t, func() { ringSize(-1) })
	require.Panics(t, func() { ringSize(MaxCapacity + 1) })
	require.Panics(t, func() { NewMPMC[int](-5) })
	require.Panics(t, func() { NewSPSC[int](MaxCapacity * 2) })
}

func TestConstructors_Cap(t *testing.T) {
	require.Equal(t, 2, NewMPMC[int](1).Cap())
	require.Equal(t, 8, NewMPMC[int](5).Cap())
	require.Equal(t, 2, NewSPSC[int](0).Cap())
	require.Equal(t, 16, NewSPSC[int](9).Cap())
}

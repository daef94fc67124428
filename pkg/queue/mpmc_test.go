package queue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMPMC_FIFOAndFull(t *testing.T) {
	q := NewMPMC[int](4)
	require.Equal(t, 0, q.Len())
	for i := range 4 {
		require.True(t, q.Push(i))
		require.Equal(t, i+1, q.Len())
	}
	require.False(t, q.Push(99), "push into a full ring")
	require.Equal(t, 4, q.Len())
	for i := range 4 {
		v, ok := q.Pop()
		require.True(t, ok)
		require.Equal(t, i, v)
	}
	v, ok := q.Pop()
	require.False(t, ok, "pop from an empty ring")
	require.Zero(t, v)
	require.Equal(t, 0, q.Len())
}

func TestMPMC_WrapsManyLaps(t *testing.T) {
	q := NewMPMC[int](2)
	next := 0
	for i := range 1000 {
		require.True(t, q.Push(i))
		if i%2 == 1 {
			for range 2 {
				v, ok := q.Pop()
				require.True(t, ok)
				require.Equal(t, next, v)
				next++
			}
		}
	}
	require.Equal(t, 1000, next)
}

func TestMPMC_PopClearsSlot(t *testing.T) {
	q := NewMPMC[*int](2)
	x, y := new(int), new(int)
	require.True(t, q.Push(x))
	require.True(t, q.Push(y))
	_, _ = q.Pop()
	out := make([]*int, 2)
	require.Equal(t, 1, q.PopBatch(out))
	for i := range q.slots {
		require.Nil(t, q.slots[i].val, "slot %d still references a popped value", i)
	}
}

func TestMPMC_PushBatchPushesPrefixWhenNearlyFull(t *testing.T) {
	q := NewMPMC[int](4)
	require.True(t, q.Push(100))
	require.Equal(t, 3, q.PushBatch([]int{1, 2, 3, 4, 5}))
	require.Equal(t, 0, q.PushBatch([]int{6}))
	require.Equal(t, 0, q.PushBatch(nil))
	require.Equal(t, 4, q.Len())

	out := make([]int, 8)
	require.Equal(t, 4, q.PopBatch(out))
	require.Equal(t, []int{100, 1, 2, 3}, out[:4])
	require.Equal(t, 0, q.PopBatch(out))
	require.Equal(t, 0, q.PopBatch(nil))
}

func TestMPMC_BatchLargerThanRingAcrossWrap(t *testing.T) {
	q := NewMPMC[int](8)
	// Move the positions so that batches straddle the end of the slot array.
	for i := range 5 {
		require.True(t, q.Push(i))
		_, _ = q.Pop()
	}
	in := make([]int, 20)
	for i := range in {
		in[i] = i
	}
	require.Equal(t, 8, q.PushBatch(in))
	out := make([]int, 3)
	require.Equal(t, 3, q.PopBatch(out))
	require.Equal(t, []int{0, 1, 2}, out)
	require.Equal(t, 3, q.PushBatch(in[8:]))
	rest := make([]int, 20)
	require.Equal(t, 8, q.PopBatch(rest))
	require.Equal(t, []int{3, 4, 5, 6, 7, 8, 9, 10}, rest[:8])
}

func TestMPMC_SingleAndBatchInterleave(t *testing.T) {
	q := NewMPMC[int](16)
	require.Equal(t, 3, q.PushBatch([]int{1, 2, 3}))
	require.True(t, q.Push(4))
	v, ok := q.Pop()
	require.True(t, ok)
	require.Equal(t, 1, v)
	out := make([]int, 2)
	require.Equal(t, 2, q.PopBatch(out))
	require.Equal(t, []int{2, 3}, out)
	v, ok = q.Pop()
	require.True(t, ok)
	require.Equal(t, 4, v)
}

func TestMPMC_ZeroAllocs(t *testing.T) {
	q := NewMPMC[*int](64)
	x := new(int)
	batch := make([]*int, 16)
	for i := range batch {
		batch[i] = x
	}
	out := make([]*int, 16)
	allocs := testing.AllocsPerRun(200, func() {
		q.Push(x)
		q.Pop()
		q.PushBatch(batch)
		q.PopBatch(out)
		q.Len()
	})
	require.Zero(t, allocs)
}

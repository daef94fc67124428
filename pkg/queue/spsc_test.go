package queue

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSPSC_FIFOAndFull(t *testing.T) {
	q := NewSPSC[int](4)
	require.True(t, q.Empty())
	for i := range 4 {
		require.True(t, q.Push(i))
	}
	require.False(t, q.Push(99), "push into a full ring")
	require.Equal(t, 4, q.Len())
	require.False(t, q.Empty())
	for i := range 4 {
		v, ok := q.Pop()
		require.True(t, ok)
		require.Equal(t, i, v)
	}
	v, ok := q.Pop()
	require.False(t, ok, "pop from an empty ring")
	require.Zero(t, v)
	require.True(t, q.Empty())
	require.Equal(t, 0, q.Len())
}

func TestSPSC_EmptySeesNewPushAfterStaleCache(t *testing.T) {
	q := NewSPSC[int](4)
	require.True(t, q.Empty()) // caches tail == 0
	require.True(t, q.Push(7))
	require.False(t, q.Empty(), "Empty must refresh a stale tail cache")
	v, ok := q.Pop()
	require.True(t, ok)
	require.Equal(t, 7, v)
}

func TestSPSC_FullRefreshesStaleHeadCache(t *testing.T) {
	q := NewSPSC[int](2)
	require.True(t, q.Push(1))
	require.True(t, q.Push(2))
	require.False(t, q.Push(3)) // caches head == 0
	_, _ = q.Pop()
	require.True(t, q.Push(3), "Push must refresh a stale head cache")
	out := make([]int, 4)
	require.Equal(t, 2, q.PopBatch(out))
	require.Equal(t, []int{2, 3}, out[:2])
}

func TestSPSC_WrapsManyLaps(t *testing.T) {
	q := NewSPSC[int](4)
	next := 0
	for i := range 1001 {
		require.True(t, q.Push(i))
		if i%3 == 2 {
			for range 3 {
				v, ok := q.Pop()
				require.True(t, ok)
				require.Equal(t, next, v)
				next++
			}
		}
	}
	require.Equal(t, 999, next)
	require.Equal(t, 2, q.Len())
}

func TestSPSC_BatchPrefixAndWrap(t *testing.T) {
	q := NewSPSC[int](8)
	for i := range 6 {
		require.True(t, q.Push(i))
		_, _ = q.Pop()
	}
	in := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	require.Equal(t, 8, q.PushBatch(in), "only a prefix fits")
	require.Equal(t, 0, q.PushBatch(in[8:]))
	require.Equal(t, 0, q.PushBatch(nil))
	out := make([]int, 5)
	require.Equal(t, 5, q.PopBatch(out))
	require.Equal(t, []int{0, 1, 2, 3, 4}, out)
	require.Equal(t, 2, q.PushBatch(in[8:]))
	out = make([]int, 10)
	require.Equal(t, 5, q.PopBatch(out))
	require.Equal(t, []int{5, 6, 7, 8, 9}, out[:5])
	require.Equal(t, 0, q.PopBatch(out))
	require.Equal(t, 0, q.PopBatch(nil))
}

func TestSPSC_PopClearsSlot(t *testing.T) {
	q := NewSPSC[*int](2)
	require.Equal(t, 2, q.PushBatch([]*int{new(int), new(int)}))
	_, _ = q.Pop()
	out := make([]*int, 1)
	require.Equal(t, 1, q.PopBatch(out))
	for i, s := range q.slots {
		require.Nil(t, s, "slot %d still references a popped value", i)
	}
}

func TestSPSC_ZeroAllocs(t *testing.T) {
	q := NewSPSC[*int](64)
	x := new(int)
	batch := []*int{x, x, x, x, x, x, x, x}
	out := make([]*int, 8)
	allocs := testing.AllocsPerRun(200, func() {
		q.Push(x)
		q.Empty()
		q.Pop()
		q.PushBatch(batch)
		q.PopBatch(out)
		q.Len()
	})
	require.Zero(t, allocs)
}

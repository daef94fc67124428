package wheel

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkList verifies l's links both ways and returns its deadlines in order.
func checkList(t *testing.T, l *list) []int64 {
	t.Helper()
	var out []int64
	var prev *Timer
	for e := l.head; e != nil; e = e.next {
		require.Same(t, prev, e.prev, "prev link")
		require.Same(t, l, e.list, "list pointer")
		out = append(out, e.when)
		prev = e
	}
	require.Same(t, prev, l.tail, "tail")
	return out
}

func TestList_SortIsSortedAndStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 64, 65, 1000} {
		var l list
		ts := make([]Timer, n)
		for i := range ts {
			ts[i].when = rng.Int64N(20) // many ties to exercise stability
			ts[i].Kind = uint8(i)
			ts[i].Owner = i
			l.pushBack(&ts[i])
		}
		l.sort()
		got := checkList(t, &l)
		require.Len(t, got, n)
		require.True(t, slices.IsSorted(got), "n=%d", n)
		for e := l.head; e != nil && e.next != nil; e = e.next {
			if e.when == e.next.when {
				require.Less(t, e.Owner.(int), e.next.Owner.(int), "sort is not stable")
			}
		}
	}
}

func TestList_InsertSortedKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var l list
	ts := make([]Timer, 500)
	for i := range ts {
		ts[i].when = rng.Int64N(100)
		l.insertSorted(&ts[i])
	}
	got := checkList(t, &l)
	require.Len(t, got, len(ts))
	require.True(t, slices.IsSorted(got))

	// Remove every other timer; the links stay consistent.
	for i := 0; i < len(ts); i += 2 {
		l.remove(&ts[i])
		require.Nil(t, ts[i].list)
	}
	got = checkList(t, &l)
	require.Len(t, got, len(ts)/2)
	require.True(t, slices.IsSorted(got))
}

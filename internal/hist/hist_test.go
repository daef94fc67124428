package hist

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBucketsCoverValues(t *testing.T) {
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 123456789, 1 << 40} {
		i := index(v)
		require.LessOrEqual(t, lower(i), v, "v=%d", v)
		require.Greater(t, lower(i+1), v, "v=%d", v)
	}
}

func TestQuantileWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var h Histogram
	vals := make([]int64, 100000)
	for i := range vals {
		vals[i] = int64(r.ExpFloat64() * 50000)
		h.Record(vals[i])
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		require.GreaterOrEqual(t, float64(got), float64(exact)*0.93, "q=%v", q)
		require.LessOrEqual(t, float64(got), float64(exact)*1.07+1, "q=%v", q)
	}
	require.Equal(t, uint64(len(vals)), h.Count())
	require.Equal(t, vals[len(vals)-1], h.Max())
}

func TestMerge(t *testing.T) {
	var a, b Histogram
	a.Record(10)
	b.Record(1000)
	a.Merge(&b)
	require.Equal(t, uint64(2), a.Count())
	require.Equal(t, int64(1000), a.Max())
	require.Equal(t, int64(10), a.Quantile(0.5))
	require.Zero(t, testing.AllocsPerRun(100, func() { a.Record(5) }))
}

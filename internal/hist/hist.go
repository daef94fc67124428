// Package hist is a small fixed-size latency histogram (log-linear buckets, HdrHistogram's
// idea at 1/16 precision): recording is an array increment, merging is addition, and
// quantiles come back within about 6%. Nothing allocates after New.
package hist

import "math/bits"

const (
	subBits  = 4
	subCount = 1 << subBits
	groups   = 64 - subBits
)

// Histogram counts non-negative values (nanoseconds, typically).
type Histogram struct {
	counts [groups * subCount]uint64
	n      uint64
	max    int64
	sum    int64
}

func index(v int64) int {
	if v < subCount {
		return int(v)
	}
	u := uint64(v)
	g := bits.Len64(u) - subBits // >= 1
	sub := int(u>>(g-1)) & (subCount - 1)
	return g*subCount + sub
}

// lower returns the smallest value that falls in bucket i.
func lower(i int) int64 {
	g, sub := i/subCount, i%subCount
	if g == 0 {
		return int64(sub)
	}
	return int64(uint64(subCount+sub) << (g - 1))
}

// Record adds one value (negative values count as 0).
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[index(v)]++
	h.n++
	h.sum += v
	if v > h.max {
		h.max = v
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the average value.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return float64(h.sum) / float64(h.n)
}

// Quantile returns a value at or above the q-quantile (0 <= q <= 1): the upper edge of the
// bucket holding it, capped at the maximum seen.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			if i+1 < len(h.counts) {
				return min(lower(i+1)-1, h.max)
			}
			return h.max
		}
	}
	return h.max
}

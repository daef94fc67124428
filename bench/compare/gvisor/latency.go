package main

import "math/bits"

// subBuckets is how many buckets split each power of two: quantiles come back within
// 1/16 (about 6%) of the true value, enough to compare stacks.
const subBuckets = 16

// latency is a fixed-size log-linear histogram of nanosecond durations. Recording is an
// array increment, so timing a handshake allocates nothing and does not skew the
// allocations-per-connection figure.
type latency struct {
	counts [64 * subBuckets]uint64
	n      uint64
	max    int64
}

// bucket maps v >= 0 to its bucket: values below 16 have their own bucket; above, v is
// shifted right until it falls in [16, 32), and the shift picks the group.
func bucket(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - 5
	return (shift+1)*subBuckets + int(uint64(v)>>shift) - subBuckets
}

// upper returns the largest value that falls in bucket i.
func upper(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	shift := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return int64((m+1)<<shift - 1)
}

// record adds one duration (negative values count as 0).
func (h *latency) record(v int64) {
	v = max(v, 0)
	h.counts[bucket(v)]++
	h.n++
	h.max = max(h.max, v)
}

// merge adds o's counts to h.
func (h *latency) merge(o *latency) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns a value at or above the q-quantile: the upper edge of the bucket that
// holds it, capped at the largest value recorded. It returns 0 when nothing was recorded.
func (h *latency) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q * float64(h.n))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(upper(i), h.max)
		}
	}
	return h.max
}

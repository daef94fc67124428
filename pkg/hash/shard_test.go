package hash

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestShard_Range(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 7, 8, 64, 1000, math.MaxInt32} {
		for _, h := range []uint64{0, 1, 0xffffffff, 1 << 32, 1 << 63, math.MaxUint64} {
			s := Shard(h, n)
			require.GreaterOrEqual(t, s, 0)
			require.Less(t, s, n, "Shard(%#x, %d)", h, n)
		}
		require.Equal(t, 0, Shard(0, n))
		require.Equal(t, n-1, Shard(math.MaxUint64, n))
	}
	require.Equal(t, 0, Shard(math.MaxUint64, 0))
	require.Equal(t, 0, Shard(math.MaxUint64, -3))
}

func TestShard_UsesHighBitsOnly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		h := rng.Uint64()
		for _, n := range []int{2, 3, 4, 8, 12} {
			require.Equal(t, Shard(h&^0xffffffff, n), Shard(h|0xffffffff, n))
		}
	}
	// Evenly spread high halves land on every shard in order.
	for i := range 8 {
		require.Equal(t, i, Shard(uint64(i)<<61, 8))
	}
}

// chiSquare returns Pearson's statistic of counts against a uniform
// expectation.
func chiSquare(counts []int, total int) float64 {
	expected := float64(total) / float64(len(counts))
	var x float64
	for _, c := range counts {
		d := float64(c) - expected
		x += d * d / expected
	}
	return x
}

// chiCritical holds the chi-square critical values at p = 0.001 by degrees of
// freedom; a uniform mapping exceeds them once in a thousand seeds, and the
// seeds here are fixed.
var chiCritical = map[int]float64{1: 10.83, 2: 13.82, 3: 16.27, 7: 24.32, 31: 61.10}

// randomKeys returns n keys from a fixed seed, a mix of v4 and v6.
func randomKeys(n int) []Key {
	rng := rand.New(rand.NewPCG(2024, 7))
	keys := make([]Key, n)
	for i := range keys {
		var l, r [16]byte
		for j := range l {
			l[j], r[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		lp, rp := uint16(rng.Uint32()), uint16(rng.Uint32())
		if i%4 == 0 {
			keys[i] = KeyV6(l, lp, r, rp)
		} else {
			keys[i] = KeyV4([4]byte(l[:4]), lp, [4]byte(r[:4]), rp)
		}
	}
	return keys
}

func TestShard_UniformOverRandomKeys(t *testing.T) {
	const total = 100_000
	keys := randomKeys(total)
	h := NewHasher(0x1234_5678_9abc_def0)
	for _, n := range []int{2, 3, 4, 8} {
		counts := make([]int, n)
		for i := range keys {
			counts[Shard(h.Sum(&keys[i]), n)]++
		}
		x := chiSquare(counts, total)
		require.Less(t, x, chiCritical[n-1], "n=%d counts=%v", n, counts)
	}
}

// A typical server sees one local address and port and sequential
// ephemeral ports from a few clients: the hash must still spread them.
func TestShard_UniformOverSequentialPorts(t *testing.T) {
	const total = 100_000
	h := NewHasher(42)
	for _, n := range []int{2, 3, 4, 8} {
		counts := make([]int, n)
		for i := range total {
			k := KeyV4([4]byte{10, 0, 0, 1}, 443, [4]byte{10, 0, 1, byte(i / 50_000)}, uint16(1024+i%50_000))
			counts[Shard(h.Sum(&k), n)]++
		}
		require.Less(t, chiSquare(counts, total), chiCritical[n-1], "n=%d counts=%v", n, counts)
	}
}

// The chi-square check must be able to fail: unhashed sequential values
// have zero high bits and all land on shard 0.
func TestShard_ChiSquareRejectsSkew(t *testing.T) {
	const total = 100_000
	counts := make([]int, 4)
	for i := range total {
		counts[Shard(uint64(i), 4)]++
	}
	require.Greater(t, chiSquare(counts, total), chiCritical[3])
}

// Within the flows of one shard, table slots taken from the low bits must
// still be uniform: shard and slot are independent.
func TestShard_IndependentOfLowBits(t *testing.T) {
	const total = 100_000
	keys := randomKeys(total)
	h := NewHasher(77)
	counts := make([]int, 4*8)
	for i := range keys {
		sum := h.Sum(&keys[i])
		counts[Shard(sum, 4)*8+int(sum&7)]++
	}
	require.Less(t, chiSquare(counts, total), chiCritical[31], "counts=%v", counts)
}

package hash

import (
	"encoding/binary"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

func TestSum_EqualKeysHashEqual(t *testing.T) {
	h := NewHasher(0xdeadbeef)
	a := benchKeyV4()
	b := KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 40000)
	require.Equal(t, h.Sum(&a), h.Sum(&b))
	h2 := NewHasher(h.Seed())
	require.Equal(t, h.Sum(&a), h2.Sum(&b), "a hasher rebuilt from its seed hashes the same")

	c, d := benchKeyV6(), benchKeyV6()
	require.Equal(t, h.Sum(&c), h.Sum(&d))
}

// The input layout is part of the contract (captures and other tools can
// recompute a flow's shard from it), so pin it.
func TestSum_MatchesDocumentedLayout(t *testing.T) {
	const seed = 0x0123456789abcdef
	h := NewHasher(seed)

	// The smaller endpoint (address, then port) goes first, whichever side it is.
	k4 := KeyV4([4]byte{198, 18, 0, 2}, 80, [4]byte{198, 18, 0, 1}, 40000)
	var in4 []byte
	in4 = binary.LittleEndian.AppendUint64(in4, seed)
	in4 = append(in4, 198, 18, 0, 1)
	in4 = binary.BigEndian.AppendUint16(in4, 40000)
	in4 = append(in4, 198, 18, 0, 2)
	in4 = binary.BigEndian.AppendUint16(in4, 80)
	require.Len(t, in4, 20)
	require.Equal(t, xxhash.Sum64(in4), h.Sum(&k4))

	k6 := benchKeyV6()
	lo, hi := k6.LocalAddr, k6.RemoteAddr
	lp, hp := k6.LocalPort, k6.RemotePort
	if string(lo[:]) > string(hi[:]) || (lo == hi && lp > hp) {
		lo, hi, lp, hp = hi, lo, hp, lp
	}
	var in6 []byte
	in6 = binary.LittleEndian.AppendUint64(in6, seed)
	in6 = append(in6, lo[:]...)
	in6 = binary.BigEndian.AppendUint16(in6, lp)
	in6 = append(in6, hi[:]...)
	in6 = binary.BigEndian.AppendUint16(in6, hp)
	require.Len(t, in6, 44)
	require.Equal(t, xxhash.Sum64(in6), h.Sum(&k6))
}

func TestSum_V4IgnoresUnusedAddressBytes(t *testing.T) {
	h := NewHasher(99)
	clean := benchKeyV4()
	dirty := clean
	for i := 4; i < 16; i++ {
		dirty.LocalAddr[i] = byte(i)
		dirty.RemoteAddr[i] = byte(0xff - i)
	}
	require.Equal(t, h.Sum(&clean), h.Sum(&dirty))
}

func TestSum_EverySeedBitMatters(t *testing.T) {
	const seed = 0x5eed5eed5eed5eed
	for _, k := range []Key{benchKeyV4(), benchKeyV6()} {
		base := NewHasher(seed).Sum(&k)
		for bit := range 64 {
			require.NotEqual(t, base, NewHasher(seed^1<<bit).Sum(&k), "seed bit %d, v6=%v", bit, k.V6)
		}
	}
}

func TestSum_EveryFieldMatters(t *testing.T) {
	h := NewHasher(1234)
	for _, base := range []Key{benchKeyV4(), benchKeyV6()} {
		addrBytes := 4
		if base.V6 {
			addrBytes = 16
		}
		want := h.Sum(&base)
		var mutants []Key
		for i := range addrBytes {
			m := base
			m.LocalAddr[i] ^= 0x80
			mutants = append(mutants, m)
			m = base
			m.RemoteAddr[i] ^= 0x01
			mutants = append(mutants, m)
		}
		for _, bit := range []uint16{1, 0x100, 0x8000} {
			m := base
			m.LocalPort ^= bit
			mutants = append(mutants, m)
			m = base
			m.RemotePort ^= bit
			mutants = append(mutants, m)
		}
		for i, m := range mutants {
			require.NotEqual(t, want, h.Sum(&m), "mutant %d of %v", i, base)
		}
	}
}

// The hash is symmetric: both directions of a flow hash the same, so two stacks sharing
// a seed pick the same shard index for it.
func TestSum_Symmetric(t *testing.T) {
	h := NewHasher(77)
	for _, k := range []Key{benchKeyV4(), benchKeyV6(),
		KeyV4([4]byte{10, 0, 0, 1}, 5, [4]byte{10, 0, 0, 1}, 6),
		KeyV6([16]byte{1}, 9, [16]byte{1}, 8)} {
		r := k.Reverse()
		require.Equal(t, h.Sum(&k), h.Sum(&r), "%v", k)
	}
}

func TestRandomHasher_DrawsSeeds(t *testing.T) {
	a, b := RandomHasher(), RandomHasher()
	require.NotEqual(t, a.Seed(), b.Seed())
	k := benchKeyV4()
	require.NotEqual(t, a.Sum(&k), b.Sum(&k))
}

func TestSum_ZeroAllocs(t *testing.T) {
	h := RandomHasher()
	k4, k6 := benchKeyV4(), benchKeyV6()
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		sink += h.Sum(&k4) + h.Sum(&k6) + uint64(Shard(sink, 4))
	})
	require.Zero(t, allocs)
	_ = sink
}

// FuzzSum builds keys from arbitrary bytes: Sum is deterministic, ignores the
// unused bytes of IPv4 keys, and Shard stays in range.
func FuzzSum(f *testing.F) {
	f.Add(uint64(0), make([]byte, 36), false, 3)
	f.Add(uint64(1)<<63, []byte{198, 18, 0, 1, 198, 18, 0, 2, 0, 80, 0x9c, 0x40}, false, 1)
	f.Add(^uint64(0), make([]byte, 40), true, 64)
	f.Fuzz(func(t *testing.T, seed uint64, raw []byte, v6 bool, n int) {
		var buf [36]byte
		copy(buf[:], raw)
		k := Key{V6: v6}
		copy(k.LocalAddr[:], buf[0:16])
		copy(k.RemoteAddr[:], buf[16:32])
		k.LocalPort = binary.BigEndian.Uint16(buf[32:])
		k.RemotePort = binary.BigEndian.Uint16(buf[34:])
		h := NewHasher(seed)
		sum := h.Sum(&k)
		k2 := k
		require.Equal(t, sum, h.Sum(&k2))
		if !v6 {
			clean := KeyV4([4]byte(k.LocalAddr[:4]), k.LocalPort, [4]byte(k.RemoteAddr[:4]), k.RemotePort)
			require.Equal(t, sum, h.Sum(&clean))
		}
		s := Shard(sum, n)
		if n < 1 {
			require.Zero(t, s)
		} else {
			require.GreaterOrEqual(t, s, 0)
			require.Less(t, s, n)
		}
	})
}

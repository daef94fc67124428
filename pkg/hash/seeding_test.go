package hash

import (
	"encoding/binary"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"
)

// sumDigest is the rejected seeding strategy (a Digest on the stack with
// ResetWithSeed), kept here so BenchmarkSeeding can show why Sum does not
// use it.
func sumDigest(seed uint64, k *Key) uint64 {
	// Same input bytes as Sum minus the seed prefix, built with the same
	// wide stores, so the comparison is only about seeding.
	var b [36]byte
	n := 12
	if k.V6 {
		copy(b[:], k.LocalAddr[:])
		copy(b[16:], k.RemoteAddr[:])
		binary.BigEndian.PutUint32(b[32:], uint32(k.LocalPort)<<16|uint32(k.RemotePort))
		n = 36
	} else {
		local := binary.LittleEndian.Uint32(k.LocalAddr[:4])
		remote := binary.LittleEndian.Uint32(k.RemoteAddr[:4])
		binary.LittleEndian.PutUint64(b[:], uint64(local)|uint64(remote)<<32)
		binary.BigEndian.PutUint32(b[8:], uint32(k.LocalPort)<<16|uint32(k.RemotePort))
	}
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	_, _ = d.Write(b[:n])
	return d.Sum64()
}

func TestSeeding_BothStrategiesAllocateNothing(t *testing.T) {
	h := NewHasher(42)
	k4 := benchKeyV4()
	k6 := benchKeyV6()
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		sink += h.Sum(&k4) + h.Sum(&k6) + sumDigest(42, &k4) + sumDigest(42, &k6)
	})
	require.Zero(t, allocs)
	_ = sink
}

func BenchmarkSeeding(b *testing.B) {
	k4, k6 := benchKeyV4(), benchKeyV6()
	h := NewHasher(0x9e3779b97f4a7c15)
	var sink uint64
	b.Run("prefix-sum64/v4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += h.Sum(&k4)
		}
	})
	b.Run("prefix-sum64/v6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += h.Sum(&k6)
		}
	})
	b.Run("digest-reset-with-seed/v4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += sumDigest(h.seed, &k4)
		}
	})
	b.Run("digest-reset-with-seed/v6", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink += sumDigest(h.seed, &k6)
		}
	})
	_ = sink
}

package hash

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Hasher is a seeded xxhash64 of a Key. Each stack draws a random seed so
// that peers cannot predict which flows share a shard or a table slot. It is
// a small value, safe to copy and to use from many goroutines.
//
// xxhash is fast, not a keyed PRF: the seed defeats blind hash flooding but
// not an attacker who can observe bucket timing for long. Tables keep their
// chains short by their own limits, not by trusting the hash.
type Hasher struct {
	seed uint64
}

// NewHasher returns a Hasher with the given seed; tests and reproducible
// experiments use it.
func NewHasher(seed uint64) Hasher { return Hasher{seed: seed} }

// RandomHasher returns a Hasher seeded from crypto/rand.
func RandomHasher() Hasher {
	var b [8]byte
	// crypto/rand.Read never returns an error since Go 1.24; it aborts the
	// program instead if the system source fails.
	_, _ = rand.Read(b[:])
	return Hasher{seed: binary.LittleEndian.Uint64(b[:])}
}

// Seed returns the seed, so that a stack can log it and a run be replayed.
func (h Hasher) Seed() uint64 { return h.seed }

// Input layout: the 8-byte seed, then local address, remote address, local
// port, remote port (ports big-endian, as on the wire). An IPv4 key fills
// 8+4+4+2+2 = 20 bytes, an IPv6 key 8+16+16+2+2 = 44.
const (
	seedLen  = 8
	sumLenV4 = seedLen + 4 + 4 + 2 + 2
	sumLenV6 = seedLen + 16 + 16 + 2 + 2
)

// Sum returns the flow hash of k. It allocates nothing. An IPv4 key hashes
// only its 12 meaningful bytes (bytes 4..15 of its address arrays are
// ignored); an IPv6 key hashes all 36.
//
// Seeding: the seed is prepended to the key and the fixed array goes through
// the one-shot xxhash.Sum64, rather than a Digest on the stack with
// ResetWithSeed + Write + Sum64. Both allocate nothing, but the Digest copies
// the input into its own buffer and runs the streaming finish, which costs
// more than the 8 extra input bytes: measured with BenchmarkSeeding (2-core
// amd64 Xeon VM), about 7 ns against 25 ns for IPv4 keys and 11 ns against
// 17 ns for IPv6 keys. Every seed bit still changes the result, since the
// seed is ordinary hash input.
func (h Hasher) Sum(k *Key) uint64 {
	// Each field goes in with one store as wide as the loads xxhash makes
	// later: narrower stores that a wide load straddles defeat store-to-load
	// forwarding and cost several ns per key.
	var b [sumLenV6]byte
	binary.LittleEndian.PutUint64(b[:seedLen], h.seed)
	if !k.V6 {
		local := binary.LittleEndian.Uint32(k.LocalAddr[:4])
		remote := binary.LittleEndian.Uint32(k.RemoteAddr[:4])
		binary.LittleEndian.PutUint64(b[seedLen:], uint64(local)|uint64(remote)<<32)
		binary.BigEndian.PutUint32(b[seedLen+8:], uint32(k.LocalPort)<<16|uint32(k.RemotePort))
		return xxhash.Sum64(b[:sumLenV4])
	}
	copy(b[seedLen:], k.LocalAddr[:])
	copy(b[seedLen+16:], k.RemoteAddr[:])
	binary.BigEndian.PutUint32(b[seedLen+32:], uint32(k.LocalPort)<<16|uint32(k.RemotePort))
	return xxhash.Sum64(b[:])
}

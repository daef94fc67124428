package tcp

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/hash"

	"github.com/dchest/siphash"
)

// secrets are the per-stack keys of every keyed function the spec calls for: ISNs and
// timestamp offsets (RFC 6528, spec §7), the ephemeral-port offset (RFC 6056 §3.3.4) and SYN
// cookies (spec §6). SipHash-2-4, as Linux uses: these must resist an adversary who chooses
// the inputs, which the flow hash (xxhash) does not.
type secrets struct {
	isn, ts, port [2]uint64
	cookie        [2][2]uint64 // Linux syncookie_secret[2]
	challenge     [2]uint64    // the per-second challenge-ACK budget (get_random_u32_inclusive)
}

// newSecrets draws the keys from seed (tests, reproducible simulations) or, when seed is 0,
// from crypto/rand.
func newSecrets(seed uint64) secrets {
	var b [96]byte
	if seed == 0 {
		if _, err := rand.Read(b[:]); err != nil {
			panic("tcp: crypto/rand failed: " + err.Error())
		}
	} else {
		// SplitMix64 expansion of the seed.
		x := seed
		for i := 0; i < len(b)/8; i++ {
			x += 0x9e3779b97f4a7c15
			z := x
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
			z = (z ^ (z >> 27)) * 0x94d049bb133111eb
			binary.LittleEndian.PutUint64(b[i*8:], z^(z>>31))
		}
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[i*8:]) }
	return secrets{
		isn:       [2]uint64{u(0), u(1)},
		ts:        [2]uint64{u(2), u(3)},
		port:      [2]uint64{u(4), u(5)},
		cookie:    [2][2]uint64{{u(6), u(7)}, {u(8), u(9)}},
		challenge: [2]uint64{u(10), u(11)},
	}
}

// sip hashes fixed-layout input without allocating.
func sip(k [2]uint64, in []byte) uint64 { return siphash.Hash(k[0], k[1], in) }

// tuple lays out (local ip, remote ip, local port, remote port, extra) for the keyed
// functions: 16 bytes for IPv4 (the layout the IPv4 values always had), 40 for IPv6.
func tuple(k *hash.Key, lport, rport uint16, extra uint32, b *[40]byte) []byte {
	if !k.V6 {
		copy(b[0:4], k.LocalAddr[:4])
		copy(b[4:8], k.RemoteAddr[:4])
		binary.BigEndian.PutUint16(b[8:], lport)
		binary.BigEndian.PutUint16(b[10:], rport)
		binary.BigEndian.PutUint32(b[12:], extra)
		return b[:16]
	}
	copy(b[0:16], k.LocalAddr[:])
	copy(b[16:32], k.RemoteAddr[:])
	binary.BigEndian.PutUint16(b[32:], lport)
	binary.BigEndian.PutUint16(b[34:], rport)
	binary.BigEndian.PutUint32(b[36:], extra)
	return b[:40]
}

// isnFor returns RFC 6528's ISN = M + F(4-tuple, secret) for the flow k (seen from us), M
// ticking every 64 ns as in Linux (secure_tcp_seq: ns >> 6).
func (s *secrets) isnFor(k *hash.Key, nowNanos int64) uint32 {
	var b [40]byte
	return uint32(sip(s.isn, tuple(k, k.LocalPort, k.RemotePort, 0, &b))) + uint32(uint64(nowNanos)>>6)
}

// tsOffset returns the per-address-pair random timestamp offset (Linux secure_tcp_ts_off).
func (s *secrets) tsOffset(k *hash.Key) uint32 {
	var b [32]byte
	if !k.V6 {
		copy(b[0:4], k.LocalAddr[:4])
		copy(b[4:8], k.RemoteAddr[:4])
		return uint32(sip(s.ts, b[:8]))
	}
	copy(b[0:16], k.LocalAddr[:])
	copy(b[16:32], k.RemoteAddr[:])
	return uint32(sip(s.ts, b[:]))
}

// portOffset is RFC 6056 §3.3.4's F(local ip, remote ip, remote port, secret); k's local
// port is not used.
func (s *secrets) portOffset(k *hash.Key) uint32 {
	var b [40]byte
	return uint32(sip(s.port, tuple(k, 0, k.RemotePort, 0, &b)))
}

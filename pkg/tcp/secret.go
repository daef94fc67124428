package tcp

import (
	"crypto/rand"
	"encoding/binary"

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

// sip hashes up to 16 bytes of fixed-layout input without allocating.
func sip(k [2]uint64, in []byte) uint64 { return siphash.Hash(k[0], k[1], in) }

// tuple12 lays out (local ip, remote ip, local port, remote port) for the keyed functions.
func tuple12(laddr, raddr [4]byte, lport, rport uint16, extra uint32) [16]byte {
	var b [16]byte
	copy(b[0:4], laddr[:])
	copy(b[4:8], raddr[:])
	binary.BigEndian.PutUint16(b[8:], lport)
	binary.BigEndian.PutUint16(b[10:], rport)
	binary.BigEndian.PutUint32(b[12:], extra)
	return b
}

// isn returns RFC 6528's ISN = M + F(4-tuple, secret), M ticking every 64 ns as in Linux
// (secure_tcp_seq: ns >> 6).
func (s *secrets) isnFor(laddr, raddr [4]byte, lport, rport uint16, nowNanos int64) uint32 {
	b := tuple12(laddr, raddr, lport, rport, 0)
	return uint32(sip(s.isn, b[:])) + uint32(uint64(nowNanos)>>6)
}

// tsOffset returns the per-address-pair random timestamp offset (Linux secure_tcp_ts_off).
func (s *secrets) tsOffset(laddr, raddr [4]byte) uint32 {
	var b [8]byte
	copy(b[0:4], laddr[:])
	copy(b[4:8], raddr[:])
	return uint32(sip(s.ts, b[:]))
}

// portOffset is RFC 6056 §3.3.4's F(local ip, remote ip, remote port, secret).
func (s *secrets) portOffset(laddr, raddr [4]byte, rport uint16) uint32 {
	b := tuple12(laddr, raddr, 0, rport, 0)
	return uint32(sip(s.port, b[:]))
}

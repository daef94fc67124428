package dpdkshim_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
)

func v6Frame(src, dst [16]byte, next uint8, sport, dport uint16) []byte {
	b := make([]byte, header.EthernetLen+header.IPv6Len+header.TCPMinLen)
	header.EncodeEthernet(b, header.MAC{2}, header.MAC{4}, header.EtherTypeIPv6)
	header.EncodeIPv6(b[header.EthernetLen:], header.TCPMinLen, next, 64, src, dst)
	t := b[header.EthernetLen+header.IPv6Len:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	return b
}

// TestSymmetric_FrameMatchesKey: the queue a link computes from a frame equals the queue
// the receiving stack computes from its own view of the flow, for both directions, IPv4 and
// IPv6, and the function spreads flows over every queue.
func TestSymmetric_FrameMatchesKey(t *testing.T) {
	for _, seed := range []uint32{0, 1, 0xdeadbeef} {
		s := dpdkshim.Symmetric{Seed: seed}
		for _, n := range []int{2, 3, 4, 8} {
			hits := make([]int, n)
			for sport := uint16(32768); sport < 32768+2000; sport++ {
				in := []byte(flowFrame(addrA, addrB, sport, 443, ""))  // arrives at B
				out := []byte(flowFrame(addrB, addrA, 443, sport, "")) // B's reply
				kB := hash.KeyV4(addrB, 443, addrA, sport)
				kA := hash.KeyV4(addrA, sport, addrB, 443)
				q := s.Queue(kB, n)
				require.Equal(t, q, s.FrameQueue(in, n))
				require.Equal(t, q, s.FrameQueue(out, n), "symmetric")
				require.Equal(t, q, s.Queue(kA, n), "the peer's view picks the same queue")
				hits[q]++
			}
			for q, c := range hits {
				require.Greater(t, c, 2000/n/2, "seed %#x n %d: queue %d gets its share", seed, n, q)
			}
		}
	}
	s := dpdkshim.Symmetric{Seed: 7}
	a6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	b6 := [16]byte{0x20, 0x01, 0x0d, 0xb8, 7: 9, 15: 2}
	for sport := uint16(1000); sport < 1100; sport++ {
		k := hash.KeyV6(b6, 80, a6, sport)
		q := s.Queue(k, 4)
		require.Equal(t, q, s.FrameQueue(v6Frame(a6, b6, header.ProtoTCP, sport, 80), 4))
		require.Equal(t, q, s.FrameQueue(v6Frame(b6, a6, header.ProtoTCP, 80, sport), 4))
	}
}

// TestSymmetric_WhatHasNoPorts: a fragment, an IPv6 packet behind an extension header and a
// protocol without ports steer by the addresses alone; what is not IP, or too short, goes to
// queue 0; nothing panics on a truncated frame.
func TestSymmetric_WhatHasNoPorts(t *testing.T) {
	s := dpdkshim.Symmetric{Seed: 99}
	addrOnly := func(n int) int { return int(s.Mix(binaryXor(addrA, addrB), 0) % uint32(n)) }
	frag := []byte(flowFrame(addrA, addrB, 1234, 80, ""))
	frag[header.EthernetLen+6] |= 0x20 // more fragments
	require.Equal(t, addrOnly(4), s.FrameQueue(frag, 4))
	icmp := []byte(flowFrame(addrA, addrB, 1234, 80, ""))
	icmp[header.EthernetLen+9] = 1
	require.Equal(t, addrOnly(4), s.FrameQueue(icmp, 4))
	a6 := [16]byte{0xfe, 0x80, 15: 1}
	b6 := [16]byte{0xfe, 0x80, 15: 2}
	require.Equal(t, s.FrameQueue(v6Frame(a6, b6, 0 /* hop-by-hop */, 1, 2), 4), s.FrameQueue(v6Frame(a6, b6, 0, 3, 4), 4))
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], header.EtherTypeARP)
	require.Zero(t, s.FrameQueue(arp, 4))
	full := []byte(flowFrame(addrA, addrB, 1, 2, ""))
	for i := range full {
		require.NotPanics(t, func() { s.FrameQueue(full[:i], 4) })
	}
	require.Zero(t, s.FrameQueue(full, 1), "one queue: always 0")
}

func binaryXor(a, b [4]byte) uint32 {
	return binary.BigEndian.Uint32(a[:]) ^ binary.BigEndian.Uint32(b[:])
}

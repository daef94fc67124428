package dpdkshim

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/hash"
)

// TestSymmetric_IPQueueMatchesFrameQueue: a bare IP packet steers as the same packet behind
// an Ethernet header whose EtherType agrees with its version, at every truncation; other
// versions go to queue 0; and a TCP packet's queue is Queue of its flow key.
func TestSymmetric_IPQueueMatchesFrameQueue(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := Symmetric{Seed: 0x1234}
	for i := 0; i < 2000; i++ {
		ip := make([]byte, 20+r.IntN(60))
		for j := range ip {
			ip[j] = byte(r.Uint32())
		}
		etherType := uint16(0x0800)
		if r.IntN(2) == 0 {
			ip[0] = 0x40 | ip[0]&0xf
		} else {
			ip[0] = 0x60 | ip[0]&0xf
			etherType = 0x86dd
		}
		if r.IntN(2) == 0 { // TCP with ports: no IPv4 fragment, no IPv6 extension header
			if etherType == 0x0800 {
				ip[6], ip[7], ip[9] = 0, 0, 6
			} else {
				ip[6] = 6
			}
		}
		frame := append(make([]byte, 14), ip...)
		binary.BigEndian.PutUint16(frame[12:], etherType)
		for _, n := range []int{1, 2, 3, 8} {
			for cut := 0; cut <= len(ip); cut += 7 {
				require.Equal(t, s.FrameQueue(frame[:14+cut], n), s.IPQueue(ip[:cut], n), "n %d cut %d: % x", n, cut, ip)
			}
		}
		ip[0] = byte(r.IntN(16)) << 4
		if v := ip[0] >> 4; v != 4 && v != 6 {
			require.Zero(t, s.IPQueue(ip, 8))
		}
	}
	// A TCP/IPv4 packet as the stack's key sees it (from the receiving side).
	ip := make([]byte, 40)
	ip[0], ip[9] = 0x45, 6
	local, remote := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}
	copy(ip[12:], remote[:])
	copy(ip[16:], local[:])
	for port := uint16(1000); port < 1100; port++ {
		binary.BigEndian.PutUint16(ip[20:], port)
		binary.BigEndian.PutUint16(ip[22:], 80)
		require.Equal(t, s.Queue(hash.KeyV4(local, 80, remote, port), 4), s.IPQueue(ip, 4))
	}
}

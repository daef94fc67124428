package dpdk

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/hash"
)

// SymmetricKey returns an RSS key of n bytes that makes the Toeplitz hash symmetric: the
// 16-bit pattern 0x6d5a repeated. Any key with a 16-bit period gives the two directions
// of a flow the same hash, since the source and destination addresses (and ports) then
// meet the same windows of the key.
func SymmetricKey(n int) []byte {
	k := make([]byte, n)
	for i := range k {
		if i%2 == 0 {
			k[i] = 0x6d
		} else {
			k[i] = 0x5a
		}
	}
	return k
}

// Toeplitz is the RSS hash NICs compute, over input with key: for every input bit that is
// set, counting from the most significant bit of the first byte, the 32 key bits that
// start at the same position are XORed into the result. key must be at least len(input)+4
// bytes long.
func Toeplitz(key, input []byte) uint32 {
	if len(key) < len(input)+4 {
		return 0
	}
	var h uint32
	window := binary.BigEndian.Uint32(key)
	next := 4
	for _, b := range input {
		for bit := 7; bit >= 0; bit-- {
			if b&(1<<bit) != 0 {
				h ^= window
			}
			window <<= 1
			if key[next]&(1<<bit) != 0 {
				window |= 1
			}
		}
		next++
	}
	return h
}

// RSS is the steering of a port that hashes received flows with Toeplitz and looks the
// queue up in its redirection table (RETA), reta[hash % len(reta)]. What the port hashes
// is as it was configured: the 4-tuple of TCP (TCP4, TCP6), else the addresses (IP4, IP6),
// else nothing (queue 0).
type RSS struct {
	Key                  []byte
	Reta                 []uint16
	TCP4, TCP6, IP4, IP6 bool
}

// Queue implements dpdkshim.Steering. k is the receiving stack's view: received frames
// come from k.RemoteAddr:RemotePort to k.LocalAddr:LocalPort, the order the NIC hashes.
func (r *RSS) Queue(k hash.Key, n int) int {
	if n <= 1 || len(r.Reta) == 0 {
		return 0
	}
	var in [36]byte
	var m int
	switch {
	case !k.V6 && (r.TCP4 || r.IP4):
		copy(in[0:4], k.RemoteAddr[:4])
		copy(in[4:8], k.LocalAddr[:4])
		m = 8
		if r.TCP4 {
			binary.BigEndian.PutUint16(in[8:], k.RemotePort)
			binary.BigEndian.PutUint16(in[10:], k.LocalPort)
			m = 12
		}
	case k.V6 && (r.TCP6 || r.IP6):
		copy(in[0:16], k.RemoteAddr[:])
		copy(in[16:32], k.LocalAddr[:])
		m = 32
		if r.TCP6 {
			binary.BigEndian.PutUint16(in[32:], k.RemotePort)
			binary.BigEndian.PutUint16(in[34:], k.LocalPort)
			m = 36
		}
	default:
		return 0
	}
	q := int(r.Reta[Toeplitz(r.Key, in[:m])%uint32(len(r.Reta))])
	if q >= n {
		q %= n
	}
	return q
}

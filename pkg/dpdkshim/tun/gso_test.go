package tun

// The coalescing itself is shared with the AF_PACKET backend and tested in
// internal/vnet; these helpers build the segments the port tests write.

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// seg builds a TCP/IPv4 segment as the stack transmits it with checksum offload: the TCP
// checksum field holds the folded pseudo-header sum and the packet is marked TxCsum.
func seg(pool *dpdkshim.Pool, sport uint16, seq uint32, flags byte, opts []byte, payload []byte) *dpdkshim.Packet {
	p := pool.Get()
	thl := 20 + len(opts)
	n := 20 + thl + len(payload)
	d := p.Append(n)
	src, dst := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, 0, 2}
	d[0], d[1] = 0x45, 0
	binary.BigEndian.PutUint16(d[2:], uint16(n))
	binary.BigEndian.PutUint16(d[4:], uint16(seq)) // an ID that changes
	d[6], d[7], d[8], d[9] = 0x40, 0, 64, 6
	copy(d[12:], src[:])
	copy(d[16:], dst[:])
	binary.BigEndian.PutUint16(d[10:], checksum.Checksum(d[:20], 0))
	t := d[20:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], 80)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], 777)
	t[12], t[13] = byte(thl/4)<<4, flags
	binary.BigEndian.PutUint16(t[14:], 500)
	copy(t[20:], opts)
	copy(t[thl:], payload)
	binary.BigEndian.PutUint16(t[16:], checksum.Fold(checksum.PseudoHeaderIPv4(src, dst, 6, uint16(thl+len(payload)))))
	p.SetTxCsum(20, 36)
	return p
}

func payload(n int, b byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i)
	}
	return out
}

package tun

import (
	"encoding/binary"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"testing"

	"github.com/stretchr/testify/require"

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

// TestGSORun: which consecutive segments coalesce, and what the super-packet holds.
func TestGSORun(t *testing.T) {
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 256})
	ts := []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7}
	ack, psh := byte(tcpFlagACK), byte(tcpFlagACK|tcpFlagPSH)
	const mss = 1000
	run := func(pkts ...*dpdkshim.Packet) int {
		n, _, _ := gsoRun(pkts)
		return n
	}
	// Four full segments and a short last one with PSH: one run of five.
	var pkts []*dpdkshim.Packet
	for i := 0; i < 4; i++ {
		pkts = append(pkts, seg(pool, 1000, uint32(100+i*mss), ack, ts, payload(mss, byte(i))))
	}
	pkts = append(pkts, seg(pool, 1000, 100+4*mss, psh, ts, payload(300, 9)))
	n, thl, gso := gsoRun(pkts)
	require.Equal(t, 5, n)
	require.Equal(t, 32, thl)
	require.Equal(t, mss, gso)

	buf := make([]byte, virtio.HdrLen+0xffff)
	l := buildSuper(buf, pkts, thl, gso)
	h, ip := buf[:virtio.HdrLen], buf[virtio.HdrLen:l]
	require.Equal(t, byte(virtio.FlagNeedsCsum), h[0])
	require.Equal(t, byte(vnetGSOTCPv4), h[1])
	require.Equal(t, uint16(52), binary.NativeEndian.Uint16(h[2:]), "hdr_len: IP and TCP headers")
	require.Equal(t, uint16(mss), binary.NativeEndian.Uint16(h[4:]))
	require.Equal(t, uint16(20), binary.NativeEndian.Uint16(h[6:]))
	require.Equal(t, uint16(16), binary.NativeEndian.Uint16(h[8:]))
	require.Equal(t, 52+4*mss+300, len(ip))
	require.Equal(t, len(ip), int(binary.BigEndian.Uint16(ip[2:])))
	require.Equal(t, uint16(0), checksum.Checksum(ip[:20], 0), "a valid IP header checksum")
	require.Equal(t, uint32(100), binary.BigEndian.Uint32(ip[24:]), "the first segment's sequence")
	require.Equal(t, psh, ip[33], "the last segment's PSH")
	require.Equal(t, checksum.Fold(checksum.PseudoHeaderIPv4([4]byte(ip[12:16]), [4]byte(ip[16:20]), 6, uint16(len(ip)-20))),
		binary.BigEndian.Uint16(ip[36:]), "the pseudo-header sum of the whole TCP length")
	// Segmented again as the kernel would, the payloads are the originals'.
	body := ip[52:]
	for i, p := range pkts {
		want := p.Data()[52:]
		require.Equal(t, want, body[:len(want)], "segment %d", i)
		body = body[len(want):]
	}
	require.Empty(t, body)

	// What breaks a run.
	full := func(sport uint16, seq uint32, fl byte, opts []byte, n int) *dpdkshim.Packet {
		return seg(pool, sport, seq, fl, opts, payload(n, 1))
	}
	require.Equal(t, 1, run(full(1, 0, psh, ts, mss), full(1, mss, ack, ts, mss)), "PSH ends a run")
	require.Equal(t, 1, run(full(1, 0, ack, ts, mss), full(2, mss, ack, ts, mss)), "another flow")
	require.Equal(t, 1, run(full(1, 0, ack, ts, mss), full(1, mss+1, ack, ts, mss)), "a gap")
	require.Equal(t, 3, run(full(1, 0, ack, ts, 500), full(1, 500, ack, ts, 500), full(1, 1000, ack, ts, 500)),
		"equal short segments coalesce")
	require.Equal(t, 1, run(full(1, 0, ack, ts, 400), full(1, 400, ack, ts, 500)), "a longer segment after a shorter one")
	ts2 := append([]byte(nil), ts...)
	ts2[7]++
	require.Equal(t, 1, run(full(1, 0, ack, ts, mss), full(1, mss, ack, ts2, mss)), "other options (a newer timestamp)")
	require.Equal(t, 1, run(full(1, 0, ack|tcpFlagFIN, ts, mss), full(1, mss, ack, ts, mss)), "FIN goes alone")
	require.Equal(t, 1, run(full(1, 0, ack, ts, mss), full(1, mss, ack|tcpFlagFIN, ts, 10)), "and does not join")
	noCsum := full(1, 0, ack, ts, mss)
	noCsum.Flags &^= dpdkshim.TxCsum
	require.Equal(t, 1, run(noCsum, full(1, mss, ack, ts, mss)), "a complete checksum is not partial")
	// A run stops at 64 KiB of IP packet.
	var big []*dpdkshim.Packet
	for i := 0; i < 70; i++ {
		big = append(big, full(1, uint32(i*1448), ack, nil, 1448))
	}
	n, _, _ = gsoRun(big)
	require.Equal(t, (0xffff-40)/1448, n)
}

package tun

import (
	"encoding/binary"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// Transmit coalescing (Config.GSO): a run of consecutive TCP/IPv4 segments of one flow in a
// transmit burst leaves as one GSO super-packet (VIRTIO_NET_HDR_GSO_TCPV4), one write(2)
// instead of one per segment. The kernel takes it as the virtio driver of a guest would
// hand it over: Linux's TCP receives it whole, as a GRO packet, and a forwarding path
// segments it again. Segments join a run only when a receiver's GRO would merge them
// (tcp_gro_receive): the same addresses, ports, acknowledgement, window, header length and
// options, IPv4 without options nor fragmentation, only ACK (and PSH on the last) set,
// each segment's sequence following the one before, every payload the first one's size
// but the last, which may be shorter.

const (
	vnetGSOTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4

	// gsoMaxSegs bounds a run (the kernel's GSO_MAX_SEGS is far higher; 64 segments of a
	// 1460-byte MSS already fill the 64 KiB an IPv4 packet can hold).
	gsoMaxSegs = 64

	tcpFlagFIN = 0x01
	tcpFlagSYN = 0x02
	tcpFlagRST = 0x04
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10
)

// gsoSeg is what coalescing needs of a segment: its TCP header length and payload size,
// or ok false for a packet that cannot join a run.
func gsoSeg(p *dpdkshim.Packet) (thl, payload int, ok bool) {
	d := p.Data()
	start, field, partial := p.TxCsumOffsets()
	if !partial || start != 20 || field != 36 || len(d) < 40 || d[0] != 0x45 || d[9] != 6 {
		return 0, 0, false
	}
	if int(binary.BigEndian.Uint16(d[2:])) != len(d) || binary.BigEndian.Uint16(d[6:])&0x3fff != 0 {
		return 0, 0, false
	}
	thl = int(d[32]>>4) * 4
	if thl < 20 || 20+thl > len(d) {
		return 0, 0, false
	}
	if fl := d[33]; fl&^tcpFlagPSH != tcpFlagACK {
		return 0, 0, false // SYN, FIN, RST, URG, ECE, CWR or no ACK: alone
	}
	payload = len(d) - 20 - thl
	return thl, payload, payload > 0
}

// follows reports whether segment b can come right after a in a run whose segments carry
// gso bytes each.
func follows(a, b []byte, thl, gso int) bool {
	if len(a) != 20+thl+gso || len(b) < 20+thl+1 || len(b) > 20+thl+gso {
		return false
	}
	if a[1] != b[1] || a[6] != b[6] || a[8] != b[8] || a[33]&tcpFlagPSH != 0 || int(b[32]>>4)*4 != thl {
		return false // TOS, DF, TTL, a PSH that ends the run, another header length
	}
	if string(a[12:20]) != string(b[12:20]) || string(a[20:24]) != string(b[20:24]) {
		return false // addresses, ports
	}
	if string(a[28:32]) != string(b[28:32]) || string(a[34:36]) != string(b[34:36]) {
		return false // acknowledgement, window
	}
	if string(a[40:20+thl]) != string(b[40:20+thl]) {
		return false // options (timestamps included)
	}
	return binary.BigEndian.Uint32(b[24:]) == binary.BigEndian.Uint32(a[24:])+uint32(gso)
}

// gsoRun returns how many packets from pkts[0] form one run (1: the packet goes alone).
func gsoRun(pkts []*dpdkshim.Packet) (n, thl, gso int) {
	thl, gso, ok := gsoSeg(pkts[0])
	if !ok {
		return 1, 0, 0
	}
	total := pkts[0].Len()
	n = 1
	for n < len(pkts) && n < gsoMaxSegs {
		b := pkts[n].Data()
		if _, _, ok := gsoSeg(pkts[n]); !ok || !follows(pkts[n-1].Data(), b, thl, gso) || total+len(b)-20-thl > 0xffff {
			break
		}
		total += len(b) - 20 - thl
		n++
	}
	return n, thl, gso
}

// buildSuper writes the virtio-net header and the super-packet of run into buf and returns
// its length (the header included).
func buildSuper(buf []byte, run []*dpdkshim.Packet, thl, gso int) int {
	first := run[0].Data()
	hl := 20 + thl
	h := buf[:virtio.HdrLen]
	h[0], h[1] = virtio.FlagNeedsCsum, vnetGSOTCPv4
	binary.NativeEndian.PutUint16(h[2:], uint16(hl))
	binary.NativeEndian.PutUint16(h[4:], uint16(gso))
	binary.NativeEndian.PutUint16(h[6:], 20)
	binary.NativeEndian.PutUint16(h[8:], 16)
	pkt := buf[virtio.HdrLen:]
	n := copy(pkt, first[:hl])
	for _, p := range run {
		n += copy(pkt[n:], p.Data()[hl:])
	}
	ip := pkt[:n]
	// The last segment's PSH is the run's.
	ip[33] |= run[len(run)-1].Data()[33] & tcpFlagPSH
	binary.BigEndian.PutUint16(ip[2:], uint16(n))
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], checksum.Checksum(ip[:20], 0))
	// Partial: the pseudo-header sum over the whole TCP length, for the kernel to
	// complete (or to adjust per segment when it segments the packet).
	ph := checksum.PseudoHeaderIPv4([4]byte(ip[12:16]), [4]byte(ip[16:20]), 6, uint16(n-20))
	binary.BigEndian.PutUint16(ip[36:], checksum.Fold(ph))
	return virtio.HdrLen + n
}

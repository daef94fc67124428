package vnet

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// Transmit coalescing, for both backends: a run of consecutive TCP segments of one flow
// in a transmit burst leaves as one GSO super-packet behind a virtio-net header
// (VIRTIO_NET_HDR_GSO_TCPV4 or TCPV6), one frame for the kernel instead of one per
// segment. The kernel cuts it back into the segments it was made of, in software when
// the device cannot (tcp_gso_segment: every segment gets the headers, its sequence
// number and, for IPv4, the next IP ID), or hands it whole to a peer that takes
// super-packets (a veth with TSO, Linux's TCP behind a TUN device).
//
// Segments join a run only when a receiver's GRO would merge them (Linux tcp_gro_receive,
// inet_gro_receive, ipv6_gro_receive), so that cutting the super-packet again gives the
// segments back: the same link header, the same addresses and ports, acknowledgement,
// window, TCP header length and options (timestamps included); IPv4 without options or
// fragmentation, with the same TOS, DF and TTL; IPv6 without extension headers, with the
// same traffic class, flow label and hop limit; only ACK set, and PSH on the last segment
// alone; each sequence number following the one before; every payload the first one's
// size but the last, which may be shorter; and checksums left partial (TxCsum) at the
// TCP checksum, which the kernel completes per segment.

// GSO types of the header.
const (
	GSOTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	GSOTCPv6 = 4 // VIRTIO_NET_HDR_GSO_TCPV6
)

const (
	// MaxSegs bounds a run (the kernel's GSO_MAX_SEGS is far higher; 64 segments of a
	// 1448-byte MSS overflow the 64 KiB an IP length field can count anyway).
	MaxSegs = 64
	// MaxHeaders is the most header bytes a segment of a run has: Ethernet, IPv6, and a
	// TCP header with 40 bytes of options. HdrLen+MaxHeaders holds what PutHeaders writes.
	MaxHeaders = header.EthernetLen + 40 + 60

	tcpFlags = 13 // offset of the flags byte in a TCP header
	tcpCsum  = 16 // offset of the checksum in a TCP header
)

// Run is a run of segments at the head of a burst that can leave as one super-packet.
type Run struct {
	// N is how many packets, from the first, form the run: 1 means the first packet goes
	// alone (the other fields are then zero).
	N int
	// Hdr is each segment's header length (link, IP and TCP): the super-packet carries the
	// first segment's headers once, then every segment's payload, Data()[Hdr:].
	Hdr int
	// GSOSize is the payload of every segment but the last, which may carry less.
	GSOSize int
	// Len is the super-packet's length, without the virtio-net header.
	Len int

	link, ip int // link and IP header lengths
}

// FindRun returns the run at the head of pkts. link is the length of the link header in
// front of the IP header: 0 for bare IP packets (TUN) or header.EthernetLen, whose
// EtherType must then agree with the IP version. maxLen bounds the super-packet's
// length (Run.Len, as the caller can send it), on top of what the IP length fields can
// count. It never reads outside a packet's bytes.
func FindRun(pkts []*dpdkshim.Packet, link, maxLen int) Run {
	if len(pkts) < 2 {
		return Run{N: 1}
	}
	first := pkts[0].Data()
	ip, thl, ok := segment(pkts[0], first, link)
	if !ok {
		return Run{N: 1}
	}
	r := Run{Hdr: link + ip + thl, GSOSize: len(first) - link - ip - thl, link: link, ip: ip}
	// What the IP length field counts: the whole IPv4 packet, or IPv6's payload.
	counted, limit := len(first)-link, 0xffff
	if ip == 40 {
		counted -= 40
	}
	total := len(first)
	n := 1
	for n < len(pkts) && n < MaxSegs {
		b := pkts[n].Data()
		more := len(b) - r.Hdr
		if counted+more > limit || total+more > maxLen {
			break
		}
		if bip, _, ok := segment(pkts[n], b, link); !ok || bip != ip || !r.follows(pkts[n-1].Data(), b) {
			break
		}
		counted += more
		total += more
		n++
	}
	if n == 1 {
		return Run{N: 1}
	}
	r.N, r.Len = n, total
	return r
}

// segment checks that p, whose bytes are d, can be part of a run, and returns its IP and
// TCP header lengths.
func segment(p *dpdkshim.Packet, d []byte, link int) (ip, thl int, ok bool) {
	start, field, partial := p.TxCsumOffsets()
	if !partial || len(d) < link+40 {
		return 0, 0, false
	}
	v := d[link] >> 4
	if link >= 2 {
		et := binary.BigEndian.Uint16(d[link-2:])
		if !(v == 4 && et == header.EtherTypeIPv4) && !(v == 6 && et == header.EtherTypeIPv6) {
			return 0, 0, false
		}
	}
	switch v {
	case 4:
		ip = 20
		if d[link] != 0x45 || d[link+9] != 6 || int(binary.BigEndian.Uint16(d[link+2:])) != len(d)-link {
			return 0, 0, false // options, not TCP, or padding behind the packet
		}
		if binary.BigEndian.Uint16(d[link+6:])&0x3fff != 0 {
			return 0, 0, false // a fragment
		}
	case 6:
		ip = 40
		if len(d) < link+60 || d[link+6] != 6 || int(binary.BigEndian.Uint16(d[link+4:])) != len(d)-link-40 {
			return 0, 0, false // an extension header, or padding behind the packet
		}
	default:
		return 0, 0, false
	}
	t := link + ip
	if start != t || field != t+tcpCsum {
		return 0, 0, false
	}
	thl = int(d[t+12]>>4) * 4
	if thl < header.TCPMinLen || t+thl >= len(d) {
		return 0, 0, false // no payload
	}
	if d[t+tcpFlags]&^header.TCPFlagPSH != header.TCPFlagACK {
		return 0, 0, false // SYN, FIN, RST, URG, ECE, CWR or no ACK: alone
	}
	return ip, thl, true
}

// follows reports whether segment b, checked by segment, can come right after a, the last
// segment of the run so far.
func (r *Run) follows(a, b []byte) bool {
	l, t := r.link, r.link+r.ip
	if len(a) != r.Hdr+r.GSOSize || len(b) > r.Hdr+r.GSOSize || int(b[t+12]>>4)*4 != r.Hdr-t {
		return false // a short segment before, a longer one now, or another header length
	}
	if a[t+tcpFlags]&header.TCPFlagPSH != 0 || string(a[:l]) != string(b[:l]) {
		return false // a PSH ends the run; another link header
	}
	if r.ip == 20 {
		if a[l+1] != b[l+1] || a[l+6] != b[l+6] || a[l+8] != b[l+8] || string(a[l+12:l+20]) != string(b[l+12:l+20]) {
			return false // TOS, DF, TTL, addresses
		}
	} else if string(a[l:l+4]) != string(b[l:l+4]) || a[l+7] != b[l+7] || string(a[l+8:l+40]) != string(b[l+8:l+40]) {
		return false // traffic class and flow label, hop limit, addresses
	}
	if string(a[t:t+4]) != string(b[t:t+4]) || string(a[t+8:t+12]) != string(b[t+8:t+12]) ||
		string(a[t+14:t+16]) != string(b[t+14:t+16]) || string(a[t+20:r.Hdr]) != string(b[t+20:r.Hdr]) {
		return false // ports, acknowledgement, window, options
	}
	return binary.BigEndian.Uint32(b[t+4:]) == binary.BigEndian.Uint32(a[t+4:])+uint32(r.GSOSize)
}

// PutHeaders writes into b the virtio-net header of run's super-packet and the headers
// that begin it, and returns how many bytes it wrote (HdrLen+r.Hdr; b must hold them):
// the first segment's headers with the super-packet's lengths, a new IPv4 header checksum,
// the last segment's PSH, and the TCP checksum left partial over the whole TCP length.
// Every segment's payload, Data()[r.Hdr:], follows, in order (PutSuper copies them).
func PutHeaders(b []byte, run []*dpdkshim.Packet, r Run) int {
	l, t := r.link, r.link+r.ip
	h := b[:HdrLen]
	h[0], h[1] = FlagNeedsCsum, GSOTCPv4
	if r.ip == 40 {
		h[1] = GSOTCPv6
	}
	binary.NativeEndian.PutUint16(h[2:], uint16(r.Hdr)) // hdr_len: every header
	binary.NativeEndian.PutUint16(h[4:], uint16(r.GSOSize))
	binary.NativeEndian.PutUint16(h[6:], uint16(t))
	binary.NativeEndian.PutUint16(h[8:], tcpCsum)
	d := b[HdrLen : HdrLen+r.Hdr]
	copy(d, run[0].Data()[:r.Hdr])
	d[t+tcpFlags] |= run[len(run)-1].Data()[t+tcpFlags] & header.TCPFlagPSH
	tcpLen := r.Len - t
	var ph uint32
	if r.ip == 20 {
		binary.BigEndian.PutUint16(d[l+2:], uint16(r.Len-l))
		binary.BigEndian.PutUint16(d[l+10:], 0)
		binary.BigEndian.PutUint16(d[l+10:], checksum.Checksum(d[l:l+20], 0))
		ph = checksum.PseudoHeaderIPv4([4]byte(d[l+12:l+16]), [4]byte(d[l+16:l+20]), 6, uint16(tcpLen))
	} else {
		binary.BigEndian.PutUint16(d[l+4:], uint16(tcpLen))
		ph = checksum.PseudoHeaderIPv6([16]byte(d[l+8:l+24]), [16]byte(d[l+24:l+40]), 6, uint32(tcpLen))
	}
	// Partial: the pseudo-header sum, for the kernel to complete, or to adjust per
	// segment when it cuts the super-packet.
	binary.BigEndian.PutUint16(d[t+tcpCsum:], checksum.Fold(ph))
	return HdrLen + r.Hdr
}

// PutSuper writes the virtio-net header and the whole super-packet of run into b, which
// must hold HdrLen+r.Len bytes, and returns its length (the header included).
func PutSuper(b []byte, run []*dpdkshim.Packet, r Run) int {
	n := PutHeaders(b, run, r)
	for _, p := range run {
		n += copy(b[n:], p.Data()[r.Hdr:])
	}
	return n
}

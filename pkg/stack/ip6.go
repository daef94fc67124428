package stack

import (
	"encoding/binary"
	"net/netip"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// IPv6 input and output, as Linux's ip6_rcv_core, ip6_route_input and ip6_input walk a
// datagram with forwarding off and the default sysctls:
//
//   - the fixed header: version 6, a payload length within the frame (else
//     Ip6InTruncatedPkts), no loopback source or destination, no multicast source, no
//     multicast destination of scope 0 or 1 (all Ip6InHdrErrors);
//   - a hop-by-hop header, only as the first extension header (anywhere else it is an
//     unknown next header, Ip6InUnknownProtos); its options and those of destination
//     options headers are walked as ip6_parse_tlv does: Pad1 and PadN (at most 7 bytes of
//     padding in a row, all zero), router alert skipped, an unknown option acted on by
//     its two high bits (skip, or discard), at most 8 unknown options, the jumbo payload
//     option refused (no jumbograms here); anything malformed is Ip6InHdrErrors;
//   - the destination: one of our addresses, the all-nodes group ff02::1 or the
//     solicited-node group of one of our addresses (Ip6InMcastPkts); a group we did not
//     join is dropped (ip6.in_mcast_not_joined), any other address is not ours
//     (Ip6InAddrErrors, forwarding being off);
//   - a routing header with segments left is refused as Linux refuses every type it
//     does not process, type 0 (RFC 5095) included (Ip6InHdrErrors); with no segments
//     left it is skipped, but for segment routing and RPL, off by default in Linux and
//     dropped whatever their segments left (Ip6InDiscards); to a multicast destination or
//     in a frame not sent to our MAC it is Ip6InAddrErrors;
//   - fragments are counted and dropped, not reassembled (Ip6ReasmReqds and
//     Ip6ReasmFails): TCP never sends them and no host that shardstack serves needs
//     them. An atomic fragment (offset 0, no more fragments, RFC 6946) is the datagram
//     itself and goes on (Ip6ReasmOKs).
//   - a source that is one of our own addresses (a "land" packet) is dropped under
//     rt_cache.in_martian_src, as for IPv4: Linux would answer it over loopback, a stack
//     on the wire would answer the wire;
//   - then TCP (which takes only what came to our MAC and a unicast address of ours,
//     from a unicast source that is not IPv4-mapped), ICMPv6 (icmp6.go), "no next
//     header" (delivered and discarded), UDP (no sockets: Udp6NoPorts), or
//     Ip6InUnknownProtos. An unknown next header, an unknown option whose action asks for
//     it and a routing header with segments left draw the ICMPv6 parameter problem Linux
//     sends, UDP a port unreachable (icmp6_out.go).

// ifaddr6 is one IPv6 address of the stack with its prefix, as 64-bit masks for quick
// tests on the packet path.
type ifaddr6 struct {
	addr           [16]byte
	netHi, netLo   uint64
	maskHi, maskLo uint64
	prefix         netip.Prefix
}

func newIfaddr6(p netip.Prefix) ifaddr6 {
	f := ifaddr6{addr: p.Addr().As16(), prefix: p}
	bits := p.Bits()
	if bits >= 64 {
		f.maskHi, f.maskLo = ^uint64(0), ^uint64(0)<<(128-bits)
		if bits == 64 {
			f.maskLo = 0
		}
	} else if bits > 0 {
		f.maskHi = ^uint64(0) << (64 - bits)
	}
	f.netHi = binary.BigEndian.Uint64(f.addr[:8]) & f.maskHi
	f.netLo = binary.BigEndian.Uint64(f.addr[8:]) & f.maskLo
	return f
}

// contains reports whether a is on f's prefix.
func (f *ifaddr6) contains(a *[16]byte) bool {
	return binary.BigEndian.Uint64(a[:8])&f.maskHi == f.netHi && binary.BigEndian.Uint64(a[8:])&f.maskLo == f.netLo
}

// ip6State is the stack's IPv6 configuration, read-only once the stack is made.
type ip6State struct {
	addrs  []ifaddr6 // configured addresses, the family's primary first
	ll     [16]byte  // the link-local address
	hasLL  bool
	groups [][16]byte // multicast groups joined: all-nodes and each address's solicited-node
	gw     [16]byte
	hasGW  bool
}

var allNodes = [16]byte{0: 0xff, 1: 0x02, 15: 0x01}

// linkLocalFromMAC is the link-local address Linux gives an Ethernet interface
// (addrconf_ifid_eui48): fe80::/64 and the modified EUI-64 of the MAC (RFC 4291
// appendix A), the universal/local bit inverted and ff:fe in the middle.
func linkLocalFromMAC(m header.MAC) [16]byte {
	return [16]byte{0: 0xfe, 1: 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]}
}

func (s *ip6State) init(mac header.MAC, gw netip.Addr) {
	if mac != (header.MAC{}) {
		s.ll, s.hasLL = linkLocalFromMAC(mac), true
	}
	s.groups = append(s.groups, allNodes)
	join := func(a [16]byte) {
		g := header.SolicitedNode(a)
		for _, x := range s.groups {
			if x == g {
				return
			}
		}
		s.groups = append(s.groups, g)
	}
	if s.hasLL {
		join(s.ll)
	}
	for i := range s.addrs {
		join(s.addrs[i].addr)
	}
	if gw.IsValid() {
		s.gw, s.hasGW = gw.WithZone("").As16(), true
	}
}

// enabled reports whether the stack speaks IPv6 at all (it has an address).
func (s *ip6State) enabled() bool { return s.hasLL || len(s.addrs) > 0 }

func (s *ip6State) isLocal(a *[16]byte) bool {
	if s.hasLL && *a == s.ll {
		return true
	}
	for i := range s.addrs {
		if s.addrs[i].addr == *a {
			return true
		}
	}
	return false
}

func (s *ip6State) joined(a *[16]byte) bool {
	for i := range s.groups {
		if s.groups[i] == *a {
			return true
		}
	}
	return false
}

func isLinkLocal6(a *[16]byte) bool { return a[0] == 0xfe && a[1]&0xc0 == 0x80 }
func isMulticast6(a *[16]byte) bool { return a[0] == 0xff }
func isLoopback6(a *[16]byte) bool  { return *a == [16]byte{15: 1} }
func isV4Mapped6(a *[16]byte) bool {
	return *(*[12]byte)(a[:12]) == [12]byte{10: 0xff, 11: 0xff}
}

// onLink reports whether dst is on the link: link-local, or in one of our prefixes.
func (s *ip6State) onLink(dst *[16]byte) bool {
	if isLinkLocal6(dst) {
		return true
	}
	for i := range s.addrs {
		if s.addrs[i].contains(dst) {
			return true
		}
	}
	return false
}

// nextHop is the neighbour a datagram to dst goes to: dst itself on the link, else the
// gateway; false when there is no route, or no source address to send from.
func (s *ip6State) nextHop(dst *[16]byte) ([16]byte, bool) {
	if !s.enabled() {
		return [16]byte{}, false // no address to send from
	}
	if s.onLink(dst) {
		return *dst, true
	}
	return s.gw, s.hasGW
}

// source picks the address a datagram to dst leaves from (a simple RFC 6724): the
// link-local one for a link-local or multicast destination, else the address whose prefix
// holds dst, else the first configured one.
func (s *ip6State) source(dst [16]byte) ([16]byte, bool) {
	if (isLinkLocal6(&dst) || isMulticast6(&dst)) && s.hasLL {
		return s.ll, true
	}
	for i := range s.addrs {
		if s.addrs[i].contains(&dst) {
			return s.addrs[i].addr, true
		}
	}
	if len(s.addrs) > 0 {
		return s.addrs[0].addr, true
	}
	return s.ll, s.hasLL
}

// ip6Input is ip6_rcv + ip6_input for one datagram; host says the frame came to our MAC.
func (sh *shard) ip6Input(p *dpdkshim.Packet, b []byte, host bool) {
	first := p.Mark == markNone // counted once, by the shard that received it (not a hand-off or copy)
	if first {
		sh.ctr.Inc(stats.Ip6InReceives)
	}
	st := &sh.st.ip6
	if !st.enabled() {
		sh.drop6(p, stats.Ip6InDiscards)
		return
	}
	ip, err := header.ParseIPv6(b)
	if err != nil {
		if err == header.ErrTotalLength {
			sh.drop6(p, stats.Ip6InTruncatedPkts)
		} else {
			sh.drop6(p, stats.Ip6InHdrErrors)
		}
		return
	}
	src, dst := (*[16]byte)(ip[8:24]), (*[16]byte)(ip[24:40])
	mcast := isMulticast6(dst)
	if isLoopback6(src) || isLoopback6(dst) || isMulticast6(src) || (mcast && dst[1]&0xf <= 1) {
		sh.drop6(p, stats.Ip6InHdrErrors)
		return
	}
	// nhoff is where the byte naming the next header sits (for a parameter problem).
	next, off, nhoff := ip.NextHeader(), header.IPv6Len, 6
	if next == header.ProtoHopByHop {
		n, ok, unknown := tlvOptions(ip[off:])
		if !ok {
			sh.badOption6(p, ip, off, unknown, first, host)
			return
		}
		next, off, nhoff = ip[off], off+n, off
	}
	// The input route.
	switch {
	case mcast:
		if first {
			sh.ctr.Inc(stats.Ip6InMcastPkts)
		}
		if !st.joined(dst) {
			sh.drop6(p, stats.Ip6InMcastNotJoined)
			return
		}
		host = false
	case !st.isLocal(dst):
		sh.drop6(p, stats.Ip6InAddrErrors)
		return
	}
	if st.isLocal(src) {
		// A datagram from one of our own addresses off the wire (a "land" packet): Linux
		// would answer it over loopback, we would answer it on the wire, so it is dropped as
		// IPv4's martian sources are.
		sh.drop6(p, stats.RtInMartianSrc)
		return
	}
	// ip6_input_finish: the extension headers, then the upper layer.
	for {
		switch next {
		case header.ProtoTCP:
			sh.tcp6Input(p, ip, ip[off:], src, dst, host)
			return
		case header.ProtoICMPv6:
			if first {
				sh.ctr.Inc(stats.Ip6InDelivers)
			}
			sh.icmp6Input(p, ip, ip[off:], host)
			return
		case header.ProtoNoNext:
			sh.ctr.Inc(stats.Ip6InDelivers)
			sh.frees.Free(p)
			return
		case header.ProtoDstOpts:
			n, ok, unknown := tlvOptions(ip[off:])
			if !ok {
				sh.badOption6(p, ip, off, unknown, first, host)
				return
			}
			next, off, nhoff = ip[off], off+n, off
		case header.ProtoRouting:
			h := ip[off:]
			if len(h) < 8 || len(h) < (int(h[1])+1)*8 {
				sh.drop6(p, stats.Ip6InHdrErrors)
				return
			}
			if mcast || !host {
				sh.drop6(p, stats.Ip6InAddrErrors)
				return
			}
			if h[2] == rhRPL || h[2] == rhSegment {
				// Segment routing and RPL are off by default (seg6_enabled, rpl_seg_enabled):
				// Linux drops these whatever their segments left, with no MIB and no error.
				sh.drop6(p, stats.Ip6InDiscards)
				return
			}
			if h[3] != 0 {
				// Segments left: type 0 (RFC 5095) and every other type refused, with a
				// parameter problem at the type (ipv6_rthdr_rcv's unknown_rh).
				sh.icmp6SendError(ip, header.ICMPv6ParamProblem, icmp6HdrField, uint32(off+2), first, host)
				sh.drop6(p, stats.Ip6InHdrErrors)
				return
			}
			next, off, nhoff = h[0], off+(int(h[1])+1)*8, off
		case header.ProtoFragment:
			h := ip[off:]
			if len(h) < 8 {
				sh.drop6(p, stats.Ip6InHdrErrors)
				return
			}
			if first {
				sh.ctr.Inc(stats.Ip6ReasmReqds)
			}
			if binary.BigEndian.Uint16(h[2:])&0xfff9 != 0 { // an offset, or more fragments
				sh.drop6(p, stats.Ip6ReasmFails)
				return
			}
			if first {
				sh.ctr.Inc(stats.Ip6ReasmOKs)
			}
			next, off, nhoff = h[0], off+8, off
		case header.ProtoUDP:
			sh.udp6Input(p, ip, ip[off:], first, host)
			return
		default: // a hop-by-hop header not first, ESP, AH, ...
			sh.icmp6SendError(ip, header.ICMPv6ParamProblem, icmp6UnknownNext, uint32(nhoff), first, host)
			sh.drop6(p, stats.Ip6InUnknownProtos)
			return
		}
	}
}

func (sh *shard) drop6(p *dpdkshim.Packet, id stats.ID) {
	sh.ctr.Inc(id)
	sh.frees.Free(p)
}

// Routing header types Linux handles apart (and drops with its defaults).
const (
	rhRPL     = 3 // RFC 6554
	rhSegment = 4 // RFC 8754
)

// badOption6 drops a datagram whose options header at off failed tlvOptions; unknown,
// when not negative, is the offset in that header of an unknown option whose action asks
// for a parameter problem.
func (sh *shard) badOption6(p *dpdkshim.Packet, ip header.IPv6, off, unknown int, first, host bool) {
	if unknown >= 0 {
		sh.icmp6SendError(ip, header.ICMPv6ParamProblem, icmp6UnknownOption, uint32(off+unknown), first, host)
	}
	sh.drop6(p, stats.Ip6InHdrErrors)
}

// Linux's limits on options (net.ipv6.max_hbh_opts_number, max_dst_opts_number).
const maxUnknownOpts = 8

// tlvOptions checks a hop-by-hop or destination options header at the start of b as
// ip6_parse_tlv does and returns its length. When it refuses the header for an unknown
// option whose two high bits are 10 or 11 (a parameter problem is due), unknown is that
// option's offset in b; otherwise it is -1.
func tlvOptions(b []byte) (n int, ok bool, unknown int) {
	if len(b) < 8 {
		return 0, false, -1
	}
	n = (int(b[1]) + 1) * 8
	if n > len(b) {
		return 0, false, -1
	}
	opts := b[2:n]
	pad, unknowns := 0, 0
	for len(opts) > 0 {
		t := opts[0]
		if t == 0 { // Pad1
			if pad++; pad > 7 {
				return 0, false, -1
			}
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || 2+int(opts[1]) > len(opts) {
			return 0, false, -1
		}
		l := 2 + int(opts[1])
		switch t {
		case 1: // PadN: at most 7 bytes of padding in a row, all zero (RFC 4942)
			if pad += l; pad > 7 {
				return 0, false, -1
			}
			for _, x := range opts[2:l] {
				if x != 0 {
					return 0, false, -1
				}
			}
		case 5: // router alert: for routers; a host skips it
			pad = 0
		case 0xc2: // jumbo payload: no jumbograms here
			return 0, false, -1
		default:
			pad = 0
			if unknowns++; unknowns > maxUnknownOpts {
				return 0, false, -1
			}
			switch t >> 6 {
			case 1: // discard
				return 0, false, -1
			case 2, 3: // discard and send a parameter problem (11: unless to a group)
				return 0, false, n - len(opts)
			}
		}
		opts = opts[l:]
	}
	return n, true, -1
}

// tcp6Input hands a segment to TCP (tcp_v6_rcv's first checks).
func (sh *shard) tcp6Input(p *dpdkshim.Packet, ip header.IPv6, seg []byte, src, dst *[16]byte, host bool) {
	if isV4Mapped6(src) || *src == ([16]byte{}) {
		// tcp_v6_conn_request refuses a v4-mapped source as a header error; an unspecified
		// one can be answered by nobody.
		sh.drop6(p, stats.Ip6InHdrErrors)
		return
	}
	if !host {
		sh.ctr.Inc(stats.Ip6InDelivers)
		sh.ctr.Inc(stats.TcpInNotHostDrops)
		sh.frees.Free(p)
		return
	}
	sh.key = hash.KeyV6(*dst, 0, *src, 0)
	sh.tcpDeliver(p, seg, stats.Ip6InDelivers)
}

// output6 prepends the IPv6 header (the one writer, header.EncodeIPv6) to the upper-layer
// message in p and sends it: to the group's MAC for a multicast destination, else through
// the neighbour cache to dst on the link or to the gateway.
func (sh *shard) output6(p *dpdkshim.Packet, src, dst *[16]byte, next, hop uint8) {
	sh.ctr.Inc(stats.Ip6OutRequests)
	mcast := isMulticast6(dst)
	var nh [16]byte
	if !mcast {
		var ok bool
		if nh, ok = sh.st.ip6.nextHop(dst); !ok {
			sh.ctr.Inc(stats.Ip6OutNoRoutes)
			p.Free()
			return
		}
	}
	b := p.Prepend(header.IPv6Len)
	if b == nil {
		sh.ctr.Inc(stats.TxDropped)
		p.Free()
		return
	}
	header.EncodeIPv6(b, uint16(p.Len()-header.IPv6Len), next, hop, *src, *dst)
	if mcast {
		sh.ctr.Inc(stats.Ip6OutMcastPkts)
		if sh.st.l3 {
			sh.queueTx(p)
			return
		}
		sh.sendFrame(p, header.IPv6MulticastMAC(*dst), header.EtherTypeIPv6)
		return
	}
	sh.linkOutput6(p, nh)
}

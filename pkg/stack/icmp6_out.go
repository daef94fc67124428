package stack

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// ICMPv6 errors, sent as Linux's icmp6_send sends them for a host:
//
//   - parameter problem, "unrecognized next header type" (code 1), for a next header the
//     stack has no handler for (ip6_protocol_deliver_rcu), pointing at the byte that named
//     it; "unrecognized option" (code 2) for an unknown hop-by-hop or destination option
//     whose two high bits are 10, or 11 when the destination is not multicast
//     (ip6_tlvopt_unknown), pointing at the option; "erroneous header field" (code 0)
//     for a routing header with segments left, pointing at its type (ipv6_rthdr_rcv);
//   - destination unreachable, port unreachable (code 4), for UDP, since no UDP socket
//     exists (__udp6_lib_rcv, Udp6NoPorts).
//
// RFC 4443 §2.4's rules hold: no error about a datagram sent to a multicast address or in
// a frame not sent to our MAC (but an unrecognized option of type 10, which RFC 4443
// allows), from the unspecified or a multicast address, or about an ICMPv6 error (or an
// ICMPv6 message whose type cannot be read). The error comes from the address the
// datagram was sent to when that is ours, else from the source the route picks, and
// quotes as much of the datagram as fits in IPv6's minimum MTU.
//
// Rate limits (icmpv6_global_allow, icmpv6_xrlim_allow): the error types but packet too big
// (net.ipv6.icmp.ratemask 0-1,3-127) take a token from the stack-wide bucket ICMPv4 uses
// (icmp_msgs_per_sec, IcmpOutRateLimitGlobal), then from their destination's, one per
// net.ipv6.icmp.ratelimit (1 s) shortened for a wider route as Linux does (÷4 for a /64,
// ÷16 through the gateway), Icmp6OutRateLimitHost when empty.

// ICMPv6 codes the stack sends (RFC 4443 §3.1, §3.4).
const (
	icmp6PortUnreach   = 4 // destination unreachable: port unreachable
	icmp6HdrField      = 0 // parameter problem: erroneous header field
	icmp6UnknownNext   = 1 // parameter problem: unrecognized next header type
	icmp6UnknownOption = 2 // parameter problem: unrecognized IPv6 option

	minMTU6 = 1280 // RFC 8200 §5
)

// icmp6SendError sends an ICMPv6 error of type t and code c, with info as its 32-bit
// field (a parameter problem's pointer), about the datagram ip, which came in a frame sent
// to our MAC when host. Only the shard that received the datagram answers it (first); a
// hand-off or a copy of it does not.
func (sh *shard) icmp6SendError(ip header.IPv6, t, c uint8, info uint32, first, host bool) {
	if !first {
		return
	}
	src, dst := (*[16]byte)(ip[8:24]), (*[16]byte)(ip[24:40])
	from, fromDst := *dst, sh.st.ip6.isLocal(dst)
	if isMulticast6(dst) || !host {
		if t != header.ICMPv6PacketTooBig && !(t == header.ICMPv6ParamProblem && c == icmp6UnknownOption &&
			int(info) < len(ip) && ip[info]&0xc0 == 0x80) {
			return
		}
		fromDst = false
	}
	if *src == ([16]byte{}) || isMulticast6(src) || ineligible6(ip) {
		return
	}
	if !sh.icmp6Allow(t, src) {
		return
	}
	if !fromDst {
		var ok bool
		if from, ok = sh.st.ip6.source(*src); !ok {
			sh.ctr.Inc(stats.Icmp6OutErrors)
			return
		}
	}
	n := min(len(ip), minMTU6-header.IPv6Len-8)
	p := sh.NewPacket()
	if p == nil {
		sh.ctr.Inc(stats.Icmp6OutErrors)
		return
	}
	m := p.Append(8 + n)
	if m == nil {
		sh.ctr.Inc(stats.Icmp6OutErrors)
		p.Free()
		return
	}
	m[0], m[1] = t, c
	binary.BigEndian.PutUint32(m[4:], info)
	copy(m[8:], ip[:n])
	header.SetICMPv6Checksum(m, from, *src)
	sh.ctr.Inc(stats.Icmp6OutMsgs)
	switch t {
	case header.ICMPv6DstUnreach:
		sh.ctr.Inc(stats.Icmp6OutDestUnreachs)
	case header.ICMPv6ParamProblem:
		sh.ctr.Inc(stats.Icmp6OutParmProblems)
	}
	dstAddr := *src
	sh.output6(p, &from, &dstAddr, header.ProtoICMPv6, hopLimit)
}

// icmp6Allow decides whether an ICMPv6 message of type t may go to dst now.
func (sh *shard) icmp6Allow(t uint8, dst *[16]byte) bool {
	if t >= 128 || t == header.ICMPv6PacketTooBig {
		return true // icmpv6_mask_allow: not in the default ratemask
	}
	// Linux gives more to wider routes: the interval is shifted right by a step for every
	// 32 bits the route's prefix is shorter than 128.
	timeout := sh.st.icmp.conf.ratelimit6 >> ((128 - sh.st.ip6.routeBits(dst)) >> 5)
	return sh.rateAllow(*dst, timeout, stats.Icmp6OutRateLimitHost)
}

// routeBits is the prefix length of the route to dst: the on-link prefix that holds it
// (fe80::/64 for link-local), else 0, the default route through the gateway.
func (s *ip6State) routeBits(dst *[16]byte) int {
	if isLinkLocal6(dst) {
		return 64
	}
	for i := range s.addrs {
		if s.addrs[i].contains(dst) {
			return s.addrs[i].prefix.Bits()
		}
	}
	return 0
}

// ineligible6 is Linux's is_ineligible: the datagram is an ICMPv6 error, or an ICMPv6
// message too short to say its type, and must not draw an error.
func ineligible6(ip header.IPv6) bool {
	next, off, ok := skipExt6(ip, ip[6], header.IPv6Len)
	if !ok || next != header.ProtoICMPv6 {
		return false
	}
	return len(ip) <= off || ip[off] < 128
}

// skipExt6 is ipv6_skip_exthdr: from the header next at offset off of the datagram b, it
// walks the extension headers (hop-by-hop, routing, destination options, and a fragment
// header that is the first fragment) and returns the upper-layer protocol and its offset.
// A fragment that is not the first stops the walk at its fragment header (next is then
// header.ProtoFragment: the upper-layer header is elsewhere). ok is false when a header
// is cut short.
func skipExt6(b []byte, next uint8, off int) (uint8, int, bool) {
	for next == header.ProtoHopByHop || next == header.ProtoDstOpts || next == header.ProtoRouting || next == header.ProtoFragment {
		if len(b) < off+8 {
			return next, off, false
		}
		n := (int(b[off+1]) + 1) * 8
		if next == header.ProtoFragment {
			if binary.BigEndian.Uint16(b[off+2:])&0xfff8 != 0 {
				return next, off, true
			}
			n = 8
		}
		next, off = b[off], off+n
	}
	return next, off, true
}

// udp6Input is __udp6_lib_rcv with no sockets at all: malformed datagrams and bad (or
// missing: IPv6 makes the checksum mandatory) checksums are counted, multicasts ignored,
// the rest answered with port unreachable.
func (sh *shard) udp6Input(p *dpdkshim.Packet, ip header.IPv6, u []byte, first, host bool) {
	defer sh.frees.Free(p)
	if !first {
		return // a copy or hand-off: the shard that received it answered
	}
	sh.ctr.Inc(stats.Ip6InDelivers)
	if len(u) < 8 {
		sh.ctr.Inc(stats.Udp6InErrors)
		return
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < 8 || ulen > len(u) {
		sh.ctr.Inc(stats.Udp6InErrors)
		return
	}
	u = u[:ulen]
	if binary.BigEndian.Uint16(u[6:]) == 0 {
		sh.ctr.Inc(stats.Udp6InErrors) // udp6_csum_init: a zero checksum is not allowed
		return
	}
	if p.Flags&dpdkshim.CsumVerified == 0 &&
		checksum.Checksum(u, checksum.PseudoHeaderIPv6(ip.Src(), ip.Dst(), header.ProtoUDP, uint32(ulen))) != 0 {
		sh.ctr.Inc(stats.Udp6InCsumErrors)
		sh.ctr.Inc(stats.Udp6InErrors)
		return
	}
	if isMulticast6((*[16]byte)(ip[24:40])) {
		sh.ctr.Inc(stats.Udp6IgnoredMulti)
		return
	}
	sh.ctr.Inc(stats.Udp6NoPorts)
	sh.icmp6SendError(ip, header.ICMPv6DstUnreach, icmp6PortUnreach, 0, first, host)
}

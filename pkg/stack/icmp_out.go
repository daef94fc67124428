package stack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// ICMPv4 output: echo replies and the errors a host sends, rate-limited as Linux does.
//
// The stack sends the errors Linux sends as a host: protocol unreachable for an IP protocol
// it does not speak (ip_local_deliver_finish), and port unreachable for UDP, since no UDP
// socket exists (__udp4_lib_rcv, UdpNoPorts). RFC 1122 §3.2.2's rules hold (Linux
// __icmp_send): no error about a datagram sent to a broadcast or multicast address or in a
// link-layer broadcast frame, about a fragment other than the first, or about an ICMP
// error. An error quotes as much of the datagram as fits in 576 bytes.
//
// Rate limits (icmpv4_global_allow, icmpv4_xrlim_allow): the types in icmp_ratemask
// (destination unreachable but fragmentation needed, source quench, time exceeded,
// parameter problem by default) take a token from the stack-wide bucket of
// icmp_msgs_per_sec with icmp_msgs_burst (IcmpOutRateLimitGlobal when empty), then from
// their destination's bucket, one message per icmp_ratelimit with a burst of six
// (IcmpOutRateLimitHost); sending one consumes 0 to 2 global credits at random, as Linux
// does so that the shared budget cannot be measured from outside. Echo replies are not in
// the default mask, so they are not limited. One difference: the per-destination buckets
// are per shard (a fixed table, bounded), where Linux's inet_peer cache is per host.

// icmpGlobal is the stack-wide token bucket (net->ipv4.icmp_global_*).
type icmpGlobal struct {
	credit atomic.Int32
	stamp  atomic.Int64 // 1 + when the credit was last refilled (0: never)
}

// allow is icmp_global_allow.
func (g *icmpGlobal) allow(now int64, perSec, burst int32) bool {
	if g.credit.Load() > 0 {
		return true
	}
	old := g.stamp.Load()
	delta := now + 1 - old
	if old == 0 || delta > 1e9 {
		delta = 1e9
	}
	if delta < 1e9/50 {
		return false
	}
	incr := int64(perSec) * delta / 1e9
	if incr == 0 {
		return false
	}
	if g.stamp.CompareAndSwap(old, now+1) {
		for {
			c := g.credit.Load()
			if g.credit.CompareAndSwap(c, int32(min(int64(c)+incr, int64(burst)))) {
				break
			}
		}
	}
	return true
}

const icmpPeerSlots = 256 // per shard

// icmpPeer is one destination's token bucket (inet_peer rate_tokens, rate_last), keyed by
// the 16-byte address (IPv4 in its IPv4-mapped form).
type icmpPeer struct {
	addr   [16]byte
	used   bool
	tokens int64
	last   int64
}

// icmpShard is a shard's ICMP state.
type icmpShard struct {
	ipID  uint16 // the IP identification of the next datagram without DF (ICMP; TCP on a locked path)
	rng   uint64
	peers [icmpPeerSlots]icmpPeer
	err   tcpdrv.ICMPError // scratch for icmpDeliverTCP
}

// icmpStack is the stack's ICMP state: its settings and the stack-wide rate limit.
type icmpStack struct {
	conf   icmpConf // Config.ICMP with Linux's defaults (icmp_settings.go)
	global icmpGlobal
}

// peerAllow is inet_peer_xrlim_allow for dst: a token per timeout, at most six saved.
func (sh *shard) peerAllow(dst [16]byte, timeout int64) bool {
	a := binary.BigEndian.Uint32(dst[0:]) ^ binary.BigEndian.Uint32(dst[4:]) ^
		binary.BigEndian.Uint32(dst[8:]) ^ binary.BigEndian.Uint32(dst[12:])
	pe := &sh.icmp.peers[(a*0x9e3779b1)>>24]
	if !pe.used || pe.addr != dst {
		// A new peer (or one that takes over the slot) starts with a full bucket: Linux
		// dates a new inet_peer's last message 60 s back.
		*pe = icmpPeer{addr: dst, used: true, last: sh.now - 60e9}
	}
	token := pe.tokens + sh.now - pe.last
	pe.last = sh.now
	token = min(token, 6*timeout)
	ok := token >= timeout
	if ok {
		token -= timeout
	}
	pe.tokens = token
	return ok
}

// icmpAllow decides whether an ICMP message of type t, code c may go to dst now.
func (sh *shard) icmpAllow(t, c uint8, dst [4]byte) bool {
	conf := &sh.st.icmp.conf
	// icmpv4_mask_allow: unlisted types and fragmentation needed are never limited.
	if t > header.ICMPv4MaxType || (t == header.ICMPv4DestUnreach && c == header.ICMPv4FragNeeded) ||
		conf.ratemask&(1<<t) == 0 {
		return true
	}
	return sh.rateAllow(netip.AddrFrom4(dst).As16(), conf.ratelimit, stats.IcmpOutRateLimitHost)
}

// rateAllow takes a rate-limited error to dst through the stack-wide bucket, which both
// families share (icmp_global_allow; IcmpOutRateLimitGlobal when empty), then through
// dst's own, a token per timeout (hostLimited counted when empty), and consumes the
// global credit it used.
func (sh *shard) rateAllow(dst [16]byte, timeout int64, hostLimited stats.ID) bool {
	conf := &sh.st.icmp.conf
	if !sh.st.icmp.global.allow(sh.now, conf.perSec, conf.burst) {
		sh.ctr.Inc(stats.IcmpOutRateLimitGlobal)
		return false
	}
	if !sh.peerAllow(dst, timeout) {
		sh.ctr.Inc(hostLimited)
		return false
	}
	// icmp_global_consume: 0, 1 or 2 credits.
	sh.icmp.rng ^= sh.icmp.rng << 13
	sh.icmp.rng ^= sh.icmp.rng >> 7
	sh.icmp.rng ^= sh.icmp.rng << 17
	if k := int32(sh.icmp.rng % 3); k > 0 {
		sh.st.icmp.global.credit.Add(-k)
	}
	return true
}

// icmpOutput sends the ICMP message that p holds: IPv4 header (TTL 64, no DF, a fresh ID),
// route, neighbour, link.
func (sh *shard) icmpOutput(p *dpdkshim.Packet, t, tos uint8, src, dst [4]byte) {
	sh.ctr.Inc(stats.IpOutRequests)
	nh, ok := sh.route4(dst)
	if !ok {
		sh.ctr.Inc(stats.IcmpOutErrors)
		p.Free()
		return
	}
	ipb := p.Prepend(header.IPv4MinLen)
	if ipb == nil {
		sh.ctr.Inc(stats.TxDropped)
		p.Free()
		return
	}
	sh.icmp.ipID++
	header.EncodeIPv4(ipb, &header.IPv4Fields{
		TOS: tos, TotalLen: uint16(p.Len()), ID: sh.icmp.ipID, TTL: 64,
		Protocol: header.ProtoICMP, Src: src, Dst: dst,
	})
	sh.ctr.IcmpOut(t)
	sh.linkOutput(p, nh)
}

// icmpSendError sends an error of type t, code c about the datagram ip (which came in p's
// frame, to our unicast address when host), as __icmp_send would.
func (sh *shard) icmpSendError(ip header.IPv4, t, c uint8, rt inRoute, host bool) {
	if !host || rt != routeLocal || ip.FragmentOffset() != 0 {
		return
	}
	if ip.Protocol() == header.ProtoICMP && header.IsICMPv4Error(t) {
		b := ip.Payload()
		if len(b) < 1 || b[0] > header.ICMPv4MaxType || header.IsICMPv4Error(b[0]) {
			return // never an error about an error (unknown types count as errors)
		}
	}
	if !sh.icmpAllow(t, c, ip.Src()) {
		return
	}
	room := min(576, sh.port.MTU()) - header.IPv4MinLen - header.ICMPv4Len
	n := min(len(ip), room)
	p := sh.NewPacket()
	if p == nil {
		sh.ctr.Inc(stats.IcmpOutErrors)
		return
	}
	out := p.Append(header.ICMPv4Len + n)
	if out == nil {
		sh.ctr.Inc(stats.IcmpOutErrors)
		p.Free()
		return
	}
	copy(out[header.ICMPv4Len:], ip[:n])
	header.PutICMPv4(out, t, c, 0)
	// Linux: the TOS bits of the datagram with the precedence of internetwork control.
	sh.icmpOutput(p, t, ip.TOS()&0x1e|0xc0, ip.Dst(), ip.Src())
}

// otherProtoInput takes a datagram for us that is not TCP (ipInput's protocol switch):
// ICMP (icmp.go), UDP, which finds no socket, or a protocol the stack does not speak.
// host is false for a link-layer broadcast or multicast frame and for broadcast and
// multicast destinations.
func (sh *shard) otherProtoInput(p *dpdkshim.Packet, ip header.IPv4, rt inRoute, host bool) {
	switch ip.Protocol() {
	case header.ProtoICMP:
		sh.icmpInput(p, ip, rt)
		return
	case header.ProtoUDP:
		sh.udpInput(p, ip, rt, host)
	default:
		// ip_local_deliver_finish: no handler and no raw socket.
		sh.ctr.Inc(stats.IpInUnknownProtos)
		sh.icmpSendError(ip, header.ICMPv4DestUnreach, header.ICMPv4ProtoUnreach, rt, host)
	}
	sh.frees.Free(p)
}

// udpInput is __udp4_lib_rcv with no sockets at all: malformed and bad-checksum datagrams
// are counted, broadcasts and multicasts ignored, the rest answered with port unreachable.
// A checksum the link verified is not checked again: a Linux sender on a veth leaves it
// partial (CHECKSUM_PARTIAL), and only the link's word says it is good.
func (sh *shard) udpInput(p *dpdkshim.Packet, ip header.IPv4, rt inRoute, host bool) {
	sh.ctr.Inc(stats.IpInDelivers)
	u := ip.Payload()
	if len(u) < 8 {
		sh.ctr.Inc(stats.UdpInErrors)
		return
	}
	ulen := int(binary.BigEndian.Uint16(u[4:]))
	if ulen < 8 || ulen > len(u) {
		sh.ctr.Inc(stats.UdpInErrors)
		return
	}
	u = u[:ulen]
	if rt == routeBroadcast || rt == routeMulticast {
		sh.ctr.Inc(stats.UdpIgnoredMulti)
		return
	}
	if binary.BigEndian.Uint16(u[6:]) != 0 && p.Flags&dpdkshim.CsumVerified == 0 &&
		checksum.Checksum(u, checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoUDP, uint16(ulen))) != 0 {
		sh.ctr.Inc(stats.UdpInCsumErrors)
		sh.ctr.Inc(stats.UdpInErrors)
		return
	}
	sh.ctr.Inc(stats.UdpNoPorts)
	sh.icmpSendError(ip, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, rt, host)
}

package stack

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// Neighbour discovery (RFC 4861) for the IPv6 neighbour cache, as Linux's ndisc_recv_ns
// and ndisc_recv_na run it on a host:
//
//   - a message is valid only with hop limit 255 (it cannot have crossed a router), code
//     0, at least 24 bytes, a target that is not multicast and options of non-zero length
//     within the message (§7.1.1, §7.1.2); a solicitation from the unspecified address
//     (duplicate address detection) must go to a solicited-node group and carry no
//     source link-layer address; an advertisement to a group must not be Solicited.
//     Invalid messages are dropped and counted (icmp6.in_ndisc_invalid).
//   - a solicitation for one of our addresses creates or refreshes the sender's entry
//     STALE when it carries the sender's link-layer address (neigh_event_ns) and is
//     answered with a Solicited, Override advertisement; one from the unspecified address
//     is answered to all-nodes, unsolicited (we defend our address).
//   - an advertisement updates an entry that exists (accept_untracked_na=0): REACHABLE
//     when Solicited, else STALE; a different link-layer address replaces the known one
//     only with Override, and otherwise turns a REACHABLE entry STALE (Linux's
//     NEIGH_UPDATE_F_WEAK_OVERRIDE). An advertisement for one of our own addresses is a
//     duplicate and is ignored.
//
// As for ARP, the shard that receives a message for us copies it to the other shards so
// that every shard's table learns; only the receiving shard answers.

// ndiscValid is the common part of §7.1.1 and §7.1.2.
func ndiscValid(ip header.IPv6, m []byte) bool {
	return ip.HopLimit() == 255 && len(m) >= header.NDPMsgLen && m[1] == 0 && m[8] != 0xff
}

func isSolicitedNode(a *[16]byte) bool {
	return *(*[13]byte)(a[:13]) == [13]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff}
}

func (sh *shard) ndiscInvalid(p *dpdkshim.Packet) {
	if p.Mark != markReplicated {
		sh.ctr.Inc(stats.Icmp6InNDiscInvalid)
	}
	sh.frees.Free(p)
}

// ndiscNS is ndisc_recv_ns.
func (sh *shard) ndiscNS(p *dpdkshim.Packet, ip header.IPv6, m []byte) {
	if !ndiscValid(ip, m) {
		sh.ndiscInvalid(p)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	target := [16]byte(m[8:24])
	slla, hasSLLA, ok := header.NDPLinkAddr(m[header.NDPMsgLen:], header.NDPOptSourceLLA)
	dad := src == [16]byte{}
	if !ok || (dad && (!isSolicitedNode(&dst) || hasSLLA)) {
		sh.ndiscInvalid(p)
		return
	}
	if !sh.st.ip6.isLocal(&target) {
		sh.frees.Free(p) // not ours, and we are no proxy
		return
	}
	replicated := p.Mark == markReplicated
	if dad {
		if !replicated {
			sh.sendNA(allNodes, target, false)
		}
		sh.frees.Free(p)
		return
	}
	if hasSLLA {
		n := sh.neigh6
		e := n.m[src]
		if e == nil {
			e = n.create(src)
		}
		if e != nil {
			n.update(e, slla, neighStale, true)
		}
		if !replicated {
			sh.replicate(p)
		}
	}
	if !replicated {
		sh.sendNA(src, target, true)
	}
	sh.frees.Free(p)
}

// ndiscNA is ndisc_recv_na.
func (sh *shard) ndiscNA(p *dpdkshim.Packet, ip header.IPv6, m []byte, host bool) {
	if !ndiscValid(ip, m) {
		sh.ndiscInvalid(p)
		return
	}
	dst := ip.Dst()
	flags := m[4]
	solicited, override := flags&header.NDPFlagSolicited != 0, flags&header.NDPFlagOverride != 0
	tlla, hasTLLA, ok := header.NDPLinkAddr(m[header.NDPMsgLen:], header.NDPOptTargetLLA)
	if !ok || (isMulticast6(&dst) && solicited) {
		sh.ndiscInvalid(p)
		return
	}
	target := [16]byte(m[8:24])
	if sh.st.ip6.isLocal(&target) {
		sh.frees.Free(p) // someone else claims our address: Linux logs it and carries on
		return
	}
	if p.Mark != markReplicated {
		sh.replicate(p)
	}
	n := sh.neigh6
	if e := n.m[target]; e != nil && e.state != neighPermanent {
		mac := tlla
		if !hasTLLA {
			mac = e.mac
		}
		switch {
		case !hasTLLA && !e.state.valid():
			// Nothing to learn from.
		case e.state.valid() && mac != e.mac && !override:
			if e.state == neighReachable {
				n.setState(e, neighStale, 0) // weak override: doubt the known address
			}
		default:
			s := neighStale
			if solicited {
				s = neighReachable
			}
			n.update(e, mac, s, override || !e.state.valid())
		}
	}
	sh.frees.Free(p)
}

// ndpPacket builds a solicitation or advertisement from src to dst; nil when the pool is
// empty.
func (sh *shard) ndpPacket(typ, flags uint8, src, dst, target *[16]byte) *dpdkshim.Packet {
	p := sh.NewPacket()
	if p == nil {
		return nil
	}
	b := p.Append(header.NDPMsgLen + header.NDPLinkAddrLen)
	if b == nil {
		p.Free()
		return nil
	}
	header.PutNDP(b, typ, flags, *target, sh.st.mac)
	header.SetICMPv6Checksum(b, *src, *dst)
	sh.ctr.Inc(stats.Icmp6OutMsgs)
	return p
}

// sendNS sends a neighbour solicitation for target (ndisc_solicit): to its solicited-node
// group, or to mac when unicast (a PROBE), from the source a datagram to target takes.
func (sh *shard) sendNS(target [16]byte, mac header.MAC, unicast bool) {
	src, ok := sh.st.ip6.source(target)
	if !ok {
		return
	}
	dst := header.SolicitedNode(target)
	if unicast {
		dst = target
	}
	p := sh.ndpPacket(header.ICMPv6NeighSolicit, 0, &src, &dst, &target)
	if p == nil {
		return
	}
	sh.ctr.Inc(stats.Icmp6OutNeighborSolicits)
	if !unicast {
		sh.output6(p, &src, &dst, header.ProtoICMPv6, 255)
		return
	}
	// Straight to the address being probed: not through the entry that is probing.
	b := p.Prepend(header.IPv6Len)
	if b == nil {
		sh.ctr.Inc(stats.TxDropped)
		p.Free()
		return
	}
	sh.ctr.Inc(stats.Ip6OutRequests)
	header.EncodeIPv6(b, uint16(p.Len()-header.IPv6Len), header.ProtoICMPv6, 255, src, dst)
	sh.sendFrame(p, mac, header.EtherTypeIPv6)
}

// sendNA sends an advertisement for our address target to dst (ndisc_send_na): Override
// always (it is our own address), Solicited when it answers a solicitation.
func (sh *shard) sendNA(dst, target [16]byte, solicited bool) {
	flags := uint8(header.NDPFlagOverride)
	if solicited {
		flags |= header.NDPFlagSolicited
	}
	p := sh.ndpPacket(header.ICMPv6NeighAdvert, flags, &target, &dst, &target)
	if p == nil {
		return
	}
	sh.ctr.Inc(stats.Icmp6OutNeighborAdvertisements)
	sh.output6(p, &target, &dst, header.ProtoICMPv6, 255)
}

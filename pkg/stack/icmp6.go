package stack

import (
	"encoding/binary"
	"syscall"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// ICMPv6 (RFC 4443) as Linux's icmpv6_rcv takes it: every message counted in
// Icmp6InMsgs and by type, a bad checksum counted in Icmp6InCsumErrors and Icmp6InErrors,
// echo requests answered (to our addresses and to the groups we joined, as
// icmpv6_echo_ignore_multicast=0), neighbour discovery handled in ndisc.go, errors that
// quote one of our TCP flows handed to TCP on the shard that owns the flow
// (tcpICMPError), router advertisements and redirects counted and ignored (addresses
// and routes are configured, not learnt).

// hopLimit is Linux's net.ipv6.conf.*.hop_limit default for what we originate.
const hopLimit = 64

var icmp6InType = map[uint8]stats.ID{
	header.ICMPv6DstUnreach:    stats.Icmp6InDestUnreachs,
	header.ICMPv6PacketTooBig:  stats.Icmp6InPktTooBigs,
	header.ICMPv6TimeExceeded:  stats.Icmp6InTimeExcds,
	header.ICMPv6ParamProblem:  stats.Icmp6InParmProblems,
	header.ICMPv6EchoRequest:   stats.Icmp6InEchos,
	header.ICMPv6EchoReply:     stats.Icmp6InEchoReplies,
	header.ICMPv6RouterSolicit: stats.Icmp6InRouterSolicits,
	header.ICMPv6RouterAdvert:  stats.Icmp6InRouterAdvertisements,
	header.ICMPv6NeighSolicit:  stats.Icmp6InNeighborSolicits,
	header.ICMPv6NeighAdvert:   stats.Icmp6InNeighborAdvertisements,
	header.ICMPv6Redirect:      stats.Icmp6InRedirects,
}

// icmp6Input is icmpv6_rcv for one message m carried in ip.
func (sh *shard) icmp6Input(p *dpdkshim.Packet, ip header.IPv6, m []byte, host bool) {
	src, dst := ip.Src(), ip.Dst()
	if p.Mark == markHandoff {
		// An error handed over by the shard that received it, already counted there.
		sh.icmp6Error(p, m, false)
		return
	}
	if p.Mark != markReplicated {
		sh.ctr.Inc(stats.Icmp6InMsgs)
	}
	if p.Flags&dpdkshim.CsumVerified == 0 && !header.ICMPv6ChecksumValid(m, src, dst) {
		sh.ctr.Inc(stats.Icmp6InCsumErrors)
		sh.drop6(p, stats.Icmp6InErrors)
		return
	}
	if len(m) < header.ICMPv6MinLen {
		sh.drop6(p, stats.Icmp6InErrors)
		return
	}
	typ := m[0]
	if id, ok := icmp6InType[typ]; ok && p.Mark != markReplicated {
		sh.ctr.Inc(id)
	}
	switch typ {
	case header.ICMPv6EchoRequest:
		sh.echoReply6(p, &src, &dst, m)
	case header.ICMPv6NeighSolicit:
		sh.ndiscNS(p, ip, m)
	case header.ICMPv6NeighAdvert:
		sh.ndiscNA(p, ip, m, host)
	case header.ICMPv6DstUnreach, header.ICMPv6PacketTooBig, header.ICMPv6TimeExceeded, header.ICMPv6ParamProblem:
		sh.icmp6Error(p, m, true)
	default:
		sh.frees.Free(p)
	}
}

// echoReply6 is icmpv6_echo_reply: the request's identifier, sequence number and data
// back to its source, from the address it was sent to (or, for a group, from the source
// the route picks).
func (sh *shard) echoReply6(p *dpdkshim.Packet, src, dst *[16]byte, m []byte) {
	from := *dst
	if isMulticast6(dst) {
		var ok bool
		if from, ok = sh.st.ip6.source(*src); !ok {
			sh.frees.Free(p)
			return
		}
	}
	if *src == ([16]byte{}) || isMulticast6(src) {
		sh.frees.Free(p) // nobody to answer
		return
	}
	r := sh.NewPacket()
	if r == nil {
		sh.frees.Free(p)
		return
	}
	b := r.Append(len(m))
	if b == nil {
		r.Free()
		sh.frees.Free(p)
		return
	}
	copy(b, m)
	sh.frees.Free(p)
	b[0], b[1] = header.ICMPv6EchoReply, 0
	header.SetICMPv6Checksum(b, from, *src)
	sh.ctr.Inc(stats.Icmp6OutMsgs)
	sh.ctr.Inc(stats.Icmp6OutEchoReplies)
	sh.output6(r, &from, src, header.ProtoICMPv6, hopLimit)
}

// icmp6Error is icmpv6_notify for an error message m: it finds the TCP flow the quoted
// datagram (its header, extension headers skipped, and 8 bytes of TCP) belongs to and
// hands it to the owning shard's TCP. A quote too short to name a flow is Icmp6InErrors,
// as Linux counts it; one that quotes another protocol is ignored.
func (sh *shard) icmp6Error(p *dpdkshim.Packet, m []byte, first bool) {
	if sh.quotedFlow(p, m, first) {
		return // handed to the owner
	}
	sh.frees.Free(p)
}

// quotedFlow does icmp6Error's work; true means it handed p to another shard.
func (sh *shard) quotedFlow(p *dpdkshim.Packet, m []byte, first bool) bool {
	if len(m) < 8+header.IPv6Len {
		sh.ctr.Inc(stats.Icmp6InErrors)
		return false
	}
	q := m[8:]
	next, off, ok := skipExt6(q, q[6], header.IPv6Len) // the quoted datagram's own extension headers
	if !ok {
		sh.ctr.Inc(stats.Icmp6InErrors)
		return false
	}
	if next != header.ProtoTCP {
		return false // another protocol, or not the first fragment: no ports to find
	}
	if len(q) < off+8 {
		sh.ctr.Inc(stats.Icmp6InErrors)
		return false
	}
	t := q[off:]
	// The quoted segment went from us to the peer: its source is our side of the flow.
	k := hash.KeyV6([16]byte(q[8:24]), binary.BigEndian.Uint16(t[0:]), [16]byte(q[24:40]), binary.BigEndian.Uint16(t[2:]))
	if !sh.st.ip6.isLocal(&k.LocalAddr) {
		sh.ctr.Inc(stats.Icmp6InErrors)
		return false
	}
	h := sh.st.hasher.Sum(&k)
	if owner := sh.st.owner(k, h); owner != sh.id && first {
		sh.handoff(p, owner, markHandoff)
		return true
	}
	info := binary.BigEndian.Uint32(m[4:])
	if m[0] == header.ICMPv6PacketTooBig && info < 1280 {
		info = 1280 // IPv6's minimum link MTU: no path is smaller (RFC 8200 §5)
	}
	sh.tcpICMPError(&k, h, m[0], m[1], info, binary.BigEndian.Uint32(t[4:]))
	return false
}

// tcpICMPError hands TCP an ICMPv6 error for flow k (seen from us; h its flow hash), on
// the shard that owns the flow, as tcp_v6_err does with icmpv6_err_convert: the ICMPv6 type
// and code, the type's 32-bit field (for Packet Too Big the MTU, at least 1280) and the
// quoted segment's sequence number, which TCP checks against its window. Packet Too Big
// lowers the path MTU and the connection's MSS (pkg/tcp's ICMP-error entry, the one
// ICMPv4's fragmentation needed uses); the other errors are soft or hard as Linux's table
// makes them (fatal ones drop a request; no route allows RFC 6069's RTO revert). A flow TCP
// does not know is Icmp6InErrors.
func (sh *shard) tcpICMPError(k *hash.Key, h uint64, typ, code uint8, info, seq uint32) {
	if tcpICMPErrorHook != nil {
		tcpICMPErrorHook(sh.id, k, typ, code, info, seq)
	}
	e := &sh.icmp.err
	*e = tcpdrv.ICMPError{Key: *k, Hash: h, Seq: seq}
	switch typ {
	case header.ICMPv6PacketTooBig:
		e.MTU = info
	case header.ICMPv6DstUnreach:
		e.Errno, e.AbortRequest = syscall.EHOSTUNREACH, true
		if int(code) < len(icmp6UnreachErrno) {
			u := icmp6UnreachErrno[code]
			e.Errno, e.AbortRequest = u.errno, u.fatal
		}
		e.RevertRTO = code == 0 // no route to destination
	case header.ICMPv6ParamProblem:
		e.Errno, e.AbortRequest = syscall.EPROTO, true
	case header.ICMPv6TimeExceeded:
		e.Errno = syscall.EHOSTUNREACH
	default:
		e.Errno = syscall.EPROTO
	}
	if !sh.tcp.ICMPError(e) {
		sh.ctr.Inc(stats.Icmp6InErrors) // tcp_v6_err: no socket has the flow
	}
}

// icmp6UnreachErrno is icmpv6_err_convert's table for destination unreachable codes: the
// errno and whether the error is fatal (drops a request in SYN-RECV).
var icmp6UnreachErrno = [...]struct {
	errno syscall.Errno
	fatal bool
}{
	{syscall.ENETUNREACH, false},  // 0 no route
	{syscall.EACCES, true},        // 1 administratively prohibited
	{syscall.EHOSTUNREACH, false}, // 2 beyond the scope of the source address
	{syscall.EHOSTUNREACH, false}, // 3 address unreachable
	{syscall.ECONNREFUSED, true},  // 4 port unreachable
	{syscall.EACCES, true},        // 5 source address failed policy
	{syscall.EACCES, true},        // 6 reject route
}

// tcpICMPErrorHook lets tests see what tcpICMPError is handed.
var tcpICMPErrorHook func(shard int, k *hash.Key, typ, code uint8, info, seq uint32)

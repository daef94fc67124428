package stack

import (
	"encoding/binary"
	"syscall"
	"time"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// ICMPv4 input as Linux's icmp_rcv runs it, counted in Linux's ICMP MIB:
//
//   - every message counts IcmpInMsgs; a bad checksum IcmpInCsumErrors and IcmpInErrors,
//     a message shorter than its header IcmpInErrors; then IcmpMsgInTypeN (and the In*
//     counter of its type); a type above 18 is discarded (RFC 1122 §3.2.2), IcmpInErrors.
//   - to a broadcast or multicast address (the input filters' routeBroadcast and
//     routeMulticast, filter.go) only echo, timestamp and address mask messages are taken,
//     and echo and timestamp requests only with icmp_echo_ignore_broadcasts=0; the rest is
//     IcmpInErrors. Martian sources and destinations never get here (ipInput).
//   - an echo request is answered with an echo reply carrying its identifier, sequence
//     number and data (icmp_echo), unless icmp_echo_ignore_all; from the address it was
//     sent to, or for a broadcast from ours on the sender's subnet.
//   - destination unreachable, source quench, time exceeded and parameter problem go to
//     the protocol of the datagram they quote (icmp_unreach, icmp_socket_deliver): the
//     quote must hold the IP header and 8 bytes beyond it (else IcmpInErrors); for TCP the
//     shard that owns the quoted flow gets a tcpdrv.ICMPError (pkg/tcp icmp.go); for UDP,
//     which has no sockets here, IcmpInErrors as udp_err counts it; quotes of ICMP or other
//     protocols reach no socket and are dropped quietly, as Linux does with no raw or ping
//     socket open.
//   - a timestamp request is answered with the milliseconds since midnight UT (icmp_timestamp,
//     RFC 792), a too short one is IcmpInErrors; address mask requests are not answered
//     (Linux dropped them too).
//   - redirects are looked up and checked like the other errors but not followed (as a
//     host with accept_redirects=0 does; Linux's default for a host follows secure ones).
//
// Differences from Linux kept on purpose: an echo reply does not echo the request's IP
// options (ip_options_echo). (A locked path MTU, a report below min_pmtu, clears DF on the
// TCP segments to it, as Linux's ip_dont_fragment does: dpdkshim.MayFragment.)

// icmpUnreachErrno is Linux's icmp_err_convert: the errno of each destination unreachable
// code (RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
var icmpUnreachErrno = [header.ICMPv4MaxUnreachCode + 1]syscall.Errno{
	syscall.ENETUNREACH,  // net unreachable
	syscall.EHOSTUNREACH, // host unreachable
	syscall.ENOPROTOOPT,  // protocol unreachable
	syscall.ECONNREFUSED, // port unreachable
	syscall.EMSGSIZE,     // fragmentation needed
	syscall.EOPNOTSUPP,   // source route failed
	syscall.ENETUNREACH,  // destination network unknown
	syscall.EHOSTDOWN,    // destination host unknown
	syscall.Errno(64),    // source host isolated: Linux ENONET (named in syscall only for Linux)
	syscall.ENETUNREACH,  // network administratively prohibited
	syscall.EHOSTUNREACH, // host administratively prohibited
	syscall.ENETUNREACH,  // network unreachable for TOS
	syscall.EHOSTUNREACH, // host unreachable for TOS
	syscall.EHOSTUNREACH, // communication administratively prohibited
	syscall.EHOSTUNREACH, // host precedence violation
	syscall.EHOSTUNREACH, // precedence cutoff in effect
}

// icmpInput handles an ICMPv4 datagram for us; rt is its input route. A datagram handed
// over by another shard (an error quoting a flow this shard owns) was counted and checked
// there and goes straight to its flow.
func (sh *shard) icmpInput(p *dpdkshim.Packet, ip header.IPv4, rt inRoute) {
	b := ip.Payload()
	if p.Mark == markHandoff {
		if m, err := header.ParseICMPv4(b); err == nil {
			sh.icmpDeliverTCP(m)
		}
		sh.frees.Free(p)
		return
	}
	sh.ctr.Inc(stats.IpInDelivers)
	sh.ctr.Inc(stats.IcmpInMsgs)
	if !header.ICMPv4(b).ChecksumValid() { // nothing at all does not sum to 0 either, as in Linux
		sh.ctr.Inc(stats.IcmpInCsumErrors)
		sh.ctr.Inc(stats.IcmpInErrors)
		sh.frees.Free(p)
		return
	}
	m, err := header.ParseICMPv4(b)
	if err != nil {
		sh.ctr.Inc(stats.IcmpInErrors)
		sh.frees.Free(p)
		return
	}
	t := m.Type()
	sh.ctr.IcmpIn(t)
	if t > header.ICMPv4MaxType {
		sh.ctr.Inc(stats.IcmpInErrors)
		sh.frees.Free(p)
		return
	}
	conf := &sh.st.icmp.conf
	if rt == routeBroadcast || rt == routeMulticast {
		switch t {
		case header.ICMPv4Echo, header.ICMPv4Timestamp:
			if conf.echoIgnoreBcast {
				sh.ctr.Inc(stats.IcmpInErrors)
				sh.frees.Free(p)
				return
			}
		case header.ICMPv4AddrMask, header.ICMPv4AddrMaskReply:
		default:
			sh.ctr.Inc(stats.IcmpInErrors)
			sh.frees.Free(p)
			return
		}
	}
	switch t {
	case header.ICMPv4Echo:
		if !conf.echoIgnoreAll {
			sh.icmpEcho(ip, m, rt)
		}
	case header.ICMPv4Timestamp:
		sh.icmpTimestamp(ip, m, rt)
	case header.ICMPv4DestUnreach, header.ICMPv4SourceQuench, header.ICMPv4TimeExceeded,
		header.ICMPv4ParamProblem, header.ICMPv4Redirect:
		if sh.icmpUnreach(p, m) {
			return // handed to the shard that owns the flow
		}
	}
	sh.frees.Free(p)
}

// icmpEcho answers an echo request (Linux icmp_echo, icmp_reply).
func (sh *shard) icmpEcho(ip header.IPv4, m header.ICMPv4, rt inRoute) {
	src := ip.Dst()
	if rt != routeLocal {
		src = sh.st.source4(ip.Src()) // fib_compute_spec_dst: our address towards the sender
	}
	if !sh.icmpAllow(header.ICMPv4EchoReply, 0, ip.Src()) {
		return
	}
	p := sh.NewPacket()
	if p == nil {
		sh.ctr.Inc(stats.IcmpOutErrors)
		return
	}
	out := p.Append(len(m))
	if out == nil || p.Headroom() < header.IPv4MinLen+header.EthernetLen {
		sh.ctr.Inc(stats.IcmpOutErrors)
		p.Free()
		return
	}
	copy(out, m)
	header.PutICMPv4(out, header.ICMPv4EchoReply, 0, m.RestOfHeader())
	sh.icmpOutput(p, header.ICMPv4EchoReply, ip.TOS(), src, ip.Src())
}

// icmpTimestamp answers a timestamp request (Linux icmp_timestamp): the originate
// timestamp back, and our receive and transmit times, milliseconds since midnight UT.
func (sh *shard) icmpTimestamp(ip header.IPv4, m header.ICMPv4, rt inRoute) {
	if len(m.Body()) < 4 {
		sh.ctr.Inc(stats.IcmpInErrors)
		return
	}
	src := ip.Dst()
	if rt != routeLocal {
		src = sh.st.source4(ip.Src())
	}
	if !sh.icmpAllow(header.ICMPv4TimestampReply, 0, ip.Src()) {
		return
	}
	p := sh.NewPacket()
	if p == nil {
		sh.ctr.Inc(stats.IcmpOutErrors)
		return
	}
	out := p.Append(header.ICMPv4Len + 12)
	if out == nil {
		sh.ctr.Inc(stats.IcmpOutErrors)
		p.Free()
		return
	}
	ms := uint32(time.Now().UnixMilli() % 86_400_000)
	copy(out[8:12], m.Body()[:4])
	binary.BigEndian.PutUint32(out[12:], ms)
	binary.BigEndian.PutUint32(out[16:], ms)
	header.PutICMPv4(out, header.ICMPv4TimestampReply, 0, m.RestOfHeader())
	sh.icmpOutput(p, header.ICMPv4TimestampReply, ip.TOS(), src, ip.Src())
}

// icmpUnreach is Linux's icmp_unreach and icmp_socket_deliver for the error messages; it
// reports whether it handed p to another shard (which then owns it).
func (sh *shard) icmpUnreach(p *dpdkshim.Packet, m header.ICMPv4) bool {
	q := m.Body()
	if len(q) < header.IPv4MinLen {
		sh.ctr.Inc(stats.IcmpInErrors)
		return false
	}
	ihl := int(q[0]&0xf) * 4
	if ihl < header.IPv4MinLen {
		sh.ctr.Inc(stats.IcmpInErrors) // a mangled quote
		return false
	}
	switch m.Type() {
	case header.ICMPv4DestUnreach:
		if m.Code() > header.ICMPv4MaxUnreachCode {
			return false
		}
	case header.ICMPv4TimeExceeded:
		if m.Code() == 1 {
			return false // fragment reassembly time exceeded: nothing for a socket
		}
	}
	if len(q) < ihl+8 {
		sh.ctr.Inc(stats.IcmpInErrors)
		return false
	}
	switch q[9] {
	case header.ProtoTCP:
	case header.ProtoUDP:
		sh.ctr.Inc(stats.IcmpInErrors) // udp_err finds no socket
		return false
	default:
		return false
	}
	// The owner of the quoted flow: our source, its destination.
	var local, remote [4]byte
	copy(local[:], q[12:16])
	copy(remote[:], q[16:20])
	th := q[ihl:]
	key := &sh.key
	*key = hash.KeyV4(local, binary.BigEndian.Uint16(th[0:]), remote, binary.BigEndian.Uint16(th[2:]))
	h := sh.st.hasher.Sum(key)
	if owner := sh.st.owner(*key, h); owner != sh.id {
		sh.handoff(p, owner, markHandoff)
		return true
	}
	sh.icmpDeliverTCP(m)
	return false
}

// icmpDeliverTCP is the IPv4 half of tcp_v4_err: the message as a tcpdrv.ICMPError for the
// quoted flow, whose shard this is. The quote was checked by icmpUnreach.
func (sh *shard) icmpDeliverTCP(m header.ICMPv4) {
	q := m.Body()
	ihl := int(q[0]&0xf) * 4
	if len(q) < header.IPv4MinLen || ihl < header.IPv4MinLen || len(q) < ihl+8 {
		return
	}
	th := q[ihl:]
	e := &sh.icmp.err
	*e = tcpdrv.ICMPError{}
	var local, remote [4]byte
	copy(local[:], q[12:16])
	copy(remote[:], q[16:20])
	e.Key = hash.KeyV4(local, binary.BigEndian.Uint16(th[0:]), remote, binary.BigEndian.Uint16(th[2:]))
	e.Hash = sh.st.hasher.Sum(&e.Key)
	e.Seq = binary.BigEndian.Uint32(th[4:])
	code := m.Code()
	switch m.Type() {
	case header.ICMPv4ParamProblem:
		e.Errno, e.AbortRequest = syscall.EPROTO, true
	case header.ICMPv4TimeExceeded:
		e.Errno, e.AbortRequest = syscall.EHOSTUNREACH, true
	case header.ICMPv4DestUnreach:
		e.Errno = icmpUnreachErrno[code&15]
		if code == header.ICMPv4NetUnreach || code == header.ICMPv4HostUnreach {
			e.AbortRequest, e.RevertRTO = true, true
		}
		if code == header.ICMPv4FragNeeded {
			// RFC 1191 §4's next-hop MTU; an old router's 0 is below every floor, as
			// Linux takes it (the path falls to min_pmtu and is locked).
			e.Errno = 0
			e.MTU = max(uint32(m.NextHopMTU()), 1)
		}
	}
	if !sh.tcp.ICMPError(e) {
		sh.ctr.Inc(stats.IcmpInErrors) // tcp_v4_err: no socket has the flow
	}
}

package stack_test

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var (
	allNodes6 = netip.MustParseAddr("ff02::1").As16()
	serverAP6 = netip.AddrPortFrom(simnet.ServerAddr6.Addr(), 80)
	peerAddr6 = simnet.ClientAddr6.Addr()
)

// exchangeTo is exchange against any server address.
func exchangeTo(t *testing.T, n *simnet.Net, l *tcp.Listener, ap netip.AddrPort) {
	t.Helper()
	c, err := n.Client.DialAsync(ap, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State(), dump(n))
	s, err := l.TryAccept()
	require.NoError(t, err)
	require.Equal(t, ap, s.LocalAddrPort())
	require.Equal(t, c.LocalAddrPort(), s.RemoteAddrPort())
	_, err = c.TryWrite([]byte("hello"))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	buf := make([]byte, 64)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf[:k]))
	_, err = s.TryWrite([]byte("world"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	n.RunFor(time.Millisecond)
	k, err = c.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "world", string(buf[:k]))
	_, err = c.TryRead(buf)
	require.Equal(t, io.EOF, err)
	require.NoError(t, c.Close())
	n.RunFor(time.Millisecond)
}

// Two stacks over the in-memory pair speak TCP over IPv6: neighbour discovery resolves
// both ends, the handshake, data both ways and the close go through, and the MSS is the
// link's less 60 bytes.
func TestIPv6HandshakeExchangeClose(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	exchangeTo(t, n, l, serverAP6)
	sc, cc := n.Server.Counters(), n.Client.Counters()
	require.Equal(t, uint64(1), sc[stats.TcpPassiveOpens])
	require.Equal(t, uint64(1), cc[stats.TcpActiveOpens])
	require.Zero(t, sc[stats.TcpOutRsts]+cc[stats.TcpOutRsts], dump(n))
	require.Equal(t, uint64(1), cc[stats.Icmp6OutNeighborSolicits], "the client solicits the server once")
	require.Equal(t, uint64(1), sc[stats.Icmp6OutNeighborAdvertisements])
	require.Zero(t, sc[stats.Icmp6OutNeighborSolicits], "the server learnt the client from its solicitation")
	require.Zero(t, sc[stats.IpInReceives]+cc[stats.IpInReceives], "no IPv4 at all")
	require.Zero(t, sc[stats.Ip6InHdrErrors]+sc[stats.Icmp6InNDiscInvalid]+cc[stats.Icmp6InNDiscInvalid])
	require.Equal(t, sc[stats.Ip6InReceives], sc[stats.Ip6InDelivers])

	var syn header.TCP
	for _, f := range n.TCPFrames(nil) {
		if seg, _ := simnet.TCPOf(f.Data); seg.Flags()&header.TCPFlagSYN != 0 && f.ToServer {
			syn = seg
		}
	}
	require.NotNil(t, syn)
	var o header.TCPOptions
	require.NoError(t, header.ParseTCPOptions(syn.Options(), &o))
	require.Equal(t, uint16(n.PortC.MTU()-60), o.MSS, "MSS = MTU - 60 over IPv6")

	socks := n.Server.Sockets()
	require.Len(t, socks, 2, "the listener and the TIME-WAIT the server's close left")
	require.Equal(t, tcp.StateListen, socks[0].State)
	require.Equal(t, "[::]:80", socks[0].Local.String())
	require.Equal(t, "[::]:0", socks[0].Peer.String())
	require.Equal(t, tcp.StateTimeWait, socks[1].State)
	require.Equal(t, serverAP6, socks[1].Local)
	require.Equal(t, peerAddr6, socks[1].Peer.Addr())

	rows := n.Server.Neighbours()
	require.Len(t, rows, 1)
	require.Equal(t, simnet.ClientAddr6.Addr(), rows[0].Addr)
	require.Equal(t, n.PortC.MAC(), rows[0].MAC)
}

// One listener on ":80" takes both families; one on [::] with IPV6_V6ONLY refuses IPv4;
// one on 0.0.0.0 refuses IPv6.
func TestDualStackAndV6Only(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true, StaticARP: true})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	require.Equal(t, "[::]:80", l.AddrPort().String())
	exchangeTo(t, n, l, serverAP)
	exchangeTo(t, n, l, serverAP6)
	require.NoError(t, l.Close())

	only6, err := n.Server.ListenTCP(netip.MustParseAddrPort("[::]:80"), tcp.ListenOptions{Backlog: 16, V6Only: true})
	require.NoError(t, err)
	exchangeTo(t, n, only6, serverAP6)
	refused := func(ap netip.AddrPort) {
		c, err := n.Client.DialAsync(ap, tcp.DialOptions{})
		require.NoError(t, err)
		n.RunFor(10 * time.Millisecond)
		require.ErrorIs(t, c.WaitConnected(context.Background()), tcp.ErrConnectionRefused)
	}
	refused(serverAP)
	only4, err := n.Server.Listen("0.0.0.0:80", 16)
	require.NoError(t, err, "IPV6_V6ONLY leaves IPv4's port free")
	exchangeTo(t, n, only4, serverAP)
	require.NoError(t, only6.Close())
	refused(serverAP6)
}

// A listener's backlog holds over IPv6 as over IPv4: backlog+1 children wait, the next
// final ACK overflows.
func TestIPv6ListenerBacklog(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true, StaticARP: true})
	l, err := n.Server.Listen("[fd00:5eed::1]:80", 1)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		c, err := n.Client.DialAsync(serverAP6, tcp.DialOptions{})
		require.NoError(t, err)
		n.RunFor(10 * time.Millisecond)
		if i < 2 {
			require.Equal(t, tcp.StateEstablished, c.State())
		} else {
			require.Equal(t, tcp.StateSynSent, c.State(), "a SYN to a full accept queue is dropped")
		}
	}
	require.Equal(t, 2, l.AcceptQueueLen(), "backlog 1 holds 2 children")
	require.NotZero(t, n.Server.Counters()[stats.TcpExtListenOverflows])
	for i := 0; i < 2; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		require.True(t, s.RemoteAddrPort().Addr().Is6())
	}
	_, err = n.Client.DialAsync(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	require.Zero(t, l.AcceptQueueLen(), "a listener on an IPv6 address takes no IPv4")
}

// Dialing an address on the prefix that nobody holds: three multicast solicitations a
// second apart, then FAILED, the SYN waiting on it dropped and counted.
func TestNDPUnreachable(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true})
	ghost := netip.MustParseAddrPort("[fd00:5eed::99]:80")
	_, err := n.Client.DialAsync(ghost, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	rows := n.Client.Neighbours()
	require.Len(t, rows, 1)
	require.Equal(t, "INCOMPLETE", rows[0].State)
	n.RunFor(2900 * time.Millisecond)
	cc := n.Client.Counters()
	require.Equal(t, uint64(3), cc[stats.Icmp6OutNeighborSolicits])
	require.Zero(t, cc[stats.NdiscUnresolvedDiscards])
	// At 3 s the entry fails and drops the SYN it held; the SYN's retransmission at
	// that same instant starts it over (Linux: the next packet to a FAILED entry).
	n.RunFor(200 * time.Millisecond)
	cc = n.Client.Counters()
	require.NotZero(t, cc[stats.NdiscUnresolvedDiscards])
	require.Equal(t, uint64(4), cc[stats.Icmp6OutNeighborSolicits])
	require.Zero(t, cc[stats.ArpUnresolvedDiscards], "the IPv6 table counts its own")
}

// An entry ages as Linux's does: REACHABLE after the exchange, STALE once reachable_time
// (15-45 s) passed, then on use DELAY and, with no confirmation within 5 s, PROBE by
// unicast solicitation, which the peer answers: REACHABLE again.
func TestNDPAging(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	c, err := n.Client.DialAsync(serverAP6, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	s, err := l.TryAccept()
	require.NoError(t, err)
	state := func() string {
		for _, r := range n.Client.Neighbours() {
			if r.Addr == serverAP6.Addr() {
				return r.State
			}
		}
		return ""
	}
	require.Equal(t, "REACHABLE", state())
	n.RunFor(50 * time.Second)
	require.Equal(t, "STALE", state())
	before := n.Client.Counters()[stats.Icmp6OutNeighborSolicits]
	_, err = c.TryWrite([]byte("x"))
	require.NoError(t, err)
	// The server's ACK of the byte is no confirmation (Linux counts only ND and upper
	// layer hints, which shardstack does not give); the solicitation after 5 s is unicast.
	n.RunFor(100 * time.Millisecond)
	require.Equal(t, "DELAY", state())
	n.RunFor(6 * time.Second)
	require.Equal(t, "REACHABLE", state(), dump(n))
	require.Equal(t, before+1, n.Client.Counters()[stats.Icmp6OutNeighborSolicits])
	_ = s
}

// ping -6: an echo request to our address, and to all-nodes, is answered with the same
// identifier, sequence and data; a bad checksum is counted and not answered.
func TestICMPv6Echo(t *testing.T) {
	r := newV6PeerStatic(t)
	srv := simnet.ServerAddr6.Addr()
	echo := []byte{header.ICMPv6EchoRequest, 0, 0, 0, 0x12, 0x34, 0, 7, 'p', 'i', 'n', 'g'}
	r.send(ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoICMPv6, icmp6(echo, peerAddr6, srv)))
	out := r.recv()
	require.Len(t, out, 1)
	ip := ip6Of(t, out[0])
	require.Equal(t, srv, netip.AddrFrom16(ip.Src()))
	require.Equal(t, peerAddr6, netip.AddrFrom16(ip.Dst()))
	m := ip.Payload()
	require.Equal(t, header.ICMPv6EchoReply, m[0])
	require.Equal(t, echo[4:], m[4:])
	require.True(t, header.ICMPv6ChecksumValid(m, ip.Src(), ip.Dst()))

	all := netip.MustParseAddr("ff02::1")
	r.send(ip6Frame(header.IPv6MulticastMAC(all.As16()), r.mac, peerAddr6, all, 1, header.ProtoICMPv6, icmp6(echo, peerAddr6, all)))
	out = r.recv()
	require.Len(t, out, 1, "all-nodes is a group we joined")
	require.Equal(t, srv, netip.AddrFrom16(ip6Of(t, out[0]).Src()), "answered from the address on the peer's prefix")

	bad := icmp6(echo, peerAddr6, srv)
	bad[2] ^= 1
	r.send(ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoICMPv6, bad))
	require.Empty(t, r.recv())
	c := r.s.Counters()
	require.Equal(t, uint64(3), c[stats.Icmp6InMsgs])
	require.Equal(t, uint64(1), c[stats.Icmp6InCsumErrors])
	require.Equal(t, uint64(1), c[stats.Icmp6InErrors])
	require.Equal(t, uint64(2), c[stats.Icmp6InEchos])
	require.Equal(t, uint64(2), c[stats.Icmp6OutEchoReplies])
}

// Neighbour discovery is answered by the rules of RFC 4861 §7.1: a solicitation with hop
// limit 255 is answered (Solicited, Override, our MAC) and teaches us the sender; one with
// another hop limit, or with a zero-length option, is invalid; a duplicate address
// detection probe is answered to all-nodes.
func TestNDPValidity(t *testing.T) {
	r := newV6Peer(t)
	srv := simnet.ServerAddr6.Addr()
	sn := netip.AddrFrom16(header.SolicitedNode(srv.As16()))
	snMAC := header.IPv6MulticastMAC(sn.As16())
	ns := func(hop uint8, src netip.Addr, withOpt bool) []byte {
		m := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
		header.PutNDP(m, header.ICMPv6NeighSolicit, 0, srv.As16(), r.mac)
		if !withOpt {
			m = m[:header.NDPMsgLen]
		}
		return ip6Frame(snMAC, r.mac, src, sn, hop, header.ProtoICMPv6, icmp6(m, src, sn))
	}
	r.send(ns(64, peerAddr6, true))
	require.Empty(t, r.recv(), "hop limit 64: it crossed a router")
	require.Equal(t, uint64(1), r.s.Counters()[stats.Icmp6InNDiscInvalid])
	zero := ns(255, peerAddr6, true)
	zero[header.EthernetLen+header.IPv6Len+25] = 0 // option length 0
	fixICMP6(zero)
	r.send(zero)
	require.Empty(t, r.recv())
	require.Equal(t, uint64(2), r.s.Counters()[stats.Icmp6InNDiscInvalid])

	r.send(ns(255, peerAddr6, true))
	out := r.recv()
	require.Len(t, out, 1)
	ip := ip6Of(t, out[0])
	require.Equal(t, uint8(255), ip.HopLimit())
	m := ip.Payload()
	require.Equal(t, header.ICMPv6NeighAdvert, m[0])
	require.Equal(t, uint8(header.NDPFlagSolicited|header.NDPFlagOverride), m[4])
	require.Equal(t, srv.As16(), [16]byte(m[8:24]))
	mac, found, ok := header.NDPLinkAddr(m[header.NDPMsgLen:], header.NDPOptTargetLLA)
	require.True(t, ok && found)
	require.Equal(t, r.smac, mac)
	require.Equal(t, r.mac, header.MAC(out[0][0:6]), "straight back to the solicitor, learnt from its option")
	rows := r.s.Neighbours()
	require.Len(t, rows, 1)
	require.Equal(t, "DELAY", rows[0].State, "learnt STALE from the solicitation, used by the answer")

	dad := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
	header.PutNDP(dad, header.ICMPv6NeighSolicit, 0, srv.As16(), r.mac)
	dad = dad[:header.NDPMsgLen] // no source link-layer address from ::
	unspec := netip.IPv6Unspecified()
	r.send(ip6Frame(snMAC, r.mac, unspec, sn, 255, header.ProtoICMPv6, icmp6(dad, unspec, sn)))
	out = r.recv()
	require.Len(t, out, 1)
	ip = ip6Of(t, out[0])
	require.Equal(t, "ff02::1", netip.AddrFrom16(ip.Dst()).String())
	require.Equal(t, uint8(header.NDPFlagOverride), ip.Payload()[4], "unsolicited")
}

// Hostile and unusual datagrams are dropped under Linux's counters: a routing header of
// type 0 with segments left, a truncated payload, a fragment, a hop-by-hop header that is
// not first, a multicast source, a group we did not join, another host's address.
func TestIPv6HostileInput(t *testing.T) {
	r := newV6PeerStatic(t)
	_, err := r.s.Listen(":80", 16)
	require.NoError(t, err)
	srv := simnet.ServerAddr6.Addr()
	syn := func(src, dst netip.Addr) []byte { return tcp6Seg(src, dst, 40000, header.TCPFlagSYN) }
	// param is the ICMPv6 parameter problem a case draws (Linux's icmpv6_param_prob), as
	// type, code and pointer; none for no answer at all.
	type param struct {
		code uint8
		ptr  uint32
	}
	none := param{code: 0xff}
	cases := []struct {
		name  string
		frame []byte
		ctr   stats.ID
		want  param
	}{
		{"RH0 with segments left", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoRouting,
			append([]byte{header.ProtoTCP, 2, 0, 1, 0, 0, 0, 0}, append(make([]byte, 16), syn(peerAddr6, srv)...)...)), stats.Ip6InHdrErrors,
			param{0, 42}},
		{"segment routing, no segments left", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoRouting,
			append([]byte{header.ProtoTCP, 2, 4, 0, 0, 0, 0, 0}, append(make([]byte, 16), syn(peerAddr6, srv)...)...)), stats.Ip6InDiscards, none},
		{"truncated", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoTCP, syn(peerAddr6, srv))[:70], stats.Ip6InTruncatedPkts, none},
		{"short header", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoTCP, nil)[:header.EthernetLen+30], stats.Ip6InHdrErrors, none},
		{"fragment", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoFragment,
			append([]byte{header.ProtoTCP, 0, 0, 1, 0, 0, 0, 9}, syn(peerAddr6, srv)...)), stats.Ip6ReasmFails, none},
		{"hop-by-hop not first", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoDstOpts,
			append([]byte{header.ProtoHopByHop, 0, 1, 4, 0, 0, 0, 0}, append([]byte{header.ProtoTCP, 0, 1, 4, 0, 0, 0, 0}, syn(peerAddr6, srv)...)...)), stats.Ip6InUnknownProtos, param{1, 40}},
		{"bad PadN", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoHopByHop,
			append([]byte{header.ProtoTCP, 0, 1, 4, 0, 1, 0, 0}, syn(peerAddr6, srv)...)), stats.Ip6InHdrErrors, none},
		{"unknown option 10", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoDstOpts,
			append([]byte{header.ProtoTCP, 0, 0x9e, 4, 0, 0, 0, 0}, syn(peerAddr6, srv)...)), stats.Ip6InHdrErrors, param{2, 42}},
		{"unknown option 01", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoDstOpts,
			append([]byte{header.ProtoTCP, 0, 0x5e, 4, 0, 0, 0, 0}, syn(peerAddr6, srv)...)), stats.Ip6InHdrErrors, none},
		{"unknown option 11 to a group", ip6Frame(header.IPv6MulticastMAC(allNodes6), r.mac, peerAddr6, netip.AddrFrom16(allNodes6), 64, header.ProtoDstOpts,
			append([]byte{header.ProtoTCP, 0, 0xde, 4, 0, 0, 0, 0}, syn(peerAddr6, srv)...)), stats.Ip6InHdrErrors, none},
		{"unknown option 10 to a group", ip6Frame(header.IPv6MulticastMAC(allNodes6), r.mac, peerAddr6, netip.AddrFrom16(allNodes6), 64, header.ProtoHopByHop,
			append([]byte{header.ProtoTCP, 0, 0x9e, 4, 0, 0, 0, 0}, syn(peerAddr6, srv)...)), stats.Ip6InHdrErrors, param{2, 42}},
		{"unknown option before an ICMPv6 error", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoDstOpts,
			append([]byte{header.ProtoICMPv6, 0, 0x9e, 4, 0, 0, 0, 0}, header.ICMPv6DstUnreach, 4, 0, 0, 0, 0, 0, 0)), stats.Ip6InHdrErrors, none},
		{"unknown next header in a group frame", ip6Frame(header.IPv6MulticastMAC(allNodes6), r.mac, peerAddr6, srv, 64, 253, syn(peerAddr6, srv)), stats.Ip6InUnknownProtos, none},
		{"unknown next header from the unspecified address", ip6Frame(r.smac, r.mac, netip.IPv6Unspecified(), srv, 64, 253, nil), stats.Ip6InUnknownProtos, none},
		{"multicast source", ip6Frame(r.smac, r.mac, netip.MustParseAddr("ff02::1"), srv, 64, header.ProtoTCP, syn(peerAddr6, srv)), stats.Ip6InHdrErrors, none},
		{"loopback destination", ip6Frame(r.smac, r.mac, peerAddr6, netip.IPv6Loopback(), 64, header.ProtoTCP, syn(peerAddr6, srv)), stats.Ip6InHdrErrors, none},
		{"not joined", ip6Frame(r.smac, r.mac, peerAddr6, netip.MustParseAddr("ff02::1:ff00:77"), 64, header.ProtoTCP, syn(peerAddr6, srv)), stats.Ip6InMcastNotJoined, none},
		{"another host", ip6Frame(r.smac, r.mac, peerAddr6, netip.MustParseAddr("fd00:5eed::77"), 64, header.ProtoTCP, syn(peerAddr6, srv)), stats.Ip6InAddrErrors, none},
		{"v4-mapped source", ip6Frame(r.smac, r.mac, netip.MustParseAddr("::ffff:198.18.0.2"), srv, 64, header.ProtoTCP,
			syn(netip.MustParseAddr("::ffff:198.18.0.2"), srv)), stats.Ip6InHdrErrors, none},
		{"unknown next header", ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, 253, syn(peerAddr6, srv)), stats.Ip6InUnknownProtos, param{1, 6}},
		{"land", ip6Frame(r.smac, r.mac, srv, srv, 64, header.ProtoTCP, syn(srv, srv)), stats.RtInMartianSrc, none},
		{"from our link-local", ip6Frame(r.smac, r.mac, r.s.LinkLocal(), srv, 64, header.ProtoTCP, syn(r.s.LinkLocal(), srv)), stats.RtInMartianSrc, none},
		{"to our address in a group frame", ip6Frame(header.IPv6MulticastMAC(allNodes6), r.mac, peerAddr6, srv, 64, header.ProtoTCP, syn(peerAddr6, srv)), stats.TcpInNotHostDrops, none},
	}
	for _, c := range cases {
		before := r.s.Counters()
		r.send(c.frame)
		after := r.s.Counters()
		require.Equal(t, before[c.ctr]+1, after[c.ctr], "%s: %v", c.name, diffNZ(&after, &before))
		out := r.recv()
		require.Equal(t, before[stats.TcpInSegs], after[stats.TcpInSegs], c.name)
		if c.want == none {
			require.Empty(t, out, c.name)
			continue
		}
		require.Len(t, out, 1, c.name)
		ip := ip6Of(t, out[0])
		m := ip.Payload()
		require.Equal(t, header.ProtoICMPv6, ip.NextHeader(), c.name)
		require.Equal(t, []byte{header.ICMPv6ParamProblem, c.want.code}, m[:2], c.name)
		require.Equal(t, c.want.ptr, binary.BigEndian.Uint32(m[4:]), c.name)
		require.True(t, header.ICMPv6ChecksumValid(m, ip.Src(), ip.Dst()), c.name)
		require.Equal(t, srv, netip.AddrFrom16(ip.Src()), c.name)
		require.Equal(t, peerAddr6, netip.AddrFrom16(ip.Dst()), c.name)
		sent := c.frame[header.EthernetLen:]
		require.Equal(t, sent[:min(len(sent), 1232)], []byte(m[8:]), "%s: the error quotes the datagram", c.name)
		require.Equal(t, before[stats.Icmp6OutParmProblems]+1, after[stats.Icmp6OutParmProblems], c.name)
	}
	// Well-formed extension headers are walked: padding options, an atomic fragment and
	// a routing header with no segments left, then the SYN is answered.
	ok := ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoHopByHop,
		append([]byte{header.ProtoFragment, 0, 1, 4, 0, 0, 0, 0},
			append([]byte{header.ProtoRouting, 0, 0, 0, 0, 0, 0, 0},
				append([]byte{header.ProtoDstOpts, 0, 0, 0, 0, 0, 0, 0},
					append([]byte{header.ProtoTCP, 0, 0x1e, 2, 0, 0, 0, 0}, syn(peerAddr6, srv)...)...)...)...))
	r.send(ok)
	require.Equal(t, 1, synAcks(r.recv()))
	c := r.s.Counters()
	require.Equal(t, uint64(1), c[stats.Ip6ReasmOKs])
}

// An ICMPv6 Packet Too Big that quotes one of our TCP flows reaches tcpICMPError with the
// flow and the MTU (at least 1280); one quoting too little is Icmp6InErrors, and so is one
// about a flow TCP has no connection for.
func TestICMPv6PacketTooBigQuote(t *testing.T) {
	r := newV6Peer(t)
	srv := simnet.ServerAddr6.Addr()
	var got []uint32
	stack.SetTCPICMPErrorHookForTest(t, func(k string, typ, code uint8, info, seq uint32) {
		require.Equal(t, "[fd00:5eed::1]:80->[fd00:5eed::2]:40000", k)
		require.Equal(t, header.ICMPv6PacketTooBig, typ)
		require.Equal(t, uint32(1000), seq)
		got = append(got, info)
	})
	quoted := ip6Frame(r.mac, r.smac, srv, peerAddr6, 64, header.ProtoTCP, tcp6SegFrom(srv, peerAddr6, 80, 40000, header.TCPFlagSYN|header.TCPFlagACK))[header.EthernetLen:]
	ptb := func(mtu uint32, q []byte) []byte {
		m := append([]byte{header.ICMPv6PacketTooBig, 0, 0, 0, 0, 0, 0, 0}, q...)
		binary.BigEndian.PutUint32(m[4:], mtu)
		router := netip.MustParseAddr("fd00:5eed::fe")
		return ip6Frame(r.smac, r.mac, router, srv, 64, header.ProtoICMPv6, icmp6(m, router, srv))
	}
	r.send(ptb(1400, quoted))
	r.send(ptb(600, quoted))
	require.Equal(t, []uint32{1400, 1280}, got)
	r.send(ptb(1400, quoted[:44]))
	require.Len(t, got, 2)
	c := r.s.Counters()
	require.Equal(t, uint64(3), c[stats.Icmp6InPktTooBigs])
	// The short quote, and the two whose flow TCP does not have (no connection was made
	// here): tcp_v6_err counts both kinds in Icmp6InErrors.
	require.Equal(t, uint64(3), c[stats.Icmp6InErrors])
}

// The IPv6 configuration: the link-local address from the MAC as Linux makes it, IPv6
// prefixes accepted, bad ones refused with a clear error.
func TestIPv6Config(t *testing.T) {
	r := newV6Peer(t)
	m := r.smac
	want := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 2, 9: m[1], 10: m[2], 11: 0xff, 12: 0xfe, 13: m[3], 14: m[4], 15: m[5]})
	require.Equal(t, want, r.s.LinkLocal())
	require.Equal(t, []netip.Prefix{simnet.ServerAddr, simnet.ServerAddr6}, r.s.Addrs())
	ps, _ := dpdkshim.NewPair(dpdkshim.PairConfig{})
	for _, bad := range []string{"fe80::1/64", "ff02::1/64", "::1/128", "::ffff:198.18.0.9/120"} {
		_, err := stack.New(stack.Config{Port: ps, Addr: netip.MustParsePrefix(bad), Manual: true})
		require.Error(t, err, bad)
	}
	_, err := stack.New(stack.Config{Port: ps, Addr: simnet.ServerAddr, Gateway6: netip.MustParseAddr("198.18.0.254"), Manual: true})
	require.ErrorContains(t, err, "IPv6 gateway")
	s6, err := stack.New(stack.Config{Port: ps, Addr: simnet.ServerAddr6, Manual: true, Gateway6: netip.MustParseAddr("fe80::1")})
	require.NoError(t, err, "an IPv6-only stack")
	defer s6.Close()
	_, err = s6.DialAsync(serverAP, tcp.DialOptions{})
	require.ErrorIs(t, err, tcp.ErrNetUnreachable, "no IPv4 address, no IPv4 route")
}

// newV6PeerStatic is newV6Peer with the peer's IPv6 address a static neighbour.
func newV6PeerStatic(t *testing.T) *rawPeer {
	mac := header.MAC{2, 0, 0, 0, 0, 0x99}
	r := newRawPeer(t, func(c *stack.Config) {
		c.MoreAddrs = []netip.Prefix{simnet.ServerAddr6}
		c.StaticNeighbours = map[netip.Addr][6]byte{peerAddr6: mac}
	})
	r.mac = mac
	return r
}

// newV6Peer is a raw peer whose server also has ServerAddr6.
func newV6Peer(t *testing.T) *rawPeer {
	return newRawPeer(t, func(c *stack.Config) { c.MoreAddrs = []netip.Prefix{simnet.ServerAddr6} })
}

func ip6Frame(dmac, smac header.MAC, src, dst netip.Addr, hop, next uint8, payload []byte) []byte {
	b := make([]byte, header.EthernetLen+header.IPv6Len+len(payload))
	header.EncodeEthernet(b, dmac, smac, header.EtherTypeIPv6)
	header.EncodeIPv6(b[header.EthernetLen:], uint16(len(payload)), next, hop, src.As16(), dst.As16())
	copy(b[header.EthernetLen+header.IPv6Len:], payload)
	return b
}

func icmp6(m []byte, src, dst netip.Addr) []byte {
	m = append([]byte(nil), m...)
	header.SetICMPv6Checksum(m, src.As16(), dst.As16())
	return m
}

func fixICMP6(frame []byte) {
	ip := header.IPv6(frame[header.EthernetLen:])
	header.SetICMPv6Checksum(ip.Payload(), ip.Src(), ip.Dst())
}

func ip6Of(t *testing.T, frame []byte) header.IPv6 {
	t.Helper()
	eth, err := header.ParseEthernet(frame)
	require.NoError(t, err)
	require.Equal(t, header.EtherTypeIPv6, eth.Type())
	ip, err := header.ParseIPv6(eth.Payload())
	require.NoError(t, err)
	return ip
}

// tcp6Seg is a TCP segment (with SYN options) from src:sport to dst:80, checksummed.
func tcp6Seg(src, dst netip.Addr, sport uint16, flags uint8) []byte {
	return tcp6SegFrom(src, dst, sport, 80, flags)
}

func tcp6SegFrom(src, dst netip.Addr, sport, dport uint16, flags uint8) []byte {
	b := make([]byte, header.TCPMinLen+synOpts.EncodedLen())
	hl, sum := header.PutTCPHeader(b, sport, dport, 1000, 0, flags, 64240, &synOpts)
	header.FinishTCPChecksumIPv6(header.TCP(b[:hl]), hl, sum, src.As16(), dst.As16())
	return b[:hl]
}

func diffNZ(a, b *stats.Counters) map[string]uint64 {
	d := a.Diff(b)
	return d.NonZero()
}

// Answering ping -6, neighbour solicitations and UDP (port unreachable) allocates nothing once
// the pools are warm.
func TestICMPv6AnswersAllocateNothing(t *testing.T) {
	r := newV6Peer(t)
	srv := simnet.ServerAddr6.Addr()
	echo := ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoICMPv6,
		icmp6([]byte{header.ICMPv6EchoRequest, 0, 0, 0, 0x12, 0x34, 0, 7, 'p'}, peerAddr6, srv))
	sn := netip.AddrFrom16(header.SolicitedNode(srv.As16()))
	m := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
	header.PutNDP(m, header.ICMPv6NeighSolicit, 0, srv.As16(), r.mac)
	ns := ip6Frame(header.IPv6MulticastMAC(sn.As16()), r.mac, peerAddr6, sn, 255, header.ProtoICMPv6, icmp6(m, peerAddr6, sn))
	udp := ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoUDP, udp6(peerAddr6, srv, 53, "q", false))
	rx := r.rx
	round := func() {
		for _, f := range [][]byte{ns, echo, udp} {
			p := r.port.Pool(0).Get()
			p.SetData(f)
			r.port.TxBurst(0, []*dpdkshim.Packet{p})
		}
		r.s.Poll()
		for n := r.port.RxBurst(0, rx); n > 0; n = r.port.RxBurst(0, rx) {
			for _, p := range rx[:n] {
				p.Free()
			}
		}
	}
	for i := 0; i < 100; i++ {
		round()
	}
	require.Zero(t, testing.AllocsPerRun(200, round))
	c := r.s.Counters()
	require.Equal(t, c[stats.Icmp6InEchos], c[stats.Icmp6OutEchoReplies])
	require.Equal(t, c[stats.Icmp6InNeighborSolicits], c[stats.Icmp6OutNeighborAdvertisements])
	require.Positive(t, c[stats.Icmp6OutDestUnreachs], "port unreachable sent (as the rate limit lets it)")
	require.Equal(t, c[stats.Udp6NoPorts], c[stats.Icmp6OutDestUnreachs]+c[stats.Icmp6OutRateLimitHost]+c[stats.IcmpOutRateLimitGlobal])
}

// Over two shards whose link does not steer (every segment may arrive on the wrong
// shard and be handed over), IPv6 connections work and every shard's table learns the
// neighbour from the one solicitation that arrived on one of them.
func TestIPv6TwoShardsHandoff(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true, Shards: 2, ByTxQueue: true})
	l, err := n.Server.Listen(":80", 64)
	require.NoError(t, err)
	for i := 0; i < 8; i++ {
		exchangeTo(t, n, l, serverAP6)
	}
	perShard := map[int]bool{}
	for _, r := range n.Server.Neighbours() {
		if r.Addr == peerAddr6 {
			perShard[r.Shard] = true
		}
	}
	require.Len(t, perShard, 2, "both shards learnt the client")
	var handoffs int64
	for _, sl := range n.Server.ShardLoads() {
		handoffs += sl.Handoffs
	}
	require.Positive(t, handoffs, "segments were handed to their owner")
	sc := n.Server.Counters()
	require.Equal(t, uint64(8), sc[stats.TcpPassiveOpens])
	require.Equal(t, sc[stats.Ip6InReceives], sc[stats.Ip6InDelivers], "each datagram counted once")
}

// SYN cookies over IPv6: with tcp_syncookies=2 every SYN gets a cookie, the final ACK
// rebuilds the connection from it, and the MSS it carries comes from IPv6's table
// (1440 for a 1440 SYN, Linux's tcp6 msstab).
func TestIPv6SynCookies(t *testing.T) {
	n := newNet(t, simnet.Options{IPv6: true, StaticARP: true, ServerTCP: tcp.Settings{TCPSyncookies: 2}})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	exchangeTo(t, n, l, serverAP6)
	sc := n.Server.Counters()
	require.Equal(t, uint64(1), sc[stats.TcpExtSyncookiesSent])
	require.Equal(t, uint64(1), sc[stats.TcpExtSyncookiesRecv])
	require.Zero(t, sc[stats.TcpExtSyncookiesFailed])
}

// Off the prefixes, IPv6 goes to Gateway6, a link-local router resolved from our
// link-local address by a solicitation to its solicited-node group.
func TestIPv6Gateway(t *testing.T) {
	gw := netip.MustParseAddr("fe80::1")
	r := newRawPeer(t, func(c *stack.Config) {
		c.MoreAddrs = []netip.Prefix{simnet.ServerAddr6}
		c.Gateway6 = gw
	})
	_, err := r.s.DialAsync(netip.MustParseAddrPort("[fd01::5]:80"), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	out := r.recv()
	require.Len(t, out, 1)
	ip := ip6Of(t, out[0])
	require.Equal(t, r.s.LinkLocal(), netip.AddrFrom16(ip.Src()), "a solicitation for a link-local router leaves from our link-local address")
	require.Equal(t, netip.AddrFrom16(header.SolicitedNode(gw.As16())), netip.AddrFrom16(ip.Dst()))
	require.Equal(t, header.IPv6MulticastMAC(header.SolicitedNode(gw.As16())), header.MAC(out[0][0:6]))
	m := ip.Payload()
	require.Equal(t, header.ICMPv6NeighSolicit, m[0])
	require.Equal(t, gw.As16(), [16]byte(m[8:24]))
	require.True(t, header.ICMPv6ChecksumValid(m, ip.Src(), ip.Dst()))
	rows := r.s.Neighbours()
	require.Len(t, rows, 1)
	require.Equal(t, gw, rows[0].Addr)
	require.Equal(t, "INCOMPLETE", rows[0].State)

	// The router answers: the SYN that waited goes out to its MAC, from our global address.
	rmac := header.MAC{2, 0, 0, 0, 0, 0xfe}
	na := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
	header.PutNDP(na, header.ICMPv6NeighAdvert, header.NDPFlagSolicited|header.NDPFlagOverride|header.NDPFlagRouter, gw.As16(), rmac)
	r.send(ip6Frame(r.smac, rmac, gw, r.s.LinkLocal(), 255, header.ProtoICMPv6, icmp6(na, gw, r.s.LinkLocal())))
	out = r.recv()
	require.Len(t, out, 1)
	require.Equal(t, rmac, header.MAC(out[0][0:6]))
	seg, ok := simnet.TCPOf(out[0])
	require.True(t, ok)
	require.Equal(t, header.TCPFlagSYN, seg.Flags())
	require.Equal(t, simnet.ServerAddr6.Addr(), netip.AddrFrom16(ip6Of(t, out[0]).Src()))
	require.Equal(t, "REACHABLE", r.s.Neighbours()[0].State)

	_, err = r.s.DialAsync(netip.MustParseAddrPort("[fd01::5]:80"), tcp.DialOptions{})
	require.NoError(t, err)
	ps, _ := dpdkshim.NewPair(dpdkshim.PairConfig{})
	s4, err := stack.New(stack.Config{Port: ps, Addr: simnet.ServerAddr6, Manual: true})
	require.NoError(t, err)
	defer s4.Close()
	_, err = s4.DialAsync(netip.MustParseAddrPort("[fd01::5]:80"), tcp.DialOptions{})
	require.ErrorIs(t, err, tcp.ErrNetUnreachable, "off the prefix, no gateway: no route")
}

// Advertisements update an entry as Linux's ndisc_recv_na does: a different address
// without Override only makes a REACHABLE entry STALE (the known address kept), with
// Override it replaces it; a Solicited advertisement to a group is invalid; one for an
// address we hold no entry for creates none.
func TestNDPAdvertisementOverride(t *testing.T) {
	r := newV6Peer(t)
	srv := simnet.ServerAddr6.Addr()
	na := func(flags uint8, mac header.MAC, dst netip.Addr) []byte {
		m := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
		header.PutNDP(m, header.ICMPv6NeighAdvert, flags, peerAddr6.As16(), mac)
		dmac := r.smac
		if dst.IsMulticast() {
			dmac = header.IPv6MulticastMAC(dst.As16())
		}
		return ip6Frame(dmac, r.mac, peerAddr6, dst, 255, header.ProtoICMPv6, icmp6(m, peerAddr6, dst))
	}
	r.send(na(header.NDPFlagSolicited|header.NDPFlagOverride, r.mac, srv))
	require.Empty(t, r.s.Neighbours(), "no entry, none made (accept_untracked_na=0)")
	// A dial makes the entry (INCOMPLETE); the answer confirms it.
	_, err := r.s.DialAsync(netip.AddrPortFrom(peerAddr6, 80), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	r.recv()
	r.send(na(header.NDPFlagSolicited|header.NDPFlagOverride, r.mac, srv))
	rows := r.s.Neighbours()
	require.Equal(t, "REACHABLE", rows[0].State)
	other := header.MAC{2, 0, 0, 0, 0, 0x77}
	r.send(na(header.NDPFlagSolicited, other, srv))
	rows = r.s.Neighbours()
	require.Equal(t, "STALE", rows[0].State, "weak override")
	require.Equal(t, r.mac, rows[0].MAC, "the known address kept")
	r.send(na(header.NDPFlagSolicited|header.NDPFlagOverride, other, srv))
	rows = r.s.Neighbours()
	require.Equal(t, "REACHABLE", rows[0].State)
	require.Equal(t, other, rows[0].MAC, "Override replaces it")
	before := r.s.Counters()[stats.Icmp6InNDiscInvalid]
	r.send(na(header.NDPFlagSolicited, r.mac, netip.MustParseAddr("ff02::1")))
	require.Equal(t, before+1, r.s.Counters()[stats.Icmp6InNDiscInvalid], "Solicited to a group")
	require.Equal(t, other, r.s.Neighbours()[0].MAC)
}

// udp6 is a UDP datagram from src:5353 to dst:port carrying data, with its checksum
// (or with zero in the checksum field when noCsum).
func udp6(src, dst netip.Addr, port uint16, data string, noCsum bool) []byte {
	u := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(u[0:], 5353)
	binary.BigEndian.PutUint16(u[2:], port)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], data)
	if !noCsum {
		binary.BigEndian.PutUint16(u[6:], checksum.Checksum(u, checksum.PseudoHeaderIPv6(src.As16(), dst.As16(), header.ProtoUDP, uint32(len(u)))))
	}
	return u
}

// dstUnreach6 returns the ICMPv6 destination unreachable messages among frames.
func dstUnreach6(t *testing.T, frames [][]byte) (out []header.IPv6) {
	for _, f := range frames {
		if ip := ip6Of(t, f); ip.NextHeader() == header.ProtoICMPv6 && ip.Payload()[0] == header.ICMPv6DstUnreach {
			out = append(out, ip)
		}
	}
	return out
}

// UDP over IPv6 finds no socket: a well-formed datagram to our address is answered with
// port unreachable (Udp6NoPorts), quoting it; a zero checksum (which IPv6 forbids), a bad
// checksum and a datagram to a group draw nothing and are counted as Linux counts them.
func TestICMPv6PortUnreachable(t *testing.T) {
	r := newV6PeerStatic(t)
	srv := simnet.ServerAddr6.Addr()
	good := ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoUDP, udp6(peerAddr6, srv, 53, "query", false))
	r.send(good)
	got := dstUnreach6(t, r.recv())
	require.Len(t, got, 1)
	m := got[0].Payload()
	require.Equal(t, uint8(4), m[1], "port unreachable")
	require.True(t, header.ICMPv6ChecksumValid(m, got[0].Src(), got[0].Dst()))
	require.Equal(t, good[header.EthernetLen:], []byte(m[8:]))
	require.Equal(t, srv, netip.AddrFrom16(got[0].Src()))

	r.send(ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoUDP, udp6(peerAddr6, srv, 53, "query", true)))
	bad := udp6(peerAddr6, srv, 53, "query", false)
	bad[9] ^= 1
	r.send(ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoUDP, bad))
	all := netip.AddrFrom16(allNodes6)
	r.send(ip6Frame(header.IPv6MulticastMAC(allNodes6), r.mac, peerAddr6, all, 64, header.ProtoUDP, udp6(peerAddr6, all, 53, "query", false)))
	require.Empty(t, r.recv())
	c := r.s.Counters()
	require.Equal(t, uint64(1), c[stats.Udp6NoPorts])
	require.Equal(t, uint64(2), c[stats.Udp6InErrors])
	require.Equal(t, uint64(1), c[stats.Udp6InCsumErrors])
	require.Equal(t, uint64(1), c[stats.Udp6IgnoredMulti])
	require.Equal(t, uint64(1), c[stats.Icmp6OutDestUnreachs])
	require.Equal(t, uint64(1), c[stats.Icmp6OutMsgs])
}

// net.ipv6.icmp.ratelimit: a destination on a /64 gets a burst of six errors, then one
// per 250 ms (Linux shortens the 1 s interval by a step per 32 bits of route prefix below
// 128); 0 turns the per-destination limit off.
func TestICMPv6RateLimit(t *testing.T) {
	flood := func(r *rawPeer, n int) int {
		srv := simnet.ServerAddr6.Addr()
		for i := 0; i < n; i++ {
			r.sendNoSettle(ip6Frame(r.smac, r.mac, peerAddr6, srv, 64, header.ProtoUDP, udp6(peerAddr6, srv, 53, "x", false)))
		}
		r.settle()
		return len(dstUnreach6(t, r.recv()))
	}
	r := newV6PeerStatic(t)
	require.Equal(t, 6, flood(r, 20))
	require.Equal(t, uint64(14), counter(r, stats.Icmp6OutRateLimitHost))
	require.Equal(t, uint64(20), counter(r, stats.Udp6NoPorts))
	r.vc.Set(r.vc.Now() + int64(250*time.Millisecond))
	require.Equal(t, 1, flood(r, 5))
	r.vc.Set(r.vc.Now() + int64(time.Hour))
	require.Equal(t, 6, flood(r, 10), "the bucket holds six at most")

	mac := header.MAC{2, 0, 0, 0, 0, 0x99}
	off := newRawPeer(t, func(c *stack.Config) {
		c.MoreAddrs = []netip.Prefix{simnet.ServerAddr6}
		c.StaticNeighbours = map[netip.Addr][6]byte{peerAddr6: mac}
		require.NoError(t, c.ICMP.Set("net.ipv6.icmp.ratelimit", "0"))
		require.NoError(t, c.ICMP.Set("net.ipv4.icmp_msgs_burst", "10000"))
	})
	off.mac = mac
	require.Equal(t, 40, flood(off, 40))
	v, err := stack.ICMPSettings{}.Get("net.ipv6.icmp.ratelimit")
	require.NoError(t, err)
	require.Equal(t, "1000", v)
}

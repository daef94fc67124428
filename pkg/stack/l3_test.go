package stack_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// newL3Peer is newRawPeer over an L3 pair (dpdkshim.LinkIP on both ends, like the two
// sides of a TUN device): frames are bare IP packets.
func newL3Peer(t *testing.T) *rawPeer {
	t.Helper()
	vc := clock.NewVirtual(0)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, L3: true, Pool: dpdkshim.PoolConfig{Size: 1024}})
	s, err := stack.New(stack.Config{Port: ps, Addr: simnet.ServerAddr, Clock: vc, Manual: true, Seed: 1, Shards: 1})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return &rawPeer{t: t, vc: vc, s: s, port: pc, sport: ps, rx: make([]*dpdkshim.Packet, 64)}
}

// l3SYN is a SYN from src to dst as a bare IPv4 packet.
func l3SYN(src, dst netip.Addr, sport uint16) []byte {
	return tcpFrame(header.MAC{}, header.MAC{}, src, dst, sport, header.TCPFlagSYN, nil)[header.EthernetLen:]
}

// TestL3_SynAckIsBareIP: a SYN arriving as a bare IPv4 packet is answered with a bare
// IPv4 SYN-ACK, at once: no ARP request goes first and the neighbour cache stays empty.
func TestL3_SynAckIsBareIP(t *testing.T) {
	r := newL3Peer(t)
	_, err := r.s.Listen(":80", 16)
	require.NoError(t, err)
	r.send(l3SYN(peerAddr, simnet.ServerAddr.Addr(), 40000))
	out := r.recv()
	require.Len(t, out, 1, "one SYN-ACK and nothing else")
	ip, err := header.ParseIPv4(out[0])
	require.NoError(t, err, "the frame is an IPv4 packet from its first byte: % x", out[0])
	require.Equal(t, len(out[0]), ip.TotalLen())
	require.Equal(t, peerAddr.As4(), ip.Dst())
	seg, ok := simnet.TCPOfIP(out[0])
	require.True(t, ok)
	require.Equal(t, header.TCPFlagSYN|header.TCPFlagACK, seg.Flags()&(header.TCPFlagSYN|header.TCPFlagACK))
	require.Equal(t, uint16(40000), seg.DstPort())
	c := r.s.Counters()
	require.Zero(t, c[stats.ArpRequestsSent])
	require.Zero(t, c[stats.ArpRepliesSent])
	require.Empty(t, r.s.Neighbours(), "no neighbour is resolved on an L3 link")
	require.Equal(t, uint64(1), c[stats.IpInDelivers])
}

// TestL3_InputDispatch: the version nibble picks the protocol; what is neither IPv4 nor
// IPv6 is dropped as tun_get_user drops it (rx_dropped), IPv6 goes to IPv6 input (a header
// of zeros is a header error there), an empty frame is a length error, and the IP-level filters still apply
// (a SYN to the limited broadcast address is not answered).
func TestL3_InputDispatch(t *testing.T) {
	r := newL3Peer(t)
	_, err := r.s.Listen(":80", 16)
	require.NoError(t, err)
	syn := l3SYN(peerAddr, simnet.ServerAddr.Addr(), 40001)
	v6 := make([]byte, 60)
	v6[0] = 0x60
	bad := append([]byte(nil), syn...)
	bad[0] = 0x55
	for _, f := range [][]byte{v6, bad, {}} {
		r.send(f)
	}
	r.send(l3SYN(peerAddr, netip.MustParseAddr("255.255.255.255"), 40002))
	// An Ethernet frame on an L3 link is garbage: its first byte is a MAC's.
	r.send(tcpFrame(r.sport.MAC(), header.MAC{0x02, 9, 9, 9, 9, 9}, peerAddr, simnet.ServerAddr.Addr(), 40003, header.TCPFlagSYN, nil))
	require.Empty(t, r.recv())
	c := r.s.Counters()
	require.Zero(t, c[stats.RxNoHandler])
	require.Equal(t, uint64(1), c[stats.Ip6InReceives], "IPv6")
	require.Equal(t, uint64(1), c[stats.Ip6InHdrErrors]+c[stats.Ip6InTruncatedPkts]+c[stats.Ip6InAddrErrors], "IPv6")
	require.Equal(t, uint64(2), c[stats.RxDropped], "version 5 and the Ethernet frame (version 0)")
	require.Equal(t, uint64(1), c[stats.RxLengthErrors], "the empty frame")
	require.Equal(t, uint64(1), c[stats.IpExtInBcastPkts])
	require.Equal(t, uint64(1), c[stats.TcpInNotHostDrops], "TCP to a broadcast route")
	require.Zero(t, c[stats.RxOtherhostDropped], "no L2 filter on an L3 link")
	require.Zero(t, c[stats.TcpPassiveOpens])
}

// TestL3_ConnectionsNoEthernetNoARP: two stacks over an L3 pair with two shards each,
// with no static neighbours: connections open, carry data and close; every frame that
// crossed is a bare IPv4 packet, no ARP was sent, and the pair's IPQueue steering, which
// the stacks compute, kept every segment on its owner shard.
func TestL3_ConnectionsNoEthernetNoARP(t *testing.T) {
	n := newNet(t, simnet.Options{Shards: 2, L3: true})
	l, err := n.Server.Listen(":80", 1024)
	require.NoError(t, err)
	const N = 64
	cs := make([]*tcp.Conn, N)
	for i := range cs {
		cs[i], err = n.Client.DialAsync(serverAP, tcp.DialOptions{})
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	buf := make([]byte, 16)
	for _, c := range cs {
		require.Equal(t, tcp.StateEstablished, c.State())
		_, err := c.TryWrite([]byte("ping"))
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	for i := 0; i < N; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		k, err := s.TryRead(buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf[:k]))
		require.NoError(t, s.Close())
	}
	for _, c := range cs {
		require.NoError(t, c.Close())
	}
	n.RunFor(time.Second)
	frames := n.Frames()
	require.Greater(t, len(frames), 6*N)
	for _, f := range frames {
		ip, err := header.ParseIPv4(f.Data)
		require.NoError(t, err, "%s", simnet.Describe(f))
		require.Equal(t, len(f.Data), ip.TotalLen())
		_, ok := simnet.TCPOfIP(f.Data)
		require.True(t, ok, "%s", simnet.Describe(f))
	}
	for _, s := range []*stack.Stack{n.Server, n.Client} {
		c := s.Counters()
		require.Zero(t, c[stats.ArpRequestsSent])
		require.Zero(t, c[stats.ArpRepliesSent])
		require.Empty(t, s.Neighbours())
		require.Zero(t, c[stats.RxDropped]+c[stats.RxNoHandler]+c[stats.RxLengthErrors])
		for _, ld := range s.ShardLoads() {
			require.Zero(t, ld.Handoffs, "IPQueue steering is what the stack computes")
		}
	}
	sc := n.Server.Counters()
	require.Equal(t, uint64(N), sc[stats.TcpPassiveOpens])
}

// TestL3_LifecycleAllocatesNothing: a whole connection over the L3 pair, both stacks,
// allocates nothing once the pools are warm (the L3 input and output paths included).
func TestL3_LifecycleAllocatesNothing(t *testing.T) {
	n := newNet(t, simnet.Options{L3: true, NoCapture: true})
	l, err := n.Server.Listen(":80", 64)
	require.NoError(t, err)
	req, rep := []byte("GET / HTTP/1.0\r\n\r\n"), []byte("HTTP/1.0 200 OK\r\n\r\nok")
	buf := make([]byte, 64)
	cycle := func() {
		c, err := n.Client.TCP().DialAsyncHandle(serverAP, tcp.DialOptions{})
		if err != nil {
			panic(err)
		}
		n.Settle()
		s, err := l.TryAcceptHandle()
		if err != nil {
			panic(err)
		}
		c.TryWrite(req)
		n.Settle()
		s.TryRead(buf)
		s.TryWrite(rep)
		s.Close()
		n.Settle()
		c.TryRead(buf)
		c.TryRead(buf)
		c.Close()
		n.RunFor(61 * time.Second)
	}
	for i := 0; i < 300; i++ {
		cycle()
	}
	require.Zero(t, testing.AllocsPerRun(200, cycle))
	require.Positive(t, n.Server.Counters()[stats.TcpPassiveOpens])
}

// TestL3_IPv6ConnectionsNoNeighbourDiscovery: the same over IPv6: two stacks over an L3
// pair, two shards each, both families configured. Connections to the server's IPv6
// address open, carry data and close with every frame a bare IPv6 packet, no neighbour
// solicitation or advertisement sent (the link has no link layer to resolve), and every
// segment on its owner shard.
func TestL3_IPv6ConnectionsNoNeighbourDiscovery(t *testing.T) {
	n := newNet(t, simnet.Options{Shards: 2, L3: true, IPv6: true})
	l, err := n.Server.Listen(":80", 1024)
	require.NoError(t, err)
	target := netip.AddrPortFrom(simnet.ServerAddr6.Addr(), 80)
	const N = 32
	cs := make([]*tcp.Conn, N)
	for i := range cs {
		cs[i], err = n.Client.DialAsync(target, tcp.DialOptions{})
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	buf := make([]byte, 16)
	for i, c := range cs {
		require.Equal(t, tcp.StateEstablished, c.State(), "client %d: %v", i, c.Err())
		_, err := c.TryWrite([]byte("ping6"))
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	for i := 0; i < N; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		require.True(t, s.RemoteAddr().(*net.TCPAddr).IP.To4() == nil, "an IPv6 peer")
		k, err := s.TryRead(buf)
		require.NoError(t, err)
		require.Equal(t, "ping6", string(buf[:k]))
		require.NoError(t, s.Close())
	}
	for _, c := range cs {
		require.NoError(t, c.Close())
	}
	n.RunFor(time.Second)
	frames := n.Frames()
	require.Greater(t, len(frames), 6*N)
	for _, f := range frames {
		ip, err := header.ParseIPv6(f.Data)
		require.NoError(t, err, "%s", simnet.Describe(f))
		require.Equal(t, uint8(header.ProtoTCP), ip.NextHeader(), "only TCP crosses: no NDP on an L3 link: %s", simnet.Describe(f))
	}
	for _, s := range []*stack.Stack{n.Server, n.Client} {
		c := s.Counters()
		require.Zero(t, c[stats.Icmp6OutMsgs], "no neighbour discovery")
		require.Empty(t, s.Neighbours())
		require.Zero(t, c[stats.RxDropped]+c[stats.RxNoHandler]+c[stats.RxLengthErrors])
		for _, ld := range s.ShardLoads() {
			require.Zero(t, ld.Handoffs, "IPQueue steering is what the stack computes")
		}
	}
	require.Equal(t, uint64(N), n.Server.Counters()[stats.TcpPassiveOpens])
}

package stack_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
)

// filterPeer is a listening server with a gateway (whose MAC, and the peer's, are static)
// so that an answer to any source at all would really leave.
func filterPeer(t *testing.T) *rawPeer {
	r := newRawPeer(t, func(c *stack.Config) {
		c.Gateway = gwAddr
		c.MoreAddrs = []netip.Prefix{netip.MustParsePrefix("198.19.0.1/24")}
		c.StaticNeighbours = peerStatic(c)
	})
	_, err := r.s.Listen(":80", 64)
	require.NoError(t, err)
	return r
}

// A SYN from a martian source draws nothing, makes no request, and is counted as Linux's
// ip_route_input_slow counts it (rt_cache in_martian_src), even with a gateway to send to.
func TestInputFilter_MartianSources(t *testing.T) {
	srv := simnet.ServerAddr.Addr()
	for _, src := range []string{
		"0.0.0.0", "0.1.2.3", // 0.0.0.0/8
		"127.0.0.1", "127.255.0.9", // loopback
		"224.0.0.1", "239.1.2.3", // multicast
		"255.255.255.255",        // limited broadcast
		"240.0.0.1", "254.1.1.1", // class E
		"198.18.0.1", "198.19.0.1", // our own addresses (land)
		"198.18.0.255", // our subnet's broadcast
	} {
		r := filterPeer(t)
		before := r.s.Counters()
		r.send(tcpFrame(r.smac, r.mac, netip.MustParseAddr(src), srv, 40000, header.TCPFlagSYN, nil))
		r.runFor(5e9)
		got := r.s.Counters()
		require.Empty(t, r.recv(), "nothing answers a SYN from %s", src)
		require.Equal(t, before[stats.RtInMartianSrc]+1, got[stats.RtInMartianSrc], src)
		require.Zero(t, got[stats.TcpInSegs], src)
		require.Len(t, r.s.Sockets(), 1, "no request from %s", src)
	}
}

func TestInputFilter_MartianDestinations(t *testing.T) {
	for _, dst := range []string{"0.0.0.5", "127.0.0.1"} {
		r := filterPeer(t)
		r.send(tcpFrame(r.smac, r.mac, peerAddr, netip.MustParseAddr(dst), 40000, header.TCPFlagSYN, nil))
		r.runFor(5e9)
		require.Empty(t, r.recv(), dst)
		c := r.s.Counters()
		require.Equal(t, uint64(1), c[stats.RtInMartianDst], dst)
		require.Zero(t, c[stats.TcpInSegs], dst)
	}
}

// TCP to a broadcast or multicast address, or in a frame sent to an Ethernet group
// address, never reaches TCP: tcp_v4_rcv drops what is not PACKET_HOST and
// tcp_v4_conn_request answers no SYN to a broadcast or multicast route.
func TestInputFilter_NotForThisHost(t *testing.T) {
	srv := simnet.ServerAddr.Addr()
	cases := []struct {
		name string
		dmac header.MAC
		dst  netip.Addr
		ctr  stats.ID
	}{
		{"limited broadcast", header.Broadcast, netip.MustParseAddr("255.255.255.255"), stats.IpExtInBcastPkts},
		{"subnet broadcast", header.Broadcast, netip.MustParseAddr("198.18.0.255"), stats.IpExtInBcastPkts},
		{"subnet broadcast to our MAC", header.MAC{}, netip.MustParseAddr("198.18.0.255"), stats.IpExtInBcastPkts},
		{"all-hosts", header.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, netip.MustParseAddr("224.0.0.1"), stats.IpExtInMcastPkts},
		{"multicast to our MAC", header.MAC{}, netip.MustParseAddr("239.1.1.1"), stats.IpExtInMcastPkts},
		{"our IP in an Ethernet broadcast", header.Broadcast, srv, stats.IpInDelivers},
		{"our IP in an Ethernet multicast", header.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, srv, stats.IpInDelivers},
	}
	for _, c := range cases {
		r := filterPeer(t)
		dmac := c.dmac
		if dmac == (header.MAC{}) {
			dmac = r.smac
		}
		r.send(tcpFrame(dmac, r.mac, peerAddr, c.dst, 40000, header.TCPFlagSYN, nil))
		r.runFor(5e9)
		require.Empty(t, r.recv(), c.name)
		got := r.s.Counters()
		require.Equal(t, uint64(1), got[stats.TcpInNotHostDrops], c.name)
		require.Equal(t, uint64(1), got[c.ctr], c.name)
		require.Zero(t, got[stats.TcpInSegs], c.name)
		require.Len(t, r.s.Sockets(), 1, c.name)
	}

	// A frame to another host's MAC is dropped before IP (ip_rcv_core, PACKET_OTHERHOST).
	r := filterPeer(t)
	r.send(tcpFrame(header.MAC{0x02, 9, 9, 9, 9, 9}, r.mac, peerAddr, srv, 40000, header.TCPFlagSYN, nil))
	require.Empty(t, r.recv())
	require.Equal(t, uint64(1), r.s.Counters()[stats.RxOtherhostDropped])
	require.Zero(t, r.s.Counters()[stats.IpInReceives])

	// ARP still takes broadcasts, and the same SYN to our MAC is answered.
	r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, peerAddr, header.MAC{}, srv))
	require.Len(t, r.recv(), 1, "the ARP request is answered")
	r.send(tcpFrame(r.smac, r.mac, peerAddr, srv, 40000, header.TCPFlagSYN, nil))
	require.Equal(t, 1, synAcks(r.recv()))
}

// Source-routed datagrams are dropped (accept_source_route=0); malformed options are
// header errors; well-formed options that ask nothing of us are accepted.
func TestInputFilter_IPv4Options(t *testing.T) {
	srv := simnet.ServerAddr.Addr()
	cases := []struct {
		name string
		opts []byte
		ctr  stats.ID // 0: answered
	}{
		{"lsrr", []byte{131, 7, 4, 198, 18, 0, 9, 0}, stats.IpInSourceRouteDrops},
		{"ssrr", []byte{1, 137, 7, 4, 198, 18, 0, 9}, stats.IpInSourceRouteDrops},
		{"option past the header", []byte{7, 9, 4, 0}, stats.IpInHdrErrors},
		{"zero length", []byte{1, 7, 0, 0}, stats.IpInHdrErrors},
		{"cipso", []byte{134, 8, 0, 0, 0, 1, 0, 0}, stats.IpInHdrErrors},
		{"truncated timestamp", []byte{68, 3, 5, 0}, stats.IpInHdrErrors},
		{"nops", []byte{1, 1, 1, 0}, 0},
		{"record route", []byte{7, 7, 4, 0, 0, 0, 0, 0}, 0},
		{"router alert", []byte{148, 4, 0, 0}, 0},
	}
	for _, c := range cases {
		r := newRawPeer(t, func(cfg *stack.Config) {
			cfg.StaticNeighbours = peerStatic(cfg)
		})
		_, err := r.s.Listen(":80", 64)
		require.NoError(t, err)
		r.send(tcpFrame(r.smac, r.mac, peerAddr, srv, 40000, header.TCPFlagSYN, c.opts))
		got := r.s.Counters()
		if c.ctr == 0 {
			require.Equal(t, 1, synAcks(r.recv()), c.name)
			require.Zero(t, got[stats.IpInHdrErrors]+got[stats.IpInSourceRouteDrops], c.name)
			continue
		}
		require.Empty(t, r.recv(), c.name)
		require.Equal(t, uint64(1), got[c.ctr], c.name)
		require.Zero(t, got[stats.TcpInSegs], c.name)
	}
}

// peerStatic makes the raw peer's MAC the static neighbour entry of its address and of
// the gateway.
func peerStatic(c *stack.Config) map[netip.Addr][6]byte {
	m := c.Port.(*dpdkshim.MemPort).Peer().MAC()
	return map[netip.Addr][6]byte{peerAddr: m, gwAddr: m}
}

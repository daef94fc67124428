package afpacket

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// TestStack_PingAnswered: Linux's ping in the peer namespace gets its echo replies from
// shardstack on AF_PACKET, small and near the MTU, and the stack counts them under
// Linux's names.
func TestStack_PingAnswered(t *testing.T) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skipf("needs ping (iputils-ping): %v", err)
	}
	v := newVethPair(t)
	s, err := stack.New(stack.Config{Port: openIn(t, v, Config{}), Addr: netip.PrefixFrom(v.AddrA, 24), Shards: 1})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	for _, size := range []string{"56", "1472"} {
		out := v.b.Run(t, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "-s", size, v.AddrA.String())
		t.Logf("ping -s %s:\n%s", size, out)
		require.Contains(t, out, "3 received", "ping -s %s", size)
	}
	c := s.Counters()
	require.Equal(t, uint64(6), c[stats.IcmpInEchos])
	require.Equal(t, uint64(6), c[stats.IcmpOutEchoReps])
	require.Zero(t, c[stats.IcmpInErrors])
}

// routedNet is three namespaces: shardstack on AF_PACKET in S (198.18.1.1/24, gateway
// 198.18.1.254), a Linux router in R (ip_forward; 198.18.1.254 towards S, 198.18.2.254
// towards C on a link whose MTU on R's side is 1280) and a Linux client in C (198.18.2.2,
// MTU 1500, default route via R), every veth end with its offloads off. It returns the
// stack and the client's namespace.
func routedNet(t *testing.T) (*stack.Stack, *netns.NS) {
	t.Helper()
	netns.Require(t)
	requirePacketSockets(t)
	sNS, rNS, cNS := netns.New(t, "pmtu-s"), netns.New(t, "pmtu-r"), netns.New(t, "pmtu-c")
	netns.Veth(t, sNS, "pmtus0", rNS, "pmtur0")
	netns.Veth(t, rNS, "pmtur1", cNS, "pmtuc0")
	for _, e := range []struct {
		ns  *netns.NS
		dev string
	}{{sNS, "pmtus0"}, {rNS, "pmtur0"}, {rNS, "pmtur1"}, {cNS, "pmtuc0"}} {
		if err := e.ns.SetOffloads(t, e.dev, false); err != nil {
			t.Skipf("needs ethtool to turn veth offloads off: %v", err)
		}
	}
	rNS.SetMTU(t, "pmtur1", 1280)
	rNS.AddAddr(t, "pmtur0", "198.18.1.254/24")
	rNS.AddAddr(t, "pmtur1", "198.18.2.254/24")
	rNS.Sysctl(t, "net.ipv4.ip_forward", "1")
	cNS.AddAddr(t, "pmtuc0", "198.18.2.2/24")
	cNS.Run(t, "ip", "route", "add", "default", "via", "198.18.2.254")

	var port *Port
	require.NoError(t, sNS.Do(func() (err error) {
		port, err = Open(Config{Interface: "pmtus0"})
		return err
	}))
	t.Cleanup(func() { _ = port.Close() })
	s, err := stack.New(stack.Config{
		Port: port, Addr: netip.MustParsePrefix("198.18.1.1/24"), Gateway: netip.MustParseAddr("198.18.1.254"), Shards: 1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, cNS
}

// TestStack_DialUnreachableThroughLinuxRouter: the Linux router answers shardstack's SYN
// with net unreachable (no route to 198.18.3.0/24) or, once its ARP for a missing host on
// the client's subnet fails, host unreachable; each Dial fails with that errno in a
// *net.OpError, as Go's net.Dial would on Linux.
func TestStack_DialUnreachableThroughLinuxRouter(t *testing.T) {
	s, _ := routedNet(t)
	for _, tc := range []struct {
		addr  string
		errno syscall.Errno
	}{
		{"198.18.3.1:80", syscall.ENETUNREACH},
		{"198.18.2.77:80", syscall.EHOSTUNREACH},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := s.Dial(ctx, tc.addr)
		cancel()
		var op *net.OpError
		require.ErrorAs(t, err, &op, tc.addr)
		require.ErrorIs(t, err, tc.errno, tc.addr)
		t.Logf("dial %s: %v", tc.addr, err)
	}
	// The router may answer each SYN it held while its ARP failed: the later ones find no
	// flow (IcmpInErrors).
	c := s.Counters()
	require.GreaterOrEqual(t, c[stats.IcmpInDestUnreachs], uint64(2))
	require.Equal(t, c[stats.IcmpInDestUnreachs]-2, c[stats.IcmpInErrors])
	require.Equal(t, uint64(2), c[stats.TcpAttemptFails])
}

// TestStack_PMTUThroughLinuxRouter: shardstack (AF_PACKET, namespace S) sends 1 MiB to a
// Linux client (namespace C) through a Linux router (namespace R, ip_forward) whose link
// towards the client has an MTU of 1280 while every interface's own MTU elsewhere is
// 1500. The client advertises an MSS of 1460, so shardstack's first full segments are too
// big for the router's far link: the router answers them with fragmentation needed
// (MTU 1280), the stack lowers the path MTU and the connection's MSS to 1240, resends
// smaller, and the transfer completes intact.
func TestStack_PMTUThroughLinuxRouter(t *testing.T) {
	s, cNS := routedNet(t)
	l, err := s.Listen(":8080", 16)
	require.NoError(t, err)

	const size = 1 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i % 251)
	}
	client := netip.MustParseAddr("198.18.2.2")
	type result struct {
		mss int
		err error
	}
	srv := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		if _, err := c.Write(data); err != nil {
			srv <- result{err: err}
			return
		}
		mss := 0
		for _, row := range s.Sockets() {
			if row.Peer.Addr() == client && row.State != tcp.StateListen {
				mss = row.MSS
			}
		}
		srv <- result{mss: mss}
	}()
	var got []byte
	require.NoError(t, cNS.Do(func() error {
		c, err := net.DialTimeout("tcp4", "198.18.1.1:8080", 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
			return err
		}
		got, err = io.ReadAll(c)
		return err
	}))
	res := <-srv
	require.NoError(t, res.err)
	require.Len(t, got, size)
	require.Equal(t, data, got, "the stream arrived intact")
	require.Equal(t, 1240, res.mss, "the connection's MSS follows the 1280-byte path")
	mtu, ok := s.TCP().PathMTU(client)
	require.True(t, ok)
	require.Equal(t, 1280, mtu)
	c := s.Counters()
	var line []string
	for _, id := range []stats.ID{stats.IcmpInMsgs, stats.IcmpInDestUnreachs, stats.RtPMTUUpdates,
		stats.TcpPMTUReductions, stats.TcpRetransSegs, stats.TcpExtTCPSlowStartRetrans} {
		line = append(line, fmt.Sprintf("%s=%d", id, c[id]))
	}
	t.Log(strings.Join(line, " "))
	require.Positive(t, c[stats.IcmpInDestUnreachs], "the router sent fragmentation needed")
	require.Equal(t, uint64(1), c[stats.RtPMTUUpdates])
	require.Equal(t, uint64(1), c[stats.TcpPMTUReductions])
	require.Zero(t, c[stats.IcmpInErrors])
}

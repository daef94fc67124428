//go:build linux

package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/stack"
)

// The IPv6 real-link tests: the same namespaces and veth as the IPv4 ones, with
// unique-local addresses on top: shardstack fd00:5eed::1/64 beside 198.18.0.1/24, Linux
// fd00:5eed::2/64 on vc (added without duplicate address detection). The srv namespace's
// kernel has IPv6 turned off on vs, so that only shardstack answers neighbour discovery
// for the MAC they share; Linux resolves shardstack through NDP, as it would any host.
// (The seed backlog experiments turn it back on, with no link-local address, for a Linux
// listener at fd00:5eed::3 beside shardstack: see seedOnLink.)

const (
	ssAddr6    = "fd00:5eed::1"
	linuxAddr6 = "fd00:5eed::2"
	lsrvAddr6  = "fd00:5eed::3" // a Linux listener beside shardstack
)

func newLinkNet6(t *testing.T) *linkNet {
	t.Helper()
	requireIPv6(t)
	n := newLinkNet(t)
	n.srv.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.vs.disable_ipv6=1")
	n.cli.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.vc.disable_ipv6=0") // off by default here
	n.cli.AddAddr(t, "vc", linuxAddr6+"/64")
	return n
}

// TestLink_IPv6LinuxClientsAndPing: Go's net.Dial from the Linux namespace reaches serve
// --app echo over IPv6 and moves 1 MiB both ways, the same ":7" listener takes IPv4 as
// well, and ping -6 is answered.
func TestLink_IPv6LinuxClientsAndPing(t *testing.T) {
	n := newLinkNet6(t)
	s := n.startServe(t, "--app", "echo", "--listen", ":7", "--addr", ssAddr6+"/64", "--shards", "2")
	for _, addr := range []string{"[" + ssAddr6 + "]:7", ssAddr + ":7"} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		c, err := n.dialer.Dial(ctx, addr)
		require.NoError(t, err, addr)
		require.Equal(t, addr, c.RemoteAddr().String())
		echo1MiB(t, c)
		c.Close()
		cancel()
	}
	pinged := false
	if _, err := exec.LookPath("ping"); err != nil {
		t.Log("ping not installed: the ping -6 half of this test is skipped")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := n.cli.Command(ctx, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", ssAddr6).CombinedOutput()
		require.NoError(t, err, "ping -6: %s", out)
		require.Contains(t, string(out), "3 received", "%s", out)
		pinged = true
	}
	sum := s.finish(t)
	require.Equal(t, int64(2), sum.AppStats.Accepted)
	if pinged {
		require.GreaterOrEqual(t, sum.Counters["Icmp6OutEchoReplies"], uint64(3))
	}
	require.Positive(t, sum.Counters["Icmp6OutNeighborAdvertisements"], "Linux solicited us")
	require.Zero(t, sum.Counters["Ip6InHdrErrors"])
	require.Zero(t, sum.Counters["TcpInCsumErrors"])
	require.Zero(t, sum.Counters["icmp6.in_ndisc_invalid"], "Linux's neighbour discovery is valid")
}

// TestLink_IPv6HTTPAndCurl: net/http and curl -6 in the Linux namespace get "hello" from
// serve --app http over IPv6.
func TestLink_IPv6HTTPAndCurl(t *testing.T) {
	n := newLinkNet6(t)
	n.startServe(t, "--app", "http", "--listen", "[::]:80", "--addr", ssAddr6+"/64")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return n.dialer.Dial(ctx, addr) },
	}}
	for i := 0; i < 5; i++ {
		resp, err := client.Get("http://[" + ssAddr6 + "]/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, "hello\n", string(body))
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: the curl -6 half of this test is skipped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n.cli.Command(ctx, "curl", "-6", "-sS", "--max-time", "10", "http://["+ssAddr6+"]/").CombinedOutput()
	require.NoError(t, err, "curl -6: %s", out)
	require.Equal(t, "hello\n", string(out))
}

// TestLink_IPv6ShardstackDialsLinux: shardstack, as a library, dials a Linux echo server
// over IPv6 (resolving it by neighbour solicitation) and moves 1 MiB both ways.
func TestLink_IPv6ShardstackDialsLinux(t *testing.T) {
	n := newLinkNet6(t)
	linuxEcho(t, n.cli, "tcp6", "["+linuxAddr6+"]:9000")
	st := n.openStack(t, stack.Config{Addr: mustPrefix(ssAddr + "/24"), MoreAddrs: []netip.Prefix{mustPrefix(ssAddr6 + "/64")}, Shards: 2}, "afpacket:vs")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, "["+linuxAddr6+"]:9000")
	require.NoError(t, err)
	defer c.Close()
	require.True(t, strings.HasPrefix(c.LocalAddr().String(), "["+ssAddr6+"]:"))
	echo1MiB(t, c)
	var solicited bool
	for _, r := range st.Neighbours() {
		if r.Addr.String() == linuxAddr6 {
			solicited = true
		}
	}
	require.True(t, solicited, "Linux's address is in the IPv6 neighbour cache")
}

// TestLink_IPv6PacketTooBigFromRouter: a Linux router namespace between shardstack and a
// Linux client, its link toward the client at MTU 1280 (the client's route sends within
// 1280 but advertises MSS 1440, so shardstack's full segments cannot pass): the router
// sends ICMPv6 Packet Too Big to shardstack, which parses it down to the quoted flow of
// its own (Icmp6InPktTooBigs, no Icmp6InErrors) and hands it to TCP: the path MTU falls to
// 1280, the connection's MSS to 1220, the segments in flight are resent smaller, and the
// 1 MiB echo completes, both ways.
func TestLink_IPv6PacketTooBigFromRouter(t *testing.T) {
	requireIPv6(t)
	n := newLinkNet(t)
	rtr, far := n.cli, netns.New(t, "far") // the cli namespace routes; far is the client
	n.srv.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.vs.disable_ipv6=1")
	netns.Veth(t, rtr, "vr", far, "vf")
	for _, c := range [][2]string{{"vc", "0"}, {"vr", "0"}} {
		rtr.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf."+c[0]+".disable_ipv6="+c[1])
	}
	far.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.vf.disable_ipv6=0")
	rtr.Run(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
	rtr.AddAddr(t, "vc", "fd00:5eed::fe/64")
	rtr.AddAddr(t, "vr", "fd00:5eef::fe/64")
	far.AddAddr(t, "vf", "fd00:5eef::2/64")
	// The client sends within 1280 (veth drops what exceeds the receiving end's MTU) yet
	// advertises MSS 1440, so only shardstack's segments are too big for the router.
	far.Run(t, "ip", "-6", "route", "add", "default", "via", "fd00:5eef::fe", "mtu", "1280", "advmss", "1440")
	rtr.SetMTU(t, "vr", 1280)
	farDialer := newNSDialer(t, far, 2)

	s := n.startServe(t, "--app", "echo", "--listen", ":7", "--addr", ssAddr6+"/64", "--gateway", "fd00:5eed::fe")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := farDialer.Dial(ctx, "["+ssAddr6+"]:7")
	require.NoError(t, err, "the handshake's small segments pass the 1280 link")
	data := make([]byte, 1<<20)
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	go func() { _, _ = c.Write(data) }()
	got, err := io.CopyN(io.Discard, c, int64(len(data)))
	require.NoError(t, err, "%d of %d bytes came back", got, len(data))
	c.Close()
	sum := s.finish(t)
	require.Positive(t, sum.Counters["Icmp6InPktTooBigs"], "the router's Packet Too Big reached shardstack")
	require.Zero(t, sum.Counters["Icmp6InErrors"], "and quoted a flow of ours")
	require.Zero(t, sum.Counters["Icmp6InCsumErrors"])
	require.Equal(t, uint64(1), sum.Counters["rt.pmtu_updates"], "one path lowered to 1280")
	require.Equal(t, uint64(1), sum.Counters["tcp.pmtu_mss_reductions"], "one connection's MSS lowered")
}

// TestLink_IPv6TenThousandConnections: TestLink_TenThousandConnections over IPv6: the
// fanout program steers IPv6 flows to their shards too.
func TestLink_IPv6TenThousandConnections(t *testing.T) {
	n := newLinkNet6(t)
	runTenThousand(t, n.startServe(t, "--app", "hello", "--listen", "[::]:8080", "--addr", ssAddr6+"/64",
		"--shards", "2", "--stat-every", "100ms"), n.dialer, ssAddr6)
}

// TestLink_IPv6PcapShowsHandshake: TestLink_PcapShowsHandshake over IPv6.
func TestLink_IPv6PcapShowsHandshake(t *testing.T) {
	runPcapShowsHandshake(t, newLinkNet6(t), ssAddr6, linuxAddr6)
}

// requireIPv6 skips a test on a kernel without IPv6.
func requireIPv6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("the kernel has no IPv6 (/proc/sys/net/ipv6 is missing)")
	}
}

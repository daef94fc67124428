//go:build linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/apps"
	"github.com/shardstack/shardstack/internal/link"
	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/pcap"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// The TUN real-link tests: shardstack on a multi-queue TUN device in a network namespace
// made for the test, Linux's own TCP on the same device's other side (the namespace's
// kernel, with 198.18.0.2 and shardstack's 198.18.0.1 as its point-to-point peer). The
// device is created by serve itself, or made persistent first where the Linux side must be
// addressed before shardstack starts (load dials at once).

const tunDev = "sst0"

// tunNet is the namespace with the TUN device and a dialer inside it.
type tunNet struct {
	ns     *netns.NS
	dialer *nsDialer
}

func newTunNet(t *testing.T) *tunNet {
	t.Helper()
	netns.Require(t)
	n := &tunNet{ns: netns.New(t, "tun")}
	n.dialer = newNSDialer(t, n.ns, 16)
	return n
}

// startServe runs serve on tun:DEV[opts] in the namespace with args, waits until it
// listens, then gives the Linux side of the device its address.
func (n *tunNet) startServe(t *testing.T, opts string, args ...string) *serveRun {
	t.Helper()
	s := &serveRun{stop: make(chan struct{}), done: make(chan int, 1)}
	e := &env{stdout: &s.out, stderr: &s.errOut, stop: s.stop}
	full := append([]string{"serve", "--link", "tun:" + tunDev + opts, "--addr", ssAddr + "/24", "--json"}, args...)
	go func() {
		code := exitFailure
		_ = n.ns.Do(func() error { code = e.run(full); return nil })
		s.done <- code
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.errOut.String(), "serving ") {
		select {
		case code := <-s.done:
			t.Fatalf("serve exited with %d: %s", code, s.errOut.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "serve did not start: %s", s.errOut.String())
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { s.finish(t) })
	addPeer(t, n.ns, tunDev, linuxAddr, ssAddr)
	return s
}

// startServe6 is startServe with shardstack's IPv6 address beside its IPv4 one, and the
// Linux side's on the device too.
func (n *tunNet) startServe6(t *testing.T, opts string, args ...string) *serveRun {
	t.Helper()
	s := n.startServe(t, opts, append([]string{"--addr", ssAddr6 + "/64"}, args...)...)
	addPeer(t, n.ns, tunDev, linuxAddr6, ssAddr6)
	return s
}

// addPeer gives dev, a TUN device in ns, the address local with peer as its
// point-to-point peer; for IPv6 it turns IPv6 on on dev first, and adds the address
// without duplicate address detection. The device must be up: Linux gives an IPv6
// address added to a device that is down no route to its peer (bringing the device up
// adds the route to the local address's own /128 instead).
func addPeer(t *testing.T, ns *netns.NS, dev, local, peer string) {
	t.Helper()
	if mustAddr(local).Is6() {
		ns.Sysctl(t, "net.ipv6.conf."+dev+".disable_ipv6", "0")
		ns.Run(t, "ip", "-6", "addr", "add", local, "peer", peer+"/128", "dev", dev, "nodad")
		return
	}
	ns.Run(t, "ip", "addr", "add", local, "peer", peer+"/32", "dev", dev)
}

// requireSteered checks that the shards took the flows between them and handed almost
// no packet over (under 1%), and that no ARP crossed the link.
func requireSteered(t *testing.T, shards []shardSummary, counters map[string]uint64) {
	t.Helper()
	var rx uint64
	var handoffs int64
	for i, sh := range shards {
		rx += sh.RxPackets
		handoffs += sh.Handoffs
		require.Positive(t, sh.RxPackets, "shard %d took flows", i)
	}
	t.Logf("hand-offs: %d of %d packets (%.3f%%)", handoffs, rx, 100*float64(handoffs)/float64(max(rx, 1)))
	require.Less(t, float64(handoffs), 0.01*float64(rx), "hand-offs %d of %d packets", handoffs, rx)
	require.Zero(t, counters["ArpRequestsSent"]+counters["ArpRepliesSent"], "no ARP on a TUN link")
}

// TestTUN_LinuxClientsEcho: Linux clients exchange 1 MiB both ways with serve --app echo
// over TUN, four connections at once on two shards; with the vnet header and GSO too
// (Linux then sends partial checksums and 64 KiB super-packets).
func TestTUN_LinuxClientsEcho(t *testing.T) {
	for _, opts := range []string{"", ",vnet", ",gso"} {
		t.Run("tun"+opts, func(t *testing.T) {
			n := newTunNet(t)
			s := n.startServe(t, opts, "--app", "echo", "--listen", ":7", "--shards", "2")
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					c, err := n.dialer.Dial(ctx, ssAddr+":7")
					if !assertNoError(t, err) {
						return
					}
					defer c.Close()
					echo1MiB(t, c)
				}()
			}
			wg.Wait()
			sum := s.finish(t)
			require.Equal(t, "tun:"+tunDev, sum.Link)
			require.Equal(t, int64(4), sum.AppStats.Accepted)
			require.Equal(t, int64(4<<20), sum.AppStats.BytesIn)
			require.Zero(t, sum.Counters["TcpInCsumErrors"])
			require.Zero(t, sum.Counters["ArpRequestsSent"])
			var errs, drops uint64
			for _, q := range sum.Queues {
				errs += q.Errors
				drops += q.KernelDrops
			}
			require.Zero(t, errs, "no packet lost in the port: %+v", sum.Queues)
			// The kernel drops what a queue cannot hold (qlen) when a shard is slow to read,
			// as a NIC's ring overflows; TCP recovers. On a loaded machine that happens.
			t.Logf("kernel drops: %d", drops)
		})
	}
}

// TestTUN_HTTPAndCurl: net/http's client and curl get "hello" from serve --app http over TUN.
func TestTUN_HTTPAndCurl(t *testing.T) {
	n := newTunNet(t)
	n.startServe(t, "", "--app", "http", "--listen", ":80", "--shards", "2")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) { return n.dialer.Dial(ctx, addr) },
	}}
	for i := 0; i < 20; i++ {
		resp, err := client.Get("http://" + ssAddr + "/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "hello\n", string(body))
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: the curl half of this test is skipped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n.ns.Command(ctx, "curl", "-sS", "--max-time", "10", "http://"+ssAddr+"/").CombinedOutput()
	require.NoError(t, err, "curl: %s", out)
	require.Equal(t, "hello\n", string(out))
}

// TestTUN_ThousandConnections: 1,000 connections from Linux clients to serve --app hello on
// two shards complete with no failure, and the steering program sends each flow to the
// shard that owns it: fewer than 1% of the packets are handed between shards. Without the
// program (nosteer) the kernel picks the first packet's queue by a hash of its own, so
// the stack hands over about half the SYNs; connections still all succeed. Over IPv6
// (ipv6) too, plainly.
func TestTUN_ThousandConnections(t *testing.T) {
	for _, tc := range []struct{ name, opts, addr string }{
		{"tun", "", ssAddr}, {"tun,vnet", ",vnet", ssAddr}, {"tun,nosteer", ",nosteer", ssAddr}, {"tun/ipv6", "", ssAddr6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			n := newTunNet(t)
			args := []string{"--app", "hello", "--listen", ":8080", "--shards", "2"}
			var s *serveRun
			if mustAddr(tc.addr).Is6() {
				requireIPv6(t)
				s = n.startServe6(t, opts, args...)
			} else {
				s = n.startServe(t, opts, args...)
			}
			target := net.JoinHostPort(tc.addr, "8080")
			res, err := loadgen.RunNet(func(ctx context.Context) (net.Conn, error) {
				return n.dialer.Dial(ctx, target)
			}, loadgen.Config{Target: mustAddrPort(target), Conns: 1000, Concurrency: 16})
			require.NoError(t, err)
			require.Zero(t, res.Failures, "first error: %s", res.FirstError)
			require.Equal(t, int64(1000), res.Conns)
			sum := s.finish(t)
			require.Equal(t, int64(1000), sum.AppStats.Accepted)
			if opts == ",nosteer" {
				var handoffs int64
				for _, sh := range sum.Shards {
					handoffs += sh.Handoffs
				}
				t.Logf("without the steering program: %d hand-offs for 1000 connections", handoffs)
				require.Positive(t, handoffs, "the kernel's first-packet hash is not the stack's")
				return
			}
			requireSteered(t, sum.Shards, sum.Counters)
		})
	}
}

// TestTUN_LoadDialsLinux: shardstack load on a TUN device (attached to a persistent one
// whose Linux side serves hello) opens 1,000 connections with no failure; Dial picks
// ports whose replies the steering program brings back to the dialling shard. Plain and
// with the vnet header and GSO, each on a fresh device, and then plain again on the device
// the vnet run left behind (whose offloads the port must reset).
func TestTUN_LoadDialsLinux(t *testing.T) {
	n := newTunNet(t)
	n.ns.Run(t, "ip", "tuntap", "add", "dev", tunDev, "mode", "tun", "multi_queue")
	addPeer(t, n.ns, tunDev, ssAddr, linuxAddr)
	var lns []net.Listener
	app, err := apps.New("hello")
	require.NoError(t, err)
	for _, port := range []string{"8080", "8081", "8082"} {
		var ln net.Listener
		require.NoError(t, n.ns.Do(func() error {
			var err error
			ln, err = net.Listen("tcp4", ssAddr+":"+port)
			return err
		}))
		lns = append(lns, ln)
		go app.Serve(ln)
	}
	t.Cleanup(func() {
		app.Close()
		for _, ln := range lns {
			ln.Close()
		}
	})
	// Each run has a port of its own: Linux keeps the last run's connections in TIME-WAIT,
	// which a new process's SYNs would meet (see bench/tun/run.sh).
	for i, opts := range []string{",gso", "", ",vnet"} {
		t.Run("tun"+opts, func(t *testing.T) {
			var out, errOut syncBuffer
			e := &env{stdout: &out, stderr: &errOut}
			code := exitFailure
			target := ssAddr + ":" + strconv.Itoa(8080+i)
			require.NoError(t, n.ns.Do(func() error {
				code = e.run([]string{"load", "--link", "tun:" + tunDev + opts, "--addr", linuxAddr + "/24", "--target", target,
					"--conns", "1000", "--concurrency", "32", "--shards", "2", "--duration", "30s", "--json"})
				return nil
			}))
			require.Equal(t, exitOK, code, "load: %s\n%s", errOut.String(), out.String())
			var sum struct {
				Conns    int64             `json:"conns"`
				Failures int64             `json:"failures"`
				Link     string            `json:"link"`
				Counters map[string]uint64 `json:"counters"`
				Shards   []shardSummary    `json:"shards"`
			}
			require.NoError(t, json.Unmarshal([]byte(out.String()), &sum), out.String())
			require.Equal(t, "tun:"+tunDev, sum.Link)
			require.GreaterOrEqual(t, sum.Conns, int64(1000))
			require.Zero(t, sum.Failures)
			require.Zero(t, sum.Counters["TcpInCsumErrors"])
			requireSteered(t, sum.Shards, sum.Counters)
		})
	}
	_, err = n.ns.Interface(tunDev)
	require.NoError(t, err, "the persistent device stays after load")
}

// TestTUN_PcapIsRaw: serve --pcap on a TUN link writes a LINKTYPE_RAW capture whose
// records are the bare IP packets of the Linux client's handshake, IPv4 and IPv6.
func TestTUN_PcapIsRaw(t *testing.T) {
	for _, fam := range []addrFamily{family4, family6} {
		t.Run(fam.name, func(t *testing.T) {
			n := newTunNet(t)
			path := filepath.Join(t.TempDir(), "serve.pcap")
			args := []string{"--app", "hello", "--listen", ":8080", "--pcap", path}
			var s *serveRun
			if fam == family6 {
				requireIPv6(t)
				s = n.startServe6(t, ",vnet", args...)
			} else {
				s = n.startServe(t, ",vnet", args...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := n.dialer.Dial(ctx, net.JoinHostPort(fam.ss, "8080"))
			require.NoError(t, err)
			require.NoError(t, loadgen.Exchange(c, make([]byte, 512)))
			c.Close()
			s.finish(t)
			f, err := os.Open(path)
			require.NoError(t, err)
			defer f.Close()
			rd, err := pcap.NewReader(f)
			require.NoError(t, err)
			require.Equal(t, uint32(pcap.LinkTypeRaw), rd.LinkType())
			want := []struct {
				src   string
				flags uint8
			}{{fam.cli, header.TCPFlagSYN}, {fam.ss, header.TCPFlagSYN | header.TCPFlagACK}, {fam.cli, header.TCPFlagACK}}
			for i := 0; i < len(want); {
				_, data, err := rd.Next()
				require.NoError(t, err, "record %d", i)
				src, seg, ok := rawTCP(data)
				if !ok {
					continue // not TCP (none is expected, but the handshake is what counts)
				}
				require.Equal(t, want[i].src, src.String(), "packet %d", i)
				require.Equal(t, want[i].flags, seg.Flags()&(header.TCPFlagSYN|header.TCPFlagACK), "packet %d", i)
				i++
			}
		})
	}
}

// rawTCP returns the source address and TCP header of a bare IPv4 or IPv6 packet (an
// IPv6 one without extension headers), false if it is not TCP.
func rawTCP(data []byte) (netip.Addr, header.TCP, bool) {
	var src netip.Addr
	var payload []byte
	if len(data) > 0 && data[0]>>4 == 6 {
		ip, err := header.ParseIPv6(data)
		if err != nil || ip.NextHeader() != header.ProtoTCP {
			return src, nil, false
		}
		src, payload = netip.AddrFrom16(ip.Src()), ip.Payload()
	} else {
		ip, err := header.ParseIPv4(data)
		if err != nil || ip.Protocol() != header.ProtoTCP {
			return src, nil, false
		}
		src, payload = netip.AddrFrom4(ip.Src()), ip.Payload()
	}
	seg, err := header.ParseTCP(payload)
	if err != nil {
		return src, nil, false
	}
	return src, seg, true
}

// TestTUN_ShardstackDialsLinux: shardstack, embedded as a library on a TUN device, dials a
// Linux echo server on the device's Linux side and moves 1 MiB both ways, checked by
// hash, plain and with GSO (its IPv4 segments then leave coalesced into super-packets),
// over IPv4 and over IPv6 (shardstack's IPv6 address beside its IPv4 one).
func TestTUN_ShardstackDialsLinux(t *testing.T) {
	for _, tc := range []struct {
		opts string
		fam  addrFamily
	}{{"", family4}, {",gso", family4}, {"", family6}, {",gso", family6}} {
		opts, fam := tc.opts, tc.fam
		t.Run("tun"+opts+"/"+fam.name, func(t *testing.T) {
			n := newTunNet(t)
			n.ns.Run(t, "ip", "tuntap", "add", "dev", tunDev, "mode", "tun", "multi_queue")
			cfg := stack.Config{Addr: mustPrefix(ssAddr + "/24"), Shards: 2}
			if fam == family6 {
				requireIPv6(t)
				cfg.MoreAddrs = []netip.Prefix{mustPrefix(fam.prefix(fam.ss))}
			}
			var lk *link.Link
			require.NoError(t, n.ns.Do(func() error {
				var err error
				lk, err = link.Open("tun:"+tunDev+opts, link.Params{Queues: 2})
				return err
			}))
			// The Linux side's address once the port has the device up (addPeer), then its
			// echo server, before shardstack starts.
			addPeer(t, n.ns, tunDev, fam.cli, fam.ss)
			target := net.JoinHostPort(fam.cli, "9000")
			linuxEcho(t, n.ns, "tcp", target)
			cfg.Port = lk.Port
			st, err := stack.New(cfg)
			if err != nil {
				lk.Port.Close()
				require.NoError(t, err)
			}
			defer func() {
				st.Close()
				lk.Port.Close()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := st.Dial(ctx, target)
			require.NoError(t, err)
			defer c.Close()
			require.Equal(t, net.JoinHostPort(fam.ss, ""), strings.TrimRight(c.LocalAddr().String(), "0123456789"),
				"the connection leaves from the family's address")
			echo1MiB(t, c)
			var rx, tx, writes, drops uint64
			for _, q := range lk.Stats() {
				rx += q.RxPackets
				tx += q.TxPackets
				writes += q.TxSyscalls
				drops += q.KernelDrops // a slow shard on a loaded machine: TCP recovers
				require.Zero(t, q.Errors)
			}
			t.Logf("%d packets received, %d sent in %d writes; %d kernel drops", rx, tx, writes, drops)
			if opts == ",gso" && fam == family4 {
				// Transmit coalescing takes runs of TCP/IPv4 segments only (the tun port's
				// gso.go); IPv6 segments leave one write each, Linux's come in coalesced.
				require.Less(t, writes, tx/2, "segments left coalesced")
			}
		})
	}
}

// TestTUN_IPv6LinuxClients: the same device carries IPv6: shardstack has fd00:5eed::1 beside
// its IPv4 address, the Linux side fd00:5eed::2 with shardstack's as its point-to-point
// peer. Linux clients exchange 1 MiB both ways with the echo listener over IPv6 (which
// also takes IPv4 on the same :7), ping -6 is answered and curl -6 gets "hello", with no
// neighbour discovery on the link (there is no link layer) and the flows steered.
func TestTUN_IPv6LinuxClients(t *testing.T) {
	requireIPv6(t)
	n := newTunNet(t)
	s := n.startServe6(t, "", "--app", "echo", "--listen", ":7", "--shards", "2")
	for _, addr := range []string{"[" + ssAddr6 + "]:7", "[" + ssAddr6 + "]:7", ssAddr + ":7"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := n.dialer.Dial(ctx, addr)
		cancel()
		require.NoError(t, err, addr)
		echo1MiB(t, c)
		c.Close()
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Log("ping not installed: the ping -6 part of this test is skipped")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := n.ns.Command(ctx, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", ssAddr6).CombinedOutput()
		cancel()
		require.NoError(t, err, "ping -6: %s", out)
	}
	sum := s.finish(t)
	require.Equal(t, int64(3), sum.AppStats.Accepted)
	require.Equal(t, int64(3<<20), sum.AppStats.BytesIn)
	require.Zero(t, sum.Counters["TcpInCsumErrors"])
	require.Zero(t, sum.Counters["Icmp6OutNeighborSolicits"]+sum.Counters["Icmp6OutNeighborAdvertisements"],
		"no neighbour discovery on a TUN link")
	var rx uint64
	var handoffs int64
	for _, sh := range sum.Shards {
		rx, handoffs = rx+sh.RxPackets, handoffs+sh.Handoffs
	}
	require.Less(t, float64(handoffs), 0.01*float64(rx), "hand-offs %d of %d packets: IPv6 flows are steered too", handoffs, rx)

	n2 := newTunNet(t)
	n2.startServe6(t, "", "--app", "http", "--listen", ":80")
	if _, err := exec.LookPath("curl"); err != nil {
		t.Log("curl not installed: the curl -6 part of this test is skipped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := n2.ns.Command(ctx, "curl", "-6", "-sS", "--max-time", "10", "http://["+ssAddr6+"]/").CombinedOutput()
	require.NoError(t, err, "curl -6: %s", out)
	require.Equal(t, "hello\n", string(out))
}

// TestTUN_PMTUFromRouter: path-MTU discovery over TUN, with the namespace's kernel (the
// device's other end) as a router: it forwards to a Linux echo server in a far
// namespace through a veth whose MTU on the router's side is 1280, every other MTU 1500.
// The far host sends within 1280 (its route says so) yet advertises the MSS of a
// 1500-byte link, so shardstack's full segments are too big for the router's far link:
// the router answers them with fragmentation needed (IPv4, next-hop MTU 1280) or Packet
// Too Big (IPv6), which reaches shardstack over the device; the stack lowers the path MTU
// to 1280 and the connection's MSS to 1240 (IPv4) or 1220 (IPv6), resends smaller, and
// the 1 MiB echo completes intact both ways. Plain, each full segment in flight draws an
// error (ten, the initial window); with GSO the super-packet that carries them draws one,
// the router's forwarding checking its segments' size.
func TestTUN_PMTUFromRouter(t *testing.T) {
	for _, opts := range []string{"", ",gso"} {
		for _, f := range []pmtuFar{
			{family4, "198.18.2.2", "198.18.2.254", "/24", 40},
			{family6, "fd00:5eef::2", "fd00:5eef::fe", "/64", 60},
		} {
			t.Run("tun"+opts+"/"+f.fam.name, func(t *testing.T) { runPMTUFromRouter(t, opts, f) })
		}
	}
}

// pmtuFar is the far host of TestTUN_PMTUFromRouter in one family: its address, its
// router's on the narrow link, their prefix length, and the IP and TCP headers an MSS
// leaves out of the MTU.
type pmtuFar struct {
	fam            addrFamily
	addr, gw, plen string
	overhead       int
}

// runPMTUFromRouter is one run of TestTUN_PMTUFromRouter, shardstack on tun:sst0+opts.
func runPMTUFromRouter(t *testing.T, opts string, f pmtuFar) {
	const narrow = 1280
	if f.fam == family6 {
		requireIPv6(t)
	}
	n := newTunNet(t)
	rtr, far := n.ns, netns.New(t, "far")
	netns.Veth(t, rtr, "vr", far, "vf")
	cfg := stack.Config{Addr: mustPrefix(ssAddr + "/24"), Shards: 2}
	if f.fam == family6 {
		cfg.MoreAddrs = []netip.Prefix{mustPrefix(f.fam.prefix(f.fam.ss))}
		cfg.Gateway6 = mustAddr(f.fam.cli)
		// No duplicate address detection on the veth, for its link-local addresses
		// too: the router's neighbour solicitation for the far host would wait for its
		// own (about two seconds, the forwarded SYNs held meanwhile).
		for _, e := range []struct {
			ns  *netns.NS
			dev string
		}{{rtr, "vr"}, {far, "vf"}} {
			e.ns.Sysctl(t, "net.ipv6.conf."+e.dev+".accept_dad", "0")
			e.ns.Sysctl(t, "net.ipv6.conf."+e.dev+".disable_ipv6", "0")
		}
		rtr.Sysctl(t, "net.ipv6.conf.all.forwarding", "1")
	} else {
		cfg.Gateway = mustAddr(f.fam.cli)
		rtr.Sysctl(t, "net.ipv4.ip_forward", "1")
	}
	rtr.SetMTU(t, "vr", narrow)
	rtr.AddAddr(t, "vr", f.gw+f.plen)
	far.AddAddr(t, "vf", f.addr+f.plen)
	// The far host's segments fit the narrow link (a veth drops what exceeds the
	// receiving end's MTU); its SYN advertises a 1500-byte link's MSS.
	far.Run(t, "ip", "route", "add", "default", "via", f.gw, "mtu", strconv.Itoa(narrow),
		"advmss", strconv.Itoa(1500-f.overhead))

	target := net.JoinHostPort(f.addr, "9000")
	linuxEcho(t, far, "tcp", target)
	st := openStackIn(t, rtr, cfg, "tun:"+tunDev+opts)
	addPeer(t, rtr, tunDev, f.fam.cli, f.fam.ss)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, target)
	require.NoError(t, err)
	defer c.Close()
	echo1MiB(t, c)
	mss := 0
	for _, row := range st.Sockets() {
		if row.Peer.String() == target && row.State != tcp.StateListen {
			mss = row.MSS
		}
	}
	cnt := st.Counters()
	t.Logf("mss %d; %s=%d %s=%d %s=%d %s=%d %s=%d", mss,
		stats.IcmpInDestUnreachs, cnt[stats.IcmpInDestUnreachs], stats.Icmp6InPktTooBigs, cnt[stats.Icmp6InPktTooBigs],
		stats.RtPMTUUpdates, cnt[stats.RtPMTUUpdates], stats.TcpPMTUReductions, cnt[stats.TcpPMTUReductions],
		stats.TcpRetransSegs, cnt[stats.TcpRetransSegs])
	if f.fam == family6 {
		require.Positive(t, cnt[stats.Icmp6InPktTooBigs], "the router's Packet Too Big reached shardstack")
		require.Zero(t, cnt[stats.Icmp6InErrors], "and quoted a flow of ours")
	} else {
		require.Positive(t, cnt[stats.IcmpInDestUnreachs], "the router's fragmentation needed reached shardstack")
		require.Zero(t, cnt[stats.IcmpInErrors], "and quoted a flow of ours")
	}
	require.Equal(t, uint64(1), cnt[stats.RtPMTUUpdates], "one path lowered to %d", narrow)
	require.Equal(t, uint64(1), cnt[stats.TcpPMTUReductions], "one connection's MSS lowered")
	require.Equal(t, narrow-f.overhead, mss, "the connection's MSS follows the narrow link")
	mtu, ok := st.TCP().PathMTU(mustAddr(f.addr))
	require.True(t, ok, "a path MTU is in force for the far host")
	require.Equal(t, narrow, mtu)
}

//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/internal/link"
	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/stack"
)

// The real-link tests: shardstack on one end of a veth pair through AF_PACKET, Linux's own
// TCP on the other, each end in a network namespace of its own made for the test (and
// removed after it, even when it fails). They need CAP_NET_ADMIN (CI runs them as root)
// and skip with the reason without it. Addresses: shardstack 198.18.0.1/24 on "vs" in the
// srv namespace (which has no address of its own on vs); Linux 198.18.0.2/24 on "vc" in
// the cli namespace; where a test also wants a Linux listener beside shardstack's, the
// srv namespace's kernel gets 198.18.0.3 on vs.

const (
	ssAddr    = "198.18.0.1"
	linuxAddr = "198.18.0.2"
	lsrvAddr  = "198.18.0.3" // a Linux listener on the shardstack side's veth
)

// linkNet is the two namespaces and the veth between them.
type linkNet struct {
	srv, cli *netns.NS
	dialer   *nsDialer
}

func newLinkNet(t *testing.T) *linkNet {
	t.Helper()
	netns.Require(t)
	n := &linkNet{srv: netns.New(t, "srv"), cli: netns.New(t, "cli")}
	netns.Veth(t, n.srv, "vs", n.cli, "vc")
	n.cli.AddAddr(t, "vc", linuxAddr+"/24")
	n.dialer = newNSDialer(t, n.cli, 16)
	return n
}

// nsDialer dials from inside a namespace with a few goroutines that live on threads which
// joined it: a socket belongs to the namespace of the thread that made it, and keeps
// working from any goroutine afterwards.
type nsDialer struct {
	reqs chan dialReq
	wg   sync.WaitGroup
}

type dialReq struct {
	ctx   context.Context
	addr  string
	reply chan dialResult
}

type dialResult struct {
	c   net.Conn
	err error
}

func newNSDialer(t *testing.T, ns *netns.NS, workers int) *nsDialer {
	d := &nsDialer{reqs: make(chan dialReq)}
	for i := 0; i < workers; i++ {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			_ = ns.Do(func() error {
				var nd net.Dialer
				for r := range d.reqs {
					c, err := nd.DialContext(r.ctx, "tcp", r.addr) // the address picks the family
					r.reply <- dialResult{c, err}
				}
				return nil
			})
		}()
	}
	t.Cleanup(func() {
		close(d.reqs)
		d.wg.Wait()
	})
	return d
}

// Dial connects to addr from the namespace.
func (d *nsDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	r := dialReq{ctx, addr, make(chan dialResult, 1)}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res := <-r.reply
	return res.c, res.err
}

// serveRun is `shardstack serve` running in the srv namespace, in this process.
type serveRun struct {
	out, errOut syncBuffer
	stop        chan struct{}
	done        chan int
}

// startServe runs serve with args (--link and --addr are filled in) and waits until it
// listens.
func (n *linkNet) startServe(t *testing.T, args ...string) *serveRun {
	t.Helper()
	s := &serveRun{stop: make(chan struct{}), done: make(chan int, 1)}
	e := &env{stdout: &s.out, stderr: &s.errOut, stop: s.stop}
	full := append([]string{"serve", "--link", "afpacket:vs", "--addr", ssAddr + "/24", "--json"}, args...)
	go func() {
		code := exitFailure
		// The link's sockets are made on this thread, inside the namespace.
		_ = n.srv.Do(func() error { code = e.run(full); return nil })
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
	return s
}

// finish stops serve (once) and returns its summary.
func (s *serveRun) finish(t *testing.T) *serveSummary {
	t.Helper()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	code, ok := <-s.done
	if ok {
		close(s.done)
		require.Equal(t, exitOK, code, "serve: %s", s.errOut.String())
	}
	sum, _ := decodeServe(t, s.out.String())
	return sum
}

// statReport is one --stat-every report of serve --json.
type statReport struct {
	Time     float64          `json:"time"`
	Sockets  []socketRow      `json:"sockets"`
	Counters map[string]int64 `json:"counters_changed"`
}

// decodeServe splits serve --json's output into its --stat-every reports and the summary
// (the last object).
func decodeServe(t *testing.T, out string) (*serveSummary, []statReport) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var raws []json.RawMessage
	for dec.More() {
		var r json.RawMessage
		require.NoError(t, dec.Decode(&r), "serve output: %q", out)
		raws = append(raws, r)
	}
	require.NotEmpty(t, raws, "no summary: %q", out)
	var sum serveSummary
	require.NoError(t, json.Unmarshal(raws[len(raws)-1], &sum))
	reports := make([]statReport, len(raws)-1)
	for i, r := range raws[:len(raws)-1] {
		require.NoError(t, json.Unmarshal(r, &reports[i]))
	}
	return &sum, reports
}

// openStack opens shardstack on the srv namespace's veth through the library, as an
// application embedding it would.
func (n *linkNet) openStack(t *testing.T, cfg stack.Config, spec string) *stack.Stack {
	t.Helper()
	return openStackIn(t, n.srv, cfg, spec)
}

// openStackIn opens shardstack through the library on the link spec names, made inside ns.
func openStackIn(t *testing.T, ns *netns.NS, cfg stack.Config, spec string) *stack.Stack {
	t.Helper()
	var lk *link.Link
	require.NoError(t, ns.Do(func() error {
		var err error
		lk, err = link.Open(spec, link.Params{Queues: max(cfg.Shards, 1)})
		return err
	}))
	cfg.Port = lk.Port
	st, err := stack.New(cfg)
	if err != nil {
		lk.Port.Close()
		require.NoError(t, err)
	}
	t.Cleanup(func() {
		st.Close()
		lk.Port.Close()
	})
	return st
}

// echo1MiB writes 1 MiB of random bytes to c while reading the echo, and checks the echo's
// hash.
func echo1MiB(t *testing.T, c net.Conn) {
	t.Helper()
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	h := sha256.New()
	n, err := io.CopyN(h, c, int64(len(data)))
	require.NoError(t, err, "after %d bytes", n)
	require.NoError(t, <-errc)
	require.Equal(t, want[:], h.Sum(nil), "1 MiB came back intact")
}

// TestLink_LinuxClientsEcho: Linux clients (Go's net in the peer namespace) exchange 1 MiB
// both ways with serve --app echo over AF_PACKET, several connections at once, with the
// peer's offloads left on (partial checksums and TSO super-packets reach shardstack).
func TestLink_LinuxClientsEcho(t *testing.T) {
	n := newLinkNet(t)
	s := n.startServe(t, "--app", "echo", "--listen", ":7", "--shards", "2")
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
	require.Equal(t, int64(4), sum.AppStats.Accepted)
	require.Equal(t, int64(4<<20), sum.AppStats.BytesIn)
	require.Zero(t, sum.Counters["TcpInCsumErrors"], "partial checksums are the link's to vouch for")
	require.Positive(t, sum.Counters["TcpPassiveOpens"])
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%v", err)
		return false
	}
	return true
}

// TestLink_HTTPAndCurl: net/http's client and curl in the peer namespace get "hello" from
// serve --app http.
func TestLink_HTTPAndCurl(t *testing.T) {
	n := newLinkNet(t)
	n.startServe(t, "--app", "http", "--listen", ":80")
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
	out, err := n.cli.Command(ctx, "curl", "-sS", "--max-time", "10", "http://"+ssAddr+"/").CombinedOutput()
	require.NoError(t, err, "curl: %s", out)
	require.Equal(t, "hello\n", string(out))
}

// TestLink_ShardstackDialsLinux: shardstack, embedded as a library, dials a Linux echo
// server and moves 1 MiB both ways, checked by hash.
func TestLink_ShardstackDialsLinux(t *testing.T) {
	n := newLinkNet(t)
	linuxEcho(t, n.cli, "tcp4", linuxAddr+":9000")
	st := n.openStack(t, stack.Config{Addr: mustPrefix(ssAddr + "/24"), Shards: 2}, "afpacket:vs")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, linuxAddr+":9000")
	require.NoError(t, err)
	defer c.Close()
	echo1MiB(t, c)
}

// TestLink_TenThousandConnections: 10,000 connections from Linux clients to serve --app
// hello complete with no failure; the fanout program steers each flow to the shard that
// owns it, so almost nothing is handed between shards.
func TestLink_TenThousandConnections(t *testing.T) {
	n := newLinkNet(t)
	runTenThousand(t, n.startServe(t, "--app", "hello", "--listen", ":8080", "--shards", "2", "--stat-every", "100ms"),
		n.dialer, ssAddr)
}

// runTenThousand is TestLink_TenThousandConnections against s, serving hello on port 8080
// of addr, dialled with d.
func runTenThousand(t *testing.T, s *serveRun, d *nsDialer, addr string) {
	t.Helper()
	target := net.JoinHostPort(addr, "8080")
	res, err := loadgen.RunNet(func(ctx context.Context) (net.Conn, error) {
		return d.Dial(ctx, target)
	}, loadgen.Config{Target: mustAddrPort(target), Conns: 10000, Concurrency: 16})
	require.NoError(t, err)
	require.Zero(t, res.Failures, "first error: %s", res.FirstError)
	require.Equal(t, int64(10000), res.Conns)
	sum := s.finish(t)
	require.Equal(t, int64(10000), sum.AppStats.Accepted)
	_, reports := decodeServe(t, s.out.String())
	require.NotEmpty(t, reports, "--stat-every reported while the load ran")
	var opens int64
	for _, r := range reports {
		require.NotEmpty(t, r.Sockets)
		require.Equal(t, "LISTEN", r.Sockets[0].State, "the listener heads the table")
		opens += r.Counters["TcpPassiveOpens"]
	}
	require.LessOrEqual(t, opens, int64(10001), "reports carry what changed since the last one")
	require.Positive(t, opens)
	var rx uint64
	var handoffs int64
	for _, sh := range sum.Shards {
		rx += sh.RxPackets
		handoffs += sh.Handoffs
		require.Positive(t, sh.RxPackets, "both shards took flows")
	}
	require.Less(t, float64(handoffs), 0.01*float64(rx), "hand-offs %d of %d frames", handoffs, rx)
}

// TestLink_PcapShowsHandshake: serve --pcap writes a capture that tshark decodes into the
// Linux client's handshake.
func TestLink_PcapShowsHandshake(t *testing.T) {
	runPcapShowsHandshake(t, newLinkNet(t), ssAddr, linuxAddr)
}

// runPcapShowsHandshake is TestLink_PcapShowsHandshake on n, shardstack serving at ss
// (given to serve with --addr if it is IPv6), the Linux client at linux.
func runPcapShowsHandshake(t *testing.T, n *linkNet, ss, linux string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.pcap")
	args := []string{"--app", "hello", "--listen", ":8080", "--pcap", path}
	srcField := "ip.src"
	if mustAddr(ss).Is6() {
		args = append(args, "--addr", ss+"/64")
		srcField = "ipv6.src"
	}
	s := n.startServe(t, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.dialer.Dial(ctx, net.JoinHostPort(ss, "8080"))
	require.NoError(t, err)
	require.NoError(t, loadgen.Exchange(c, make([]byte, 512)))
	c.Close()
	s.finish(t)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Positive(t, st.Size())
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not on PATH; install it (apt-get install tshark) to decode the capture")
	}
	cmd := exec.Command(tshark, "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-e", srcField, "-e", "tcp.flags.str")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "tshark: %s", stderr.String())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.GreaterOrEqual(t, len(lines), 3, "%s", out)
	want := []struct{ src, flags string }{{linux, "S"}, {ss, "SA"}, {linux, "A"}}
	for i, w := range want {
		f := strings.Split(lines[i], "\t")
		require.Equal(t, w.src, f[0], lines[i])
		got := ""
		for _, fl := range "SA" { // tshark orders the letters as the bits: in a fixed order
			if strings.ContainsRune(f[1], fl) {
				got += string(fl)
			}
		}
		require.Equal(t, w.flags, got, "packet %d: %s", i+1, lines[i])
	}
}

// listenBacklog is listen(2) with an exact backlog, which Go's net.Listen does not take
// (it always passes somaxconn), made inside ns, on an IPv4 or IPv6 addr.
func listenBacklog(t *testing.T, ns *netns.NS, addr string, port, backlog int) net.Listener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, ns.Do(func() error {
		a := mustAddr(addr)
		family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: port, Addr: a.As16()})
		if a.Is4() {
			family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: a.As4()}
		}
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), "listener")
		defer f.Close()
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind %s:%d: %w", addr, port, err)
		}
		if err := unix.Listen(fd, backlog); err != nil {
			return err
		}
		ln, err = net.FileListener(f)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

func mustPrefix(s string) netip.Prefix     { return netip.MustParsePrefix(s) }
func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func mustAddr(s string) netip.Addr         { return netip.MustParseAddr(s) }

// linuxEcho runs a Linux echo server on addr in ns (Go's net, a socket of the namespace's
// kernel) until the test ends.
func linuxEcho(t *testing.T, ns *netns.NS, network, addr string) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, ns.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

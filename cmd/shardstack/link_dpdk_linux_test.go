//go:build dpdk && linux

package main

// The DPDK tests: shardstack on a net_af_packet vdev bound to the srv namespace's veth, as
// serve --link dpdk:... runs it, Linux's TCP on the other end, as the AF_PACKET tests do
// (link_linux_test.go). One test binary has one EAL: every port gives the same EAL
// arguments (dpdkEAL) and a --vdev of its own, hot-plugged on a thread inside its test's
// namespace. The peer's offloads are off: net_af_packet reads frames from a TPACKET_V2
// ring without the virtio-net header, so a partial checksum or a GSO super-packet from the
// Linux side would reach the stack unfinished (see README.md, "Running on DPDK").

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/apps"
	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/pkg/stack"
)

// dpdkEAL are the EAL arguments of every port of this test binary: no hugepages, no shared
// config files, no PCI scan, no telemetry socket, one lcore.
const dpdkEAL = "--no-huge -m 512 --no-shconf --no-pci --no-telemetry -l 0 --log-level=4"

var dpdkSeq atomic.Int32

// dpdkSpec is a link specification for a port on the srv namespace's veth with queues
// queue pairs, under a vdev name no other test of the binary uses.
func dpdkSpec(queues int) string {
	return fmt.Sprintf("dpdk:%s --vdev=net_af_packet%d,iface=vs,qpairs=%d", dpdkEAL, dpdkSeq.Add(1), queues)
}

// newDPDKNet is newLinkNet with the client's offloads off.
func newDPDKNet(t *testing.T) *linkNet {
	t.Helper()
	n := newLinkNet(t)
	if err := n.cli.SetOffloads(t, "vc", false); err != nil {
		t.Skipf("the DPDK tests need the peer's offloads off: %v", err)
	}
	return n
}

// TestDPDK_LinuxClientsEcho: Linux clients exchange 1 MiB both ways with serve --app echo
// on DPDK, four connections at once over two shards.
func TestDPDK_LinuxClientsEcho(t *testing.T) {
	n := newDPDKNet(t)
	s := n.startServe(t, "--link", dpdkSpec(2), "--app", "echo", "--listen", ":7", "--shards", "2")
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
	require.True(t, strings.HasPrefix(sum.Link, "net_af_packet"), "the port: %s", sum.Link)
	require.Equal(t, int64(4), sum.AppStats.Accepted)
	require.Equal(t, int64(4<<20), sum.AppStats.BytesIn)
	require.Zero(t, sum.Counters["TcpInCsumErrors"])
	require.Len(t, sum.Queues, 2)
	for i, q := range sum.Queues {
		require.Positive(t, q.RxPackets, "queue %d", i)
		require.Positive(t, q.CgoCalls, "queue %d", i)
		require.Zero(t, q.Errors, "queue %d", i)
	}
}

// TestDPDK_HTTPAndCurl: net/http's client and curl in the peer namespace get "hello" from
// serve --app http on DPDK.
func TestDPDK_HTTPAndCurl(t *testing.T) {
	n := newDPDKNet(t)
	n.startServe(t, "--link", dpdkSpec(1), "--app", "http", "--listen", ":80", "--shards", "1")
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

// TestDPDK_TenThousandConnections: 10,000 connections from Linux clients to serve --app
// hello on DPDK with two shards complete with no failure. net_af_packet's queues are a
// PACKET_FANOUT_HASH group, whose hash the stack cannot compute: the port states no
// steering, and the flows that arrive on the other shard's queue are handed over (and
// counted).
func TestDPDK_TenThousandConnections(t *testing.T) {
	n := newDPDKNet(t)
	s := n.startServe(t, "--link", dpdkSpec(2), "--app", "hello", "--listen", ":8080", "--shards", "2")
	res, err := loadgen.RunNet(func(ctx context.Context) (net.Conn, error) {
		return n.dialer.Dial(ctx, ssAddr+":8080")
	}, loadgen.Config{Target: mustAddrPort(ssAddr + ":8080"), Conns: 10000, Concurrency: 16})
	require.NoError(t, err)
	require.Zero(t, res.Failures, "first error: %s", res.FirstError)
	require.Equal(t, int64(10000), res.Conns)
	sum := s.finish(t)
	require.Equal(t, int64(10000), sum.AppStats.Accepted)
	var rx, bursts, calls, empty, tx uint64
	var handoffs int64
	for _, sh := range sum.Shards {
		rx += sh.RxPackets
		handoffs += sh.Handoffs
		require.Positive(t, sh.RxPackets, "both shards took frames")
	}
	for _, q := range sum.Queues {
		bursts += q.RxSyscalls + q.TxSyscalls
		calls += q.CgoCalls
		empty += q.RxEmpty
		tx += q.TxPackets
	}
	require.Positive(t, handoffs, "without steering, frames on the wrong queue are handed over")
	// Idle shards poll (a PMD has no descriptor to sleep on): the empty receive bursts
	// are per poll. The others, and the bulk allocations and frees, are per burst.
	require.Less(t, calls-empty, rx+tx, "cgo calls that moved packets are fewer than the packets")
	t.Logf("%d frames received, %d sent, %d handed over (%.1f%%); %d cgo calls: %d bursts (%d empty receive polls), %.2f calls per packet moved, beside the empty polls; %.0f conn/s",
		rx, tx, handoffs, 100*float64(handoffs)/float64(rx), calls, bursts, empty, float64(calls-empty)/float64(rx+tx), res.ConnsPerSec)
}

// TestDPDK_SeedBacklog: the seed's listen(2) experiments (TestLink_SeedBacklog) with
// shardstack on DPDK, beside a Linux listener on the same veth: the same states as Linux
// under the linux profile, the seed's under linux-3.12.
func TestDPDK_SeedBacklog(t *testing.T) {
	runSeedBacklog(t, family4, seedOnLink(newDPDKNet, func() string { return dpdkSpec(1) }))
}

// TestDPDK_ShardstackDialsLinux: shardstack on DPDK, embedded as a library with two shards,
// dials a Linux echo server and moves 1 MiB both ways on each of four connections. Without
// steering, a connection's replies may come in on the other shard's queue: they are handed
// to the dialling shard.
func TestDPDK_ShardstackDialsLinux(t *testing.T) {
	n := newDPDKNet(t)
	linuxEcho(t, n.cli, "tcp4", linuxAddr+":9000")
	st := n.openStack(t, stack.Config{Addr: mustPrefix(ssAddr + "/24"), Shards: 2}, dpdkSpec(2))
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := st.Dial(ctx, linuxAddr+":9000")
		cancel()
		require.NoError(t, err)
		echo1MiB(t, c)
		c.Close()
	}
}

// TestDPDK_LoadAgainstLinux: shardstack load on DPDK (in the srv namespace, two shards)
// makes 2,000 connections to Linux serving the hello application in the peer namespace,
// with no failure.
func TestDPDK_LoadAgainstLinux(t *testing.T) {
	n := newDPDKNet(t)
	var ln net.Listener
	require.NoError(t, n.cli.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", linuxAddr+":8080")
		return err
	}))
	defer ln.Close()
	app, err := apps.New("hello")
	require.NoError(t, err)
	go func() { _ = app.Serve(ln) }()
	var out, errOut syncBuffer
	e := &env{stdout: &out, stderr: &errOut, stop: make(chan struct{})}
	code := exitFailure
	require.NoError(t, n.srv.Do(func() error {
		code = e.run([]string{"load", "--link", dpdkSpec(2), "--shards", "2", "--addr", ssAddr + "/24",
			"--target", linuxAddr + ":8080", "--conns", "2000", "--concurrency", "32", "--duration", "0", "--json"})
		return nil
	}))
	require.Equal(t, exitOK, code, "load: %s", errOut.String())
	var sum struct {
		Conns    int64             `json:"conns"`
		Failures int64             `json:"failures"`
		Link     string            `json:"link"`
		Queues   []json.RawMessage `json:"link_queues"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.String()), &sum), out.String())
	require.Equal(t, int64(2000), sum.Conns)
	require.Zero(t, sum.Failures)
	require.True(t, strings.HasPrefix(sum.Link, "net_af_packet"), sum.Link)
	require.Len(t, sum.Queues, 2)
}

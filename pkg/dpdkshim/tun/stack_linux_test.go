package tun

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/linktest"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
)

// watchPort counts what the stack receives through the port.
type watchPort struct {
	*Port
	packets, tcp, super, verified, maxLen atomic.Int64
}

func (w *watchPort) RxBurst(q int, pkts []*dpdkshim.Packet) int {
	n := w.Port.RxBurst(q, pkts)
	for _, p := range pkts[:n] {
		w.packets.Add(1)
		if d := p.Data(); len(d) > 20 && d[0]>>4 == 4 && d[9] == 6 {
			w.tcp.Add(1)
			if p.Flags&dpdkshim.CsumVerified != 0 {
				w.verified.Add(1)
			}
		}
		if p.GSOSize > 0 {
			w.super.Add(1)
		}
		if l := int64(p.Len()); l > w.maxLen.Load() {
			w.maxLen.Store(l)
		}
	}
	return n
}

// upload runs a stack on the port (198.18.0.1, two shards), has a Linux client in the
// namespace send it size bytes, checks them and the stack's reply, and returns how long the
// transfer took.
func upload(tb testing.TB, n *tunNet, w *watchPort, size int) time.Duration {
	tb.Helper()
	s, err := stack.New(stack.Config{Port: w, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: w.NumQueues()})
	require.NoError(tb, err)
	defer s.Close()
	l, err := s.Listen(":8080", 16)
	require.NoError(tb, err)
	srvErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		got := make([]byte, size)
		if _, err := io.ReadFull(c, got); err != nil {
			srvErr <- err
			return
		}
		for i, b := range got {
			if b != byte(i%251) {
				srvErr <- fmt.Errorf("byte %d is %d, want %d", i, b, i%251)
				return
			}
		}
		_, err = c.Write([]byte("got it"))
		srvErr <- err
	}()
	var c net.Conn
	require.NoError(tb, n.ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", "198.18.0.1:8080", 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(tb, c.SetDeadline(time.Now().Add(60*time.Second)))
	buf := make([]byte, size)
	for i := range buf {
		buf[i] = byte(i % 251)
	}
	start := time.Now()
	_, err = c.Write(buf)
	require.NoError(tb, err)
	reply := make([]byte, 6)
	_, err = io.ReadFull(c, reply)
	require.NoError(tb, err)
	took := time.Since(start)
	require.Equal(tb, "got it", string(reply))
	require.NoError(tb, <-srvErr)
	return took
}

// TestStack_LinuxClientUploads: shardstack on the port serves a Linux TCP client: a 1 MiB
// upload arrives intact. Plain, every TCP segment fits the MTU and carries a checksum the
// stack checks; with the vnet header every segment arrives verified (partial); with GSO
// Linux sends super-packets longer than the MTU, which arrive whole.
func TestStack_LinuxClientUploads(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"vnet", Config{VnetHdr: true}}, {"gso", Config{VnetHdr: true, GSO: true}}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Queues = 2
			n := newTunNet(t, cfg)
			w := &watchPort{Port: n.port}
			took := upload(t, n, w, 1<<20)
			t.Logf("1 MiB in %v: %d packets (%d TCP), %d super-packets, %d verified, longest %d B",
				took, w.packets.Load(), w.tcp.Load(), w.super.Load(), w.verified.Load(), w.maxLen.Load())
			switch c.name {
			case "plain":
				require.Zero(t, w.verified.Load())
				require.LessOrEqual(t, w.maxLen.Load(), int64(w.MTU()))
			case "vnet":
				require.Equal(t, w.tcp.Load(), w.verified.Load(), "every TCP segment is verified")
				require.Zero(t, w.super.Load())
			case "gso":
				require.Equal(t, w.tcp.Load(), w.verified.Load())
				require.Positive(t, w.super.Load(), "Linux sent GSO super-packets")
				require.Greater(t, w.maxLen.Load(), int64(w.MTU()))
			}
			for _, s := range w.Stats() {
				require.Zero(t, s.RxTruncated+s.RxErrors+s.TxDropped)
			}
		})
	}
}

// BenchmarkStack_LinuxUpload measures a Linux client's 8 MiB upload to shardstack over
// the TUN device, plain, with the vnet header, and with GSO; it reports MB/s and the
// packets per receive system call.
func BenchmarkStack_LinuxUpload(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"vnet", Config{VnetHdr: true}}, {"gso", Config{VnetHdr: true, GSO: true}}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Queues = 1
			n := newTunNet(b, cfg)
			w := &watchPort{Port: n.port}
			const size = 8 << 20
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				total += upload(b, n, w, size)
			}
			b.StopTimer()
			b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s")
			var rx, calls uint64
			for _, s := range w.Stats() {
				rx += s.RxPackets
				calls += s.RxSyscalls
			}
			b.ReportMetric(float64(rx)/float64(max(calls, 1)), "pkts/syscall")
			b.ReportMetric(float64(w.packets.Load())/float64(b.N), "pkts/op")
		})
	}
}

// download runs a stack on the port whose server writes size bytes to a Linux client in
// the namespace, which checks them; it returns how long the transfer took.
func download(tb testing.TB, n *tunNet, port dpdkshim.Port, size int) time.Duration {
	return downloadFrom(tb, n, port, size, "198.18.0.1")
}

// downloadFrom is download from one of the stack's addresses: 198.18.0.1, or fd00::1 (see
// addIPv6).
func downloadFrom(tb testing.TB, n *tunNet, port dpdkshim.Port, size int, addr string) time.Duration {
	tb.Helper()
	s, err := stack.New(stack.Config{Port: port, Addr: netip.MustParsePrefix("198.18.0.1/24"),
		MoreAddrs: []netip.Prefix{netip.MustParsePrefix("fd00::1/64")}, Shards: port.NumQueues()})
	require.NoError(tb, err)
	defer s.Close()
	l, err := s.Listen(":8080", 16)
	require.NoError(tb, err)
	data := linktest.Pattern(size)
	srvErr := linktest.ServeOnce(l, data)
	var c net.Conn
	require.NoError(tb, n.ns.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(addr, "8080"), 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(tb, c.SetDeadline(time.Now().Add(60*time.Second)))
	start := time.Now()
	got, err := io.ReadAll(c)
	took := time.Since(start)
	require.NoError(tb, err)
	require.NoError(tb, <-srvErr)
	require.Equal(tb, len(data), len(got))
	require.True(tb, string(data) == string(got), "the download arrived intact")
	return took
}

// TestStack_LinuxClientDownloads: a Linux client downloads 4 MiB from shardstack over
// the device, intact, plain, with the vnet header, and with GSO, where runs of segments
// leave as super-packets (fewer writes than segments).
func TestStack_LinuxClientDownloads(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"vnet", Config{VnetHdr: true}}, {"gso", Config{VnetHdr: true, GSO: true}}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Queues = 2
			n := newTunNet(t, cfg)
			took := download(t, n, n.port, 4<<20)
			var tx, calls, supers uint64
			for _, s := range n.port.Stats() {
				tx += s.TxPackets
				calls += s.TxSyscalls
				supers += s.TxSuper
				require.Zero(t, s.TxDropped)
			}
			t.Logf("4 MiB in %v: %d segments in %d writes, %d super-packets", took, tx, calls, supers)
			if c.cfg.GSO {
				require.Positive(t, supers)
				require.Less(t, calls, tx/2, "runs of segments went out in one write each")
			} else {
				require.Zero(t, supers)
				require.Equal(t, tx, calls)
			}
		})
	}
}

// addIPv6 gives the Linux side of the device fd00::2, with the stack's fd00::1 as its
// peer.
func addIPv6(t testing.TB, n *tunNet) {
	n.ns.Sysctl(t, "net.ipv6.conf."+devName+".disable_ipv6", "0")
	n.ns.Run(t, "ip", "-6", "address", "add", "fd00::2", "peer", "fd00::1/128", "dev", devName, "nodad")
}

// TestStack_LinuxClientDownloadsIPv6: the same over IPv6, with GSO: runs of TCP/IPv6
// segments leave as super-packets (VIRTIO_NET_HDR_GSO_TCPV6), which Linux's TCP takes.
func TestStack_LinuxClientDownloadsIPv6(t *testing.T) {
	n := newTunNet(t, Config{Queues: 2, VnetHdr: true, GSO: true})
	addIPv6(t, n)
	took := downloadFrom(t, n, n.port, 4<<20, "fd00::1")
	var tx, calls, supers uint64
	for _, s := range n.port.Stats() {
		tx += s.TxPackets
		calls += s.TxSyscalls
		supers += s.TxSuper
		require.Zero(t, s.TxDropped)
	}
	t.Logf("4 MiB in %v: %d segments in %d writes, %d super-packets", took, tx, calls, supers)
	require.Positive(t, supers)
	require.Less(t, calls, tx/2, "runs of segments went out in one write each")
}

// BenchmarkStack_LinuxDownload measures a Linux client's 8 MiB download from shardstack
// over the device, plain, with the vnet header and with GSO; it reports MB/s and the
// segments per write.
func BenchmarkStack_LinuxDownload(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"plain", Config{}}, {"vnet", Config{VnetHdr: true}}, {"gso", Config{VnetHdr: true, GSO: true}}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Queues = 1
			n := newTunNet(b, cfg)
			const size = 8 << 20
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				total += download(b, n, n.port, size)
			}
			b.StopTimer()
			b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/1e6, "MB/s")
			var tx, calls uint64
			for _, s := range n.port.Stats() {
				tx += s.TxPackets
				calls += s.TxSyscalls
			}
			b.ReportMetric(float64(tx)/float64(max(calls, 1)), "segs/write")
		})
	}
}

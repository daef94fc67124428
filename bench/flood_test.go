package bench

import (
	"context"
	"encoding/binary"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/hist"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// flooder sends SYNs from spoofed sources (198.19.0.0/16, random ports) into the server
// from queue 1 of the client's port; their SYN-ACKs go to the gateway, which is that port,
// where the client stack drops them as not addressed to it.
type flooder struct {
	port *dpdkshim.MemPort
	dst  [4]byte
	smac header.MAC
	dmac header.MAC
	x    uint64
	opts header.TCPOptions
	tx   []*dpdkshim.Packet
	sent uint64
}

func (f *flooder) rand() uint32 {
	f.x ^= f.x << 13
	f.x ^= f.x >> 7
	f.x ^= f.x << 17
	return uint32(f.x >> 16)
}

func (f *flooder) burst(n int) {
	pool := f.port.Pool(1)
	for i := 0; i < n; i++ {
		p := pool.Get()
		if p == nil {
			break
		}
		r := f.rand()
		var src [4]byte
		binary.BigEndian.PutUint32(src[:], 198<<24|19<<16|r&0xffff)
		sport := uint16(1024 + f.rand()%60000)
		hl := header.TCPMinLen + f.opts.EncodedLen()
		b := p.Append(header.EthernetLen + header.IPv4MinLen + hl)
		header.EncodeEthernet(b, f.dmac, f.smac, header.EtherTypeIPv4)
		header.PutIPv4Header(b[header.EthernetLen:], uint16(header.IPv4MinLen+hl), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, f.dst)
		t := b[header.EthernetLen+header.IPv4MinLen:]
		f.opts.TSVal = f.rand()
		thl, sum := header.PutTCPHeader(t, sport, 80, f.rand(), 0, header.TCPFlagSYN, 64240, &f.opts)
		header.FinishTCPChecksumIPv4(header.TCP(t), thl, sum, src, f.dst)
		f.tx = append(f.tx, p)
	}
	k := f.port.TxBurst(1, f.tx)
	for _, p := range f.tx[k:] {
		p.Free()
	}
	f.sent += uint64(k)
	clear(f.tx)
	f.tx = f.tx[:0]
}

// BenchmarkSYNFlood: spoofed SYNs from random sources flood a listener whose SYN queue is
// full (tcp_syncookies=1, so every SYN gets a cookie), while 16 legitimate clients keep
// connecting, exchanging a request and reply, and closing. One op is one legitimate
// connection. Reported: the flood SYNs the server answered per second, the legitimate
// clients' success rate and their handshake latency.
func BenchmarkSYNFlood(b *testing.B) {
	gw := netip.MustParseAddr("198.18.0.254")
	cliAddr := netip.MustParsePrefix("198.18.0.2/24")
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2, RingSize: 8192, Pool: dpdkshim.PoolConfig{Size: 8192}})
	srv, err := stack.New(stack.Config{
		Port: ps, Addr: srvPrefix, Gateway: gw, Shards: 2, Seed: 5,
		StaticNeighbours: map[netip.Addr][6]byte{gw: pc.MAC(), cliAddr.Addr(): pc.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cli, err := stack.New(stack.Config{
		Port: pc, Addr: cliAddr, Shards: 1, Seed: 6,
		StaticNeighbours: map[netip.Addr][6]byte{srvPrefix.Addr(): ps.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	l, err := srv.ListenTCP(netip.AddrPortFrom(srvPrefix.Addr(), 80), tcp.ListenOptions{Backlog: 128})
	if err != nil {
		b.Fatal(err)
	}
	// The server answers each legitimate connection.
	go func() {
		for {
			c, err := l.AcceptTCP()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 64)
				c.Read(buf)
				c.Write([]byte("ok"))
				c.Close()
			}()
		}
	}()
	stop := make(chan struct{})
	var floodWG sync.WaitGroup
	floodWG.Add(1)
	f := &flooder{port: pc, dst: srvPrefix.Addr().As4(), smac: pc.MAC(), dmac: ps.MAC(), x: 88172645463325252,
		opts: header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true}}
	go func() {
		defer floodWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.burst(32)
			runtime.Gosched() // the flood comes from outside: it must not starve the stack
		}
	}()
	// Let the flood fill the SYN queue first.
	for deadline := time.Now().Add(2 * time.Second); l.SynQueueLen() <= 128 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	before := srv.Counters()
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var lat hist.Histogram
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	target := netip.AddrPortFrom(srvPrefix.Addr(), 80)
	var issued atomic.Int64
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var my hist.Histogram
			buf := make([]byte, 16)
			for issued.Add(1) <= int64(b.N) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s := time.Now()
				c, err := cli.DialTCP(ctx, target)
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				my.Record(int64(time.Since(s)))
				c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
				n, _ := io.ReadFull(c, buf[:2])
				if n == 2 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
				c.Close()
			}
			mu.Lock()
			lat.Merge(&my)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	close(stop)
	floodWG.Wait()
	after := srv.Counters()
	cookies := after[stats.TcpExtSyncookiesSent] - before[stats.TcpExtSyncookiesSent]
	b.ReportMetric(float64(cookies)/el.Seconds(), "flood-SYNs/s")
	b.ReportMetric(100*float64(ok.Load())/float64(max(ok.Load()+failed.Load(), 1)), "legit-success-%")
	b.ReportMetric(float64(lat.Quantile(0.5))/1e3, "legit-p50-us")
	b.ReportMetric(float64(lat.Quantile(0.99))/1e3, "legit-p99-us")
	b.ReportMetric(float64(after[stats.TcpExtSyncookiesRecv]-before[stats.TcpExtSyncookiesRecv]), "cookie-conns")
}

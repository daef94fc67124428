package bench

import (
	"net/netip"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/rawgen"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var (
	srvPrefix  = netip.MustParsePrefix("198.18.0.1/24")
	genAddr    = netip.MustParseAddr("198.18.0.2")
	srvPrefix6 = netip.MustParsePrefix("fd00:be4c::1/64")
	genAddr6   = netip.MustParseAddr("fd00:be4c::2")
)

// manualServer is a one-shard server stack on a virtual clock driven by the benchmark's
// goroutine, and a raw generator on the other end of the pair.
func manualServer(b testing.TB) (*stack.Stack, *tcp.Listener, *rawgen.Gen) {
	return manualServerFamily(b, false)
}

// manualServerFamily is manualServer with the generator speaking IPv6 when v6 is set (the
// server has both addresses and one dual-stack listener).
func manualServerFamily(b testing.TB, v6 bool) (*stack.Stack, *tcp.Listener, *rawgen.Gen) {
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 1, Pool: dpdkshim.PoolConfig{Size: 4096}})
	vc := clock.NewVirtual(1)
	s, err := stack.New(stack.Config{
		Port: ps, Addr: srvPrefix, MoreAddrs: []netip.Prefix{srvPrefix6}, Shards: 1, Clock: vc, Manual: true, Seed: 1,
		StaticNeighbours: map[netip.Addr][6]byte{genAddr: pc.MAC(), genAddr6: pc.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.Listen(":80", 4096)
	if err != nil {
		b.Fatal(err)
	}
	g := rawgen.New(rawgen.Config{Port: pc, Src: genAddr.As4(), Dst: srvPrefix.Addr().As4(), DstPort: 80,
		V6: v6, Src6: genAddr6.As16(), Dst6: srvPrefix6.Addr().As16()})
	return s, l, g
}

// cycle runs one burst of handshakes end to end on a manual server: SYNs in, SYN-ACKs out,
// ACKs in, children accepted and closed, FINs out, resets in.
func cycle(s *stack.Stack, l *tcp.Listener, g *rawgen.Gen, burst int) int {
	n, _ := timedCycle(s, l, g, burst, false)
	return n
}

// timedCycle is cycle that can also measure the time spent in the server (its polls, and
// the application's accept and close), apart from the generator's.
func timedCycle(s *stack.Stack, l *tcp.Listener, g *rawgen.Gen, burst int, timed bool) (int, time.Duration) {
	var server time.Duration
	var t0 time.Time
	start := func() {
		if timed {
			t0 = time.Now()
		}
	}
	stop := func() {
		if timed {
			server += time.Since(t0)
		}
	}
	g.SendSYNs(burst)
	start()
	s.Poll()
	stop()
	g.Respond()
	start()
	s.Poll()
	n := 0
	for {
		h, err := l.TryAcceptHandle()
		if err != nil {
			break
		}
		h.Close()
		n++
	}
	s.Poll()
	stop()
	g.Respond()
	start()
	s.Poll()
	stop()
	return n, server
}

// BenchmarkServerHandshake is the server side alone on one shard: SYN, SYN-ACK, ACK,
// accept, close (FIN out, reset in). One op is one accepted connection; the generator's
// own work is included.
func BenchmarkServerHandshake(b *testing.B) { serverHandshake(b, false) }

// BenchmarkServerHandshakeIPv6 is BenchmarkServerHandshake over IPv6: the same server,
// listener and generator, the generator's flows IPv6 (bench/README.md has the ratio).
func BenchmarkServerHandshakeIPv6(b *testing.B) { serverHandshake(b, true) }

func serverHandshake(b *testing.B, v6 bool) {
	s, l, g := manualServerFamily(b, v6)
	defer s.Close()
	for i := 0; i < 100; i++ {
		cycle(s, l, g, 32)
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	var server time.Duration
	for done < b.N {
		n, d := timedCycle(s, l, g, 32, true)
		done += n
		server += d
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "handshakes/s")
	// The server shard's own time per handshake, the generator's excluded: what one shard
	// can accept per second when its clients are elsewhere.
	b.ReportMetric(float64(server.Nanoseconds())/float64(done), "server-ns/handshake")
	b.ReportMetric(float64(done)/server.Seconds(), "server-handshakes/s")
}

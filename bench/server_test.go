package bench

import (
	"net/netip"
	"testing"

	"github.com/shardstack/shardstack/internal/rawgen"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var (
	srvPrefix = netip.MustParsePrefix("198.18.0.1/24")
	genAddr   = netip.MustParseAddr("198.18.0.2")
)

// manualServer is a one-shard server stack on a virtual clock driven by the benchmark's
// goroutine, and a raw generator on the other end of the pair.
func manualServer(b testing.TB) (*stack.Stack, *tcp.Listener, *rawgen.Gen) {
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 1, Pool: dpdkshim.PoolConfig{Size: 4096}})
	vc := clock.NewVirtual(1)
	s, err := stack.New(stack.Config{
		Port: ps, Addr: srvPrefix, Shards: 1, Clock: vc, Manual: true, Seed: 1,
		StaticNeighbours: map[netip.Addr][6]byte{genAddr: pc.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.Listen(":80", 4096)
	if err != nil {
		b.Fatal(err)
	}
	g := rawgen.New(rawgen.Config{Port: pc, Src: genAddr.As4(), Dst: srvPrefix.Addr().As4(), DstPort: 80})
	return s, l, g
}

// cycle runs one burst of handshakes end to end on a manual server: SYNs in, SYN-ACKs out,
// ACKs in, children accepted and closed, FINs out, resets in.
func cycle(s *stack.Stack, l *tcp.Listener, g *rawgen.Gen, burst int) int {
	g.SendSYNs(burst)
	s.Poll()
	g.Respond()
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
	g.Respond()
	s.Poll()
	return n
}

// BenchmarkServerHandshake is the server side alone on one shard: SYN, SYN-ACK, ACK,
// accept, close (FIN out, reset in). One op is one accepted connection; the generator's
// own work is included.
func BenchmarkServerHandshake(b *testing.B) {
	s, l, g := manualServer(b)
	defer s.Close()
	for i := 0; i < 100; i++ {
		cycle(s, l, g, 32)
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for done < b.N {
		done += cycle(s, l, g, 32)
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "handshakes/s")
}

package bench

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/rawgen"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// synServer is a one-shard manual server whose SYNs the benchmark times alone.
func synServer(b testing.TB, st tcp.Settings, answer rawgen.SynAckAnswer) (*stack.Stack, *rawgen.Gen) {
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 1, Pool: dpdkshim.PoolConfig{Size: 4096}})
	s, err := stack.New(stack.Config{
		Port: ps, Addr: srvPrefix, Shards: 1, Clock: clock.NewVirtual(1), Manual: true, Seed: 1, TCP: st,
		StaticNeighbours: map[netip.Addr][6]byte{genAddr: pc.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Listen(":80", 4096); err != nil {
		b.Fatal(err)
	}
	g := rawgen.New(rawgen.Config{Port: pc, Src: genAddr.As4(), Dst: srvPrefix.Addr().As4(), DstPort: 80, SynAck: answer})
	return s, g
}

// BenchmarkSYN is the server's cost per SYN on its two paths: the table path (a request is
// made, kept in the SYN table, its timer armed, the SYN-ACK sent; the generator then resets
// it, untimed) and the cookie path (tcp_syncookies=2: the SYN-ACK carries a cookie and
// nothing is kept). Only the server's poll of the SYN burst is timed.
func BenchmarkSYN(b *testing.B) {
	for _, c := range []struct {
		name   string
		st     tcp.Settings
		answer rawgen.SynAckAnswer
	}{
		{"table", tcp.Settings{}, rawgen.AnswerRST},
		{"cookie", tcp.Settings{TCPSyncookies: 2}, rawgen.AnswerNone},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, g := synServer(b, c.st, c.answer)
			defer s.Close()
			const burst = 32
			for i := 0; i < 200; i++ {
				g.SendSYNs(burst)
				s.Poll()
				g.Respond()
				s.Poll()
			}
			b.ReportAllocs()
			b.ResetTimer()
			var server time.Duration
			done := 0
			for done < b.N {
				g.SendSYNs(burst)
				t0 := time.Now()
				s.Poll()
				server += time.Since(t0)
				g.Respond()
				s.Poll()
				done += burst
			}
			b.ReportMetric(float64(server.Nanoseconds())/float64(done), "server-ns/SYN")
		})
	}
}

// TestSYNPathsAllocateNothing: both SYN paths allocate nothing in steady state.
func TestSYNPathsAllocateNothing(t *testing.T) {
	for _, c := range []struct {
		st     tcp.Settings
		answer rawgen.SynAckAnswer
	}{
		{tcp.Settings{}, rawgen.AnswerRST},
		{tcp.Settings{TCPSyncookies: 2}, rawgen.AnswerNone},
	} {
		s, g := synServer(t, c.st, c.answer)
		round := func() {
			g.SendSYNs(32)
			s.Poll()
			g.Respond()
			s.Poll()
		}
		for i := 0; i < 200; i++ {
			round()
		}
		require.Zero(t, testing.AllocsPerRun(300, round), "%+v", c.st)
		s.Close()
	}
}

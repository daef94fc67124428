package bench

import (
	"net/netip"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// BenchmarkPairLifecycleManual is one whole connection (dial, handshake, accept, request,
// reply, close on both sides, the server's TIME-WAIT) through both stacks on one goroutine
// and a virtual clock, in bursts of 64 concurrent connections: the stacks' own cost per
// connection with no scheduler and no cross-core traffic. One op is one connection.
func BenchmarkPairLifecycleManual(b *testing.B) {
	n, err := simnet.New(simnet.Options{StaticARP: true, NoCapture: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	l, err := n.Server.Listen(":80", 4096)
	if err != nil {
		b.Fatal(err)
	}
	target := netip.AddrPortFrom(simnet.ServerAddr.Addr(), 80)
	req, rep := []byte("GET / HTTP/1.0\r\n\r\n"), []byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
	buf := make([]byte, 128)
	const burst = 64
	cs := make([]tcp.Handle, burst)
	round := func() int {
		for i := range cs {
			cs[i], _ = n.Client.TCP().DialAsyncHandle(target, tcp.DialOptions{})
		}
		n.Settle()
		for i := range cs {
			cs[i].TryWrite(req)
		}
		n.Settle()
		done := 0
		for {
			s, err := l.TryAcceptHandle()
			if err != nil {
				break
			}
			s.TryRead(buf)
			s.TryWrite(rep)
			s.Close()
			done++
		}
		n.Settle()
		for i := range cs {
			cs[i].TryRead(buf)
			cs[i].TryRead(buf)
			cs[i].Close()
		}
		n.Settle()
		return done
	}
	for i := 0; i < 50; i++ {
		round()
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	for done < b.N {
		done += round()
		if done%(burst*256) == 0 {
			b.StopTimer()
			n.RunFor(61 * time.Second) // let TIME-WAIT go, as the real run does after 60 s
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "conns/s")
}

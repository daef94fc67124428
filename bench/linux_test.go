package bench

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/demo"
	"github.com/shardstack/shardstack/internal/hist"
)

// loopbackDeadline bounds every connection of the Linux loopback runs, so that a lost
// connection fails the run instead of hanging it.
const loopbackDeadline = 10 * time.Second

// BenchmarkLinuxLoopback is shardstack's demo workload (goroutines API) through Linux's
// own TCP stack over loopback with Go's net, the baseline the demo is compared with: a
// server that accepts, reads one small request, writes a small reply and closes, and C
// client goroutines that dial, write, read to EOF and close, again and again. One op is
// one connection; allocs/op count the whole process (client and server goroutines).
//
// In the fin runs the server closes first and holds TIME-WAIT (the kernel's
// tcp_max_tw_buckets caps how many), and the client's port comes free after LAST-ACK; a
// SYN that reuses a port still in the server's TIME-WAIT is accepted by the kernel
// (RFC 6191). In the rst runs the client closes with SO_LINGER 0, so it sends RST rather
// than FIN and the server's FIN-WAIT-2 ends at once, with no TIME-WAIT anywhere.
func BenchmarkLinuxLoopback(b *testing.B) {
	for _, rst := range []bool{false, true} {
		for _, c := range []int{64, 256} {
			b.Run(fmt.Sprintf("%s/c=%d", loopbackCloseName(rst), c), func(b *testing.B) {
				benchLoopback(b, c, rst)
			})
		}
	}
}

func benchLoopback(b *testing.B, concurrency int, rst bool) {
	srv, err := startLoopbackServer()
	require.NoError(b, err)
	defer srv.close()
	ld := newLoopbackLoad(srv.addr(), min(concurrency, b.N), rst)
	require.NoError(b, ld.warm(64))
	b.ReportAllocs()
	b.ResetTimer()
	res := ld.run(b.N)
	b.StopTimer()
	if res.failures > 0 {
		b.Errorf("%d of %d connections failed, first: %v", res.failures, b.N, res.firstErr)
	}
	b.ReportMetric(float64(res.done)/b.Elapsed().Seconds(), "conns/s")
	b.ReportMetric(float64(res.lat.Quantile(0.50))/1e3, "p50-dial-us")
	b.ReportMetric(float64(res.lat.Quantile(0.99))/1e3, "p99-dial-us")
}

// Every connection of a short run completes with the full reply, closing either way.
func TestLinuxLoopback_Exchange(t *testing.T) {
	for _, rst := range []bool{false, true} {
		t.Run(loopbackCloseName(rst), func(t *testing.T) {
			srv, err := startLoopbackServer()
			require.NoError(t, err)
			defer srv.close()
			ld := newLoopbackLoad(srv.addr(), 8, rst)
			require.NoError(t, ld.warm(4))
			res := ld.run(200)
			require.NoError(t, res.firstErr)
			require.Zero(t, res.failures)
			require.EqualValues(t, 200, res.done)
			require.EqualValues(t, 200, res.lat.Count())
			require.Positive(t, res.lat.Quantile(0.5))
		})
	}
}

// The server writes no reply to an incomplete request: it closes, and the client reads
// EOF with nothing before it.
func TestLinuxLoopback_ShortRequestGetsNoReply(t *testing.T) {
	srv, err := startLoopbackServer()
	require.NoError(t, err)
	defer srv.close()
	c, err := net.Dial("tcp", srv.addr())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(loopbackDeadline)))
	_, err = c.Write(demo.Request[:5])
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.Empty(t, got)
}

func loopbackCloseName(rst bool) string {
	if rst {
		return "rst"
	}
	return "fin"
}

// loopbackServer accepts on 127.0.0.1 and answers each connection on its own goroutine,
// as a net.Listener program does.
type loopbackServer struct {
	l  net.Listener
	wg sync.WaitGroup
}

func startLoopbackServer() (*loopbackServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopbackServer{l: l}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *loopbackServer) addr() string { return s.l.Addr().String() }

func (s *loopbackServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go s.handle(c)
	}
}

// handle reads one request, writes the reply and closes (first: the server holds
// TIME-WAIT, as in the demo).
func (s *loopbackServer) handle(c net.Conn) {
	defer s.wg.Done()
	c.SetDeadline(time.Now().Add(loopbackDeadline))
	var buf [64]byte
	got := 0
	for got < len(demo.Request) {
		n, err := c.Read(buf[got:])
		got += n
		if err != nil {
			break
		}
	}
	if got == len(demo.Request) {
		c.Write(demo.Reply)
	}
	c.Close()
}

// close stops accepting and waits for every handler to finish.
func (s *loopbackServer) close() {
	s.l.Close()
	s.wg.Wait()
}

// loopbackLoad is C client goroutines' state, made before a run so the run itself
// allocates only what the connections do.
type loopbackLoad struct {
	addr    string
	rst     bool
	workers []loopbackWorker
}

type loopbackWorker struct {
	lat      hist.Histogram
	done     int64
	failures int64
	firstErr error
}

// loopbackResult is what a run measured.
type loopbackResult struct {
	done, failures int64
	firstErr       error
	lat            hist.Histogram
}

func newLoopbackLoad(addr string, concurrency int, rst bool) *loopbackLoad {
	return &loopbackLoad{addr: addr, rst: rst, workers: make([]loopbackWorker, max(concurrency, 1))}
}

// warm makes n connections one after another, so that the runtime's poller, the
// listener's goroutines and the kernel's tables are ready; each must succeed.
func (ld *loopbackLoad) warm(n int) error {
	var buf [128]byte
	for i := 0; i < n; i++ {
		if _, err := ld.once(buf[:]); err != nil {
			return err
		}
	}
	return nil
}

// run makes n connections from the load's client goroutines and merges their tallies.
func (ld *loopbackLoad) run(n int) *loopbackResult {
	var issued atomic.Int64
	var wg sync.WaitGroup
	for i := range ld.workers {
		w := &ld.workers[i]
		*w = loopbackWorker{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [128]byte
			for issued.Add(1) <= int64(n) {
				dial, err := ld.once(buf[:])
				if dial > 0 {
					w.lat.Record(int64(dial))
				}
				if err != nil {
					w.failures++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.done++
			}
		}()
	}
	wg.Wait()
	res := &loopbackResult{}
	for i := range ld.workers {
		w := &ld.workers[i]
		res.lat.Merge(&w.lat)
		res.done += w.done
		res.failures += w.failures
		if res.firstErr == nil {
			res.firstErr = w.firstErr
		}
	}
	return res
}

// once runs one connection: dial, write the request, read the reply to EOF, close. It
// returns how long the dial (the handshake) took, or 0 when the dial failed.
func (ld *loopbackLoad) once(buf []byte) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.Dial("tcp", ld.addr)
	if err != nil {
		return 0, err
	}
	dial := time.Since(t0)
	defer c.Close()
	if ld.rst {
		// SO_LINGER {on, 0}: Close sends RST instead of FIN.
		if err := c.(*net.TCPConn).SetLinger(0); err != nil {
			return dial, err
		}
	}
	if err := c.SetDeadline(t0.Add(loopbackDeadline)); err != nil {
		return dial, err
	}
	return dial, demo.Exchange(c, buf)
}

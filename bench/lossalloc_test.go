package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/flows"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// lossyZeroAllocs switches TestLossyTransferAllocatesNothing's assertion on. Issue 7
// point 11 asks that a lossy bulk transfer allocate nothing per segment in steady state.
// On the virtual clock today's data path already allocates nothing at 1% and 5% loss, so
// the assertion is on; a change that must land while the path allocates sets this to
// false, and the test then skips with the figure and the issue instead of failing.
const lossyZeroAllocs = true

// lossyStep is what one step of the virtual-clock transfer moves.
const lossyStep = 64 << 10

// lossyTransfer is one connection moving data from a client to a server stack over the
// in-memory pair on a virtual clock, one goroutine, no scheduler: a hook drops
// dropPerMille/1000 of the client's data segments (the impairment of BenchmarkLoss). step
// moves lossyStep bytes and allocates nothing of its own, so what the process allocates
// during a step is the stacks'.
type lossyTransfer struct {
	n      *simnet.Net
	c, s   tcp.Handle
	imp    *impairment
	wbuf   []byte
	rbuf   []byte
	moved  int64
	maxRun time.Duration
}

func newLossyTransfer(tb testing.TB, dropPerMille int) *lossyTransfer {
	tb.Helper()
	n, err := simnet.New(simnet.Options{StaticARP: true, NoCapture: true, Pool: dpdkshim.PoolConfig{Size: 4096}})
	require.NoError(tb, err)
	tb.Cleanup(n.Close)
	target := netip.AddrPortFrom(simnet.ServerAddr.Addr(), bulkPort)
	l, err := n.Server.ListenTCP(target, tcp.ListenOptions{Backlog: 16})
	require.NoError(tb, err)
	x := &lossyTransfer{n: n, wbuf: flows.Pattern(1, 0, lossyStep), rbuf: make([]byte, lossyStep), maxRun: 10 * time.Minute}
	x.c, err = n.Client.TCP().DialAsyncHandle(target, tcp.DialOptions{})
	require.NoError(tb, err)
	n.RunFor(10 * time.Millisecond)
	x.s, err = l.TryAcceptHandle()
	require.NoError(tb, err, "the connection was not accepted")
	x.imp = newImpairment(1, 9, dropPerMille, 0, 0)
	n.PortC.SetHook(x.imp.hook) // after the handshake: the hook only drops data anyway
	return x
}

// step moves lossyStep bytes from client to server, advancing virtual time as the stacks'
// timers (delayed ACKs, retransmission timeouts) need. It reports false if the bytes did
// not arrive within maxRun of virtual time.
func (x *lossyTransfer) step() bool {
	written, read := 0, 0
	end := x.n.Now() + int64(x.maxRun)
	for read < lossyStep {
		if written < lossyStep {
			k, _ := x.c.TryWrite(x.wbuf[written:])
			written += k
		}
		x.n.RunFor(time.Millisecond)
		for read < lossyStep {
			k, _ := x.s.TryRead(x.rbuf[read:])
			if k == 0 {
				break
			}
			read += k
		}
		if x.n.Now() > end {
			return false
		}
	}
	x.moved += lossyStep
	return true
}

func (x *lossyTransfer) counters() stats.Counters {
	c, s := x.n.Client.Counters(), x.n.Server.Counters()
	c.Merge(&s)
	return c
}

// lossyAllocs is what measureLossyAllocs found.
type lossyAllocs struct {
	perStep, perSegment float64
	segsPerStep         float64
	retransPerStep      float64
}

// measureLossyAllocs runs a lossy transfer on the virtual clock: warm steps first (pools,
// buffers, the congestion window past its start), then testing.AllocsPerRun over runs
// steps, and divides by the segments both stacks sent. Later changes call it to check
// the lossy data path's allocations; TestLossyTransferAllocatesNothing asserts zero.
func measureLossyAllocs(tb testing.TB, dropPerMille, warm, runs int) lossyAllocs {
	tb.Helper()
	x := newLossyTransfer(tb, dropPerMille)
	for i := 0; i < warm; i++ {
		require.True(tb, x.step(), "warm-up step %d did not finish", i)
	}
	c0 := x.counters()
	ok := true
	perStep := testing.AllocsPerRun(runs, func() { ok = x.step() && ok })
	require.True(tb, ok, "a step did not finish within %v of virtual time", x.maxRun)
	c1 := x.counters()
	d := c1.Diff(&c0)
	steps := float64(runs + 1) // AllocsPerRun runs once more to warm up
	r := lossyAllocs{perStep: perStep, segsPerStep: float64(d.Value(stats.TcpOutSegs)) / steps,
		retransPerStep: float64(d.Value(stats.TcpRetransSegs)) / steps}
	if r.segsPerStep > 0 {
		r.perSegment = perStep / r.segsPerStep
	}
	return r
}

// The lossy data path allocates nothing per segment in steady state (issue 7 point 11):
// 1% and 5% of data segments dropped, virtual clock, one connection.
func TestLossyTransferAllocatesNothing(t *testing.T) {
	for _, pm := range []int{10, 50} {
		t.Run(fmt.Sprintf("loss=%d%%", pm/10), func(t *testing.T) {
			r := measureLossyAllocs(t, pm, 32, 100)
			t.Logf("%.3f allocations per %d-byte step, %.1f segments and %.2f retransmissions per step: %.4f allocations per segment",
				r.perStep, lossyStep, r.segsPerStep, r.retransPerStep, r.perSegment)
			require.Positive(t, r.retransPerStep, "nothing was retransmitted: the hook dropped nothing")
			if !lossyZeroAllocs {
				t.Skipf("issue 7 point 11: the lossy data path allocates %.4f times per segment (%.3f per %d-byte step); "+
					"set lossyZeroAllocs in bench/lossalloc_test.go once it allocates nothing again", r.perSegment, r.perStep, lossyStep)
			}
			require.Zero(t, r.perStep, "%.4f allocations per segment", r.perSegment)
		})
	}
}

// BenchmarkLossyAllocs is the virtual-clock lossy transfer at 0%, 1% and 5% data loss:
// one connection, one goroutine, both stacks polled by hand, so ns/op is the stacks' own
// cost of moving one 64 KiB step (retransmissions included) and allocs/seg is what the
// data path allocates per segment sent. TestLossyTransferAllocatesNothing is its check.
//
//	go test -run '^$' -bench BenchmarkLossyAllocs -benchtime 400x ./bench/
func BenchmarkLossyAllocs(b *testing.B) {
	for _, pm := range []int{0, 10, 50} {
		b.Run(fmt.Sprintf("loss=%d%%", pm/10), func(b *testing.B) {
			x := newLossyTransfer(b, pm)
			for i := 0; i < 32; i++ {
				if !x.step() {
					b.Fatal("warm-up step did not finish")
				}
			}
			c0 := x.counters()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.SetBytes(lossyStep)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !x.step() {
					b.Fatalf("step %d did not finish within %v of virtual time", i, x.maxRun)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			c1 := x.counters()
			d := c1.Diff(&c0)
			if segs := d.Value(stats.TcpOutSegs); segs > 0 {
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(segs), "allocs/seg")
				b.ReportMetric(float64(d.Value(stats.TcpRetransSegs))/float64(b.N), "retrans/op")
			}
		})
	}
}

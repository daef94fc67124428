package bench

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/flows"
	"github.com/shardstack/shardstack/pkg/stats"
)

// bulkTotal is what one op of BenchmarkBulk moves, over all its flows.
const bulkTotal = 64 << 20

// BenchmarkBulk is bulk throughput between two shardstack stacks in one process over the
// in-memory pair (2 shards each, their own goroutines, the real clock, no impairment):
// 1 flow or 16 flows that together move 64 MiB from the client stack to the server stack
// per op (internal/flows in counting mode: the receiver counts the bytes and answers with
// the count, so no hash is in the cost). MB/s comes from b.SetBytes; allocs/op and B/op
// are the whole process's (both stacks, the application goroutines), and allocs/seg
// divides the allocations by the segments both stacks sent. bench/compare/gvisor's
// BenchmarkBulk is the same harness on gVisor's netstack.
//
//	go test -run '^$' -bench BenchmarkBulk -benchtime 10x -count 3 ./bench/
func BenchmarkBulk(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			w, err := flows.New(n, bulkTotal/int64(n), 3, false)
			if err != nil {
				b.Fatal(err)
			}
			p := newLivePair(b, 2)
			defer p.close()
			if res := runFlows(w, p, time.Minute); res.Err != nil {
				b.Fatalf("warm-up run: %v", res.Err)
			}
			c0 := p.counters()
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.SetBytes(w.Total())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res := runFlows(w, p, time.Minute); res.Err != nil {
					b.Fatalf("run %d: %d of %d flows complete after %v: %v", i+1, res.Completed, n, res.Elapsed, res.Err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			c1 := p.counters()
			d := c1.Diff(&c0)
			if segs := d.Value(stats.TcpOutSegs); segs > 0 {
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(segs), "allocs/seg")
				b.ReportMetric(float64(d.Value(stats.TcpRetransSegs))/float64(b.N), "retrans/op")
				b.ReportMetric(float64(d.Value(stats.TxDropped)+d.Value(stats.RxDropped))/float64(b.N), "linkdrops/op")
			}
		})
	}
}

package bench

import (
	"fmt"
	"testing"

	"github.com/shardstack/shardstack/internal/demo"
)

// BenchmarkPairHandshake is the demo's whole exchange through the in-memory pair - both
// stacks in this process, each connection opened, one request and reply, closed - for 1
// and 2 shards per stack, with both application styles. One op is one connection.
func BenchmarkPairHandshake(b *testing.B) {
	for _, api := range []string{demo.APIEvents, demo.APIGoroutines} {
		for _, shards := range []int{1, 2} {
			b.Run(fmt.Sprintf("api=%s/shards=%d", api, shards), func(b *testing.B) {
				b.ReportAllocs()
				res, err := demo.Run(demo.Config{Conns: max(b.N, 1000), Concurrency: 128, Shards: shards, API: api, Seed: 9})
				if err != nil {
					b.Fatal(err)
				}
				if res.Failures > 0 {
					b.Fatalf("%d failures, first: %s", res.Failures, res.FirstError)
				}
				b.ReportMetric(res.ConnsPerSec, "conns/s")
				b.ReportMetric(res.P50us, "p50-us")
				b.ReportMetric(res.P99us, "p99-us")
				b.ReportMetric(res.AllocsPerConn, "allocs/conn")
			})
		}
	}
}

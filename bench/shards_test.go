package bench

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/rawgen"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// BenchmarkServerShards is the server side alone with its shards running on their own
// cores (goroutines), fed by one raw generator goroutine per shard that aims every flow at
// its shard: SYN, SYN-ACK, final ACK, accept, close, FIN, reset. The generators run on the
// same 2 vCPUs as the shards, so the wall-clock rate counts their work too; busy-ns is the
// server shards' own time per handshake, from the time their polls spent working.
func BenchmarkServerShards(b *testing.B) {
	for _, shards := range []int{1, 2} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			benchServerShards(b, shards)
		})
	}
}

func benchServerShards(b *testing.B, shards int) {
	s, pc, l := newShardServer(b, shards, false)
	defer s.Close()
	hasher := s.Hasher()
	var accepted, sent atomic.Int64
	run := func(target int64) {
		var wg sync.WaitGroup
		start := accepted.Load()
		for q := 0; q < shards; q++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := rawgen.New(rawgen.Config{
					Port: pc, Queue: q, Src: genAddr.As4(), Dst: srvPrefix.Addr().As4(), DstPort: 80,
					Accept: func(k *hash.Key) bool { return hash.Shard(hasher.Sum(k), shards) == q },
				})
				for accepted.Load()-start < target {
					busy := false
					if sent.Load()-accepted.Load() < int64(256*shards) {
						g.SendSYNs(32)
						sent.Add(32)
						busy = true
					}
					if g.Respond() > 0 {
						busy = true
					}
					k := int64(0)
					for {
						h, err := l.TryAcceptHandle()
						if err != nil {
							break
						}
						h.Close()
						k++
					}
					if k > 0 {
						accepted.Add(k)
						busy = true
					}
					if !busy {
						runtime.Gosched() // leave the processor to the shards
					}
				}
			}()
		}
		wg.Wait()
	}
	run(20000) // warm up pools and tables
	before := s.ShardLoads()
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	run(int64(b.N))
	el := time.Since(t0)
	b.StopTimer()
	after := s.ShardLoads()
	var busy time.Duration
	for i := range after {
		busy += after[i].Busy - before[i].Busy
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "handshakes/s")
	// The shards' own cost: what one shard does per second of its busy time, and what the
	// stack would do with every shard busy all the time (the generators here take the rest).
	perShard := float64(b.N) / busy.Seconds()
	b.ReportMetric(perShard, "busy-handshakes/s/shard")
	b.ReportMetric(perShard*float64(shards), "capacity-handshakes/s")
}

// BenchmarkServerScaling runs N shards of a manual server on N goroutines, each goroutine
// driving its own shard and its own raw generator (like a client on the same core): the
// shards share only what the design shares - the listener's counters and accept ring - so
// the rate with 2 shards over the rate with 1 is the stack's scaling, without the generators
// of one shard stealing the other's processor. server-ns is the shards' own time per
// handshake (their polls, accept and close, timed).
func BenchmarkServerScaling(b *testing.B) {
	for _, shards := range []int{1, 2} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) {
			benchServerScaling(b, shards)
		})
	}
}

func benchServerScaling(b *testing.B, shards int) {
	s, pc, l := newShardServer(b, shards, true)
	defer s.Close()
	hasher := s.Hasher()
	gens := make([]*rawgen.Gen, shards)
	for q := range gens {
		gens[q] = rawgen.New(rawgen.Config{
			Port: pc, Queue: q, Src: genAddr.As4(), Dst: srvPrefix.Addr().As4(), DstPort: 80,
			Accept: func(k *hash.Key) bool { return hash.Shard(hasher.Sum(k), shards) == q },
		})
	}
	var accepted atomic.Int64
	serverNs := make([]int64, shards)
	run := func(target int64) {
		var wg sync.WaitGroup
		start := accepted.Load()
		for q := 0; q < shards; q++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g := gens[q]
				var server time.Duration
				for accepted.Load()-start < target {
					g.SendSYNs(32)
					t0 := time.Now()
					s.PollShard(q)
					server += time.Since(t0)
					g.Respond()
					t0 = time.Now()
					s.PollShard(q)
					k := int64(0)
					for {
						h, err := l.TryAcceptHandle()
						if err != nil {
							break
						}
						h.Close()
						k++
					}
					accepted.Add(k)
					s.PollShard(q)
					server += time.Since(t0)
					g.Respond()
					t0 = time.Now()
					s.PollShard(q)
					server += time.Since(t0)
				}
				serverNs[q] += server.Nanoseconds()
			}()
		}
		wg.Wait()
	}
	run(20000)
	clear(serverNs)
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	n0 := accepted.Load()
	run(int64(b.N))
	el := time.Since(t0)
	b.StopTimer()
	done := accepted.Load() - n0
	var ns int64
	for _, v := range serverNs {
		ns += v
	}
	b.ReportMetric(float64(done)/el.Seconds(), "handshakes/s")
	b.ReportMetric(float64(ns)/float64(done), "server-ns/handshake")
}

// newShardServer is a server stack of the given shards listening on port 80 with a
// backlog of 4096, wired to the port a raw generator drives.
func newShardServer(b *testing.B, shards int, manual bool) (*stack.Stack, *dpdkshim.MemPort, *tcp.Listener) {
	b.Helper()
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: shards, RingSize: 8192, Pool: dpdkshim.PoolConfig{Size: 8192}})
	s, err := stack.New(stack.Config{
		Port: ps, Addr: srvPrefix, Shards: shards, Seed: 3, Manual: manual,
		StaticNeighbours: map[netip.Addr][6]byte{genAddr: pc.MAC()},
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := s.Listen(":80", 4096)
	if err != nil {
		s.Close()
		b.Fatal(err)
	}
	return s, pc, l
}

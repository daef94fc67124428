package queue

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

const benchBatch = 32

func BenchmarkMPMCPushPop(b *testing.B) {
	q := NewMPMC[*int](1024)
	x := new(int)
	b.ReportAllocs()
	for b.Loop() {
		q.Push(x)
		q.Pop()
	}
}

func BenchmarkMPMCBatch32(b *testing.B) {
	q := NewMPMC[*int](1024)
	in := make([]*int, benchBatch)
	out := make([]*int, benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		q.PushBatch(in)
		q.PopBatch(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/item")
}

// BenchmarkMPMCContended has every parallel goroutine push and pop the same
// ring, the worst case for the two counters.
func BenchmarkMPMCContended(b *testing.B) {
	q := NewMPMC[*int](1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x := new(int)
		for pb.Next() {
			for !q.Push(x) {
				runtime.Gosched()
			}
			for {
				if _, ok := q.Pop(); ok {
					break
				}
				runtime.Gosched()
			}
		}
	})
}

func BenchmarkSPSCPushPop(b *testing.B) {
	q := NewSPSC[*int](1024)
	x := new(int)
	b.ReportAllocs()
	for b.Loop() {
		q.Push(x)
		q.Pop()
	}
}

func BenchmarkSPSCBatch32(b *testing.B) {
	q := NewSPSC[*int](1024)
	in := make([]*int, benchBatch)
	out := make([]*int, benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		q.PushBatch(in)
		q.PopBatch(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/item")
}

// BenchmarkSPSCPingPong bounces one value between two goroutines over two
// rings; one op is a round trip.
func BenchmarkSPSCPingPong(b *testing.B) {
	ping, pong := NewSPSC[int](64), NewSPSC[int](64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			v, ok := ping.Pop()
			if !ok {
				runtime.Gosched()
				continue
			}
			for !pong.Push(v) {
				runtime.Gosched()
			}
			if v < 0 {
				return
			}
		}
	}()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ping.Push(i)
		for {
			if _, ok := pong.Pop(); ok {
				break
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	ping.Push(-1)
	for pong.Empty() {
		runtime.Gosched()
	}
	wg.Wait()
}

// BenchmarkSPSCStream streams values from a producer goroutine to the
// benchmark goroutine; one op is one value.
func BenchmarkSPSCStream(b *testing.B) {
	q := NewSPSC[int](1024)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			for !q.Push(i) && !stop.Load() {
				runtime.Gosched()
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		for {
			if _, ok := q.Pop(); ok {
				break
			}
			runtime.Gosched()
		}
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
}

// BenchmarkMPSCListPushTakeAll pushes a batch of 32 elements, takes them all
// and walks them; ns/op is per batch.
func BenchmarkMPSCListPushTakeAll(b *testing.B) {
	var l MPSCList[node, *node]
	nodes := make([]node, benchBatch)
	b.ReportAllocs()
	for b.Loop() {
		for i := range nodes {
			l.Push(&nodes[i])
		}
		for e := l.TakeAll(); e != nil; e = Next(e) {
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/item")
}

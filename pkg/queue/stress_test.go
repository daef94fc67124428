package queue

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// stressItems is how many items each producer pushes in a stress test.
func stressItems() int {
	if testing.Short() {
		return 2_000
	}
	return 20_000
}

// item packs a producer id and that producer's sequence number.
func item(producer, seq int) uint64 { return uint64(producer)<<32 | uint64(seq) }

func unpack(v uint64) (producer, seq int) { return int(v >> 32), int(uint32(v)) }

// checkExactlyOnce asserts that the per-consumer logs hold every item of
// every producer exactly once and, within one consumer, in each producer's
// push order (a FIFO popped by one goroutine cannot reorder one producer).
func checkExactlyOnce(t *testing.T, logs [][]uint64, producers, perProducer int) {
	t.Helper()
	seen := make([][]int, producers)
	for p := range seen {
		seen[p] = make([]int, perProducer)
	}
	for c, log := range logs {
		last := make([]int, producers)
		for p := range last {
			last[p] = -1
		}
		for _, v := range log {
			p, s := unpack(v)
			require.Less(t, p, producers, "consumer %d got a value no producer pushed", c)
			require.Less(t, s, perProducer, "consumer %d got a value no producer pushed", c)
			require.Greater(t, s, last[p], "consumer %d saw producer %d out of order", c, p)
			last[p] = s
			seen[p][s]++
		}
	}
	for p := range seen {
		for s, n := range seen[p] {
			require.Equal(t, 1, n, "producer %d item %d popped %d times", p, s, n)
		}
	}
}

// runMPMCStress runs producers and consumers on one ring. batch selects the
// batch API with random batch sizes.
func runMPMCStress(t *testing.T, producers, consumers int, batch bool) {
	per := stressItems()
	total := int64(producers * per)
	q := NewMPMC[uint64](64)
	var popped atomic.Int64
	var producersDone atomic.Bool
	logs := make([][]uint64, consumers)
	var pwg, cwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			buf := make([]uint64, 0, 16)
			for s := 0; s < per; {
				if !batch {
					if q.Push(item(p, s)) {
						s++
					} else {
						runtime.Gosched()
					}
					continue
				}
				buf = buf[:0]
				for n := 1 + rng.IntN(16); n > 0 && s+len(buf) < per; n-- {
					buf = append(buf, item(p, s+len(buf)))
				}
				for len(buf) > 0 {
					n := q.PushBatch(buf)
					s += n
					buf = buf[n:]
					if n == 0 {
						runtime.Gosched()
					}
				}
			}
		}()
	}
	// Consumers stop when the producers are finished and the ring is
	// drained, so a lost item fails the count below instead of hanging.
	for c := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			out := make([]uint64, 16)
			for {
				finished := producersDone.Load() // read before popping
				n := 0
				if batch {
					n = q.PopBatch(out[:1+rng.IntN(16)])
					logs[c] = append(logs[c], out[:n]...)
				} else if v, ok := q.Pop(); ok {
					logs[c] = append(logs[c], v)
					n = 1
				}
				popped.Add(int64(n))
				if n == 0 {
					if finished {
						return
					}
					runtime.Gosched()
				}
			}
		}()
	}
	pwg.Wait()
	producersDone.Store(true)
	cwg.Wait()
	require.Equal(t, total, popped.Load())
	require.Equal(t, 0, q.Len())
	_, ok := q.Pop()
	require.False(t, ok)
	checkExactlyOnce(t, logs, producers, per)
}

func TestMPMC_Stress4x4(t *testing.T)      { runMPMCStress(t, 4, 4, false) }
func TestMPMC_Stress4x4Batch(t *testing.T) { runMPMCStress(t, 4, 4, true) }

func runSPSCStress(t *testing.T, batch bool) {
	per := stressItems() * 4
	q := NewSPSC[uint64](32)
	log := make([]uint64, 0, per)
	var producerDone atomic.Bool
	go func() {
		defer producerDone.Store(true)
		rng := rand.New(rand.NewPCG(3, 3))
		buf := make([]uint64, 0, 16)
		for s := 0; s < per; {
			if !batch {
				if q.Push(item(0, s)) {
					s++
				} else {
					runtime.Gosched()
				}
				continue
			}
			buf = buf[:0]
			for n := 1 + rng.IntN(16); n > 0 && s+len(buf) < per; n-- {
				buf = append(buf, item(0, s+len(buf)))
			}
			for len(buf) > 0 {
				n := q.PushBatch(buf)
				s += n
				buf = buf[n:]
				if n == 0 {
					runtime.Gosched()
				}
			}
		}
	}()
	rng := rand.New(rand.NewPCG(4, 4))
	out := make([]uint64, 16)
	// Stop when the producer is finished and the ring drained, so a lost
	// item fails the check below instead of hanging.
	for {
		finished := producerDone.Load() // read before checking Empty
		if q.Empty() {
			if finished {
				break
			}
			runtime.Gosched()
			continue
		}
		if !batch {
			v, ok := q.Pop()
			require.True(t, ok, "Pop failed after Empty reported false")
			log = append(log, v)
			continue
		}
		n := q.PopBatch(out[:1+rng.IntN(16)])
		require.NotZero(t, n, "PopBatch found nothing after Empty reported false")
		log = append(log, out[:n]...)
	}
	require.True(t, q.Empty())
	checkExactlyOnce(t, [][]uint64{log}, 1, per)
}

func TestSPSC_Stress1x1(t *testing.T)      { runSPSCStress(t, false) }
func TestSPSC_Stress1x1Batch(t *testing.T) { runSPSCStress(t, true) }

func TestMPSCList_Stress8Producers(t *testing.T) {
	const producers = 8
	per := stressItems()
	var l MPSCList[node, *node]
	// Every node is pushed once; nodes are never reused here, so the
	// one-list-at-a-time rule holds trivially.
	nodes := make([][]node, producers)
	for p := range nodes {
		nodes[p] = make([]node, per)
		for s := range nodes[p] {
			nodes[p][s] = node{producer: p, seq: s}
		}
	}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range nodes[p] {
				l.Push(&nodes[p][s])
				if s%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	var producersDone atomic.Bool
	go func() { wg.Wait(); producersDone.Store(true) }()
	var log []uint64
	for {
		finished := producersDone.Load() // read before taking
		e := l.TakeAll()
		if e == nil {
			if finished {
				break
			}
			runtime.Gosched()
			continue
		}
		for ; e != nil; e = Next(e) {
			log = append(log, item(e.producer, e.seq))
		}
	}
	require.True(t, l.Empty())
	checkExactlyOnce(t, [][]uint64{log}, producers, per)
}

// Elements are re-pushed as soon as the consumer releases them, through an
// owner-kept queued flag, which is the pattern the shard uses.
func TestMPSCList_StressRepushWithQueuedFlag(t *testing.T) {
	const producers = 8
	rounds := stressItems() / 4
	type owned struct {
		node
		queued atomic.Bool
	}
	elems := make([]owned, producers)
	var l MPSCList[node, *node]
	var pushes atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		elems[p].producer = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < rounds; {
				if elems[p].queued.CompareAndSwap(false, true) {
					elems[p].seq = r
					l.Push(&elems[p].node)
					pushes.Add(1)
					r++
				} else {
					runtime.Gosched()
				}
			}
		}()
	}
	next := make([]int, producers)
	taken := int64(0)
	for taken < int64(producers*rounds) {
		e := l.TakeAll()
		if e == nil {
			runtime.Gosched()
			continue
		}
		for e != nil {
			n := Next(e) // read before the element can be pushed again
			require.Equal(t, next[e.producer], e.seq, "producer %d", e.producer)
			next[e.producer]++
			taken++
			elems[e.producer].queued.Store(false)
			e = n
		}
	}
	wg.Wait()
	require.Equal(t, pushes.Load(), taken)
	require.True(t, l.Empty())
}

package tcp

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func newRing(size int) *byteRing {
	r := &byteRing{}
	r.reset(newChunkPool(64), size, true)
	return r
}

func chunksHeld(r *byteRing) int {
	n := 0
	for c := r.first.Load(); c != nil; c = c.next.Load() {
		n++
	}
	return n
}

// Bytes go through across chunk boundaries in any cut; chunks come only as data needs
// them and go back once read (all but the current one, which trim returns when the ring is
// empty); the limit bounds what fits.
func TestByteRing_ProduceConsumeChunks(t *testing.T) {
	r := newRing(3 * chunkData)
	require.False(t, r.holds(), "an empty ring holds no memory")
	data := make([]byte, 3*chunkData+100)
	for i := range data {
		data[i] = byte(i * 31)
	}
	n := r.produce(data)
	require.Equal(t, 3*chunkData, n, "the limit")
	require.Equal(t, 0, r.space())
	require.Equal(t, 3, chunksHeld(r))
	out := make([]byte, 0, len(data))
	buf := make([]byte, 1000)
	for r.used() > 0 {
		k := r.consume(buf)
		out = append(out, buf[:k]...)
	}
	require.Equal(t, data[:n], out)
	require.Equal(t, 1, chunksHeld(r), "the producer's chunk stays until trimmed")
	r.trim()
	require.False(t, r.holds())
	// After a trim the ring starts again where it was.
	require.Equal(t, 100, r.produce(data[n:]))
	k := r.consume(buf)
	require.Equal(t, data[n:], buf[:k])
}

// writeAt ahead of head holds data without publishing it; advance publishes it in order.
func TestByteRing_WriteAheadThenAdvance(t *testing.T) {
	r := newRing(4 * chunkData)
	seg := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1460) }
	// Segments 1..5 arrive before segment 0.
	for i := 1; i < 6; i++ {
		r.writeAt(uint64(i*1460), seg(i))
	}
	require.Zero(t, r.used(), "nothing in order yet")
	r.writeAt(0, seg(0))
	r.advance(6 * 1460)
	got := make([]byte, 6*1460)
	require.Equal(t, len(got), r.consume(got))
	for i := 0; i < 6; i++ {
		require.Equal(t, seg(i), got[i*1460:(i+1)*1460], "segment %d", i)
	}
}

// peek reads any part of [tail, head), in any order, and release frees what is behind.
func TestByteRing_PeekAndRelease(t *testing.T) {
	r := newRing(8 * chunkData)
	data := make([]byte, 5*chunkData)
	for i := range data {
		data[i] = byte(i ^ i>>8)
	}
	require.Equal(t, len(data), r.produce(data))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		pos := rng.IntN(len(data) - 1)
		n := 1 + rng.IntN(min(3000, len(data)-pos))
		dst := make([]byte, n)
		r.peek(uint64(pos), dst)
		require.Equal(t, data[pos:pos+n], dst)
	}
	r.release(2*chunkData + 5)
	require.Equal(t, 3, chunksHeld(r), "the two whole chunks behind tail went back")
	dst := make([]byte, 10)
	r.peek(uint64(2*chunkData+5), dst)
	require.Equal(t, data[2*chunkData+5:2*chunkData+15], dst)
}

// trim does nothing while the application side holds the ring, or while data waits.
func TestByteRing_TrimOnlyWhenIdle(t *testing.T) {
	r := newRing(chunkData)
	r.produce([]byte("abc"))
	r.trim()
	require.True(t, r.holds(), "data waits")
	buf := make([]byte, 3)
	r.consume(buf)
	r.mu.Lock()
	r.trim()
	require.True(t, r.holds(), "the application is in a call")
	r.mu.Unlock()
	r.trim()
	require.False(t, r.holds())
}

// A producer and a consumer on two goroutines, as the shard and an application are, with
// trims in between: every byte arrives once and in order, under the race detector.
func TestByteRing_ConcurrentStream(t *testing.T) {
	for _, tc := range []struct {
		name         string
		shardProduce bool // rcv: the shard produces (lock-free) and trims; else snd
	}{{"receive buffer", true}, {"send buffer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := &byteRing{}
			r.reset(newChunkPool(64), 2*chunkData, tc.shardProduce)
			const total = 3 << 20
			var wg sync.WaitGroup
			wg.Add(2)
			produce := func() {
				defer wg.Done()
				var b [1777]byte
				for sent := 0; sent < total; {
					n := min(len(b), total-sent)
					for i := 0; i < n; i++ {
						b[i] = byte((sent + i) % 251)
					}
					var k int
					if tc.shardProduce {
						k = r.produce(b[:n])
						if r.used() == 0 {
							r.trim()
						}
					} else {
						r.mu.Lock()
						k = r.produce(b[:n])
						r.mu.Unlock()
					}
					sent += k
				}
			}
			var bad, got int
			consume := func() {
				defer wg.Done()
				var b [2500]byte
				for got < total {
					var k int
					if tc.shardProduce {
						r.mu.Lock()
						k = r.consume(b[:])
						r.mu.Unlock()
					} else {
						t0 := r.tail.Load()
						k = min(len(b), int(r.head.Load()-t0))
						r.peek(t0, b[:k])
						r.release(k)
						if r.used() == 0 {
							r.trim()
						}
					}
					for i := 0; i < k; i++ {
						if b[i] != byte((got+i)%251) {
							bad++
						}
					}
					got += k
				}
			}
			go produce()
			go consume()
			wg.Wait()
			require.Equal(t, total, got)
			require.Zero(t, bad, "bytes out of order or corrupted")
		})
	}
}

// Once the pool is warm, moving data through a ring allocates nothing.
func TestByteRing_NoAllocs(t *testing.T) {
	r := newRing(4 * chunkData)
	data := make([]byte, 3000)
	buf := make([]byte, 3000)
	round := func() {
		r.produce(data)
		r.consume(buf)
		r.trim()
	}
	round()
	require.Zero(t, testing.AllocsPerRun(1000, round))
}

// The chunk pool's decay gives back what lay unused in the shared ring through a whole
// interval, down to the reserve, and keeps what a steady flow cycles through.
func TestChunkPool_DecayDropsOnlyIdleChunks(t *testing.T) {
	p := newChunkPool(1 << 10)
	for i := 0; i < chunkReserve+100; i++ {
		p.put(new(chunk), false) // the application's side: the shared ring
	}
	dropped, more := p.decay() // the first look only notes the length
	require.Zero(t, dropped)
	require.True(t, more)

	// 30 taken and given back in the interval: the other 134 lay there throughout, and all
	// but the reserve go (the ones just used are among what stays: the ring is FIFO).
	var taken []*chunk
	for i := 0; i < 30; i++ {
		taken = append(taken, p.get(0, false))
	}
	for _, c := range taken {
		p.put(c, false)
	}
	dropped, more = p.decay()
	require.Equal(t, 100, dropped)
	require.Equal(t, chunkReserve, p.shared.Len())
	require.False(t, more)
	dropped, _ = p.decay()
	require.Zero(t, dropped, "the reserve stays")

	// A pool in steady use keeps what it cycles through. 200 come back: the 64 that lay
	// there since the last look go (the 200 are reserve enough), then 200 taken and
	// returned in each interval keep their 200.
	for i := 0; i < 200; i++ {
		p.put(new(chunk), false)
	}
	dropped, _ = p.decay()
	require.Equal(t, chunkReserve, dropped)
	for round := 0; round < 3; round++ {
		for i := 0; i < 200; i++ {
			p.put(p.get(0, false), false)
		}
		dropped, more = p.decay()
		require.Zero(t, dropped)
		require.True(t, more)
		require.Equal(t, 200, p.shared.Len())
	}
}

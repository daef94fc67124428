package bench

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/queue"
)

// microSizes are the SYN-table sizes benchmarked: a quiet listener, a busy one, and one under
// a SYN flood with a million half-open requests.
var microSizes = []struct {
	name string
	n    int
}{
	{"1k", 1 << 10},
	{"64k", 1 << 16},
	{"1M", 1 << 20},
}

// Sinks keep the compiler from discarding benchmarked results.
var (
	microSinkU64 uint64
	microSinkInt int
)

// BenchmarkSYNTable measures flowtable.Table as a shard's SYN table at several live sizes.
// One op is one insert, lookup or delete; Cycle is one insert + lookup + delete.
func BenchmarkSYNTable(b *testing.B) {
	for _, size := range microSizes {
		b.Run(size.name, func(b *testing.B) {
			if testing.Short() && size.n > 1<<16 {
				b.Skip("large table skipped in -short")
			}
			f := synTableFor(size.n) // built once, outside every timer
			b.Run("Insert", func(b *testing.B) { benchSYNBatch(b, f, f.insertBatch, f.retireAfterInsert) })
			b.Run("Lookup", func(b *testing.B) { benchSYNLookup(b, f) })
			b.Run("LookupMiss", func(b *testing.B) { benchSYNLookupMiss(b, f) })
			b.Run("Delete", func(b *testing.B) { benchSYNBatch(b, f, f.deleteBatch, f.refillAfterDelete) })
			b.Run("Cycle", func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if !f.cycle() {
						b.Fatal("lookup missed a request just inserted")
					}
				}
				b.StopTimer()
				if f.table.Len() != f.n {
					b.Fatalf("table holds %d, want %d", f.table.Len(), f.n)
				}
			})
		})
	}
}

// benchSYNBatch times op in batches and, with the timer stopped, brings the table back to its
// size after each batch (rotating its contents), however large b.N gets.
func benchSYNBatch(b *testing.B, f *synTableFixture, op, undo func(k int)) {
	batch := microBatch(f.n)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(batch, b.N-done)
		op(k)
		b.StopTimer()
		undo(k)
		b.StartTimer()
		done += k
	}
	b.StopTimer()
	if f.table.Len() != f.n {
		b.Fatalf("table holds %d, want %d", f.table.Len(), f.n)
	}
}

func benchSYNLookup(b *testing.B, f *synTableFixture) {
	j, s := 0, f.start
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r, ok := f.table.Get(&f.keys[s], f.hashes[s])
		if !ok {
			b.Fatal("live key not found")
		}
		microSinkU64 += uint64(r.isn)
		// Walk the live window in key order; the keys' slots are scattered by the hash.
		j++
		s++
		if s == len(f.keys) {
			s = 0
		}
		if j == f.n {
			j, s = 0, f.start
		}
	}
}

func benchSYNLookupMiss(b *testing.B, f *synTableFixture) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := i & (microMisses - 1)
		if f.table.Contains(&f.misses[m], f.missH[m]) {
			b.Fatal("absent key found")
		}
	}
}

// BenchmarkAcceptRing measures queue.MPMC as a listener's accept ring. One op is one
// accepted connection pushed by a shard and popped by Accept.
func BenchmarkAcceptRing(b *testing.B) {
	b.Run("PushPop", func(b *testing.B) {
		r := queue.NewMPMC[*acceptedConn](4096)
		c := &acceptedConn{shard: 1}
		b.ReportAllocs()
		for b.Loop() {
			if !r.Push(c) {
				b.Fatal("push to an empty ring failed")
			}
			if v, ok := r.Pop(); !ok || v != c {
				b.Fatal("pop did not return the pushed value")
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		// Every goroutine is both a shard pushing and an Accept popping.
		r := queue.NewMPMC[*acceptedConn](4096)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			c := &acceptedConn{}
			for pb.Next() {
				for !r.Push(c) {
					runtime.Gosched()
				}
				// Our own push guarantees a value to pop; a false Pop only means a producer
				// has claimed the head cell and not yet published it.
				for {
					if _, ok := r.Pop(); ok {
						break
					}
					runtime.Gosched()
				}
			}
		})
		if r.Len() != 0 {
			b.Fatalf("ring holds %d after balanced push/pop", r.Len())
		}
	})
	b.Run("2Producers1Consumer", func(b *testing.B) {
		// Two shards feed one Accept loop; ns/op is per connection.
		r := queue.NewMPMC[*acceptedConn](1024)
		conns := [2]acceptedConn{{shard: 0}, {shard: 1}}
		var perShard [2]int
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		for p := range conns {
			count := b.N / 2
			if p == 0 {
				count += b.N % 2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &conns[p]
				for range count {
					for !r.Push(c) {
						runtime.Gosched()
					}
				}
			}()
		}
		for got := 0; got < b.N; {
			c, ok := r.Pop()
			if !ok {
				runtime.Gosched()
				continue
			}
			perShard[c.shard]++
			got++
		}
		wg.Wait()
		b.StopTimer()
		if perShard[0] != b.N/2+b.N%2 || perShard[1] != b.N/2 {
			b.Fatalf("consumer got %v of %d", perShard, b.N)
		}
	})
}

// BenchmarkParseChecksum measures the receive path's header work for one frame: Ethernet,
// IPv4 and TCP parsed, TCP options parsed, TCP checksum verified. MB/s counts frame bytes.
func BenchmarkParseChecksum(b *testing.B) {
	frames := []struct {
		name  string
		frame []byte
		flags uint8
	}{
		{"SYN", microSYN(), header.TCPFlagSYN},
		{"ACK100", microACK100(), header.TCPFlagACK | header.TCPFlagPSH},
	}
	for _, fr := range frames {
		b.Run(fr.name, func(b *testing.B) {
			var o header.TCPOptions
			b.ReportAllocs()
			b.SetBytes(int64(len(fr.frame)))
			for b.Loop() {
				v := parseAndCheck(fr.frame, &o)
				if !v.ok || v.flags != fr.flags {
					b.Fatal("frame rejected")
				}
			}
		})
	}
}

// BenchmarkFlowHash measures what every received packet pays to find its shard: the seeded
// hash of a v4 key and the shard choice.
func BenchmarkFlowHash(b *testing.B) {
	var keys [1024]hash.Key
	for i := range keys {
		keys[i] = microKey(i, false)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h := microHasher.Sum(&keys[i&(len(keys)-1)])
		microSinkInt += hash.Shard(h, 8)
		i++
	}
}

// TestMicroFrames_Parse checks the benchmark's frames: both pass every check with the
// expected contents, and a flipped bit makes the checksum fail, so the benchmark measures a
// verdict that can come out either way.
func TestMicroFrames_Parse(t *testing.T) {
	var o header.TCPOptions

	syn := microSYN()
	v := parseAndCheck(syn, &o)
	require.Equal(t, parseVerdict{ok: true, flags: header.TCPFlagSYN, payload: 0}, v)
	require.Equal(t, uint16(1460), o.MSS)
	require.Equal(t, int8(7), o.WScale)
	require.True(t, o.SACKPermitted)
	require.True(t, o.TS)
	require.Equal(t, uint32(681852075), o.TSVal)

	ack := microACK100()
	v = parseAndCheck(ack, &o)
	require.Equal(t, parseVerdict{ok: true, flags: header.TCPFlagACK | header.TCPFlagPSH, payload: 100}, v)
	require.Equal(t, uint16(0), o.MSS)
	require.Equal(t, int8(-1), o.WScale)
	require.True(t, o.TS)
	require.Equal(t, uint32(3981935946), o.TSEcr)

	for _, frame := range [][]byte{syn, ack} {
		bad := append([]byte(nil), frame...)
		bad[len(bad)-1] ^= 0x01 // last byte: payload or option, covered only by the TCP checksum
		require.False(t, parseAndCheck(bad, &o).ok)
		require.False(t, parseAndCheck(frame[:header.EthernetLen+header.IPv4MinLen+10], &o).ok)
	}
}

// TestMicroSYNTable_Fixture checks that the fixture's operations keep the invariant every
// benchmark relies on: exactly the window's n keys are live, the keys after it and the miss
// keys are absent, and the table never grows.
func TestMicroSYNTable_Fixture(t *testing.T) {
	f := newSYNTableFixture(1000)
	check := func() {
		t.Helper()
		require.Equal(t, f.n, f.table.Len())
		for j := range len(f.keys) {
			s := f.slot(j)
			require.Equal(t, j < f.n, f.table.Contains(&f.keys[s], f.hashes[s]), "window offset %d", j)
		}
		for m := range f.misses {
			require.False(t, f.table.Contains(&f.misses[m], f.missH[m]))
		}
	}
	check()
	k := microBatch(f.n)
	for range 20 { // 20 batches wrap the ring of 2n keys
		start := f.start
		f.insertBatch(k)
		require.Equal(t, f.n+k, f.table.Len())
		f.retireAfterInsert(k)
		require.Equal(t, (start+k)%len(f.keys), f.start)
		check()
		f.deleteBatch(k)
		require.Equal(t, f.n-k, f.table.Len())
		f.refillAfterDelete(k)
		check()
	}
	for range 3*f.n + 17 { // wrap the ring more than once
		require.True(t, f.cycle())
	}
	check()

	// Keys are distinct across the whole ring and from the misses.
	seen := map[hash.Key]bool{}
	for _, key := range append(append([]hash.Key{}, f.keys...), f.misses...) {
		require.False(t, seen[key], "duplicate key %v", key)
		seen[key] = true
	}
}

// TestMicro_NoAllocs: everything the micro-benchmarks measure allocates nothing in steady
// state.
func TestMicro_NoAllocs(t *testing.T) {
	f := newSYNTableFixture(1 << 10)
	ring := queue.NewMPMC[*acceptedConn](64)
	conn := &acceptedConn{}
	syn, ack := microSYN(), microACK100()
	var o header.TCPOptions
	key := microKey(7, false)
	cases := []struct {
		name string
		fn   func()
	}{
		{"syn table cycle", func() {
			if !f.cycle() {
				panic("lookup missed")
			}
		}},
		{"syn table batch", func() {
			f.insertBatch(16)
			f.retireAfterInsert(16)
			f.deleteBatch(16)
			f.refillAfterDelete(16)
		}},
		{"syn table lookups", func() {
			s := f.slot(3)
			if _, ok := f.table.Get(&f.keys[s], f.hashes[s]); !ok {
				panic("live key not found")
			}
			if f.table.Contains(&f.misses[5], f.missH[5]) {
				panic("absent key found")
			}
		}},
		{"accept ring", func() {
			ring.Push(conn)
			ring.Pop()
		}},
		{"parse and checksum", func() {
			if !parseAndCheck(syn, &o).ok || !parseAndCheck(ack, &o).ok {
				panic("frame rejected")
			}
		}},
		{"flow hash", func() { microSinkInt += hash.Shard(microHasher.Sum(&key), 8) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Zero(t, testing.AllocsPerRun(1000, tc.fn))
		})
	}
}

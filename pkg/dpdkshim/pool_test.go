package dpdkshim_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

func TestPool_Defaults(t *testing.T) {
	cases := []struct {
		name         string
		cfg          dpdkshim.PoolConfig
		total        int
		bufSize      int
		headroom     int
		maxAfterGrow int
	}{
		{"zero config", dpdkshim.PoolConfig{}, 4096, dpdkshim.DefaultBufSize, dpdkshim.DefaultHeadroom, 4 * 4096},
		{"sized", dpdkshim.PoolConfig{Size: 8, BufSize: 256, Headroom: 32}, 8, 256, 32, 32},
		{"headroom too large is halved", dpdkshim.PoolConfig{Size: 2, BufSize: 100, Headroom: 100}, 2, 100, 50, 8},
		{"max below size is raised to size", dpdkshim.PoolConfig{Size: 5, Max: 3}, 5, dpdkshim.DefaultBufSize, dpdkshim.DefaultHeadroom, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := dpdkshim.NewPool(tc.cfg)
			require.Equal(t, tc.total, p.Total())
			require.Equal(t, tc.total, p.Available())
			require.Zero(t, p.Grows(), "the first slab is not a grow")
			require.Equal(t, tc.bufSize, p.BufSize())
			require.Equal(t, tc.headroom, p.Headroom())
			got := 0
			for p.Get() != nil {
				got++
			}
			require.Equal(t, tc.maxAfterGrow, got, "Get hands out exactly Max packets")
			require.Equal(t, tc.maxAfterGrow, p.Total())
		})
	}
}

// TestPool_ExhaustionWithMax walks a pool through its growth: a slab of Size at a time, the
// last one cut to Max, then nil.
func TestPool_ExhaustionWithMax(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 4, Max: 10, BufSize: 64, Headroom: 8})
	steps := []struct {
		gets      int
		total     int
		grows     int
		available int
	}{
		{4, 4, 0, 0},  // the initial slab
		{1, 8, 1, 3},  // first grow: a whole slab
		{3, 8, 1, 0},  //
		{1, 10, 2, 1}, // second grow: cut to Max
		{1, 10, 2, 0}, //
	}
	seen := map[*dpdkshim.Packet]bool{}
	for i, s := range steps {
		for range s.gets {
			pk := p.Get()
			require.NotNil(t, pk, "step %d", i)
			require.False(t, seen[pk], "step %d: packet handed out twice", i)
			seen[pk] = true
			require.Equal(t, 8, pk.Headroom())
			require.Equal(t, 56, pk.Tailroom())
		}
		require.Equal(t, s.total, p.Total(), "step %d", i)
		require.Equal(t, s.grows, p.Grows(), "step %d", i)
		require.Equal(t, s.available, p.Available(), "step %d", i)
	}
	for range 3 {
		require.Nil(t, p.Get(), "exhausted pool must return nil")
	}
	require.Equal(t, 2, p.Grows(), "a failed Get is not a grow")
	require.Equal(t, 10, p.Total())

	// Freeing one makes exactly one available again.
	for pk := range seen {
		pk.Free()
		break
	}
	require.Equal(t, 1, p.Available())
	require.NotNil(t, p.Get())
	require.Nil(t, p.Get())
}

func TestPool_FreeIsLIFO(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 8, BufSize: 64, Headroom: 8})
	a, b, c := p.Get(), p.Get(), p.Get()
	require.Equal(t, 5, p.Available())
	a.Free()
	b.Free()
	c.Free()
	require.Equal(t, 8, p.Available())
	require.Same(t, c, p.Get(), "last freed comes back first")
	require.Same(t, b, p.Get())
	require.Same(t, a, p.Get())
}

// TestPool_GetResetsPacket checks that a recycled packet comes back empty, with the pool's
// headroom and without the previous user's metadata.
func TestPool_GetResetsPacket(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 1, BufSize: 64, Headroom: 8})
	pk := p.Get()
	require.True(t, pk.SetData([]byte("old frame")))
	pk.Prepend(4)
	pk.Queue, pk.Flags, pk.Ref, pk.Time, pk.Mark = 1, dpdkshim.TxCsum, 2, 3, 4
	pk.Free()
	got := p.Get()
	require.Same(t, pk, got)
	require.Equal(t, window{8, 0, 56}, windowOf(got))
	require.Zero(t, got.Queue)
	require.Zero(t, got.Flags)
	require.Zero(t, got.Ref)
	require.Zero(t, got.Time)
	require.Zero(t, got.Mark)
}

// TestPool_RemoteFreeComesBack: packets freed on another goroutine are not Available until
// the owner's Get finds its local stack empty and reclaims them; then all come back and the
// pool does not grow.
func TestPool_RemoteFreeComesBack(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 4, Max: 4, BufSize: 64, Headroom: 8})
	var pkts []*dpdkshim.Packet
	for range 4 {
		pkts = append(pkts, p.Get())
	}
	require.Nil(t, p.Get())
	done := make(chan struct{})
	go func() {
		for _, pk := range pkts {
			pk.FreeRemote()
		}
		close(done)
	}()
	<-done
	require.Zero(t, p.Available(), "remote frees wait on the remote list")
	got := map[*dpdkshim.Packet]bool{}
	for range 4 {
		pk := p.Get()
		require.NotNil(t, pk)
		got[pk] = true
	}
	require.Len(t, got, 4)
	for _, pk := range pkts {
		require.True(t, got[pk])
	}
	require.Zero(t, p.Grows())
	require.Nil(t, p.Get())
}

// TestPool_AlienFreeGoesRemote: Free of a packet marked alien takes the remote path, so a
// goroutine that is not the owner may call plain Free.
func TestPool_AlienFreeGoesRemote(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 2, Max: 2, BufSize: 64, Headroom: 8})
	a, b := p.Get(), p.Get()
	a.MarkAlien()
	done := make(chan struct{})
	go func() {
		a.Free()
		close(done)
	}()
	<-done
	require.Zero(t, p.Available())
	b.Free() // owner side: straight onto the local stack
	require.Equal(t, 1, p.Available())
	require.Same(t, b, p.Get())
	require.Same(t, a, p.Get(), "the alien free came back through the remote list")
	require.Nil(t, p.Get())

	// The alien mark is one-shot: once back, the owner's Free is local again.
	a.Free()
	require.Equal(t, 1, p.Available())
}

// TestPool_ConcurrentRemoteFree runs the owner's Get/Free loop while several goroutines free
// packets remotely (run with -race). Every packet must come back exactly once: at the end the
// pool holds all Total packets, each one once, and never grew past what it needed.
func TestPool_ConcurrentRemoteFree(t *testing.T) {
	const (
		size     = 64
		remotes  = 4
		handouts = 20000
	)
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: size, Max: size, BufSize: 64, Headroom: 8})
	work := make([]chan *dpdkshim.Packet, remotes)
	var wg sync.WaitGroup
	for i := range work {
		work[i] = make(chan *dpdkshim.Packet, size)
		wg.Add(1)
		go func(in <-chan *dpdkshim.Packet) {
			defer wg.Done()
			for pk := range in {
				pk.Data() // touch it as a receiver would
				pk.FreeRemote()
			}
		}(work[i])
	}
	sent := 0
	for sent < handouts {
		pk := p.Get()
		if pk == nil {
			runtime.Gosched() // everything is out; remote frees will arrive
			continue
		}
		require.NotNil(t, pk.Append(8))
		pk.Data()[0] = byte(sent)
		if sent%3 == 0 {
			pk.Free() // owner-side free mixed in
		} else {
			work[sent%remotes] <- pk
		}
		sent++
	}
	for _, c := range work {
		close(c)
	}
	wg.Wait()

	seen := map[*dpdkshim.Packet]bool{}
	for pk := p.Get(); pk != nil; pk = p.Get() {
		require.False(t, seen[pk], "packet returned twice")
		seen[pk] = true
	}
	require.Len(t, seen, size)
	require.Equal(t, size, p.Total())
	require.Zero(t, p.Grows())
}

// TestPool_SteadyStateNoAllocs: Get and Free, owner-side and through the remote list, do not
// allocate once the pool holds its packets.
func TestPool_SteadyStateNoAllocs(t *testing.T) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 16, Max: 16, BufSize: 64, Headroom: 8})
	var batch [16]*dpdkshim.Packet
	cases := []struct {
		name string
		fn   func()
	}{
		{"get free", func() {
			pk := p.Get()
			pk.Append(10)
			pk.Free()
		}},
		{"get free burst", func() {
			for i := range batch {
				batch[i] = p.Get()
			}
			for _, pk := range batch {
				pk.Free()
			}
		}},
		{"get free remote reclaim", func() {
			for i := range batch {
				batch[i] = p.Get()
			}
			for _, pk := range batch {
				pk.FreeRemote()
			}
			p.Get().Free() // reclaims the remote list
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Zero(t, testing.AllocsPerRun(1000, tc.fn))
			require.Zero(t, p.Grows())
		})
	}
}

func BenchmarkPool_GetFree(b *testing.B) {
	p := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 64})
	b.ReportAllocs()
	for b.Loop() {
		p.Get().Free()
	}
}

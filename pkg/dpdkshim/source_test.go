package dpdkshim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// mbufSource stands for a DPDK mempool: it lends fixed 256-byte buffers, counts the Fill
// calls and the buffers out, and takes them back through Release.
type mbufSource struct {
	mem      []byte
	free     []uint64 // indices of the buffers not lent
	fills    []int    // batch size asked of each Fill
	releases []int    // batch size of each Release
}

func newMbufSource(n int) *mbufSource {
	s := &mbufSource{mem: make([]byte, n*256)}
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i))
	}
	return s
}

func (s *mbufSource) Fill(pkts []*dpdkshim.Packet) int {
	s.fills = append(s.fills, len(pkts))
	n := 0
	for _, p := range pkts {
		if len(s.free) == 0 {
			break
		}
		i := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		p.Attach(s.mem[i*256:(i+1)*256:(i+1)*256], 64, 0, s, i)
		n++
	}
	return n
}

func (s *mbufSource) Release(pkts []*dpdkshim.Packet) {
	s.releases = append(s.releases, len(pkts))
	for _, p := range pkts {
		s.free = append(s.free, p.Ref)
	}
}

// TestPool_SourceLendsTransmitBuffers: a bare pool with a Source hands out packets whose
// memory the source attached, asked for in batches; freeing gives the memory back to the
// source and the descriptor to the pool; an exhausted source makes Get return nil; Drain
// returns what was filled and not handed out.
func TestPool_SourceLendsTransmitBuffers(t *testing.T) {
	src := newMbufSource(40)
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 64, Max: 64, Bare: true, Source: src, Headroom: 64})
	require.Equal(t, 64, pool.Headroom())

	p := pool.Get()
	require.NotNil(t, p)
	require.True(t, p.Owned())
	require.Equal(t, dpdkshim.Owner(src), p.Owner())
	require.Equal(t, []int{32}, src.fills, "one Fill for a batch")
	require.Equal(t, 64, p.Headroom())
	require.Equal(t, 0, p.Len())
	copy(p.Append(4), "abcd")
	ref := p.Ref
	require.Equal(t, "abcd", string(src.mem[ref*256+64:ref*256+68]), "the frame is the source's memory")
	p.Reset()
	require.Equal(t, 64, p.Headroom(), "Reset keeps the source's headroom")

	// 31 more come from the same batch, the 33rd asks again and gets the last 8.
	got := []*dpdkshim.Packet{p}
	for i := 0; i < 39; i++ {
		q := pool.Get()
		require.NotNil(t, q, "packet %d", i)
		got = append(got, q)
	}
	require.Equal(t, []int{32, 32}, src.fills)
	require.Nil(t, pool.Get(), "the source is empty")
	require.Equal(t, 24, pool.Available(), "descriptors the source could not fill went back")

	var fb dpdkshim.FreeBatch
	for _, q := range got {
		fb.Free(q)
	}
	fb.Flush()
	require.Equal(t, 40, len(src.free), "every buffer went back")
	require.Equal(t, []int{40}, src.releases, "in one batch")

	// A transmitted packet: the backend took its memory back itself.
	p = pool.Get()
	require.NotNil(t, p)
	src.free = append(src.free, p.Ref)
	p.Disown()
	require.False(t, p.Owned())
	p.Free()
	require.Equal(t, []int{40}, src.releases, "a disowned packet is not released")

	pool.Drain()
	require.Len(t, src.free, 40, "Drain gave back the filled packets")
	require.Equal(t, 64, pool.Available())
}

// TestPool_SourceNoAllocs: getting and freeing a source's packets allocates nothing.
func TestPool_SourceNoAllocs(t *testing.T) {
	src := newMbufSource(128)
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 256, Bare: true, Source: src})
	var fb dpdkshim.FreeBatch
	pkts := make([]*dpdkshim.Packet, 48)
	src.fills, src.releases = make([]int, 0, 1024), make([]int, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		for i := range pkts {
			pkts[i] = pool.Get()
		}
		for _, p := range pkts {
			fb.Free(p)
		}
		fb.Flush()
	})
	require.Zero(t, allocs)
}

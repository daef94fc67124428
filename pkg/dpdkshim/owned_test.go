package dpdkshim_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// ringOwner stands for a backend that lends packets its own memory (a TPACKET block): it
// records every Release call and the references it was given back.
type ringOwner struct {
	mu       sync.Mutex
	calls    []int    // batch size of each Release
	refs     []uint64 // references released, in order
	detached int      // packets that reached Release already detached (a bug)
	mem      []byte
}

func (o *ringOwner) Release(pkts []*dpdkshim.Packet) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, len(pkts))
	for _, p := range pkts {
		if !p.Owned() {
			o.detached++
		}
		o.refs = append(o.refs, p.Ref)
	}
}

func attached(t *testing.T, pool *dpdkshim.Pool, o *ringOwner, ref uint64) *dpdkshim.Packet {
	t.Helper()
	p := pool.Get()
	require.NotNil(t, p)
	require.False(t, p.Owned())
	require.Empty(t, p.Buffer(), "a bare pool's packets have no buffer of their own")
	p.Attach(o.mem, int(ref)*16, 10, o, ref)
	require.True(t, p.Owned())
	require.Equal(t, o.mem[ref*16:ref*16+10], p.Data())
	return p
}

// TestPacket_AttachedFreeGoesToOwner: freeing an attached packet hands its memory back to
// its owner (one Release per Free) and the bare descriptor back to its pool, detached.
func TestPacket_AttachedFreeGoesToOwner(t *testing.T) {
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 4, Max: 4, Bare: true})
	o := &ringOwner{mem: make([]byte, 256)}
	p := attached(t, pool, o, 3)
	p.Free()
	require.Equal(t, []int{1}, o.calls)
	require.Equal(t, []uint64{3}, o.refs)
	require.False(t, p.Owned())
	require.Equal(t, 4, pool.Available())

	// Freed on another goroutine (a hand-off): the owner still gets it, the descriptor
	// takes the remote path home.
	p = attached(t, pool, o, 5)
	p.MarkAlien()
	done := make(chan struct{})
	go func() { p.Free(); close(done) }()
	<-done
	require.Equal(t, []uint64{3, 5}, o.refs)
	got := 0
	for q := pool.Get(); q != nil; q = pool.Get() {
		got++
	}
	require.Equal(t, 4, got, "every descriptor came home")
}

// TestFreeBatch_ReleasesOwnedInBatches: a FreeBatch gives attached packets back to their
// owner in groups (at most 64, one group per run of the same owner), mixed freely with
// pool packets, and only on Flush or when a group is full.
func TestFreeBatch_ReleasesOwnedInBatches(t *testing.T) {
	bare := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 256, Max: 256, Bare: true})
	plain := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 8, Max: 8})
	o1 := &ringOwner{mem: make([]byte, 16*256)}
	o2 := &ringOwner{mem: make([]byte, 16*256)}
	var b dpdkshim.FreeBatch
	for i := 0; i < 70; i++ {
		b.Free(attached(t, bare, o1, uint64(i)))
	}
	require.Equal(t, []int{64}, o1.calls, "a full group goes back at once")
	b.Free(plain.Get()) // a pool packet in between changes nothing for the group
	for i := 0; i < 3; i++ {
		b.Free(attached(t, bare, o2, uint64(i)))
	}
	require.Equal(t, []int{64, 6}, o1.calls, "another owner ends o1's group")
	require.Empty(t, o2.calls, "nothing goes back before Flush")
	b.Flush()
	require.Equal(t, []int{3}, o2.calls)
	require.Len(t, o1.refs, 70)
	for i, r := range o1.refs {
		require.Equal(t, uint64(i), r, "released in free order")
	}
	require.Equal(t, 256, bare.Available())
	require.Equal(t, 8, plain.Available())
	require.Zero(t, o1.detached+o2.detached, "packets are still attached while Release reads them")
	b.Flush() // an empty flush releases nothing
	require.Equal(t, []int{3}, o2.calls)
}

// TestFreeBatch_OwnedSteadyStateNoAllocs: attaching, batching and releasing allocates
// nothing once warm.
func TestFreeBatch_OwnedSteadyStateNoAllocs(t *testing.T) {
	bare := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 128, Max: 128, Bare: true})
	o := &countOwner{}
	mem := make([]byte, 2048)
	var b dpdkshim.FreeBatch
	round := func() {
		for i := 0; i < 100; i++ {
			p := bare.Get()
			p.Attach(mem, 0, 60, o, uint64(i))
			b.Free(p)
		}
		b.Flush()
		p := bare.Get()
		p.Attach(mem, 0, 60, o, 0)
		p.Free()
	}
	require.Zero(t, testing.AllocsPerRun(200, round))
	require.Equal(t, 201*101, o.n)
}

type countOwner struct{ n int }

func (o *countOwner) Release(pkts []*dpdkshim.Packet) { o.n += len(pkts) }

// TestPacket_TxCsumOffsetsFollowPrepend: SetTxCsum records where the checksum is relative
// to the segment, and the offsets move with the frame as headers are prepended; Reset and
// the pool clear them.
func TestPacket_TxCsumOffsetsFollowPrepend(t *testing.T) {
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 1})
	p := pool.Get()
	_, _, ok := p.TxCsumOffsets()
	require.False(t, ok)
	p.Append(40)
	p.SetTxCsum(0, 16)
	require.Equal(t, dpdkshim.TxCsum, p.Flags&dpdkshim.TxCsum)
	s, f, ok := p.TxCsumOffsets()
	require.True(t, ok)
	require.Equal(t, [2]int{0, 16}, [2]int{s, f})
	p.Prepend(20)
	p.Prepend(14)
	s, f, _ = p.TxCsumOffsets()
	require.Equal(t, [2]int{34, 50}, [2]int{s, f})
	p.Free()
	p = pool.Get()
	_, _, ok = p.TxCsumOffsets()
	require.False(t, ok, "a packet from the pool carries no offload request")
}

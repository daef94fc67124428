package tcp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

func newTestReceiver(t *testing.T, irs seqnum.Value, buf int) (*shard, *endpoint) {
	t.Helper()
	e, err := NewEngine(Config{Shards: 1})
	require.NoError(t, err)
	var ctr stats.Counters
	s := e.newShard(0, &wakeCounter{}, wheel.New(0, 1e6), &ctr)
	ep := s.allocEndpoint()
	ep.rcv.setCapacity(buf)
	ep.state = StateEstablished
	ep.rcvNxt = irs
	ep.sackOK = true
	ep.mss = 1460
	return s, ep
}

func checkOOO(t *testing.T, ep *endpoint) {
	t.Helper()
	require.LessOrEqual(t, int(ep.nOOO), maxOOO)
	prev := ep.rcvNxt
	for i := 0; i < int(ep.nOOO); i++ {
		r := ep.ooo.r[i]
		require.True(t, prev.LessThan(r.start), "range %d %v after %v: ascending, disjoint, not adjacent", i, r, prev)
		require.True(t, r.start.LessThan(r.end))
		prev = r.end
	}
}

// Random pieces of a byte stream, out of order, overlapping and repeated, some beyond what
// the range list can hold: after each piece the out-of-order list is sound, and once every
// piece has come (again, for those dropped), the buffer holds the stream exactly.
func TestReceiver_RandomReassembly(t *testing.T) {
	for _, irs := range []seqnum.Value{1000, 0xffff_f000} { // also across the wrap
		rng := rand.New(rand.NewPCG(uint64(irs), 7))
		const size = 200_000
		s, ep := newTestReceiver(t, irs, 256<<10)
		stream := make([]byte, size)
		for i := range stream {
			stream[i] = byte(rng.Uint32())
		}
		type piece struct{ off, n int }
		var pieces []piece
		for off := 0; off < size; {
			n := min(1+rng.IntN(3000), size-off)
			pieces = append(pieces, piece{off, n})
			off += n
		}
		// Overlapping extras and duplicates.
		for i := 0; i < 200; i++ {
			off := rng.IntN(size - 1)
			pieces = append(pieces, piece{off, min(1+rng.IntN(4000), size-off)})
		}
		for round := 0; ep.rcvNxt != irs.Add(size); round++ {
			require.Less(t, round, 50)
			rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
			for _, p := range pieces {
				sg := &segment{seq: irs.Add(uint32(p.off)), payload: stream[p.off : p.off+p.n]}
				if !sg.seq.Add(uint32(p.n)).LessThanEq(ep.rcvNxt) {
					s.dataInput(ep, sg)
				}
				checkOOO(t, ep)
			}
		}
		got := make([]byte, size)
		require.Equal(t, size, ep.rcv.consume(got))
		require.Equal(t, stream, got)
		require.Zero(t, ep.nOOO)
		require.Nil(t, ep.ooo, "the range list went back to the pool with the last hole")
	}
}

// With every range slot taken, a segment that needs a new range is dropped and counted; one
// that extends a range is kept.
func TestReceiver_OOOLimit(t *testing.T) {
	s, ep := newTestReceiver(t, 0, 1<<20)
	seg := make([]byte, 100)
	for i := 0; i < maxOOO; i++ {
		s.dataInput(ep, &segment{seq: seqnum.Value(200 * (i + 1)), payload: seg})
	}
	require.Equal(t, uint8(maxOOO), ep.nOOO)
	s.dataInput(ep, &segment{seq: seqnum.Value(200 * (maxOOO + 1)), payload: seg})
	require.Equal(t, uint64(1), s.ctr[stats.TcpExtTCPOFODrop])
	require.Equal(t, uint8(maxOOO), ep.nOOO)
	s.dataInput(ep, &segment{seq: 300, payload: seg}) // joins [200,300) and [400,500)
	require.Equal(t, uint8(maxOOO-1), ep.nOOO)
	require.Equal(t, seqRange{200, 500}, ep.ooo.r[0])
	require.Equal(t, uint64(1), s.ctr[stats.TcpExtTCPOFOMerge])
	checkOOO(t, ep)
}

// A peer whose segments are smaller than ours (its path MTU is lower than ours, say) still
// gets an ACK for every second segment: the receiver counts the bytes since its last ACK
// against the peer's segment size as seen (Linux's rcv_mss), not against its own MSS, by
// which no 1200-byte segment would ever count as full and every ACK would wait out the
// delayed-ACK timer.
func TestReceiver_AckEverySecondSegmentOfASmallerPeer(t *testing.T) {
	s, ep := newTestReceiver(t, 1000, 1<<20)
	ep.ato, ep.quick = true, 0 // past the quick ACKs
	seg := make([]byte, 1200)
	next := ep.rcvNxt
	for i := 0; i < 3; i++ { // the first shows the peer's segment size
		s.dataInput(ep, &segment{seq: next, payload: seg})
		next = next.Add(1200)
		ep.ackNow = false
		s.ackSent(ep)
	}
	s.dataInput(ep, &segment{seq: next, payload: seg})
	require.False(t, ep.ackNow, "one segment: the ACK may wait")
	s.dataInput(ep, &segment{seq: next.Add(1200), payload: seg})
	require.True(t, ep.ackNow, "the second full segment since the last ACK: at once")
	require.Equal(t, uint16(1200), ep.rcvMSS)
}

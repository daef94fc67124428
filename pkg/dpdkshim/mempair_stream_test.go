package dpdkshim_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// Stream frames are flow frames (flowFrame) whose source port varies with the sequence
// number, so that steering spreads them, followed by their transmit queue and a per-queue
// sequence number, so that the receiver can check order and completeness.
const (
	streamTxqOff = header.EthernetLen + header.IPv4MinLen + header.TCPMinLen
	streamSeqOff = streamTxqOff + 1
	streamLen    = streamSeqOff + 4
)

func streamFrame(b []byte, txq, seq int) {
	copy(b, flowFrame(addrA, addrB, uint16(1024+seq%4096), 80, ""))
	b[streamTxqOff] = byte(txq)
	binary.BigEndian.PutUint32(b[streamSeqOff:], uint32(seq))
}

// streamSide drives every queue of one port from one goroutine, as a shard per port would:
// it sends perQueue frames on each transmit queue and receives everything the peer sends,
// checking that frames arrive exactly once and in order per (txq, rxq).
type streamSide struct {
	port     *dpdkshim.MemPort
	perQueue int
	expect   int // frames the peer sends to this side in total

	next    []int                // per transmit queue: next sequence number to send
	pending [][]*dpdkshim.Packet // per transmit queue: packets refused by a full ring
	last    map[[2]int]int       // (txq, rxq) -> last sequence number received
	seen    [][]bool             // [txq][seq]
	got     int
	err     error
}

func newStreamSide(port *dpdkshim.MemPort, perQueue, peerQueues int) *streamSide {
	nq := port.NumQueues()
	s := &streamSide{
		port:     port,
		perQueue: perQueue,
		expect:   perQueue * peerQueues,
		next:     make([]int, nq),
		pending:  make([][]*dpdkshim.Packet, nq),
		last:     map[[2]int]int{},
		seen:     make([][]bool, peerQueues),
	}
	for i := range s.seen {
		s.seen[i] = make([]bool, perQueue)
	}
	return s
}

func (s *streamSide) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

// sendSome fills a burst on queue q (pending packets first), transmits it and returns how
// many packets the port took.
func (s *streamSide) sendSome(q int, burst []*dpdkshim.Packet) int {
	pkts := append(burst[:0], s.pending[q]...)
	for len(pkts) < cap(burst) && s.next[q] < s.perQueue {
		pk := s.port.Pool(q).Get()
		if pk == nil {
			break // all out; the peer's frees will come back
		}
		streamFrame(pk.Append(streamLen), q, s.next[q])
		pkts = append(pkts, pk)
		s.next[q]++
	}
	n := s.port.TxBurst(q, pkts)
	s.pending[q] = append(s.pending[q][:0], pkts[n:]...)
	return n
}

// recvSome takes one burst from queue q and checks it.
func (s *streamSide) recvSome(q int, burst []*dpdkshim.Packet) {
	n := s.port.RxBurst(q, burst)
	for _, pk := range burst[:n] {
		b := pk.Data()
		if len(b) != streamLen {
			s.failf("rxq %d: frame of %d bytes", q, len(b))
			pk.Free()
			continue
		}
		txq, seq := int(b[streamTxqOff]), int(binary.BigEndian.Uint32(b[streamSeqOff:]))
		switch {
		case int(pk.Queue) != q:
			s.failf("rxq %d: packet says queue %d", q, pk.Queue)
		case txq >= len(s.seen) || seq >= s.perQueue:
			s.failf("rxq %d: bad frame txq %d seq %d", q, txq, seq)
		case s.seen[txq][seq]:
			s.failf("rxq %d: txq %d seq %d received twice", q, txq, seq)
		default:
			key := [2]int{txq, q}
			if last, ok := s.last[key]; ok && seq <= last {
				s.failf("(txq %d, rxq %d): seq %d after %d", txq, q, seq, last)
			}
			s.last[key] = seq
			s.seen[txq][seq] = true
			s.got++
		}
		pk.Free()
	}
}

func (s *streamSide) sendDone() bool {
	for q := range s.next {
		if s.next[q] < s.perQueue || len(s.pending[q]) > 0 {
			return false
		}
	}
	return true
}

// run alternates sending and receiving on every queue until it has sent all its frames and
// received all the peer's, or found an error.
func (s *streamSide) run() {
	burst := make([]*dpdkshim.Packet, 0, 32)
	rx := make([]*dpdkshim.Packet, 32)
	for s.err == nil && (!s.sendDone() || s.got < s.expect) {
		gotBefore, sent := s.got, 0
		for q := range s.next {
			if s.next[q] < s.perQueue || len(s.pending[q]) > 0 {
				sent += s.sendSome(q, burst)
			}
			s.recvSome(q, rx)
		}
		if sent == 0 && s.got == gotBefore {
			runtime.Gosched() // nothing moved: let the peer run (matters with GOMAXPROCS=1)
		}
	}
}

// TestMemPair_ConcurrentStream streams frames both ways at once, one goroutine per port
// (run with -race). Small rings and small pools force ring-full retries and pool recycling
// through remote frees; steering moves frames across queues. Every frame must arrive
// exactly once and in order per (txq, rxq).
func TestMemPair_ConcurrentStream(t *testing.T) {
	cases := []struct {
		name     string
		queues   int
		steered  bool
		perQueue int
	}{
		{"one queue", 1, false, 20000},
		{"four queues by transmit queue", 4, false, 5000},
		{"four queues steered", 4, true, 5000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := dpdkshim.NewPair(dpdkshim.PairConfig{
				Queues:    tc.queues,
				RingSize:  64,
				Pool:      dpdkshim.PoolConfig{Size: 128, Max: 512, BufSize: 128, Headroom: 16},
				ByTxQueue: !tc.steered,
			})
			sa := newStreamSide(a, tc.perQueue, tc.queues)
			sb := newStreamSide(b, tc.perQueue, tc.queues)
			var wg sync.WaitGroup
			for _, s := range []*streamSide{sa, sb} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.run()
				}()
			}
			wg.Wait()
			require.NoError(t, sa.err)
			require.NoError(t, sb.err)
			total := tc.queues * tc.perQueue
			require.Equal(t, total, sa.got)
			require.Equal(t, total, sb.got)
			for _, s := range []*streamSide{sa, sb} {
				for txq, seen := range s.seen {
					for seq, ok := range seen {
						require.True(t, ok, "%s: txq %d seq %d never arrived", s.port.Name(), txq, seq)
					}
				}
			}
			if tc.steered {
				// Steering must actually have spread one transmit queue's frames over several
				// receive queues, or the per-(txq, rxq) check proved little.
				rxqs := map[int]bool{}
				for key := range sb.last {
					if key[0] == 0 {
						rxqs[key[1]] = true
					}
				}
				require.Len(t, rxqs, tc.queues)
			}
			for _, p := range []*dpdkshim.MemPort{a, b} {
				delivered, _, drops := p.Stats()
				require.Equal(t, uint64(total), delivered)
				require.Zero(t, drops)
				for q := range tc.queues {
					pool := p.Pool(q)
					require.LessOrEqual(t, pool.Total(), 512)
					// Back on one goroutine, every packet of the pool comes home.
					n := 0
					var all []*dpdkshim.Packet
					for pk := pool.Get(); pk != nil && n < pool.Total(); pk = pool.Get() {
						all = append(all, pk)
						n++
					}
					require.Equal(t, pool.Total(), n, "%s pool %d lost packets", p.Name(), q)
					for _, pk := range all {
						pk.Free()
					}
				}
			}
		})
	}
}

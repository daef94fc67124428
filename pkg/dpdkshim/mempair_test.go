package dpdkshim_test

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
)

// liveness bounds how long a test waits for something that must happen on another
// goroutine. It is a hang guard, not a timing assertion.
const liveness = 30 * time.Second

// burst takes packets for frames from port's pool q and transmits them in one TxBurst. It
// returns how many the port took and the packets it refused, which the caller still owns.
func burst(t *testing.T, port *dpdkshim.MemPort, q int, frames ...string) (int, []*dpdkshim.Packet) {
	t.Helper()
	pkts := make([]*dpdkshim.Packet, len(frames))
	for i, f := range frames {
		pkts[i] = port.Pool(q).Get()
		require.NotNil(t, pkts[i], "pool exhausted")
		require.True(t, pkts[i].SetData([]byte(f)))
	}
	n := port.TxBurst(q, pkts)
	require.GreaterOrEqual(t, n, 0)
	require.LessOrEqual(t, n, len(pkts))
	return n, pkts[n:]
}

// send transmits frames in one burst and requires that the port took them all.
func send(t *testing.T, port *dpdkshim.MemPort, q int, frames ...string) {
	t.Helper()
	n, rest := burst(t, port, q, frames...)
	require.Equal(t, len(frames), n)
	require.Empty(t, rest)
}

// received is one frame taken off a receive queue.
type received struct {
	data  string
	queue uint16
}

// recv drains receive queue q of port, frees every packet and returns what it held.
func recv(t *testing.T, port *dpdkshim.MemPort, q int) []received {
	t.Helper()
	var out []received
	pkts := make([]*dpdkshim.Packet, 3) // small, so a drain takes several bursts
	for {
		n := port.RxBurst(q, pkts)
		if n == 0 {
			return out
		}
		for _, pk := range pkts[:n] {
			out = append(out, received{string(pk.Data()), pk.Queue})
			pk.Free()
		}
	}
}

// drainPool gets packets from an owner-side pool until it is exhausted, frees them all and
// returns how many it got: with Max == Size, every packet the pool owns if all came back.
func drainPool(t *testing.T, pool *dpdkshim.Pool) int {
	t.Helper()
	var all []*dpdkshim.Packet
	for pk := pool.Get(); pk != nil; pk = pool.Get() {
		all = append(all, pk)
	}
	for _, pk := range all {
		pk.Free()
	}
	require.Equal(t, len(all), pool.Available())
	require.Zero(t, pool.Grows(), "drainPool needs a pool with Max == Size")
	return len(all)
}

// datas returns the frames' contents in order.
func datas(rs []received) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.data)
	}
	return out
}

func TestMemPair_Defaults(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{})
	require.Equal(t, "mem0", a.Name())
	require.Equal(t, "mem1", b.Name())
	require.Equal(t, header.MAC{2, 0, 0, 0, 0, 1}, a.MAC())
	require.Equal(t, header.MAC{2, 0, 0, 0, 0, 2}, b.MAC())
	require.Equal(t, 1500, a.MTU())
	require.Equal(t, 1, a.NumQueues())
	require.Same(t, b, a.Peer())
	require.Same(t, a, b.Peer())
	require.NotSame(t, a.Pool(0), b.Pool(0))
	require.NoError(t, a.Close())

	var _ dpdkshim.Port = a
	var _ dpdkshim.Notifier = a
	var _ dpdkshim.QueueLimiter = a
	require.Equal(t, dpdkshim.Symmetric{}, a.Steering(), "the pair steers by Symmetric by default")
	require.Same(t, a, a.RxWait(0).Notifier.(*dpdkshim.MemPort))
	require.Equal(t, -1, a.RxWait(0).FD)
	require.Equal(t, dpdkshim.Offloads{}, a.Offloads())

	c, d := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 3, MTU: 9000, Names: [2]string{"x", "y"},
		MACs: [2]header.MAC{{1}, {2}}})
	require.Equal(t, "x", c.Name())
	require.Equal(t, "y", d.Name())
	require.Equal(t, header.MAC{1}, c.MAC())
	require.Equal(t, 9000, d.MTU())
	require.Equal(t, 3, d.NumQueues())
	require.NotSame(t, c.Pool(0), c.Pool(1), "one pool per queue")
}

// TestMemPair_ByTxQueue: with ByTxQueue, a frame sent on queue q arrives on the peer's
// queue q, in both directions, and on no other queue; the ports state no steering.
func TestMemPair_ByTxQueue(t *testing.T) {
	for _, nq := range []int{1, 2, 4} {
		a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: nq, ByTxQueue: true})
		require.Nil(t, a.Steering())
		for _, dir := range []struct {
			name     string
			from, to *dpdkshim.MemPort
		}{{"a to b", a, b}, {"b to a", b, a}} {
			for q := range nq {
				f1, f2 := dir.name+" q"+string(rune('0'+q))+" #1", dir.name+" q"+string(rune('0'+q))+" #2"
				send(t, dir.from, q, f1, f2)
				for rq := range nq {
					require.Equal(t, rq == q, dir.to.RxReady(rq), "nq=%d %s q=%d rq=%d", nq, dir.name, q, rq)
					got := recv(t, dir.to, rq)
					if rq != q {
						require.Empty(t, got, "nq=%d %s: frame on queue %d leaked to %d", nq, dir.name, q, rq)
						continue
					}
					require.Equal(t, []received{{f1, uint16(q)}, {f2, uint16(q)}}, got)
					require.False(t, dir.to.RxReady(rq))
				}
			}
		}
		delivered, ringFull, drops := a.Stats()
		require.Equal(t, uint64(2*nq), delivered)
		require.Zero(t, ringFull)
		require.Zero(t, drops)
	}
}

// flowFrame returns an Ethernet/IPv4/TCP frame of the flow src:sport -> dst:dport (headers
// only as far as steering reads them) followed by tail.
func flowFrame(src, dst [4]byte, sport, dport uint16, tail string) string {
	b := make([]byte, header.EthernetLen+header.IPv4MinLen+header.TCPMinLen)
	header.EncodeEthernet(b, header.MAC{2}, header.MAC{4}, header.EtherTypeIPv4)
	header.PutIPv4Header(b[header.EthernetLen:], uint16(len(b)-header.EthernetLen), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	t := b[header.EthernetLen+header.IPv4MinLen:]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	return string(b) + tail
}

var (
	addrA = [4]byte{198, 18, 0, 1}
	addrB = [4]byte{198, 18, 0, 2}
)

// TestMemPair_Steering: a frame arrives on the queue the pair's Symmetric function picks for
// its flow, whatever the transmit queue; the receiving stack can compute that queue from its
// own view of the flow, and the reply of a flow comes back on the same queue index; frames
// that are not IP go to queue 0; UseQueues confines steering to the first n queues.
func TestMemPair_Steering(t *testing.T) {
	const nq = 4
	seed := uint32(0x5eed)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: nq, SteerSeed: seed})
	st := b.Steering()
	require.Equal(t, dpdkshim.Symmetric{Seed: seed}, st)
	hitQueues := map[int]bool{}
	for txq := range nq {
		for sport := uint16(40000); sport < 40016; sport++ {
			f := flowFrame(addrA, addrB, sport, 80, "x")
			send(t, a, txq, f)
			k := hash.KeyV4(addrB, 80, addrA, sport) // as b's stack sees the flow
			want := st.Queue(k, nq)
			hitQueues[want] = true
			require.True(t, b.RxReady(want))
			for rq := range nq {
				got := recv(t, b, rq)
				if rq != want {
					require.Empty(t, got, "txq=%d sport=%d went to %d, want %d", txq, sport, rq, want)
					continue
				}
				require.Equal(t, []received{{f, uint16(want)}}, got)
			}
			// The reply, sent by b on any queue, reaches a on the same queue index.
			r := flowFrame(addrB, addrA, 80, sport, "y")
			send(t, b, (txq+1)%nq, r)
			require.Equal(t, []received{{r, uint16(want)}}, recv(t, a, want))
		}
	}
	require.Len(t, hitQueues, nq, "the flows must exercise every queue")

	// A frame that is not IP goes to queue 0.
	send(t, a, 3, "short")
	require.Equal(t, []received{{"short", 0}}, recv(t, b, 0))

	// UseQueues(2): the receiver's steering spreads over queues 0 and 1 only.
	b.UseQueues(2)
	for sport := uint16(1); sport < 64; sport++ {
		f := flowFrame(addrA, addrB, sport, 80, "")
		send(t, a, 3, f)
		k := hash.KeyV4(addrB, 80, addrA, sport)
		want := st.Queue(k, 2)
		require.Equal(t, []received{{f, uint16(want)}}, recv(t, b, want))
	}
}

// TestMemPair_RingFull: a full ring stops the burst; the caller keeps the rest, which are
// still its own packets, and can send them once the receiver drains.
func TestMemPair_RingFull(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{RingSize: 4, Pool: dpdkshim.PoolConfig{Size: 16, Max: 16}})
	pool := a.Pool(0)
	n, rest := burst(t, a, 0, "f0", "f1", "f2", "f3", "f4", "f5")
	require.Equal(t, 4, n)
	require.Len(t, rest, 2)
	require.Equal(t, "f4", string(rest[0].Data()))
	delivered, ringFull, _ := a.Stats()
	require.Equal(t, uint64(4), delivered)
	require.Equal(t, uint64(1), ringFull, "the burst stops at the first refusal")

	// A second attempt while the ring is still full takes nothing.
	require.Zero(t, a.TxBurst(0, rest))
	_, ringFull, _ = a.Stats()
	require.Equal(t, uint64(2), ringFull)

	// The refused packets were not marked as crossing: freeing one on the owner's goroutine
	// puts it straight back on the local stack.
	avail := pool.Available()
	rest[1].Free()
	require.Equal(t, avail+1, pool.Available())
	rest = rest[:1]

	require.Equal(t, []string{"f0", "f1", "f2", "f3"}, datas(recv(t, b, 0)))
	require.Equal(t, 1, a.TxBurst(0, rest))
	require.Equal(t, []string{"f4"}, datas(recv(t, b, 0)))
	delivered, ringFull, _ = a.Stats()
	require.Equal(t, uint64(5), delivered)
	require.Equal(t, uint64(2), ringFull)
}

// TestMemPair_Hooks covers each hook action against a fixed burst. The hook sees every frame
// with its transmit queue, and the dropped frame goes back to the sender's pool.
func TestMemPair_Hooks(t *testing.T) {
	cases := []struct {
		name      string
		kind      dpdkshim.ActionKind
		want      []string
		delivered uint64
		drops     uint64
	}{
		{"pass", dpdkshim.Pass, []string{"p1", "xx", "p2"}, 3, 0},
		{"drop", dpdkshim.Drop, []string{"p1", "p2"}, 2, 1},
		{"duplicate", dpdkshim.Duplicate, []string{"p1", "xx", "xx", "p2"}, 4, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2, ByTxQueue: true, Pool: dpdkshim.PoolConfig{Size: 8, Max: 8}})
			var seen []string
			var seenQ []int
			a.SetHook(func(txq int, frame []byte) dpdkshim.Action {
				seen = append(seen, string(frame))
				seenQ = append(seenQ, txq)
				if string(frame) == "xx" {
					return dpdkshim.Action{Kind: tc.kind}
				}
				return dpdkshim.Action{}
			})
			send(t, a, 1, "p1", "xx", "p2")
			require.Equal(t, []string{"p1", "xx", "p2"}, seen)
			require.Equal(t, []int{1, 1, 1}, seenQ)
			got := recv(t, b, 1)
			require.Equal(t, tc.want, datas(got))
			delivered, ringFull, drops := a.Stats()
			require.Equal(t, tc.delivered, delivered)
			require.Zero(t, ringFull)
			require.Equal(t, tc.drops, drops)

			// Every packet, duplicates and drops included, is back with the sender.
			require.Equal(t, 8, drainPool(t, a.Pool(1)))

			// Removing the hook restores plain delivery.
			a.SetHook(nil)
			send(t, a, 1, "xx")
			require.Equal(t, []string{"xx"}, datas(recv(t, b, 1)))
			require.Len(t, seen, 3, "a removed hook must not run")
		})
	}
}

// TestMemPair_DuplicateIsACopy: the duplicate is a separate packet with the same bytes, so
// the receiver may change one without touching the other.
func TestMemPair_DuplicateIsACopy(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{})
	a.SetHook(func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Duplicate} })
	send(t, a, 0, "dup me")
	pkts := make([]*dpdkshim.Packet, 4)
	require.Equal(t, 2, b.RxBurst(0, pkts))
	require.NotSame(t, pkts[0], pkts[1])
	require.Equal(t, pkts[0].Data(), pkts[1].Data())
	pkts[0].Data()[0] = 'D'
	require.Equal(t, "dup me", string(pkts[1].Data()))
	pkts[0].Free()
	pkts[1].Free()
}

// TestMemPair_DelayVirtualClock: a delayed frame is invisible until the virtual clock reaches
// its due time, NextDelivery reports that time, and frames due together come out in due-time
// order.
func TestMemPair_DelayVirtualClock(t *testing.T) {
	const start = 1000
	v := clock.NewVirtual(start)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: v, Pool: dpdkshim.PoolConfig{Size: 8, Max: 8}})
	// Frames named "d<N>" are delayed N milliseconds; others pass.
	a.SetHook(func(_ int, f []byte) dpdkshim.Action {
		if len(f) == 2 && f[0] == 'd' {
			return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: time.Duration(f[1]-'0') * time.Millisecond}
		}
		return dpdkshim.Action{}
	})
	_, ok := b.NextDelivery()
	require.False(t, ok)

	send(t, a, 0, "d5", "p1", "d3")
	require.True(t, b.RxReady(0), "the undelayed frame is ready")
	require.Equal(t, []string{"p1"}, datas(recv(t, b, 0)))
	require.False(t, b.RxReady(0), "delayed frames are not ready before their time")

	when, ok := b.NextDelivery()
	require.True(t, ok)
	require.Equal(t, int64(start+3*time.Millisecond), when)
	_, ok = a.NextDelivery()
	require.False(t, ok, "delays are kept by the receiving port")

	v.Set(start + int64(3*time.Millisecond) - 1)
	require.False(t, b.RxReady(0))
	require.Empty(t, recv(t, b, 0))

	v.Set(start + int64(3*time.Millisecond))
	require.True(t, b.RxReady(0))
	require.Equal(t, []received{{"d3", 0}}, recv(t, b, 0))
	when, ok = b.NextDelivery()
	require.True(t, ok)
	require.Equal(t, int64(start+5*time.Millisecond), when)
	require.False(t, b.RxReady(0))

	v.Advance(time.Hour)
	require.True(t, b.RxReady(0))
	require.Equal(t, []string{"d5"}, datas(recv(t, b, 0)))
	_, ok = b.NextDelivery()
	require.False(t, ok)
	require.False(t, b.RxReady(0))

	delivered, _, drops := a.Stats()
	require.Equal(t, uint64(3), delivered)
	require.Zero(t, drops)
	// The delayed packets came from and go back to the sender's pool.
	require.Equal(t, 8, drainPool(t, a.Pool(0)))
}

// TestMemPair_DelayWithSteering: a delayed frame still lands on the queue steering picks.
func TestMemPair_DelayWithSteering(t *testing.T) {
	v := clock.NewVirtual(0)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 4, Clock: v})
	a.SetHook(func(int, []byte) dpdkshim.Action {
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: time.Second}
	})
	// A flow that does not steer to queue 0, the transmit queue.
	sport := uint16(1)
	k := hash.KeyV4(addrB, 80, addrA, sport)
	for b.Steering().Queue(k, 4) == 0 {
		sport++
		k = hash.KeyV4(addrB, 80, addrA, sport)
	}
	want := b.Steering().Queue(k, 4)
	f := flowFrame(addrA, addrB, sport, 80, "late")
	send(t, a, 0, f)
	v.Advance(time.Second)
	for q := range 4 {
		require.Equal(t, q == want, b.RxReady(q), "q=%d", q)
	}
	require.Equal(t, []received{{f, uint16(want)}}, recv(t, b, want))
}

// countWaker counts Wake calls and signals each on a channel.
type countWaker struct {
	n atomic.Int32
	c chan struct{}
}

func newCountWaker() *countWaker { return &countWaker{c: make(chan struct{}, 64)} }

func (w *countWaker) Wake() {
	w.n.Add(1)
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// TestMemPair_Waker: the waker of a receive queue is called once per burst that put frames
// on it, and never for bursts that went to other queues.
func TestMemPair_Waker(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2, ByTxQueue: true})
	w0, w1, wa := newCountWaker(), newCountWaker(), newCountWaker()
	b.SetRxWaker(0, w0)
	b.SetRxWaker(1, w1)
	a.SetRxWaker(0, wa)

	send(t, a, 0, "x", "y", "z")
	require.Equal(t, int32(1), w0.n.Load(), "one wake per burst")
	require.Zero(t, w1.n.Load())
	send(t, a, 1, "x")
	require.Equal(t, int32(1), w0.n.Load())
	require.Equal(t, int32(1), w1.n.Load())

	// A burst that steering spreads over both queues wakes both, once each.
	c, d := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	d0, d1 := newCountWaker(), newCountWaker()
	d.SetRxWaker(0, d0)
	d.SetRxWaker(1, d1)
	var frames []string
	var seen [2]bool
	for sport := uint16(1); !seen[0] || !seen[1] || len(frames) < 3; sport++ {
		k := hash.KeyV4(addrB, 80, addrA, sport)
		seen[d.Steering().Queue(k, 2)] = true
		frames = append(frames, flowFrame(addrA, addrB, sport, 80, ""))
	}
	send(t, c, 0, frames...)
	require.Equal(t, int32(1), d0.n.Load())
	require.Equal(t, int32(1), d1.n.Load())

	// A burst whose only frame the hook drops wakes nobody; an empty burst neither.
	a.SetHook(func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Drop} })
	send(t, a, 0, "gone")
	require.Zero(t, a.TxBurst(0, nil))
	require.Equal(t, int32(1), w0.n.Load())
	require.Equal(t, int32(1), w1.n.Load())
	require.Zero(t, wa.n.Load(), "the sender's own waker is not called")

	send(t, b, 0, "back")
	require.Equal(t, int32(1), wa.n.Load())
}

// TestMemPair_WakerOnDelayedFrame: a delayed frame wakes its queue when the virtual clock
// reaches its due time, not before.
func TestMemPair_WakerOnDelayedFrame(t *testing.T) {
	v := clock.NewVirtual(0)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: v})
	w := newCountWaker()
	b.SetRxWaker(0, w)
	a.SetHook(func(int, []byte) dpdkshim.Action {
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 10 * time.Millisecond}
	})
	send(t, a, 0, "later")
	// The wake can only come from a virtual timer, which cannot fire before the clock moves.
	require.Zero(t, w.n.Load())
	require.False(t, b.RxReady(0))
	v.Advance(10 * time.Millisecond)
	select {
	case <-w.c:
	case <-time.After(liveness):
		t.Fatal("waker not called after the delay passed")
	}
	require.True(t, b.RxReady(0))
	require.Equal(t, []string{"later"}, datas(recv(t, b, 0)))
}

// sinkRecord is one frame a sink saw.
type sinkRecord struct {
	ts   int64
	data string
}

// recordingSink collects what a Sink sees.
type recordingSink struct {
	mu   sync.Mutex
	recs []sinkRecord
}

func (s *recordingSink) sink(ts int64, frame []byte) {
	s.mu.Lock()
	s.recs = append(s.recs, sinkRecord{ts, string(frame)})
	s.mu.Unlock()
}

func (s *recordingSink) records() []sinkRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkRecord(nil), s.recs...)
}

// TestMemPair_Sink: the sink, shared by both ports, sees every delivered frame once in both
// directions, stamped with the clock's time; dropped frames are not seen, duplicates are
// seen as often as they are delivered, delayed frames when they are sent.
func TestMemPair_Sink(t *testing.T) {
	v := clock.NewVirtual(100)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: v})
	var s recordingSink
	b.SetSink(s.sink) // installed on one port, it sees both directions
	a.SetHook(func(_ int, f []byte) dpdkshim.Action {
		switch string(f) {
		case "drop":
			return dpdkshim.Action{Kind: dpdkshim.Drop}
		case "dup":
			return dpdkshim.Action{Kind: dpdkshim.Duplicate}
		case "late":
			return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 50}
		}
		return dpdkshim.Action{}
	})
	send(t, a, 0, "a1", "drop", "a2")
	v.Set(200)
	send(t, b, 0, "b1")
	v.Set(300)
	send(t, a, 0, "dup", "late")
	v.Set(400)
	require.Equal(t, []sinkRecord{
		{100, "a1"}, {100, "a2"}, {200, "b1"}, {300, "dup"}, {300, "dup"}, {300, "late"},
	}, s.records())
	// Due delayed frames come out ahead of the ring's; the order between them is not part of
	// the sink's contract.
	require.ElementsMatch(t, []string{"a1", "a2", "dup", "dup", "late"}, datas(recv(t, b, 0)))
	require.Equal(t, []string{"b1"}, datas(recv(t, a, 0)))
	require.Len(t, s.records(), 6, "receiving does not capture again")

	a.SetSink(nil) // removal is shared too
	send(t, b, 0, "unseen")
	require.Len(t, s.records(), 6)
}

// TestMemPair_SinkRingFull: frames refused by a full ring are not delivered, so the sink must
// not see them; when the caller sends them again later, the sink sees each exactly once.
func TestMemPair_SinkRingFull(t *testing.T) {
	v := clock.NewVirtual(7)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{RingSize: 2, Clock: v})
	var s recordingSink
	a.SetSink(s.sink)
	n, rest := burst(t, a, 0, "f0", "f1", "f2", "f3", "f4")
	require.Equal(t, 2, n)
	require.Equal(t, []sinkRecord{{7, "f0"}, {7, "f1"}}, s.records())
	for len(rest) > 0 {
		require.NotEmpty(t, recv(t, b, 0))
		k := a.TxBurst(0, rest)
		require.Positive(t, k)
		rest = rest[k:]
	}
	require.Equal(t, []string{"f4"}, datas(recv(t, b, 0)))
	got := s.records()
	require.Len(t, got, 5)
	for i, r := range got {
		require.Equal(t, "f"+string(rune('0'+i)), r.data)
	}
	delivered, ringFull, _ := a.Stats()
	require.Equal(t, uint64(5), delivered)
	require.Positive(t, ringFull)
}

// TestMemPair_RemoteFreeReturnsToSender: frames cross without a copy, and the receiver's Free
// returns them to the sender's pool through its remote list, which the sender's next Get
// drains.
func TestMemPair_RemoteFreeReturnsToSender(t *testing.T) {
	const size = 8
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Pool: dpdkshim.PoolConfig{Size: size, Max: size}})
	pool := a.Pool(0)
	sent := make([]*dpdkshim.Packet, size)
	for i := range sent {
		sent[i] = pool.Get()
		require.True(t, sent[i].SetData([]byte{byte(i)}))
	}
	require.Nil(t, pool.Get(), "all packets are out")
	require.Equal(t, size, a.TxBurst(0, sent))

	got := make([]*dpdkshim.Packet, size+1)
	rx := make(chan int)
	go func() { rx <- b.RxBurst(0, got) }() // another goroutine, as the peer's shard would be
	require.Equal(t, size, <-rx)
	for i := range size {
		require.Same(t, sent[i], got[i], "frames cross without a copy")
	}
	done := make(chan struct{})
	go func() {
		for _, pk := range got[:size] {
			pk.Free()
		}
		close(done)
	}()
	<-done
	require.Zero(t, pool.Available(), "remote frees wait until the owner's Get")
	require.Equal(t, size, b.Pool(0).Available(), "the receiver's pool is not involved")

	pk := pool.Get()
	require.NotNil(t, pk)
	require.Equal(t, size-1, pool.Available())
	pk.Free()
	require.Equal(t, size, pool.Available())
	require.Zero(t, pool.Grows())
}

// TestMemPair_SteadyStateNoAllocs: a transmit and receive round through the pair, with a
// hook and steering, allocates nothing.
func TestMemPair_SteadyStateNoAllocs(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2, Pool: dpdkshim.PoolConfig{Size: 64}})
	a.SetHook(func(int, []byte) dpdkshim.Action { return dpdkshim.Action{} })
	frame := []byte(flowFrame(addrA, addrB, 40000, 80, "payload"))
	tx := make([]*dpdkshim.Packet, 16)
	rx := make([]*dpdkshim.Packet, 16)
	round := func() {
		for i := range tx {
			tx[i] = a.Pool(0).Get()
			tx[i].SetData(frame)
		}
		if a.TxBurst(0, tx) != len(tx) {
			panic("ring full")
		}
		for q := range 2 {
			n := b.RxBurst(q, rx)
			for _, pk := range rx[:n] {
				pk.Free()
			}
		}
	}
	require.Zero(t, testing.AllocsPerRun(500, round))
	require.Zero(t, a.Pool(0).Grows())
}

func BenchmarkMemPair_Burst32(b *testing.B) {
	pa, pb := dpdkshim.NewPair(dpdkshim.PairConfig{Pool: dpdkshim.PoolConfig{Size: 256}})
	frame := make([]byte, 64)
	tx := make([]*dpdkshim.Packet, 32)
	rx := make([]*dpdkshim.Packet, 32)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame) * len(tx)))
	for b.Loop() {
		for i := range tx {
			tx[i] = pa.Pool(0).Get()
			tx[i].SetData(frame)
		}
		pa.TxBurst(0, tx)
		n := pb.RxBurst(0, rx)
		for _, pk := range rx[:n] {
			pk.Free()
		}
	}
}

package dpdkshim

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/queue"
)

// PairConfig configures NewPair.
type PairConfig struct {
	// Queues is the number of rx/tx queue pairs of each port (default 1).
	Queues int
	// RingSize is the capacity of each ring between a transmit queue of one port and a
	// receive queue of the other (default 4096).
	RingSize int
	// Pool sizes each queue's buffer pool.
	Pool PoolConfig
	// MTU of both ports (default 1500).
	MTU int
	// MACs of the two ports (default 02:00:00:00:00:01 and 02:00:00:00:00:02).
	MACs [2]header.MAC
	// Names of the two ports (default "mem0" and "mem1").
	Names [2]string
	// Clock stamps frames and times delays (default a real clock).
	Clock clock.Clock
	// ByTxQueue makes each port deliver what queue q of the other sent to its own queue q
	// (modulo its queue count) and state no steering, like a NIC whose hash the stack
	// cannot compute: the stacks then hand frames to the shards that own them. By default
	// both ports steer by Symmetric{SteerSeed}, which the stacks compute.
	ByTxQueue bool
	// SteerSeed seeds the pair's Symmetric steering.
	SteerSeed uint32
	// Offloads makes both ports offload checksums the way a veth does: a packet sent with
	// TxCsum arrives with its checksum left partial and CsumVerified set.
	Offloads bool
	// L3 makes both ports LinkIP ports, like the two ends of a TUN device: frames are bare
	// IP packets, steered by Symmetric's IPQueue.
	L3 bool
}

// ActionKind is what a hook does with a frame.
type ActionKind uint8

// The actions a Hook can take.
const (
	Pass      ActionKind = iota // deliver it
	Drop                        // lose it
	Duplicate                   // deliver it twice
	Delay                       // deliver it after Action.Delay
)

// Action is a Hook's verdict on one frame.
type Action struct {
	Kind  ActionKind
	Delay time.Duration
}

// Hook inspects each frame a port transmits (txq is the transmit queue) and decides its
// fate. It runs on the transmitting goroutine and must not keep frame.
type Hook func(txq int, frame []byte) Action

// Sink receives a copy of every frame that crosses the pair (for pcap output). It is called
// with the frame and the clock's time, from transmitting goroutines, serialised by the pair.
type Sink func(tsNanos int64, frame []byte)

// MemPort is one end of an in-memory pair: two ports wired back to back, like two NICs and a
// cable. Queue i of one port transmits into rings that the other port's receive queues read;
// the receive queue is the one the pair's Symmetric steering picks for the frame's flow (both
// ports steer alike, so both directions of a flow use the same queue index), or with
// PairConfig.ByTxQueue the transmit queue's number. Frames cross without a copy: the
// receiver frees the sender's buffer back to its pool (FreeRemote).
type MemPort struct {
	name  string
	mac   header.MAC
	mtu   int
	nq    int
	peer  *MemPort
	clock clock.Clock
	pools []*Pool
	// in[rxq][txq] carries frames from the peer's transmit queue txq to our receive queue rxq.
	in      [][]*queue.SPSC[*Packet]
	rr      []int
	wakers  []atomic.Pointer[wakerBox]
	steer   Symmetric
	byTxQ   bool
	offload bool
	l3      bool
	useQ    atomic.Int32 // how many receive queues steering spreads over (0: all)
	hook    atomic.Pointer[Hook]
	sink    *sinkBox
	delayed []delayQueue
	touched [][]bool // per transmit queue: which peer receive queues got frames in this burst

	txStats []queueStats // per transmit queue: no cache line shared between shards
}

// queueStats are one transmit queue's counters, alone on their cache lines.
type queueStats struct {
	_          [64]byte
	txRingFull atomic.Uint64
	hookDrops  atomic.Uint64
	delivered  atomic.Uint64
	_          [40]byte
}

type wakerBox struct{ w Waker }

type sinkBox struct {
	mu sync.Mutex
	fn atomic.Pointer[Sink]
}

type delayedFrame struct {
	pkt *Packet
	at  int64
	txq int
}

type delayQueue struct {
	mu    sync.Mutex
	n     atomic.Int32
	items []delayedFrame
}

// NewPair returns two ports wired to each other.
func NewPair(cfg PairConfig) (*MemPort, *MemPort) {
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.RingSize <= 0 {
		cfg.RingSize = 4096
	}
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.MACs == ([2]header.MAC{}) {
		cfg.MACs = [2]header.MAC{{0x02, 0, 0, 0, 0, 0x01}, {0x02, 0, 0, 0, 0, 0x02}}
	}
	if cfg.Names[0] == "" {
		cfg.Names = [2]string{"mem0", "mem1"}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewReal()
	}
	sink := &sinkBox{}
	mk := func(i int) *MemPort {
		p := &MemPort{
			name:    cfg.Names[i],
			mac:     cfg.MACs[i],
			mtu:     cfg.MTU,
			nq:      cfg.Queues,
			clock:   cfg.Clock,
			sink:    sink,
			rr:      make([]int, cfg.Queues),
			wakers:  make([]atomic.Pointer[wakerBox], cfg.Queues),
			delayed: make([]delayQueue, cfg.Queues),
			touched: make([][]bool, cfg.Queues),
			txStats: make([]queueStats, cfg.Queues),
			steer:   Symmetric{Seed: cfg.SteerSeed},
			byTxQ:   cfg.ByTxQueue,
			offload: cfg.Offloads,
			l3:      cfg.L3,
		}
		for q := 0; q < cfg.Queues; q++ {
			p.pools = append(p.pools, NewPool(cfg.Pool))
			p.touched[q] = make([]bool, cfg.Queues)
			rings := make([]*queue.SPSC[*Packet], cfg.Queues)
			for t := range rings {
				rings[t] = queue.NewSPSC[*Packet](cfg.RingSize)
			}
			p.in = append(p.in, rings)
		}
		return p
	}
	a, b := mk(0), mk(1)
	a.peer, b.peer = b, a
	return a, b
}

// Name implements Port.
func (p *MemPort) Name() string { return p.name }

// MAC implements Port.
func (p *MemPort) MAC() header.MAC { return p.mac }

// MTU implements Port.
func (p *MemPort) MTU() int { return p.mtu }

// NumQueues implements Port.
func (p *MemPort) NumQueues() int { return p.nq }

// Pool implements Port.
func (p *MemPort) Pool(q int) *Pool { return p.pools[q] }

// Peer returns the port at the other end.
func (p *MemPort) Peer() *MemPort { return p.peer }

// Close implements Port; the in-memory pair holds no outside resources.
func (p *MemPort) Close() error { return nil }

// SetRxWaker implements Notifier.
func (p *MemPort) SetRxWaker(q int, w Waker) { p.wakers[q].Store(&wakerBox{w}) }

// Steering implements Port: the pair's Symmetric function, or nil with ByTxQueue.
func (p *MemPort) Steering() Steering {
	if p.byTxQ {
		return nil
	}
	return p.steer
}

// LinkType implements LinkTyper: LinkIP for a pair made with PairConfig.L3.
func (p *MemPort) LinkType() LinkType {
	if p.l3 {
		return LinkIP
	}
	return LinkEthernet
}

// Offloads implements Port.
func (p *MemPort) Offloads() Offloads { return Offloads{RxCsum: p.offload, TxCsum: p.offload} }

// RxWait implements Port: the pair wakes the queue's registered Waker.
func (p *MemPort) RxWait(q int) Wait { return Wait{FD: -1, Notifier: p} }

// UseQueues implements QueueLimiter: steering spreads received frames over the first n
// queues only (a stack with fewer shards than the port has queues); n <= 0 or beyond the
// port's queues means all.
func (p *MemPort) UseQueues(n int) {
	if n <= 0 || n > p.nq {
		n = 0
	}
	p.useQ.Store(int32(n))
}

// SetHook installs (or, with nil, removes) the hook that sees every frame this port sends.
func (p *MemPort) SetHook(h Hook) {
	if h == nil {
		p.hook.Store(nil)
		return
	}
	p.hook.Store(&h)
}

// SetSink installs (or removes) a sink that sees every frame crossing the pair in either
// direction; both ports share it.
func (p *MemPort) SetSink(s Sink) {
	if s == nil {
		p.sink.fn.Store(nil)
		return
	}
	p.sink.fn.Store(&s)
}

// Stats returns frames delivered to the peer, frames refused because a ring was full, and
// frames a hook dropped, over all transmit queues.
func (p *MemPort) Stats() (delivered, ringFull, hookDrops uint64) {
	for i := range p.txStats {
		q := &p.txStats[i]
		delivered += q.delivered.Load()
		ringFull += q.txRingFull.Load()
		hookDrops += q.hookDrops.Load()
	}
	return
}

// RxReady implements Notifier.
func (p *MemPort) RxReady(q int) bool {
	for _, r := range p.in[q] {
		if !r.Empty() {
			return true
		}
	}
	d := &p.delayed[q]
	if d.n.Load() == 0 {
		return false
	}
	now := p.clock.Now()
	d.mu.Lock()
	ready := len(d.items) > 0 && d.items[0].at <= now
	d.mu.Unlock()
	return ready
}

// NextDelivery returns the earliest time a delayed frame becomes deliverable to this port.
func (p *MemPort) NextDelivery() (int64, bool) {
	var best int64
	found := false
	for q := range p.delayed {
		d := &p.delayed[q]
		if d.n.Load() == 0 {
			continue
		}
		d.mu.Lock()
		if len(d.items) > 0 && (!found || d.items[0].at < best) {
			best, found = d.items[0].at, true
		}
		d.mu.Unlock()
	}
	return best, found
}

// RxBurst implements Port.
func (p *MemPort) RxBurst(q int, pkts []*Packet) int {
	n := 0
	if p.delayed[q].n.Load() != 0 {
		n = p.releaseDelayed(q, pkts)
	}
	rings := p.in[q]
	start := p.rr[q]
	for k := 0; k < len(rings) && n < len(pkts); k++ {
		i := start + k
		if i >= len(rings) {
			i -= len(rings)
		}
		n += rings[i].PopBatch(pkts[n:])
	}
	p.rr[q] = start + 1
	if p.rr[q] >= len(rings) {
		p.rr[q] = 0
	}
	for _, pk := range pkts[:n] {
		pk.Queue = uint16(q)
	}
	return n
}

func (p *MemPort) releaseDelayed(q int, pkts []*Packet) int {
	d := &p.delayed[q]
	now := p.clock.Now()
	d.mu.Lock()
	n := 0
	for n < len(pkts) && n < len(d.items) && d.items[n].at <= now {
		pkts[n] = d.items[n].pkt
		n++
	}
	d.items = append(d.items[:0], d.items[n:]...)
	d.n.Store(int32(len(d.items)))
	d.mu.Unlock()
	return n
}

// TxBurst implements Port. Frames go to the peer's receive queues; when a ring is full the
// burst stops there and the caller keeps the rest, as a NIC's full transmit ring would.
func (p *MemPort) TxBurst(q int, pkts []*Packet) int {
	peer := p.peer
	touched := p.touched[q]
	var hook Hook
	if h := p.hook.Load(); h != nil {
		hook = *h
	}
	var sink Sink
	if s := p.sink.fn.Load(); s != nil {
		sink = *s
	}
	sent := 0
	for _, pk := range pkts {
		act := Action{}
		if hook != nil {
			act = hook(q, pk.Data())
		}
		switch act.Kind {
		case Drop:
			p.txStats[q].hookDrops.Add(1)
			pk.Free()
			sent++
			continue
		case Duplicate:
			if dup := p.pools[q].Get(); dup != nil {
				dup.SetData(pk.Data())
				if !p.deliver(q, dup, sink, touched) {
					dup.Free()
				}
			}
		case Delay:
			p.delay(q, pk, act.Delay, sink)
			sent++
			continue
		}
		if !p.deliver(q, pk, sink, touched) {
			break
		}
		sent++
	}
	for j, t := range touched {
		if t {
			touched[j] = false
			if wb := peer.wakers[j].Load(); wb != nil {
				wb.w.Wake()
			}
		}
	}
	return sent
}

// rxQueue picks the peer's receive queue for a frame sent on queue q, and applies the
// checksum offload the frame asked for.
func (p *MemPort) rxQueue(q int, pk *Packet) int {
	peer := p.peer
	if pk.Flags&TxCsum != 0 {
		// Like a veth: the checksum stays partial and the receiver is told not to check it.
		pk.Flags = pk.Flags&^TxCsum | CsumVerified
	}
	if peer.byTxQ {
		return q % peer.nq
	}
	n := peer.nq
	if u := int(peer.useQ.Load()); u > 0 {
		n = u
	}
	if peer.l3 {
		return peer.steer.IPQueue(pk.Data(), n)
	}
	return peer.steer.FrameQueue(pk.Data(), n)
}

func (p *MemPort) deliver(q int, pk *Packet, sink Sink, touched []bool) bool {
	j := p.rxQueue(q, pk)
	ring := p.peer.in[j][q]
	if sink != nil {
		// The sink must see only frames that are delivered, and see them before the
		// receiver owns them, so check for room first. We are the ring's only producer and
		// the consumer only frees cells, so room seen here is still there at Push.
		if ring.Len() >= ring.Cap() {
			p.txStats[q].txRingFull.Add(1)
			return false
		}
		p.capture(sink, pk)
	}
	pk.MarkAlien()
	if !ring.Push(pk) {
		pk.alien = false
		p.txStats[q].txRingFull.Add(1)
		return false
	}
	p.txStats[q].delivered.Add(1)
	touched[j] = true
	return true
}

func (p *MemPort) capture(sink Sink, pk *Packet) {
	pk.Time = p.clock.Now()
	p.sink.mu.Lock()
	sink(pk.Time, pk.Data())
	p.sink.mu.Unlock()
}

// delay holds a frame back; a helper goroutine wakes the receiver when it is due (delays are
// a test facility, not a fast path).
func (p *MemPort) delay(q int, pk *Packet, d time.Duration, sink Sink) {
	peer := p.peer
	j := p.rxQueue(q, pk)
	pk.MarkAlien()
	if sink != nil {
		p.capture(sink, pk)
	}
	pk.Time = p.clock.Now()
	at := pk.Time + int64(d)
	dq := &peer.delayed[j]
	dq.mu.Lock()
	dq.items = append(dq.items, delayedFrame{pkt: pk, at: at, txq: q})
	sort.SliceStable(dq.items, func(a, b int) bool { return dq.items[a].at < dq.items[b].at })
	dq.n.Store(int32(len(dq.items)))
	dq.mu.Unlock()
	p.txStats[q].delivered.Add(1)
	if wb := peer.wakers[j].Load(); wb != nil {
		w := wb.w
		t := p.clock.NewTimer(d)
		go func() {
			<-t.C()
			w.Wake()
		}()
	}
}

package tcp

import (
	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/flowtable"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/queue"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// Timer kinds of this package; the stack dispatches wheel timers with Kind below
// tcpdrv.TimerKindLimit to the shard's Fire.
const (
	timerRequest  uint8 = iota + 1 // SYN-ACK retransmission / request expiry
	timerRtx                       // SYN, data and FIN retransmission
	timerDelack                    // delayed ACK
	timerTimeWait                  // TIME-WAIT expiry
	timerAlive                     // keepalive probes (keepalive.go)
	timerChunks                    // the chunk pool's decay (buffer.go)
	timerKinds                     // first kind this package does not use
)

// The stack's own timer kinds start at tcpdrv.TimerKindLimit.
var _ [tcpdrv.TimerKindLimit - timerKinds]struct{}

func init() {
	tcpdrv.NewShard = func(e any, id int, env tcpdrv.Env, w *wheel.Wheel, ctr *stats.Counters) tcpdrv.Shard {
		return e.(*Engine).newShard(id, env, w, ctr)
	}
}

// shard is one shard's TCP: its flow tables, pools and pending work. Everything in it is
// touched only by the goroutine that runs the shard, except the work list, which application
// goroutines push to. It implements tcpdrv.Shard.
type shard struct {
	eng   *Engine
	id    int
	env   tcpdrv.Env // the stack shard that runs this one
	wheel *wheel.Wheel
	ctr   *stats.Counters
	now   int64

	est *flowtable.Table[*endpoint] // SYN-SENT .. LAST-ACK
	syn *flowtable.Table[*request]  // the SYN table: this shard's requests, all listeners
	tw  *flowtable.Table[*timewait] // TIME-WAIT

	reqFree []*request
	twFree  []*timewait
	epFree  *queue.MPMC[*endpoint] // shared with dialing application goroutines
	epCache []*endpoint            // the shard's own LIFO of recently freed endpoints
	chunks  *chunkPool             // buffer chunks, shared with application goroutines
	decay   wheel.Timer            // the chunk pool's decay, armed while its shared ring holds more than its reserve
	segs    segPools               // scoreboard rings (sender.go)
	ooo     oooPool                // out-of-order range lists (receiver.go)
	// newlyLost counts the segments marked lost since the ACK being processed arrived
	// (Linux's rs->losses, for PRR in sender.go); ackInput resets it.
	newlyLost uint32
	kaFree    *kaTimer // keepalive timers not lent to a connection

	work  queue.MPSCList[endpoint, *endpoint]
	wakes []*endpoint // endpoints whose application waiters are signalled after the tx flush
	// txHeld are the endpoints whose output stopped because the stack's transmit queue was
	// backlogged; ProcessWork resumes them, in order, once it has room.
	txHeld []*endpoint

	ctl ctlQueue

	seg     segment
	outOpts header.TCPOptions
	// The timestamp offset of the last address pair (it depends on the addresses only, so a
	// busy server answering one client address, or a client dialing one server, hashes once).
	tsKey   hash.Key // only its addresses and V6 count
	tsOff   uint32
	tsValid bool
	perturb [256]uint32
	fireFn  func(t *wheel.Timer, now int64)
}

// newShard makes shard id's TCP. The stack gives it the shard's wheel and counters.
func (e *Engine) newShard(id int, env tcpdrv.Env, w *wheel.Wheel, ctr *stats.Counters) *shard {
	s := &shard{
		eng:     e,
		id:      id,
		env:     env,
		wheel:   w,
		ctr:     ctr,
		est:     flowtable.New[*endpoint](256),
		syn:     flowtable.New[*request](256),
		tw:      flowtable.New[*timewait](256),
		epFree:  queue.NewMPMC[*endpoint](1 << 12),
		epCache: make([]*endpoint, 0, 256),
		chunks:  newChunkPool(1 << 14),
	}
	s.decay.Kind, s.decay.Owner = timerChunks, s
	s.fireFn = s.Fire
	e.shards[id] = s
	return s
}

// ID returns the shard's index.
func (s *shard) ID() int { return s.id }

// SetNow tells the shard the time of the current poll iteration.
func (s *shard) SetNow(now int64) { s.now = now }

// HasWork reports whether application goroutines handed the shard work it has not done.
func (s *shard) HasWork() bool { return !s.work.Empty() || s.ctl.pending() || len(s.txHeld) > 0 }

// Input processes one TCP segment that arrived for this shard. seg is the IP payload; key
// and h are its flow key (local = our address; its addresses, of either family, are the
// datagram's, even when seg is too short for ports) and flow hash; csumOK says the link
// already vouched for the checksum. The caller frees the packet after Input returns:
// nothing here keeps a reference to seg.
func (s *shard) Input(seg []byte, key *hash.Key, h uint64, csumOK bool) {
	s.ctr.Inc(stats.TcpInSegs)
	t, err := header.ParseTCP(seg)
	if err != nil {
		s.ctr.Inc(stats.TcpInErrs)
		return
	}
	if !csumOK && !checksumValid(t, key) {
		s.ctr.Inc(stats.TcpInCsumErrors)
		s.ctr.Inc(stats.TcpInErrs)
		return
	}
	sg := &s.seg
	sg.reset(t, key, h)
	// Malformed options do not cost the segment: like Linux's tcp_parse_options we keep
	// what could be read and go on (a SYN with an MSS option of length 3 is still answered).
	_ = header.ParseTCPOptionsTolerant(t.Options(), &sg.opts)
	s.demux(sg)
}

// demux finds the segment's owner in Linux's order: established (and half-open active)
// connections, requests, TIME-WAIT, then listeners.
func (s *shard) demux(sg *segment) {
	if ep, ok := s.est.Get(&sg.key, sg.hash); ok {
		s.endpointInput(ep, sg)
		return
	}
	if req, ok := s.syn.Get(&sg.key, sg.hash); ok {
		s.requestInput(req, sg)
		return
	}
	if tw, ok := s.tw.Get(&sg.key, sg.hash); ok {
		if !s.timewaitInput(tw, sg) {
			return
		}
		// A SYN that TIME-WAIT accepted as a new connection continues to the listener.
	}
	l := s.eng.lookupListener(&sg.key)
	if l == nil || l.closed.Load() {
		s.sendResetFor(sg)
		return
	}
	s.listenInput(l, sg)
}

// Fire runs an expired timer of this package.
func (s *shard) Fire(t *wheel.Timer, now int64) {
	s.now = now
	switch t.Kind {
	case timerRequest:
		s.requestTimer(t.Owner.(*request))
	case timerRtx:
		s.rtxFire(t.Owner.(*endpoint)) // rtxTimer under TCP_USER_TIMEOUT
	case timerDelack:
		s.delackTimer(t.Owner.(*endpoint))
	case timerTimeWait:
		s.timewaitTimer(t.Owner.(*timewait))
	case timerAlive:
		s.keepaliveTimer(t.Owner.(*endpoint))
	case timerChunks:
		if _, more := s.chunks.decay(); more {
			s.wheel.Schedule(&s.decay, now+chunkDecay)
		}
	}
}

// ProcessWork does what application goroutines asked for since the last call and returns
// how many connections it touched.
func (s *shard) ProcessWork() int {
	n := 0
	if s.ctl.pending() {
		n += s.ctl.run(s)
	}
	for ep := s.work.TakeAll(); ep != nil; n++ {
		next := queue.Next[endpoint, *endpoint](ep)
		// Clear queued before taking the bits: a post that lands in between re-queues ep.
		ep.queued.Store(false)
		bits := ep.pending.Swap(0)
		s.handleWork(ep, bits)
		ep = next
	}
	if len(s.txHeld) > 0 {
		n += s.resumeHeld()
	}
	if !s.decay.Pending() && s.chunks.shared.Len() > chunkReserve {
		// Chunks came back (an application read or a connection's end): the decay
		// returns those nobody takes again.
		s.wheel.Schedule(&s.decay, s.now+chunkDecay)
	}
	return n
}

// FlushWakes signals the application goroutines waiting on connections that changed during
// this iteration. The stack calls it after transmitting, so replies are on the wire first.
func (s *shard) FlushWakes() {
	for i, ep := range s.wakes {
		ep.inWakes = false
		if ep.events != nil {
			s.deliverEvents(ep)
			s.wakes[i] = nil
			continue
		}
		if ep.wakeRd {
			ep.wakeRd = false
			ep.signalRd()
		}
		if ep.wakeWr {
			ep.wakeWr = false
			ep.signalWr()
		}
		s.wakes[i] = nil
	}
	s.wakes = s.wakes[:0]
}

// deliverEvents runs an event-driven connection's callbacks: OnOpen once it is
// established, OnData when there is something to read (or an error to report), OnWritable
// when room came back after a TryWrite ran out.
func (s *shard) deliverEvents(ep *endpoint) {
	rd, wr := ep.wakeRd, ep.wakeWr
	ep.wakeRd, ep.wakeWr = false, false
	w := ep.opw.Load()
	if w&opClosed != 0 {
		return // the application has closed it: no more events
	}
	h := Handle{ep: ep, gen: uint32(w >> 32)}
	ev := ep.events
	if !ep.opened && ep.state.synchronized() {
		ep.opened = true
		ev.OnOpen(h)
	}
	if rd && (ep.opened || ep.state == StateClosed) && ep.readable() {
		ev.OnData(h)
	}
	if wr && ep.opened && ep.wantWr.Load() && ep.wantWr.CompareAndSwap(true, false) {
		ev.OnWritable(h)
	}
}

func (s *shard) queueWake(ep *endpoint, rd, wr bool) {
	ep.wakeRd = ep.wakeRd || rd
	ep.wakeWr = ep.wakeWr || wr
	if !ep.inWakes {
		ep.inWakes = true
		s.wakes = append(s.wakes, ep)
	}
}

// Len returns the number of connections, requests and TIME-WAIT entries the shard holds.
func (s *shard) Len() (conns, requests, timewaits int) {
	return s.est.Len(), s.syn.Len(), s.tw.Len()
}

// tsOffset is secrets.tsOffset for k's addresses with a one-entry cache.
func (s *shard) tsOffset(k *hash.Key) uint32 {
	c := &s.tsKey
	if !s.tsValid || c.LocalAddr != k.LocalAddr || c.RemoteAddr != k.RemoteAddr || c.V6 != k.V6 {
		c.LocalAddr, c.RemoteAddr, c.V6 = k.LocalAddr, k.RemoteAddr, k.V6
		s.tsOff, s.tsValid = s.eng.sec.tsOffset(k), true
	}
	return s.tsOff
}

package tcp

import (
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/queue"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// Work an application goroutine hands to a connection's shard (endpoint.pending bits).
const (
	pendConnect uint32 = 1 << iota // start the active open (Dial)
	pendSend                       // new bytes in the send ring
	pendWindow                     // the application freed receive space: maybe a window update
	pendClose                      // the application closed: FIN after the data (or RST)
	pendAbort                      // reset now (cancelled Dial, listener closed with the child queued)
	pendFree                       // every reference is gone: return it to the pool
	pendTrim                       // the application emptied the receive buffer: give its chunk back
	pendShutWr                     // shutdown(SHUT_WR): FIN after the data, reads go on
	pendAlive                      // keepalive turned on or off, or its idle time changed
)

// opword layout: generation in the high 32 bits, a closed bit, and the count of application
// operations in flight (Go's net uses the same idea, fdMutex, to make Close safe against
// concurrent Read and Write).
const (
	opClosed = 1 << 31
	opCount  = opClosed - 1
)

// endpoint is a connection. The first group of fields is shared with application
// goroutines and only touched through atomics or the rings; the rest belongs to the shard.
type endpoint struct {
	// ---- shared with applications ----
	link    queue.Link[endpoint]
	queued  atomic.Bool
	pending atomic.Uint32
	opw     atomic.Uint64
	refs    atomic.Int32 // one for the shard, one for the application (or the accept queue)
	pub     atomic.Uint32
	errc    atomic.Int32
	eof     atomic.Bool   // FIN received and every byte before it delivered to rcv
	advWnd  atomic.Uint32 // receive space the shard last advertised (bytes)
	// pushedAck mirrors receiver.pushed != 0 for the application's reads: the read that
	// empties the buffer then asks the shard to send the delayed ACK (ackDrained).
	pushedAck atomic.Bool
	keyed     atomic.Bool // key is set (an active open has picked its port)
	estab     atomic.Bool // the connection reached ESTABLISHED at some point
	noDelay   atomic.Bool // TCP_NODELAY: no Nagle
	rdWait    atomic.Bool
	wrWait    atomic.Bool
	rdCh      chan struct{}
	wrCh      chan struct{}
	rcv       byteRing
	snd       byteRing

	rdDeadline, wrDeadline atomic.Int64 // stack clock ns, 0 = none
	rdTimer, wrTimer       clock.Timer  // made on first use, reused with the endpoint
	dialAddr               netip.Addr   // set by Dial before pendConnect (unmapped)
	dialPort               uint16
	dialLocalPort          uint16
	synCnt                 uint8 // TCP_SYNCNT of a Dial (0: tcp_syn_retries)

	rdMu, wrMu sync.Mutex    // one reader and one writer at a time (the rings have one of each)
	events     Events        // run-to-completion callbacks instead of waking goroutines
	userData   atomic.Uint64 // the application's own (Handle.SetUserData)
	wantWr     atomic.Bool   // TryWrite ran out of room: OnWritable is wanted
	bufLocks   atomic.Uint32 // SetReadBuffer / SetWriteBuffer fixed a size (bufsize.go)
	opts       sockOpts      // socket options the application set (sockopt.go)

	// ---- the shard's ----
	sh  *shard
	rtx wheel.Timer
	ack wheel.Timer
	ka  *kaTimer // keepalive, lent by the shard while it is on (keepalive.go)
	conn
}

// conn is the shard-owned state of a connection. It is one struct so that recycling an
// endpoint clears it with a single assignment.
type conn struct {
	key      hash.Key
	hash     uint64
	listener *Listener // the listener of a child (until Accept), or nil
	rto      int64     // current retransmission timeout (ns)
	srtt     int64
	rttvar   int64
	retries  int      // consecutive retransmissions of the same data (or SYN)
	rttStart int64    // when the SYN being timed was sent
	synStart int64    // when the first SYN went out (active open)
	delack   int      // bytes received since the last ACK we sent
	guard    ackGuard // RFC 5961 bounds and the out-of-window ACK limit (challenge.go)
	alive             // keepalive and user-timeout bookkeeping (keepalive.go)
	icmpConn          // ICMP soft errors, RTO reverts and the path MTU (icmp.go, pmtu.go)
	receiver
	sender

	iss, irs seqnum.Value
	sndUna   seqnum.Value
	sndNxt   seqnum.Value
	sndMax   seqnum.Value // highest sequence sent (snd_nxt never rewinds: they are equal)
	sndSml   seqnum.Value // end of the last segment shorter than a full one (Nagle)
	sndWnd   uint32
	sndWl1   seqnum.Value
	sndWl2   seqnum.Value
	rcvNxt   seqnum.Value
	rcvAdv   seqnum.Value // right edge of the window last advertised
	tsRecent uint32
	tsOff    uint32
	mss      uint16 // effective send MSS

	state     State
	inTable   bool
	orphan    bool // the application closed it
	sndWscale uint8
	rcvWscale uint8
	tsOK      bool
	sackOK    bool
	timing    bool  // a segment is being timed (Karn: not after a retransmission)
	finQueued bool  // the application closed: FIN goes after the data
	finSent   bool  // the FIN is at sndNxt-1
	finEver   bool  // a FIN was sent: sndMax includes it
	ackNow    bool  // an ACK must go out at the end of this input
	zwpOn     bool  // zero-window probing is on (keepalive.go, TCP_USER_TIMEOUT)
	kaProbes  uint8 // keepalive probes unanswered (Linux icsk_probes_out)
	wakeRd    bool
	wakeWr    bool
	inWakes   bool
	txHeld    bool // in the shard's txHeld list: the transmit queue was full (sender.go holdTx)
	opened    bool // OnOpen was delivered (event-driven connections)
}

// QueueLink lets endpoints sit in a shard's work list.
func (ep *endpoint) QueueLink() *queue.Link[endpoint] { return &ep.link }

// allocEndpoint takes an endpoint from the shard's pool (any goroutine may call it) with its
// references set for a new connection: one for the shard, one for the application side.
func (s *shard) allocEndpoint() *endpoint {
	ep, ok := s.epFree.Pop()
	return s.initEndpoint(ep, ok)
}

// allocChild takes an endpoint on the shard's own goroutine: from its LIFO cache first,
// whose endpoints are still warm in this core's cache.
func (s *shard) allocChild() *endpoint {
	if n := len(s.epCache); n > 0 {
		ep := s.epCache[n-1]
		s.epCache[n-1] = nil
		s.epCache = s.epCache[:n-1]
		return s.initEndpoint(ep, true)
	}
	return s.allocEndpoint()
}

func (s *shard) initEndpoint(ep *endpoint, ok bool) *endpoint {
	if !ok {
		ep = &endpoint{
			sh:   s,
			rdCh: make(chan struct{}, 1),
			wrCh: make(chan struct{}, 1),
		}
		ep.rtx.Kind, ep.rtx.Owner = timerRtx, ep
		ep.ack.Kind, ep.ack.Owner = timerDelack, ep
		ep.opw.Store(1 << 32)
	}
	rcv, snd := s.initialBuffers(ep)
	ep.rcv.reset(s.chunks, rcv, true)
	ep.snd.reset(s.chunks, snd, false)
	ep.refs.Store(2)
	// A recycled endpoint was left clean by freeEndpoint; only a new one needs these.
	if !ok {
		ep.pub.Store(uint32(StateClosed))
	}
	return ep
}

// gen returns the endpoint's current generation (what a Conn handle remembers).
func (ep *endpoint) gen() uint32 { return uint32(ep.opw.Load() >> 32) }

// freeEndpoint returns ep to the pool. Shard only, after every reference is gone.
func (s *shard) freeEndpoint(ep *endpoint) {
	s.wheel.Cancel(&ep.rtx)
	s.wheel.Cancel(&ep.ack)
	s.kaStop(ep)
	g := ep.gen() + 1
	if g == 0 {
		g = 1
	}
	ep.opw.Store(uint64(g) << 32)
	// The buffers' chunks go back now: a pooled endpoint holds no buffer memory.
	ep.rcv.freeAll()
	ep.snd.freeAll()
	ep.sb.release()
	s.clearOOO(ep)
	ep.pushedAck.Store(false)
	ep.conn = conn{}
	ep.dialAddr, ep.dialPort, ep.dialLocalPort, ep.synCnt = netip.Addr{}, 0, 0, 0
	ep.events = nil
	if ep.userData.Load() != 0 {
		ep.userData.Store(0)
	}
	ep.opts.clear()
	if ep.wantWr.Load() {
		ep.wantWr.Store(false)
	}
	clearU32(&ep.bufLocks, 0)
	// Clear what the last connection set, with a store only where something was set (an
	// atomic store costs an exchange; a load is a plain move).
	clearU32(&ep.pub, uint32(StateClosed))
	if ep.errc.Load() != errNone {
		ep.errc.Store(errNone)
	}
	if ep.eof.Load() {
		ep.eof.Store(false)
	}
	if ep.rdWait.Load() {
		ep.rdWait.Store(false)
	}
	if ep.wrWait.Load() {
		ep.wrWait.Store(false)
	}
	clearU32(&ep.advWnd, 0)
	if ep.keyed.Load() {
		ep.keyed.Store(false)
	}
	if ep.estab.Load() {
		ep.estab.Store(false)
	}
	if ep.noDelay.Load() {
		ep.noDelay.Store(false)
	}
	if ep.rdDeadline.Load() != 0 {
		ep.rdDeadline.Store(0)
	}
	if ep.wrDeadline.Load() != 0 {
		ep.wrDeadline.Store(0)
	}
	if ep.pending.Load() != 0 {
		ep.pending.Store(0)
	}
	if len(ep.rdCh) > 0 {
		<-ep.rdCh
	}
	if len(ep.wrCh) > 0 {
		<-ep.wrCh
	}
	if len(s.epCache) < cap(s.epCache) {
		s.epCache = append(s.epCache, ep)
		return
	}
	// The cache is full: the older half goes where dialing goroutines can take it.
	half := len(s.epCache) / 2
	for _, e := range s.epCache[:half] {
		if !s.epFree.Push(e) {
			break // past the shared ring's capacity the garbage collector takes the rest
		}
	}
	n := copy(s.epCache, s.epCache[half:])
	clear(s.epCache[n:])
	s.epCache = append(s.epCache[:n], ep)
}

func clearU32(a *atomic.Uint32, v uint32) {
	if a.Load() != v {
		a.Store(v)
	}
}

// postLazy hands work to the endpoint's shard without waking it: the shard does it at its
// next iteration, whatever wakes it (housekeeping that need not be prompt).
func (ep *endpoint) postLazy(bits uint32) {
	ep.pending.Or(bits)
	if ep.queued.CompareAndSwap(false, true) {
		ep.sh.work.Push(ep)
	}
}

// post hands work to the endpoint's shard from any goroutine.
func (ep *endpoint) post(bits uint32) {
	ep.pending.Or(bits)
	if ep.queued.CompareAndSwap(false, true) {
		ep.sh.work.Push(ep)
	}
	// Wake even when ep was queued already: a lazy post may have queued it without waking
	// the shard. Waking a shard that is not parked costs one atomic load.
	ep.sh.env.Wake()
}

// unrefApp drops the application's reference from an application goroutine (or from another
// shard): the owner frees the endpoint when it was the last one.
func (ep *endpoint) unrefApp() {
	if ep.refs.Add(-1) == 0 {
		ep.post(pendFree)
	}
}

// unrefShard drops the shard's reference; shard only.
func (s *shard) unrefShard(ep *endpoint) {
	if ep.refs.Add(-1) == 0 {
		s.freeEndpoint(ep)
	}
}

func (ep *endpoint) signalRd() {
	if ep.rdWait.Load() {
		select {
		case ep.rdCh <- struct{}{}:
		default:
		}
	}
}

func (ep *endpoint) signalWr() {
	if ep.wrWait.Load() {
		select {
		case ep.wrCh <- struct{}{}:
		default:
		}
	}
}

// setState is the one place a connection changes state, keeping TcpCurrEstab, the
// application-visible state and the tables right.
func (s *shard) setState(ep *endpoint, st State) {
	old := ep.state
	if old == st {
		return
	}
	switch {
	case !old.counted() && st.counted():
		s.ctr.Inc(stats.TcpCurrEstab)
	case old.counted() && !st.counted():
		s.ctr.Dec(stats.TcpCurrEstab)
	}
	if st == StateClosed {
		// Linux tcp_set_state(TCP_CLOSE) and tcp_done.
		if old == StateEstablished || old == StateCloseWait {
			s.ctr.Inc(stats.TcpEstabResets)
		}
		if old == StateSynSent || old == StateSynRecv {
			s.ctr.Inc(stats.TcpAttemptFails)
		}
	}
	if st == StateEstablished && !ep.estab.Load() {
		ep.estab.Store(true)
	}
	ep.state = st
	ep.pub.Store(uint32(st))
	switch st {
	case StateEstablished:
		s.keepaliveStart(ep)
	case StateFinWait2, StateTimeWait, StateClosed:
		ep.opts.lingerWake() // a lingering Close waits for one of these
	}
}

// handleWork acts on what the application asked for.
func (s *shard) handleWork(ep *endpoint, bits uint32) {
	if bits&pendFree != 0 {
		if ep.refs.Load() == 0 {
			s.freeEndpoint(ep)
		}
		return
	}
	if bits&pendConnect != 0 {
		s.connect(ep)
	}
	if ep.state == StateClosed {
		return
	}
	if bits&pendAlive != 0 {
		s.keepaliveChanged(ep)
	}
	if bits&pendAbort != 0 {
		s.abort(ep, errAborted, true)
		return
	}
	if bits&pendClose != 0 {
		s.appClose(ep)
		if ep.state == StateClosed {
			return
		}
	}
	if bits&pendShutWr != 0 {
		s.shutdownWrite(ep)
	}
	if bits&(pendSend|pendClose|pendShutWr) != 0 {
		s.output(ep)
	}
	if bits&pendWindow != 0 && ep.state.synchronized() {
		s.maybeWindowUpdate(ep)
		s.ackDrained(ep)
	}
	if bits&pendTrim != 0 {
		s.trimRcv(ep)
	}
}

// closeEndpoint finishes a connection: it leaves the tables, its timers stop, waiters
// wake, and the shard drops its reference.
func (s *shard) closeEndpoint(ep *endpoint, errc int32) {
	if errc == errTimedOut && ep.softErr != errNone {
		errc = ep.softErr // Linux tcp_write_err: sk_err_soft ?: ETIMEDOUT
	}
	if errc != errNone && ep.errc.Load() == errNone {
		ep.errc.Store(errc)
	}
	s.setState(ep, StateClosed)
	ep.pub.Store(uint32(StateClosed)) // also when it never left CLOSED (a Dial that found no port)
	ep.opts.lingerWake()              // setState did not, in that case
	s.release(ep)
}

// release is the end of a connection's life on its shard, whether it closed or went on
// into TIME-WAIT: its timers stop, it leaves the established table, the application
// is woken to see the final state, and the shard drops its reference.
func (s *shard) release(ep *endpoint) {
	if ep.txHeld {
		s.unholdTx(ep)
	}
	s.wheel.Cancel(&ep.rtx)
	s.wheel.Cancel(&ep.ack)
	ep.sb.release()
	s.clearOOO(ep)
	s.kaStop(ep)
	if ep.inTable {
		s.est.Delete(&ep.key, ep.hash)
		ep.inTable = false
	}
	s.queueWake(ep, true, true)
	s.unrefShard(ep)
}

// abort resets a connection: RST|ACK to the peer where the state calls for one (Linux
// tcp_need_reset and tcp_send_active_reset: seq = SND.NXT, ack = RCV.NXT), then close.
func (s *shard) abort(ep *endpoint, errc int32, sendRST bool) {
	switch ep.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateFinWait2, StateSynRecv:
		if sendRST {
			s.sendRST(&ep.key, ep.hash, ep.sndNxt, ep.rcvNxt, true)
		}
	}
	s.closeEndpoint(ep, errc)
}

// sendMSS is the payload a full segment carries: the MSS less the options every segment
// repeats (Linux tcp_current_mss takes the 12 bytes of timestamps off).
func (ep *endpoint) sendMSS() uint32 {
	if ep.tsOK {
		return uint32(ep.mss) - 12
	}
	return uint32(ep.mss)
}

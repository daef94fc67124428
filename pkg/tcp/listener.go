package tcp

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/queue"
)

// Listener is a socket in LISTEN. Its SYN queue is spread over the shards' SYN tables and
// bounded by shared counters; its accept queue is one lock-free ring that every shard feeds
// and Accept drains. It implements net.Listener.
type Listener struct {
	eng  *Engine
	addr netip.Addr // as bound: invalid for every address of both families
	port uint16
	keys []listenKey // its places in the registry (two for a dual-stack listener)

	// Read on every SYN, rarely written.
	backlog     atomic.Int32 // min(listen's argument, somaxconn): Linux sk_max_ack_backlog
	maxQlenLog  atomic.Int32 // linux-3.12: the SYN table's size, as a power of two
	deferAccept atomic.Int32 // TCP_DEFER_ACCEPT, in SYN-ACK retransmissions
	synCnt      atomic.Int32 // TCP_SYNCNT (0: tcp_synack_retries)
	maxSeg      atomic.Int32 // TCP_MAXSEG (0: the link's)
	closed      atomic.Bool
	events      Events // event-driven listener: children go to the callbacks, not the ring
	keepAlive   kaConf // SO_KEEPALIVE and its knobs, for every child
	userTimeout uint32 // TCP_USER_TIMEOUT in ms, for every child

	// The SYN queue's length is kept per shard, each on its own cache line and written only
	// by its shard: a SYN adds to its own shard's count and reads the others', instead of
	// every shard bouncing one line between cores. Like Linux's lockless listener, two shards
	// admitting at the same instant can overshoot the limit by one each.
	synq []shardQueue

	_             [64]byte
	ackBacklog    atomic.Int32 // children in (or reserved for) the accept queue
	_             [60]byte
	waiters       atomic.Int32
	_             [60]byte
	lastOverflow  atomic.Int64 // stack clock of the last SYN-queue overflow (SYN cookies)
	cookiesActive atomic.Bool  // lastOverflow is meaningful
	_             [64]byte

	closeLeft atomic.Int32
	acceptQ   *queue.MPMC[*endpoint]
	acceptCh  chan struct{}
	done      chan struct{}
	deadline  atomic.Int64
}

// shardQueue is one shard's part of a listener's SYN queue.
type shardQueue struct {
	qlen  atomic.Int32 // requests of this listener in this shard's SYN table
	young atomic.Int32 // of which never timed out
	_     [56]byte
}

// qlen is the SYN queue's length over all shards (Linux inet_csk_reqsk_queue_len).
func (l *Listener) qlen() int32 {
	var n int32
	for i := range l.synq {
		n += l.synq[i].qlen.Load()
	}
	return n
}

// qlenYoung is the number of requests that never timed out (inet_csk_reqsk_queue_young).
func (l *Listener) qlenYoung() int32 {
	var n int32
	for i := range l.synq {
		n += l.synq[i].young.Load()
	}
	return n
}

func newListener(e *Engine, addr netip.Addr, port uint16, keys []listenKey, opts ListenOptions) *Listener {
	l := &Listener{
		eng:      e,
		addr:     addr,
		port:     port,
		keys:     keys,
		acceptQ:  queue.NewMPMC[*endpoint](e.settings.Somaxconn + 1),
		acceptCh: make(chan struct{}, 1),
		done:     make(chan struct{}),
		synq:     make([]shardQueue, len(e.shards)),
	}
	l.events = opts.Events
	l.keepAlive, _ = optionKeepAlive(opts.KeepAlive)   // Listen checked it
	l.userTimeout, _ = userTimeoutMs(opts.UserTimeout) // Listen checked it
	l.setBacklog(opts.Backlog)
	l.SetDeferAccept(opts.DeferAccept)
	l.synCnt.Store(int32(max(opts.SynCnt, 0)))
	l.maxSeg.Store(int32(max(opts.MaxSeg, 0)))
	return l
}

// setBacklog applies listen()'s clamp (a negative backlog, as an unsigned number, is
// larger than somaxconn) and, for linux-3.12, sizes the SYN table as reqsk_queue_alloc did.
func (l *Listener) setBacklog(n int) {
	st := &l.eng.settings
	if n < 0 || n > st.Somaxconn {
		n = st.Somaxconn
	}
	l.backlog.Store(int32(n))
	// linux-3.12: nr = roundup_pow_of_two(max(min(backlog, tcp_max_syn_backlog), 8) + 1);
	// max_qlen_log = the smallest k >= 3 with 2^k >= nr (spec §2; seed 002 quotes the code).
	nr := max(min(n, st.TCPMaxSynBacklog), 8) + 1
	p := 1
	for p < nr {
		p <<= 1
	}
	k := int32(3)
	for (1 << k) < p {
		k++
	}
	l.maxQlenLog.Store(k)
}

// SetBacklog is listen() called again on a listening socket: only the accept-queue limit
// changes (spec §2).
func (l *Listener) SetBacklog(n int) {
	st := &l.eng.settings
	if n < 0 || n > st.Somaxconn {
		n = st.Somaxconn
	}
	l.backlog.Store(int32(n))
}

// SetDeferAccept sets TCP_DEFER_ACCEPT, converting the time to SYN-ACK retransmissions the
// way Linux's secs_to_retrans does (the smallest count whose cumulative timeout covers it).
func (l *Listener) SetDeferAccept(d time.Duration) {
	if d <= 0 {
		l.deferAccept.Store(0)
		return
	}
	secs := int64((d + time.Second - 1) / time.Second)
	res := int32(1)
	timeout := int64(1)
	period := timeout
	for secs > period && res < 255 {
		res++
		timeout <<= 1
		if timeout > int64(rtoMax/time.Second) {
			timeout = int64(rtoMax / time.Second)
		}
		period += timeout
	}
	l.deferAccept.Store(res)
}

// SetSynCnt sets TCP_SYNCNT: the SYN-ACK retransmission limit for this listener's requests.
func (l *Listener) SetSynCnt(n int) { l.synCnt.Store(int32(max(n, 0))) }

// SetMaxSeg sets TCP_MAXSEG: the MSS the listener advertises is at most n.
func (l *Listener) SetMaxSeg(n int) { l.maxSeg.Store(int32(max(n, 0))) }

// Backlog returns the accept-queue limit in force (sk_max_ack_backlog).
func (l *Listener) Backlog() int { return int(l.backlog.Load()) }

// AcceptQueueLen returns the number of children waiting for Accept (ss's Recv-Q).
func (l *Listener) AcceptQueueLen() int { return int(l.ackBacklog.Load()) }

// SynQueueLen returns the number of requests in the SYN queue.
func (l *Listener) SynQueueLen() int { return int(l.qlen()) }

// AddrPort returns the bound address and port; a listener on every address of both
// families (or IPv6 only) shows [::], as Go's net.Listen(":port") does.
func (l *Listener) AddrPort() netip.AddrPort {
	if !l.addr.IsValid() {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), l.port)
	}
	return netip.AddrPortFrom(l.addr, l.port)
}

// Families reports which address families the listener takes: both for a wildcard
// without IPV6_V6ONLY.
func (l *Listener) Families() (v4, v6 bool) {
	for _, k := range l.keys {
		if k.v6 {
			v6 = true
		} else {
			v4 = true
		}
	}
	return
}

// Addr implements net.Listener.
func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.AddrPort()) }

// synQueueFull is inet_csk_reqsk_queue_is_full for the profile (spec §2).
//
// For the linux profile the spec writes qlen >= backlog, but Linux 6.18 - measured on this
// project's machine, docs/experiments/linux-listen-queues.sh - keeps backlog+1 requests:
// since "tcp/dccp: allow a connection when sk_max_ack_backlog is zero" the test is
// qlen > backlog, the same shape as the accept queue's, so that listen(fd, 0) can still
// complete one handshake without SYN cookies. We follow the kernel.
func (l *Listener) synQueueFull() bool {
	if l.eng.settings.Profile == ProfileLinux312 {
		return l.qlen()>>l.maxQlenLog.Load() != 0
	}
	return l.qlen() > l.backlog.Load()
}

// acceptQueueFull is sk_acceptq_is_full: full when the length exceeds the backlog, so a
// backlog of n holds n+1 children.
func (l *Listener) acceptQueueFull() bool {
	return l.ackBacklog.Load() > l.backlog.Load()
}

// reserveAccept claims a place in the accept queue for a child about to be made; false when
// it is full. The CAS keeps the queue within backlog+1 even with every shard adding at once.
func (l *Listener) reserveAccept() bool {
	for {
		n := l.ackBacklog.Load()
		if n > l.backlog.Load() {
			return false
		}
		if l.ackBacklog.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// enqueue puts a child in the accept queue (its place reserved) and wakes one Accept.
func (l *Listener) enqueue(ep *endpoint) {
	if !l.acceptQ.Push(ep) {
		// Cannot happen: the ring holds somaxconn+1 and reservations never exceed the backlog+1.
		panic("tcp: accept ring overflow")
	}
	if l.waiters.Load() > 0 {
		l.signal()
	}
}

func (l *Listener) signal() {
	select {
	case l.acceptCh <- struct{}{}:
	default:
	}
}

// TryAcceptHandle returns a queued connection without waiting and without allocating:
// ErrWouldBlock when none is there.
func (l *Listener) TryAcceptHandle() (Handle, error) {
	ep, ok := l.acceptQ.Pop()
	if !ok {
		if l.closed.Load() {
			return Handle{}, ErrClosed
		}
		return Handle{}, ErrWouldBlock
	}
	l.ackBacklog.Add(-1)
	if l.waiters.Load() > 0 && l.acceptQ.Len() > 0 {
		l.signal() // pass the wake-up on to the next waiter
	}
	return Handle{ep: ep, gen: ep.gen()}, nil
}

// TryAccept is TryAcceptHandle as a *Conn.
func (l *Listener) TryAccept() (*Conn, error) {
	h, err := l.TryAcceptHandle()
	if err != nil {
		return nil, err
	}
	return NewConn(h), nil
}

// AcceptTCP waits for and returns the next connection.
func (l *Listener) AcceptTCP() (*Conn, error) {
	h, err := l.AcceptHandle()
	if err != nil {
		return nil, err
	}
	return NewConn(h), nil
}

// AcceptHandle waits for the next connection and returns it without allocating.
func (l *Listener) AcceptHandle() (Handle, error) {
	for {
		h, err := l.TryAcceptHandle()
		if err != ErrWouldBlock {
			return h, err
		}
		l.waiters.Add(1)
		if l.acceptQ.Len() == 0 && !l.closed.Load() {
			if err := l.wait(); err != nil {
				l.waiters.Add(-1)
				return Handle{}, err
			}
		}
		l.waiters.Add(-1)
	}
}

func (l *Listener) wait() error {
	dl := l.deadline.Load()
	if dl == 0 {
		select {
		case <-l.acceptCh:
		case <-l.done:
		}
		return nil
	}
	d := time.Duration(dl - l.eng.clock.Now())
	if d <= 0 {
		return ErrDeadline
	}
	t := l.eng.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-l.acceptCh:
	case <-l.done:
	case <-t.C():
		return ErrDeadline
	}
	return nil
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SetDeadline sets the deadline for Accept (zero clears it).
func (l *Listener) SetDeadline(t time.Time) error {
	if t.IsZero() {
		l.deadline.Store(0)
		return nil
	}
	l.deadline.Store(l.eng.clock.Now() + int64(time.Until(t)))
	l.signal()
	return nil
}

// Close stops listening (Linux inet_csk_listen_stop): new SYNs get RSTs, every request is
// dropped, and every child still in the accept queue is reset (spec S9).
func (l *Listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	l.eng.unregister(l)
	close(l.done)
	n := len(l.eng.shards)
	l.closeLeft.Store(int32(n))
	for _, s := range l.eng.shards {
		s.control(func(s *shard) {
			s.dropListenerRequests(l)
			// The last shard to let go of the listener empties the accept queue once more:
			// no shard can add a child after this point.
			if l.closeLeft.Add(-1) == 0 {
				l.drainAccept()
			}
		})
	}
	l.drainAccept()
	return nil
}

// drainAccept resets every child left in the accept queue.
func (l *Listener) drainAccept() {
	for {
		ep, ok := l.acceptQ.Pop()
		if !ok {
			return
		}
		l.ackBacklog.Add(-1)
		ep.post(pendAbort)
		ep.unrefApp()
	}
}

// Closed reports whether Close was called.
func (l *Listener) Closed() bool { return l.closed.Load() }

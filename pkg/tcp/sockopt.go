package tcp

import (
	"math"
	"net"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
)

// sockOpts are the socket options an application sets on a connection, and its half-closes.
// Application goroutines write them and the shard reads them, so each one is an atomic,
// kept in Linux's own units so that they fit in a few words of every endpoint; a recycled
// endpoint gets them back at their defaults (clear).
type sockOpts struct {
	flags       atomic.Uint32 // optKeepAlive, optRdShut, optWrShut
	linger      atomic.Int32  // SO_LINGER: 0 off (the default), else the timeout in seconds + 1
	keepIdle    atomic.Int32  // TCP_KEEPIDLE, s (0: tcp_keepalive_time)
	keepIntvl   atomic.Int32  // TCP_KEEPINTVL, s (0: tcp_keepalive_intvl)
	keepCnt     atomic.Int32  // TCP_KEEPCNT (0: tcp_keepalive_probes)
	userTimeout atomic.Uint32 // TCP_USER_TIMEOUT, ms (0: off)
	pendErr     atomic.Int32  // sk_err of a live connection with IP_RECVERR: the next read or write returns it (icmp.go)
	// The wait of a lingering Close, made by the first one the endpoint sees and kept with
	// it (most connections never linger, and pay one pointer for it).
	lw atomic.Pointer[lingerWaiter]
}

// sockOpts.flags bits.
const (
	optKeepAlive uint32 = 1 << iota // SO_KEEPALIVE
	optRdShut                       // shutdown(SHUT_RD)
	optWrShut                       // shutdown(SHUT_WR)
	optRecvErr                      // IP_RECVERR (icmp.go)
)

func (o *sockOpts) keepalive() bool { return o.flags.Load()&optKeepAlive != 0 }
func (o *sockOpts) rdShut() bool    { return o.flags.Load()&optRdShut != 0 }
func (o *sockOpts) wrShut() bool    { return o.flags.Load()&optWrShut != 0 }

// setFlag turns a flags bit on or off and reports whether it was on.
func (o *sockOpts) setFlag(bit uint32, on bool) bool {
	if on {
		return o.flags.Or(bit)&bit != 0
	}
	return o.flags.And(^bit)&bit != 0
}

// userTimeoutNs is TCP_USER_TIMEOUT in the shard's clock unit (0: off).
func (o *sockOpts) userTimeoutNs() int64 {
	return int64(o.userTimeout.Load()) * int64(time.Millisecond)
}

// lingerWaiter is what a lingering Close waits on: ch, which the shard signals when the
// state it waits for is reached (only while waiting is set), and a timer on the stack's
// clock, made on first use.
type lingerWaiter struct {
	waiting atomic.Bool
	ch      chan struct{}
	timer   clock.Timer
}

// clear puts the options back to their defaults for the endpoint's next connection, storing
// only where something was set. Shard only, once every reference is gone.
func (o *sockOpts) clear() {
	if o.flags.Load() != 0 {
		o.flags.Store(0)
	}
	if o.linger.Load() != 0 {
		o.linger.Store(0)
	}
	if o.keepIdle.Load() != 0 {
		o.keepIdle.Store(0)
	}
	if o.keepIntvl.Load() != 0 {
		o.keepIntvl.Store(0)
	}
	if o.keepCnt.Load() != 0 {
		o.keepCnt.Store(0)
	}
	if o.pendErr.Load() != 0 {
		o.pendErr.Store(0)
	}
	if o.userTimeout.Load() != 0 {
		o.userTimeout.Store(0)
	}
	if lw := o.lw.Load(); lw != nil && len(lw.ch) > 0 {
		<-lw.ch
	}
}

// Linux's limits for TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (MAX_TCP_KEEPIDLE,
// MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
const (
	maxKeepIdle  = 32767 * time.Second
	maxKeepIntvl = 32767 * time.Second
	maxKeepCnt   = 127
)

// Go's net uses these for the zero fields of a net.KeepAliveConfig and for
// SetKeepAlivePeriod(0) (defaultTCPKeepAliveIdle, ...Interval, ...Count).
const (
	goKeepIdle  = 15 * time.Second
	goKeepIntvl = 15 * time.Second
	goKeepCnt   = 9
)

// kaConf is a keepalive setting to apply; -1 in idle, intvl or cnt leaves that one as it is.
type kaConf struct {
	on          bool
	idle, intvl int32 // s
	cnt         int32
}

// keepSecs converts a keepalive time as Go's net does: zero means def, a negative d leaves
// the option alone (-1), anything else is rounded up to whole seconds (the kernel's unit)
// and must be within Linux's limit.
func keepSecs(d, def, limit time.Duration) (int32, error) {
	switch {
	case d < 0:
		return -1, nil
	case d == 0:
		d = def
	case d > limit:
		return 0, ErrInvalid
	}
	return int32((d + time.Second - 1) / time.Second), nil
}

// keepAliveConf converts a net.KeepAliveConfig with Go's meaning of its fields.
func keepAliveConf(cfg net.KeepAliveConfig) (kaConf, error) {
	k := kaConf{on: cfg.Enable}
	var err error
	if k.idle, err = keepSecs(cfg.Idle, goKeepIdle, maxKeepIdle); err != nil {
		return k, err
	}
	if k.intvl, err = keepSecs(cfg.Interval, goKeepIntvl, maxKeepIntvl); err != nil {
		return k, err
	}
	switch {
	case cfg.Count < 0:
		k.cnt = -1
	case cfg.Count == 0:
		k.cnt = goKeepCnt
	case cfg.Count > maxKeepCnt:
		return k, ErrInvalid
	default:
		k.cnt = int32(cfg.Count)
	}
	return k, nil
}

// optionKeepAlive is keepAliveConf for DialOptions and ListenOptions, where a config whose
// Enable is false leaves keepalive off and every knob at the stack's sysctls.
func optionKeepAlive(cfg net.KeepAliveConfig) (kaConf, error) {
	if !cfg.Enable {
		return kaConf{idle: -1, intvl: -1, cnt: -1}, nil
	}
	return keepAliveConf(cfg)
}

// setKeepAlive applies k (a store only where it changes something: a Dial calls it too).
func (o *sockOpts) setKeepAlive(k kaConf) {
	if k.idle >= 0 && o.keepIdle.Load() != k.idle {
		o.keepIdle.Store(k.idle)
	}
	if k.intvl >= 0 && o.keepIntvl.Load() != k.intvl {
		o.keepIntvl.Store(k.intvl)
	}
	if k.cnt >= 0 && o.keepCnt.Load() != k.cnt {
		o.keepCnt.Store(k.cnt)
	}
	if o.keepalive() != k.on {
		o.setFlag(optKeepAlive, k.on)
	}
}

// userTimeoutMs converts a TCP_USER_TIMEOUT to Linux's milliseconds, rounded up (so that no
// positive d turns the option off): at most math.MaxInt32, as Linux's int.
func userTimeoutMs(d time.Duration) (uint32, error) {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if d < 0 || ms > math.MaxInt32 {
		return 0, ErrInvalid
	}
	return uint32(ms), nil
}

// setUserTimeout applies a TCP_USER_TIMEOUT in milliseconds (a store only where it changes
// something: a Dial calls it too).
func (o *sockOpts) setUserTimeout(ms uint32) {
	if o.userTimeout.Load() != ms {
		o.userTimeout.Store(ms)
	}
}

// SetKeepAlive turns keepalive probes on or off (SO_KEEPALIVE). Until SetKeepAlivePeriod or
// SetKeepAliveConfig says otherwise, the probes follow the stack's tcp_keepalive_time,
// tcp_keepalive_intvl and tcp_keepalive_probes (Linux's 7200 s, 75 s and 9). Turning it on
// when it is on already changes nothing, as in Linux (tcp_set_keepalive).
func (h Handle) SetKeepAlive(on bool) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	if h.ep.opts.setFlag(optKeepAlive, on) != on {
		h.ep.post(pendAlive)
	}
	return nil
}

// SetKeepAlivePeriod sets how long the connection must be idle before the first keepalive
// probe (TCP_KEEPIDLE), as Go's net.TCPConn does: zero means 15 s, a negative d leaves it
// alone, and the time is rounded up to whole seconds (at most 32767).
func (h Handle) SetKeepAlivePeriod(d time.Duration) error {
	idle, err := keepSecs(d, goKeepIdle, maxKeepIdle)
	if err != nil {
		return err
	}
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	if idle >= 0 {
		h.ep.opts.keepIdle.Store(idle)
		h.ep.post(pendAlive)
	}
	return nil
}

// SetKeepAliveConfig sets keepalive as Go's net.TCPConn.SetKeepAliveConfig does: Enable
// turns it on or off; a zero Idle, Interval or Count means Go's default (15 s, 15 s, 9), a
// negative one leaves that setting alone. Linux's limits apply (32767 s, 127 probes).
func (h Handle) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	k, err := keepAliveConf(cfg)
	if err != nil {
		return err
	}
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.opts.setKeepAlive(k)
	h.ep.post(pendAlive)
	return nil
}

// SetUserTimeout sets TCP_USER_TIMEOUT, in whole milliseconds as Linux keeps it (0 turns it
// off; at most math.MaxInt32 ms, about 24.8 days): as in Linux, the connection is
// given up with ErrTimedOut once transmitted data (or a SYN, or a zero-window probe) has
// stayed unacknowledged that long, in place of tcp_retries2, and once keepalive probes have
// gone unanswered that long after the peer was last heard from, in place of the probe
// count.
func (h Handle) SetUserTimeout(d time.Duration) error {
	ms, err := userTimeoutMs(d)
	if err != nil {
		return err
	}
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.opts.setUserTimeout(ms)
	return nil
}

// SetLinger sets what Close does with data still waiting to be sent or acknowledged
// (SO_LINGER). sec < 0, the default: Close returns at once and the data and the FIN go in
// the background. sec == 0: Close resets the connection and discards them (TcpExtTCPAbortOnData).
// sec > 0: Close waits, as Linux's close(2) does, until the FIN is acknowledged or sec
// seconds have passed, and then returns, the connection finishing in the background.
func (h Handle) SetLinger(sec int) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	v := int32(0)
	if sec >= 0 {
		v = int32(min(sec, math.MaxInt32-1)) + 1
	}
	h.ep.opts.linger.Store(v)
	return nil
}

// lingerDone reports whether a lingering Close may return: the FIN was acknowledged or the
// connection is gone (Linux sk_stream_wait_close waits while FIN-WAIT-1, CLOSING or
// LAST-ACK; here the states before the shard takes the Close count as well).
func lingerDone(st State) bool {
	return st == StateFinWait2 || st == StateTimeWait || st == StateClosed
}

// lingerWait is the wait of a lingering Close, on the stack's clock. The Close holds an
// operation on the handle throughout, so the endpoint cannot be recycled under it, and it
// is the only Close of this connection, so it may make the waiter.
func (ep *endpoint) lingerWait(d time.Duration) {
	o := &ep.opts
	lw := o.lw.Load()
	if lw == nil {
		lw = &lingerWaiter{ch: make(chan struct{}, 1)}
		o.lw.Store(lw)
	}
	lw.waiting.Store(true)
	defer lw.waiting.Store(false)
	if lingerDone(State(ep.pub.Load())) {
		return
	}
	if lw.timer == nil {
		lw.timer = ep.sh.eng.clock.NewTimer(d)
	} else {
		lw.timer.Reset(d)
	}
	defer lw.timer.Stop()
	for !lingerDone(State(ep.pub.Load())) {
		select {
		case <-lw.ch:
		case <-lw.timer.C():
			return
		}
	}
}

// lingerWake wakes a lingering Close to look at the state again. Shard only.
func (o *sockOpts) lingerWake() {
	if lw := o.lw.Load(); lw != nil && lw.waiting.Load() {
		select {
		case lw.ch <- struct{}{}:
		default:
		}
	}
}

// CloseWrite shuts down the sending side (shutdown(SHUT_WR)): the FIN goes after the data
// already written, later writes fail with ErrBrokenPipe, and reads go on until the peer's
// FIN. A Write in progress is let finish first, so its bytes go before the FIN (a ReadFrom
// blocked reading its source holds CloseWrite until that read returns).
func (h Handle) CloseWrite() error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	ep := h.ep
	if State(ep.pub.Load()) == StateClosed {
		return ErrNotConnected
	}
	if ep.opts.setFlag(optWrShut, true) {
		return nil
	}
	ep.signalWr() // a Write waiting for room sees wrShut and returns
	ep.wrMu.Lock()
	ep.post(pendShutWr)
	ep.wrMu.Unlock()
	return nil
}

// CloseRead shuts down the receiving side (shutdown(SHUT_RD)). As in Linux nothing is sent:
// a Read that is waiting returns io.EOF, and later Reads return what has been received and
// then io.EOF instead of waiting. Closing with received data unread still resets the
// connection.
func (h Handle) CloseRead() error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	ep := h.ep
	if State(ep.pub.Load()) == StateClosed {
		return ErrNotConnected
	}
	ep.opts.setFlag(optRdShut, true)
	ep.signalRd()
	return nil
}

// shutdownWrite is shutdown(SHUT_WR) on the shard (Linux tcp_shutdown and tcp_close_state):
// the FIN is queued behind the data, the application keeps its reference and reads on.
func (s *shard) shutdownWrite(ep *endpoint) { s.closeState(ep) }

// inheritOptions gives a listener's child the listener's keepalive and TCP_USER_TIMEOUT
// (Linux copies them with the socket in tcp_create_openreq_child). Shard only, before the
// child is established.
func (s *shard) inheritOptions(ep *endpoint, l *Listener) {
	ep.opts.setKeepAlive(l.keepAlive)
	ep.opts.setUserTimeout(l.userTimeout)
}

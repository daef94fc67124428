package tcp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
)

// Handle is a connection as a plain value: the zero-allocation interface for servers and
// load generators that do not need net.Conn. The connection itself lives in its shard's
// pool and is recycled after both sides are done with it; the handle carries the
// generation it was issued for, so once closed every method returns net.ErrClosed (or a
// zero value) even if the connection has been reused, and no method of the zero Handle
// panics. A Handle may be used from several goroutines; reads are serialised with reads and
// writes with writes (a TryRead or TryWrite that finds another one in progress returns
// ErrWouldBlock instead of waiting).
type Handle struct {
	ep  *endpoint
	gen uint32
}

// Valid reports whether h was ever issued for a connection (the zero Handle was not); a
// closed handle stays valid, and its methods return net.ErrClosed or zero values.
func (h Handle) Valid() bool { return h.ep != nil }

// enter starts an operation: false if the handle is closed (or its endpoint reused).
func (h Handle) enter() bool {
	ep := h.ep
	if ep == nil {
		return false
	}
	for {
		w := ep.opw.Load()
		if uint32(w>>32) != h.gen || w&opClosed != 0 {
			return false
		}
		if ep.opw.CompareAndSwap(w, w+1) {
			return true
		}
	}
}

// exit ends an operation; the last one out after Close releases the application's
// reference.
func (h Handle) exit() {
	w := h.ep.opw.Add(^uint64(0))
	if w&opClosed != 0 && w&opCount == 0 {
		h.ep.unrefApp()
	}
}

// State returns the connection's TCP state (StateClosed once the handle is closed).
func (h Handle) State() State {
	if !h.enter() {
		return StateClosed
	}
	defer h.exit()
	return State(h.ep.pub.Load())
}

func (ep *endpoint) readable() bool {
	return ep.rcv.used() > 0 || ep.eof.Load() || ep.errc.Load() != errNone ||
		State(ep.pub.Load()) == StateClosed || ep.opw.Load()&opClosed != 0 || ep.opts.rdShut() ||
		ep.opts.pendErr.Load() != errNone
}

// Read reads into b, waiting for data: io.EOF after the peer's FIN.
func (h Handle) Read(b []byte) (int, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	ep.rdMu.Lock()
	defer ep.rdMu.Unlock()
	if ep.expired(&ep.rdDeadline) {
		return 0, ErrDeadline
	}
	for {
		n, err := ep.tryRead(b)
		if err != ErrWouldBlock {
			return n, err
		}
		if err := ep.waitRd(); err != nil {
			return 0, err
		}
	}
}

// TryRead reads what is there without waiting: ErrWouldBlock when nothing is, or when
// another read of the connection is in progress (the receive ring has one consumer).
func (h Handle) TryRead(b []byte) (int, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	if !ep.rdMu.TryLock() {
		return 0, ErrWouldBlock
	}
	defer ep.rdMu.Unlock()
	return ep.tryRead(b)
}

// WriteTo writes what the connection receives to w until EOF (returning nil, as io.Copy
// wants) or an error, handing w the receive buffer's own memory: no copy through a buffer
// of the caller's (io.WriterTo, which io.Copy uses). The read deadline applies.
func (h Handle) WriteTo(w io.Writer) (int64, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	ep.rdMu.Lock()
	defer ep.rdMu.Unlock()
	var total int64
	for {
		if ep.expired(&ep.rdDeadline) {
			return total, ErrDeadline
		}
		if ep.opw.Load()&opClosed != 0 {
			return total, ErrClosed
		}
		ep.rcv.mu.Lock()
		p := ep.rcv.readSpan()
		var n int
		var err error
		if len(p) > 0 {
			n, err = w.Write(p)
			ep.rcv.release(n)
		}
		ep.rcv.mu.Unlock()
		if n > 0 {
			total += int64(n)
			ep.consumed()
		}
		if err != nil {
			return total, err
		}
		if len(p) > 0 {
			continue
		}
		switch err := ep.readEnd(); err {
		case io.EOF:
			return total, nil
		case ErrWouldBlock:
		default:
			return total, err
		}
		if err := ep.waitRd(); err != nil {
			return total, err
		}
	}
}

// ReadFrom sends what r yields until r's EOF (returning nil) or an error, reading straight
// into the send buffer's memory (io.ReaderFrom, which io.Copy uses). The write deadline
// applies.
func (h Handle) ReadFrom(r io.Reader) (int64, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	ep.wrMu.Lock()
	defer ep.wrMu.Unlock()
	var total int64
	for {
		if ep.expired(&ep.wrDeadline) {
			return total, ErrDeadline
		}
		if err := ep.writeCheck(); err != nil {
			return total, err
		}
		ep.snd.mu.Lock()
		p := ep.snd.writeSpan()
		var n int
		var err error
		if len(p) > 0 {
			n, err = r.Read(p)
			if n > 0 {
				ep.snd.advance(n)
			}
		}
		ep.snd.mu.Unlock()
		if n > 0 {
			total += int64(n)
			ep.post(pendSend)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if len(p) == 0 {
			if err := ep.waitWr(); err != nil {
				return total, err
			}
		}
	}
}

// tryRead reads what the receive ring holds; the caller holds rdMu.
func (ep *endpoint) tryRead(b []byte) (int, error) {
	if ep.opw.Load()&opClosed != 0 {
		return 0, ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	ep.rcv.mu.Lock()
	n := ep.rcv.consume(b)
	ep.rcv.mu.Unlock()
	if n > 0 {
		ep.consumed()
		return n, nil
	}
	return 0, ep.readEnd()
}

// consumed runs after the application took bytes out of the receive buffer: it tells the
// shard when the window it advertised has become worth updating, and, without hurrying it,
// when the buffer is empty, so that it gives its memory back.
func (ep *endpoint) consumed() {
	space := uint32(ep.rcv.space())
	if adv := ep.advWnd.Load(); space >= 2*adv || (adv < 1024 && space >= 1024) {
		ep.post(pendWindow)
	}
	if ep.rcv.used() == 0 {
		if ep.pushedAck.Load() {
			ep.post(pendWindow) // a delayed ACK may go now (ackDrained)
		}
		ep.postLazy(pendTrim)
	}
}

// readEnd is what a read of an empty receive ring returns: io.EOF after the peer's FIN (or
// shutdown(SHUT_RD), as Linux's recv returns 0), the error that ended the connection, or
// ErrWouldBlock.
func (ep *endpoint) readEnd() error {
	if ep.opw.Load()&opClosed != 0 {
		return ErrClosed
	}
	if ep.eof.Load() {
		return io.EOF
	}
	if err := errOf(ep.errc.Load()); err != nil {
		return err
	}
	if State(ep.pub.Load()) == StateClosed || ep.opts.rdShut() {
		return io.EOF
	}
	if err := ep.takeError(); err != nil {
		return err // IP_RECVERR: an ICMP error, reported once (icmp.go)
	}
	return ErrWouldBlock
}

// Write writes b, waiting for room in the send buffer; it returns when every byte is in.
func (h Handle) Write(b []byte) (int, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	ep.wrMu.Lock()
	defer ep.wrMu.Unlock()
	if ep.expired(&ep.wrDeadline) {
		return 0, ErrDeadline
	}
	done := 0
	for {
		n, err := ep.tryWrite(b[done:])
		done += n
		if err != ErrWouldBlock || done == len(b) {
			if err == ErrWouldBlock {
				err = nil
			}
			return done, err
		}
		if err := ep.waitWr(); err != nil {
			return done, err
		}
	}
}

// TryWrite copies what fits into the send buffer without waiting; ErrWouldBlock when not
// everything fit (n says how much did), or when another write of the connection is in
// progress (the send ring has one producer).
func (h Handle) TryWrite(b []byte) (int, error) {
	if !h.enter() {
		return 0, ErrClosed
	}
	defer h.exit()
	ep := h.ep
	if !ep.wrMu.TryLock() {
		if ep.events != nil {
			ep.wantWr.Store(true) // the writer in progress ran out of room, or will
		}
		return 0, ErrWouldBlock
	}
	defer ep.wrMu.Unlock()
	return ep.tryWrite(b)
}

// writeCheck reports whether the application may add to the send ring: nil, ErrWouldBlock
// while the handshake is still going, or why not (Close, CloseWrite, the connection's end).
func (ep *endpoint) writeCheck() error {
	if ep.opw.Load()&opClosed != 0 {
		return ErrClosed
	}
	if ep.opts.wrShut() {
		return ErrBrokenPipe
	}
	if err := errOf(ep.errc.Load()); err != nil {
		return err
	}
	if err := ep.takeError(); err != nil {
		return err // IP_RECVERR: an ICMP error, reported once (icmp.go)
	}
	switch State(ep.pub.Load()) {
	case StateEstablished, StateCloseWait:
		return nil
	case StateSynSent, StateSynRecv:
		return ErrWouldBlock
	}
	return ErrBrokenPipe
}

// tryWrite copies what fits of b into the send ring; the caller holds wrMu.
func (ep *endpoint) tryWrite(b []byte) (int, error) {
	if err := ep.writeCheck(); err != nil {
		return 0, err
	}
	if len(b) == 0 {
		return 0, nil
	}
	ep.snd.mu.Lock()
	n := ep.snd.produce(b)
	ep.snd.mu.Unlock()
	if n > 0 {
		ep.post(pendSend)
	}
	if n < len(b) {
		if ep.events != nil {
			ep.wantWr.Store(true)
		}
		return n, ErrWouldBlock
	}
	return n, nil
}

func (ep *endpoint) writable() bool {
	if ep.errc.Load() != errNone || ep.opw.Load()&opClosed != 0 || ep.opts.wrShut() ||
		ep.opts.pendErr.Load() != errNone {
		return true
	}
	switch State(ep.pub.Load()) {
	case StateSynSent, StateSynRecv:
		return false
	case StateEstablished, StateCloseWait:
		return ep.snd.space() > 0
	}
	return true
}

// expired reports whether a deadline has passed: like Go's net, an operation after its
// deadline fails even when it could have completed.
func (ep *endpoint) expired(d *atomic.Int64) bool {
	dl := d.Load()
	return dl != 0 && ep.sh.eng.clock.Now() >= dl
}

// waitRd parks until the connection may be readable, or the read deadline passes.
func (ep *endpoint) waitRd() error {
	ep.rdWait.Store(true)
	defer ep.rdWait.Store(false)
	if ep.readable() {
		return nil
	}
	return ep.park(ep.rdCh, &ep.rdTimer, ep.rdDeadline.Load())
}

func (ep *endpoint) waitWr() error {
	ep.wrWait.Store(true)
	defer ep.wrWait.Store(false)
	if ep.writable() {
		return nil
	}
	return ep.park(ep.wrCh, &ep.wrTimer, ep.wrDeadline.Load())
}

func (ep *endpoint) park(ch chan struct{}, tp *clock.Timer, deadline int64) error {
	if deadline == 0 {
		<-ch
		return nil
	}
	clk := ep.sh.eng.clock
	d := time.Duration(deadline - clk.Now())
	if d <= 0 {
		return ErrDeadline
	}
	if *tp == nil {
		*tp = clk.NewTimer(d)
	} else {
		(*tp).Reset(d)
	}
	select {
	case <-ch:
		(*tp).Stop()
		return nil
	case <-(*tp).C():
		return ErrDeadline
	}
}

// Close closes the connection: the FIN goes after the buffered data (or a reset, if
// received data was never read, as Linux does, or if SetLinger(0) was called). With a
// positive SetLinger it waits, as Linux's close(2) does, up to that long for the FIN to be
// acknowledged (not in an Events connection, whose callbacks must not block). A Read or Write
// blocked on the connection returns net.ErrClosed.
func (h Handle) Close() error {
	ep := h.ep
	if ep == nil {
		return ErrClosed
	}
	for {
		w := ep.opw.Load()
		if uint32(w>>32) != h.gen || w&opClosed != 0 {
			return ErrClosed
		}
		if ep.opw.CompareAndSwap(w, (w|opClosed)+1) {
			break
		}
	}
	ep.post(pendClose)
	// Wake a Read or Write blocked on this connection (they see the closed bit).
	ep.signalRd()
	ep.signalWr()
	if lv := ep.opts.linger.Load(); lv > 1 && ep.events == nil {
		ep.lingerWait(time.Duration(lv-1) * time.Second)
	}
	h.exit()
	return nil
}

// Abort resets the connection at once: SetLinger(0), then Close.
func (h Handle) Abort() error {
	if err := h.SetLinger(0); err != nil {
		return err
	}
	return h.Close()
}

// Err returns the error that ended the connection, if any (ECONNREFUSED, ECONNRESET, ...).
func (h Handle) Err() error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	return errOf(h.ep.errc.Load())
}

// SetNoDelay turns Nagle's algorithm off (TCP_NODELAY) or back on. A Handle starts with
// Linux's default, Nagle on; a Conn starts with it off, as Go's net.TCPConn does.
func (h Handle) SetNoDelay(noDelay bool) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.noDelay.Store(noDelay)
	if noDelay {
		h.ep.post(pendSend) // what Nagle held goes now
	}
	return nil
}

// SetUserData stores a word of the application's own with the connection (an index into
// its tables, a timestamp): event-driven applications keep per-connection state this way
// without allocating. A closed handle gets ErrClosed and leaves the word alone, even when its
// endpoint already carries a new connection.
func (h Handle) SetUserData(v uint64) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.userData.Store(v)
	return nil
}

// UserData returns what SetUserData stored (0 for a new connection, and for a closed one).
func (h Handle) UserData() uint64 {
	if !h.enter() {
		return 0
	}
	defer h.exit()
	return h.ep.userData.Load()
}

// Opened reports whether the connection was ever established (an event-driven dial that
// reports OnData without having opened has failed; Err says why).
func (h Handle) Opened() bool {
	if !h.enter() {
		return false
	}
	defer h.exit()
	return h.ep.estab.Load()
}

// Shard returns the index of the shard that owns the connection, or -1 for the zero Handle
// and a closed one.
func (h Handle) Shard() int {
	if !h.enter() {
		return -1
	}
	defer h.exit()
	return h.ep.sh.id
}

// LocalAddrPort returns the local address; for a connection still being opened by
// DialAsync it is known once the shard has picked the port.
func (h Handle) LocalAddrPort() netip.AddrPort {
	if !h.enter() {
		return netip.AddrPort{}
	}
	defer h.exit()
	if !h.ep.keyed.Load() {
		return netip.AddrPort{}
	}
	l, _ := addrPorts(&h.ep.key)
	return l
}

// RemoteAddrPort returns the peer's address.
func (h Handle) RemoteAddrPort() netip.AddrPort {
	if !h.enter() {
		return netip.AddrPort{}
	}
	defer h.exit()
	if !h.ep.keyed.Load() {
		return netip.AddrPortFrom(h.ep.dialAddr, h.ep.dialPort)
	}
	_, r := addrPorts(&h.ep.key)
	return r
}

// FlowHash returns the connection's flow hash (the key of the stack's own flow tables, not
// the link's steering), or 0 while an active open has not picked its port yet.
func (h Handle) FlowHash() uint64 {
	if !h.enter() {
		return 0
	}
	defer h.exit()
	if !h.ep.keyed.Load() {
		return 0
	}
	k := h.ep.key
	return h.ep.sh.eng.hasher.Sum(&k)
}

func (h Handle) deadlineValue(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	v := h.ep.sh.eng.clock.Now() + int64(time.Until(t))
	if v == 0 {
		v = 1
	}
	return v
}

// SetDeadline sets both deadlines (net.Conn semantics; the zero time clears them).
func (h Handle) SetDeadline(t time.Time) error {
	if err := h.SetReadDeadline(t); err != nil {
		return err
	}
	return h.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read.
func (h Handle) SetReadDeadline(t time.Time) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.rdDeadline.Store(h.deadlineValue(t))
	h.ep.signalRd()
	return nil
}

// SetWriteDeadline sets the deadline for Write.
func (h Handle) SetWriteDeadline(t time.Time) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	h.ep.wrDeadline.Store(h.deadlineValue(t))
	h.ep.signalWr()
	return nil
}

// WaitConnected waits for an asynchronous Dial to finish.
func (h Handle) WaitConnected(ctx context.Context) error {
	if !h.enter() {
		return ErrClosed
	}
	defer h.exit()
	ep := h.ep
	for {
		switch State(ep.pub.Load()) {
		case StateSynSent, StateSynRecv:
		case StateClosed:
			if err := errOf(ep.errc.Load()); err != nil {
				return err
			}
			return ErrConnectionReset
		default:
			return nil
		}
		ep.wrWait.Store(true)
		if st := State(ep.pub.Load()); st != StateSynSent && st != StateSynRecv {
			ep.wrWait.Store(false)
			continue
		}
		select {
		case <-ep.wrCh:
		case <-ctx.Done():
			ep.wrWait.Store(false)
			return ctx.Err()
		}
		ep.wrWait.Store(false)
	}
}

// Conn is a connection as a net.Conn. Making it is the one heap allocation per connection
// that net.Conn strictly needs: an interface value must point at an object the garbage
// collector keeps alive for as long as the application holds it, which a recycled pool
// entry cannot be. Everything else about a connection comes from its shard's pools.
type Conn struct {
	Handle
	laddr netip.AddrPort
	raddr netip.AddrPort
}

// NewConn wraps a Handle as a net.Conn.
func NewConn(h Handle) *Conn {
	c := &Conn{Handle: h}
	if h.enter() { // a closed handle's endpoint may carry another connection by now
		c.fill()
		h.ep.noDelay.Store(true) // Go's net sets TCP_NODELAY on every TCP connection
		h.exit()
	}
	return c
}

func (c *Conn) fill() {
	if c.ep.keyed.Load() {
		c.laddr, c.raddr = addrPorts(&c.ep.key)
	}
}

// LocalAddr implements net.Conn.
func (c *Conn) LocalAddr() net.Addr { return net.TCPAddrFromAddrPort(c.LocalAddrPort()) }

// RemoteAddr implements net.Conn.
func (c *Conn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.RemoteAddrPort()) }

// LocalAddrPort returns the local address, known once the port is picked.
func (c *Conn) LocalAddrPort() netip.AddrPort {
	if c.laddr.IsValid() {
		return c.laddr
	}
	return c.Handle.LocalAddrPort()
}

// RemoteAddrPort returns the peer's address.
func (c *Conn) RemoteAddrPort() netip.AddrPort {
	if c.raddr.IsValid() {
		return c.raddr
	}
	return c.Handle.RemoteAddrPort()
}

var _ net.Conn = (*Conn)(nil)
var _ net.Listener = (*Listener)(nil)

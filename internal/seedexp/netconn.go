package seedexp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
)

// NetConn adapts a blocking net.Conn (a Linux socket, or anything else) to ClientConn. Each
// blocking call runs in a goroutine of its own, started when the program would have made
// it and ended by its result or by Close:
//   - the dial starts at once; Connected and Err report its result;
//   - TryRead starts a read of up to len(p) bytes if none is outstanding and returns what
//     an earlier one got; so, as a blocked recv() does, the connection takes in data only
//     once the program asks for it;
//   - TryWrite hands p to a writer and reports it taken (ErrWouldBlock while an earlier
//     write is still going); a write's error comes back from the next call, read or write,
//     and no read starts while a write is in flight, as send() returns before recv().
//
// Close closes the connection and waits for those goroutines, so none outlives it.
type NetConn struct {
	mu      sync.Mutex
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	conn    net.Conn // nil until the dial succeeds
	dialErr error
	closed  bool
	reading bool
	rdata   []byte // read and not yet taken
	rerr    error  // the error of the last read, given out once rdata is taken
	writing bool
	werr    error
	port    uint16
}

// nagler is a connection whose Nagle's algorithm can be set (net.TCPConn, tcp.Conn).
type nagler interface{ SetNoDelay(noDelay bool) error }

// NewNetConn adapts a connection that is already open (an accepted one, or one end of
// net.Pipe), turning Nagle's algorithm back on where the connection has it.
func NewNetConn(c net.Conn) *NetConn {
	nc := &NetConn{cancel: func() {}}
	nc.setConn(c)
	return nc
}

// DialNetConn starts dial in a goroutine and returns at once; dial's context is cancelled
// by Close.
func DialNetConn(dial func(ctx context.Context) (net.Conn, error)) *NetConn {
	ctx, cancel := context.WithCancel(context.Background())
	nc := &NetConn{cancel: cancel}
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		c, err := dial(ctx)
		nc.mu.Lock()
		defer nc.mu.Unlock()
		switch {
		case err != nil:
			nc.dialErr = err
		case nc.closed:
			_ = c.Close()
		default:
			nc.setConn(c)
		}
	}()
	return nc
}

func (nc *NetConn) setConn(c net.Conn) {
	if n, ok := c.(nagler); ok {
		_ = n.SetNoDelay(false) // Go sets TCP_NODELAY on every TCP connection; C does not
	}
	nc.conn = c
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		nc.port = ap.Port()
	}
}

// Connected reports whether the dial has succeeded.
func (nc *NetConn) Connected() bool {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.conn != nil
}

// Err returns the dial's error, or the error that a read or write met (not io.EOF).
func (nc *NetConn) Err() error {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	switch {
	case nc.dialErr != nil:
		return nc.dialErr
	case nc.werr != nil:
		return nc.werr
	case nc.rerr != nil && !errors.Is(nc.rerr, io.EOF):
		return nc.rerr
	}
	return nil
}

// LocalPort returns the local port once the dial has succeeded.
func (nc *NetConn) LocalPort() uint16 {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.port
}

// usable returns the error a call gets before it can go ahead, or ErrWouldBlock while the
// dial is under way; nc.mu is held.
func (nc *NetConn) usable() error {
	switch {
	case nc.closed:
		return net.ErrClosed
	case nc.dialErr != nil:
		return nc.dialErr
	case nc.conn == nil:
		return ErrWouldBlock
	}
	return nil
}

// TryRead returns what an outstanding read got, or starts one.
func (nc *NetConn) TryRead(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if err := nc.usable(); err != nil {
		return 0, err
	}
	// A program's blocking send() returns before its recv() starts, with its error: so a
	// read waits for the write in flight and reports that write's error first (otherwise a
	// reset that the write consumed would show here as the server closing, EOF).
	if nc.werr != nil {
		return 0, nc.werr
	}
	if nc.writing {
		return 0, ErrWouldBlock
	}
	if len(nc.rdata) > 0 {
		n := copy(p, nc.rdata)
		nc.rdata = nc.rdata[n:]
		return n, nil
	}
	if nc.rerr != nil {
		return 0, nc.rerr
	}
	if !nc.reading {
		nc.reading = true
		buf := make([]byte, len(p))
		conn := nc.conn
		nc.wg.Add(1)
		go func() {
			defer nc.wg.Done()
			n, err := conn.Read(buf)
			nc.mu.Lock()
			defer nc.mu.Unlock()
			nc.reading = false
			nc.rdata, nc.rerr = buf[:n], err
		}()
	}
	return 0, ErrWouldBlock
}

// TryWrite hands p to a writer, unless one is still busy.
func (nc *NetConn) TryWrite(p []byte) (int, error) {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if err := nc.usable(); err != nil {
		return 0, err
	}
	if nc.werr != nil {
		return 0, nc.werr
	}
	if nc.writing {
		return 0, ErrWouldBlock
	}
	if len(p) == 0 {
		return 0, nil
	}
	nc.writing = true
	buf := append([]byte(nil), p...)
	conn := nc.conn
	nc.wg.Add(1)
	go func() {
		defer nc.wg.Done()
		_, err := conn.Write(buf)
		nc.mu.Lock()
		defer nc.mu.Unlock()
		nc.writing = false
		if err != nil {
			nc.werr = err
		}
	}()
	return len(p), nil
}

// Close cancels the dial, closes the connection and waits for every goroutine it started.
func (nc *NetConn) Close() error {
	nc.mu.Lock()
	if nc.closed {
		nc.mu.Unlock()
		return net.ErrClosed
	}
	nc.closed = true
	nc.cancel()
	conn := nc.conn
	nc.mu.Unlock()
	var err error
	if conn != nil {
		err = conn.Close()
	}
	nc.wg.Wait()
	return err
}

// NetDialer dials real sockets with DialContext, for example a net.Dialer's DialContext
// bound to an address, or a dial made inside a network namespace.
type NetDialer struct {
	DialContext func(ctx context.Context) (net.Conn, error)
}

// Dial starts a dial and returns at once.
func (d NetDialer) Dial() (ClientConn, error) { return DialNetConn(d.DialContext), nil }

// NetListener adapts a net.Listener. TryAccept starts an accept in a goroutine if none is
// outstanding and returns the connection an earlier one got, so a server that never calls
// TryAccept never takes a connection off the kernel's accept queue.
type NetListener struct {
	l         net.Listener
	mu        sync.Mutex
	wg        sync.WaitGroup
	accepting bool
	ready     []net.Conn
	err       error
	closed    bool
}

// NewNetListener adapts l; Close closes it.
func NewNetListener(l net.Listener) *NetListener { return &NetListener{l: l} }

// TryAccept returns an accepted connection, or ErrWouldBlock while none is there.
func (nl *NetListener) TryAccept() (Conn, error) {
	nl.mu.Lock()
	defer nl.mu.Unlock()
	if nl.closed {
		return nil, net.ErrClosed
	}
	if len(nl.ready) > 0 {
		c := nl.ready[0]
		nl.ready = nl.ready[1:]
		return NewNetConn(c), nil
	}
	if nl.err != nil {
		return nil, nl.err
	}
	if !nl.accepting {
		nl.accepting = true
		nl.wg.Add(1)
		go func() {
			defer nl.wg.Done()
			c, err := nl.l.Accept()
			nl.mu.Lock()
			defer nl.mu.Unlock()
			nl.accepting = false
			switch {
			case err != nil:
				nl.err = err
			case nl.closed:
				_ = c.Close()
			default:
				nl.ready = append(nl.ready, c)
			}
		}()
	}
	return nil, ErrWouldBlock
}

// Close closes the listener and any connection accepted but not yet taken, and waits for
// the accept goroutine.
func (nl *NetListener) Close() error {
	nl.mu.Lock()
	if nl.closed {
		nl.mu.Unlock()
		return net.ErrClosed
	}
	nl.closed = true
	ready := nl.ready
	nl.ready = nil
	nl.mu.Unlock()
	err := nl.l.Close()
	nl.wg.Wait()
	for _, c := range ready {
		_ = c.Close()
	}
	return err
}

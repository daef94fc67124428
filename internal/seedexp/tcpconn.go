package seedexp

import (
	"net/netip"

	"github.com/shardstack/shardstack/pkg/tcp"
)

// TCPConn adapts a shardstack connection to ClientConn (and so to Conn).
type TCPConn struct {
	Conn   *tcp.Conn // the connection itself, for the caller's own checks
	opened bool
}

// TryRead reads without waiting.
func (c *TCPConn) TryRead(p []byte) (int, error) { return c.Conn.TryRead(p) }

// TryWrite writes without waiting.
func (c *TCPConn) TryWrite(p []byte) (int, error) { return c.Conn.TryWrite(p) }

// Close closes the connection.
func (c *TCPConn) Close() error { return c.Conn.Close() }

// Connected reports whether the handshake has completed, now or before.
func (c *TCPConn) Connected() bool {
	if !c.opened {
		switch c.Conn.State() {
		case tcp.StateSynSent, tcp.StateSynRecv, tcp.StateClosed:
		default:
			c.opened = true
		}
	}
	return c.opened
}

// Err returns the connection's error; a connect that ended without one counts as reset,
// as Linux reports a handshake the peer tore down.
func (c *TCPConn) Err() error {
	if err := c.Conn.Err(); err != nil {
		return err
	}
	if !c.opened && c.Conn.State() == tcp.StateClosed {
		return tcp.ErrConnectionReset
	}
	return nil
}

// LocalPort returns the local port, once the connection's shard has picked it.
func (c *TCPConn) LocalPort() uint16 { return c.Conn.LocalAddrPort().Port() }

// Stack is what TCPDialer needs of a shardstack stack (stack.Stack has it).
type Stack interface {
	DialAsync(addr netip.AddrPort, opts tcp.DialOptions) (*tcp.Conn, error)
}

// TCPDialer dials from a shardstack stack, with Nagle's algorithm on as client.c has it.
type TCPDialer struct {
	Stack  Stack
	Target netip.AddrPort
}

// Dial starts a non-blocking connect to Target.
func (d TCPDialer) Dial() (ClientConn, error) {
	c, err := d.Stack.DialAsync(d.Target, tcp.DialOptions{})
	if err != nil {
		return nil, err
	}
	_ = c.SetNoDelay(false) // a tcp.Conn starts with Nagle off, as Go's net does
	return &TCPConn{Conn: c}, nil
}

// TCPListener adapts a shardstack listener; accepted connections keep Nagle on, as
// server.c's do.
type TCPListener struct {
	L *tcp.Listener
}

// TryAccept returns a queued connection without waiting.
func (l TCPListener) TryAccept() (Conn, error) {
	c, err := l.L.TryAccept()
	if err != nil {
		return nil, err
	}
	_ = c.SetNoDelay(false)
	return &TCPConn{Conn: c, opened: true}, nil
}

// OnStacks is the experiment on shardstack stacks in one virtual network, as both the
// backlog lab and the acceptance scenarios S1-S3 run it: clients dial from client to the
// listener l's address, the server serves l, and time is n's.
func OnStacks(cfg Config, n Network, client Stack, l *tcp.Listener) *Driver {
	return New(cfg, NewVirtualClock(n), TCPDialer{Stack: client, Target: l.AddrPort()}, TCPListener{L: l})
}

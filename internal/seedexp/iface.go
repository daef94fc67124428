package seedexp

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Clock is the experiment's time: it reads the time and lets it pass.
type Clock interface {
	// Now returns the time since the clock's zero.
	Now() time.Duration
	// Advance lets time pass until t and returns; it returns earlier as soon as wake (if
	// not nil) reports true. Wake is called whenever something may have happened: after
	// every network event on a virtual clock, every poll interval on the real one. A t that
	// is not after Now lets the network catch up with the present and returns.
	Advance(t time.Duration, wake func() bool)
	// Wall returns the calendar time that the reading t of Now stands for.
	Wall(t time.Duration) time.Time
}

// Conn is a connection as the seed's programs use it, with calls that never wait.
type Conn interface {
	// TryRead reads what is there: an error wrapping syscall.EAGAIN when nothing is,
	// io.EOF once the peer has closed and everything was read.
	TryRead(p []byte) (int, error)
	// TryWrite sends what fits: n < len(p) with an error wrapping syscall.EAGAIN when not
	// everything did.
	TryWrite(p []byte) (int, error)
	// Close closes the connection.
	Close() error
}

// ClientConn is a client's connection, whose connect() may still be under way.
type ClientConn interface {
	Conn
	// Connected reports whether the handshake has completed (connect() returned 0).
	Connected() bool
	// Err returns what ended the connection or its connect, nil while neither happened.
	Err() error
	// LocalPort returns the connection's local port, 0 while it is not known.
	LocalPort() uint16
}

// Dialer starts clients' connections to the server.
type Dialer interface {
	// Dial starts a connect and returns at once.
	Dial() (ClientConn, error)
}

// Listener is the server's listening socket.
type Listener interface {
	// TryAccept returns a queued connection: an error wrapping syscall.EAGAIN when none is.
	TryAccept() (Conn, error)
}

// ErrWouldBlock is what this package's adapters return when a call would have to wait. It
// wraps syscall.EAGAIN, as shardstack's tcp.ErrWouldBlock does, so the driver tells
// "not yet" from a real error the same way for both.
var ErrWouldBlock = fmt.Errorf("seedexp: operation would block: %w", syscall.EAGAIN)

func wouldBlock(err error) bool { return errors.Is(err, syscall.EAGAIN) }

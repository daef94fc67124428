package seedexp

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// requireGoroutines waits until no more goroutines run than before (one that has called
// wg.Done may take a moment to be gone). It polls in this goroutine: require.Eventually
// would count its own.
func requireGoroutines(t *testing.T, before int) {
	t.Helper()
	now := runtime.NumGoroutine()
	for i := 0; i < 10000 && now > before; i++ {
		time.Sleep(time.Millisecond)
		now = runtime.NumGoroutine()
	}
	require.LessOrEqual(t, now, before, "goroutines leaked")
}

// poll calls f until it reports true (bounded; these tests use real sockets).
func poll(t *testing.T, what string, f func() bool) {
	t.Helper()
	require.Eventually(t, f, 10*time.Second, 100*time.Microsecond, what)
}

// noDelay reads TCP_NODELAY off a real socket.
func noDelay(t *testing.T, c net.Conn) int {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	require.True(t, ok)
	rc, err := tc.SyscallConn()
	require.NoError(t, err)
	v := -1
	require.NoError(t, rc.Control(func(fd uintptr) {
		v, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	}))
	require.NoError(t, err)
	return v
}

func loopbackListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

func dialerTo(addr string) NetDialer {
	return NetDialer{DialContext: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}}
}

func TestNetConn_Loopback(t *testing.T) {
	before := runtime.NumGoroutine()
	ln := loopbackListener(t)
	nl := NewNetListener(ln)
	cc, err := dialerTo(ln.Addr().String()).Dial()
	require.NoError(t, err)
	c := cc.(*NetConn)
	poll(t, "connect", c.Connected)
	require.NoError(t, c.Err())
	require.NotZero(t, c.LocalPort())
	require.Zero(t, noDelay(t, c.conn), "Nagle back on, as in C (Go turns it off)")

	var srv Conn
	poll(t, "accept", func() bool {
		var err error
		srv, err = nl.TryAccept()
		if err != nil {
			require.ErrorIs(t, err, syscall.EAGAIN)
			return false
		}
		return true
	})
	require.Zero(t, noDelay(t, srv.(*NetConn).conn), "accepted connections too")

	buf := make([]byte, 64)
	_, err = srv.TryRead(buf)
	require.ErrorIs(t, err, ErrWouldBlock, "nothing sent yet")
	k, err := c.TryWrite([]byte(Message))
	require.NoError(t, err)
	require.Equal(t, len(Message), k)
	var got []byte
	poll(t, "the message", func() bool {
		k, err := srv.TryRead(buf)
		if err != nil {
			require.ErrorIs(t, err, ErrWouldBlock)
		}
		got = append(got, buf[:k]...)
		return len(got) == len(Message)
	})
	require.Equal(t, Message, string(got))

	// A read is outstanding on the client; closing the server's side ends it with EOF.
	_, err = c.TryRead(buf)
	require.ErrorIs(t, err, ErrWouldBlock)
	require.NoError(t, srv.Close())
	poll(t, "EOF", func() bool {
		_, err := c.TryRead(buf)
		return errors.Is(err, io.EOF)
	})
	require.NoError(t, c.Err(), "EOF is no error")
	require.NoError(t, c.Close())
	_, err = c.TryRead(buf)
	require.ErrorIs(t, err, net.ErrClosed)

	// An accept left outstanding ends with Close.
	_, err = nl.TryAccept()
	require.ErrorIs(t, err, ErrWouldBlock)
	require.NoError(t, nl.Close())
	_, err = nl.TryAccept()
	require.ErrorIs(t, err, net.ErrClosed)
	requireGoroutines(t, before)
}

// Blocked calls end with Close: a write the peer never reads and a read it never answers.
func TestNetConn_PipeCloseEndsBlockedCalls(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b := net.Pipe()
	defer b.Close()
	c := NewNetConn(a)
	require.True(t, c.Connected())
	k, err := c.TryWrite([]byte("nobody reads this"))
	require.NoError(t, err)
	require.Equal(t, 17, k)
	_, err = c.TryWrite([]byte("more"))
	require.ErrorIs(t, err, ErrWouldBlock, "the first write is still blocked")
	_, err = c.TryRead(make([]byte, 8))
	require.ErrorIs(t, err, ErrWouldBlock)
	require.Greater(t, runtime.NumGoroutine(), before)
	require.NoError(t, c.Close())
	require.ErrorIs(t, c.Close(), net.ErrClosed)
	requireGoroutines(t, before)
}

// A dial that never completes ends with Close.
func TestNetConn_CloseCancelsDial(t *testing.T) {
	before := runtime.NumGoroutine()
	started := make(chan struct{})
	c := DialNetConn(func(ctx context.Context) (net.Conn, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	<-started
	require.False(t, c.Connected())
	_, err := c.TryWrite([]byte("x"))
	require.ErrorIs(t, err, ErrWouldBlock)
	require.NoError(t, c.Close())
	requireGoroutines(t, before)
}

// The driver on real sockets and the real clock: Linux's loopback, the seed's program
// with its sleeps shortened, and a connect to a closed port.
func TestDriver_RealLoopback(t *testing.T) {
	before := runtime.NumGoroutine()
	ln := loopbackListener(t)
	nl := NewNetListener(ln)
	closed := loopbackListener(t)
	refusedAddr := closed.Addr().String()
	require.NoError(t, closed.Close())

	clk := NewRealClock(0)
	d := New(Config{Starts: []time.Duration{0, 0}, Accept: true, SendEvery: 20 * time.Millisecond, ReplyPause: 10 * time.Millisecond},
		clk, &seqDialer{ds: []Dialer{dialerTo(ln.Addr().String()), dialerTo(refusedAddr)}}, nl)
	deadline := clk.Now() + 20*time.Second
	for clk.Now() < deadline {
		d.RunUntil(clk.Now() + 10*time.Millisecond)
		rs := d.Clients()
		if rs[0].Replies >= 2 && rs[1].Err != nil {
			break
		}
	}
	rs := d.Clients()
	require.GreaterOrEqual(t, rs[0].Replies, 2, "%+v", rs[0])
	require.Equal(t, OutcomeConnected, rs[0].Outcome)
	require.Equal(t, rs[0].Replies*ReplyLen, rs[0].Received)
	require.True(t, strings.HasPrefix(rs[0].LastReply, Message+" : "), rs[0].LastReply)
	require.Len(t, rs[0].LastReply, ReplyLen)
	_, err := time.Parse(ctimeLayout+"\n", rs[0].LastReply[len(Message)+3:])
	require.NoError(t, err, "a ctime() timestamp: %q", rs[0].LastReply)
	require.Equal(t, OutcomeRefused, rs[1].Outcome, "Linux refuses a connect to a closed port")
	require.Equal(t, 1, d.Server().Accepted)

	d.Close()
	require.NoError(t, nl.Close())
	requireGoroutines(t, before)
}

// seqDialer dials client i with dialer i.
type seqDialer struct {
	ds []Dialer
	i  int
}

func (s *seqDialer) Dial() (ClientConn, error) {
	s.i++
	return s.ds[s.i-1].Dial()
}

// resetConn is a socket the peer has reset: a write meets ECONNRESET (after a moment, as a
// real send() would) and consumes it; reads after that see the end of the stream.
type resetConn struct {
	net.Conn
	wrote chan struct{}
}

func (c *resetConn) Write([]byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	close(c.wrote)
	return 0, syscall.ECONNRESET
}

func (c *resetConn) Read([]byte) (int, error) { return 0, io.EOF }
func (c *resetConn) Close() error             { return nil }

// A reset that a write meets is what the program sees, as send() returns it before recv()
// runs: the read that follows does not turn it into "closed by the server".
func TestNetConn_WriteErrorBeforeRead(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	rc := &resetConn{Conn: a, wrote: make(chan struct{})}
	nc := NewNetConn(rc)
	defer nc.Close()
	n, err := nc.TryWrite([]byte("hello"))
	require.NoError(t, err)
	require.Equal(t, 5, n)
	buf := make([]byte, 8)
	_, err = nc.TryRead(buf)
	require.ErrorIs(t, err, ErrWouldBlock, "no read while the write is in flight")
	<-rc.wrote
	for i := 0; i < 1000 && errors.Is(err, ErrWouldBlock); i++ {
		time.Sleep(time.Millisecond) // bounded: the writer goroutine records its error
		_, err = nc.TryRead(buf)
	}
	require.ErrorIs(t, err, syscall.ECONNRESET)
	require.ErrorIs(t, nc.Err(), syscall.ECONNRESET)
}

package tcp_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// CloseWrite half-closes: the FIN follows the data, the peer reads the data and then
// io.EOF, our writes fail with EPIPE, and we go on reading what the peer sends until its
// own FIN.
func TestCloseWrite_HalfClose(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	_, err := p.c.Write([]byte("request"))
	require.NoError(t, err)
	require.NoError(t, p.c.CloseWrite())
	require.NoError(t, p.c.CloseWrite(), "a second CloseWrite is harmless")
	_, err = p.c.Write([]byte("more"))
	require.ErrorIs(t, err, tcp.ErrBrokenPipe)
	p.n.RunFor(100 * time.Millisecond) // the peer's ACK of a FIN is delayed (40 ms)
	require.Len(t, p.w.withFlag(true, header.TCPFlagFIN), 1, p.w.trace())
	buf := make([]byte, 64)
	k, err := p.s.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "request", string(buf[:k]))
	_, err = p.s.Read(buf)
	require.Equal(t, io.EOF, err)
	require.Equal(t, tcp.StateCloseWait, p.s.State())
	require.Equal(t, tcp.StateFinWait2, p.c.State())

	// The server answers on its half, then closes; we read all of it, then io.EOF.
	_, err = p.s.Write([]byte("response"))
	require.NoError(t, err)
	require.NoError(t, p.s.Close())
	p.n.RunFor(time.Millisecond)
	k, err = p.c.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "response", string(buf[:k]))
	_, err = p.c.Read(buf)
	require.Equal(t, io.EOF, err)
	require.Equal(t, tcp.StateTimeWait, p.c.State())
	require.NoError(t, p.c.Close())
	require.Zero(t, p.n.Client.Counters()[stats.TcpOutRsts]+p.n.Server.Counters()[stats.TcpOutRsts])
}

// After CloseWrite and the peer's ACK of the FIN, Close makes the connection an orphan in
// FIN-WAIT-2 that tcp_fin_timeout ends, as any other.
func TestCloseWrite_ThenCloseTimesOut(t *testing.T) {
	p := newPair(t, tcp.Settings{TCPFinTimeout: 30 * time.Second}, tcp.Settings{})
	require.NoError(t, p.c.CloseWrite())
	p.n.RunFor(100 * time.Millisecond)
	require.Equal(t, tcp.StateFinWait2, p.c.State())
	p.n.RunUntil(at(10), nil)
	require.NoError(t, p.c.Close())
	p.n.RunUntil(at(39.999), nil)
	r, ok := p.clientRow(t)
	require.True(t, ok)
	require.Equal(t, tcp.StateFinWait2, r.State)
	p.n.RunUntil(at(40), nil)
	_, ok = p.clientRow(t)
	require.False(t, ok, "the orphan is gone 30 s after Close")
}

// CloseRead: nothing on the wire; a blocked Read returns io.EOF, and later Reads return
// what is buffered and then io.EOF without waiting; the write side is untouched.
func TestCloseRead(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	before := len(p.w.segs)
	got := blockedRead(t, p, p.c)
	require.NoError(t, p.c.CloseRead())
	require.Equal(t, io.EOF, <-got)
	p.n.Settle()
	require.Len(t, p.w.segs, before, "shutdown(SHUT_RD) sends nothing")
	_, err := p.c.Read(make([]byte, 8))
	require.Equal(t, io.EOF, err)

	_, err = p.s.Write([]byte("late"))
	require.NoError(t, err)
	p.n.RunFor(time.Millisecond)
	buf := make([]byte, 8)
	k, err := p.c.Read(buf)
	require.NoError(t, err, "as in Linux, what arrives is still there to read")
	require.Equal(t, "late", string(buf[:k]))
	_, err = p.c.Read(buf)
	require.Equal(t, io.EOF, err)

	_, err = p.c.Write([]byte("still writing"))
	require.NoError(t, err)
	p.n.RunFor(time.Millisecond)
	buf = make([]byte, 64)
	k, err = p.s.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "still writing", string(buf[:k]))
}

// A connection closed by a reset cannot be shut down: ENOTCONN, as Linux's shutdown says.
func TestShutdown_NotConnected(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.s.Abort())
	p.n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateClosed, p.c.State())
	require.ErrorIs(t, p.c.CloseWrite(), tcp.ErrNotConnected)
	require.ErrorIs(t, p.c.CloseRead(), tcp.ErrNotConnected)
	require.NoError(t, p.c.Close())
	require.ErrorIs(t, p.c.CloseWrite(), net.ErrClosed)
}

// SetLinger(0): Close resets at once, discarding what was never acknowledged, and counts
// TcpExtTCPAbortOnData as Linux does; the peer sees ECONNRESET.
func TestLinger_ZeroResets(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	p.w.cutToS = true
	_, err := p.c.Write([]byte("never acknowledged"))
	require.NoError(t, err)
	p.n.RunFor(time.Millisecond)
	require.NoError(t, p.c.SetLinger(0))
	p.w.cutToS = false
	require.NoError(t, p.c.Close())
	p.n.RunFor(time.Millisecond)
	rst := p.w.sent(true, fRSTACK, 0)
	require.Len(t, rst, 1, p.w.trace())
	require.Empty(t, p.w.sent(true, fFINACK, 0), "no FIN")
	_, ok := p.clientRow(t)
	require.False(t, ok, "nothing left, no TIME-WAIT")
	require.Equal(t, uint64(1), p.n.Client.Counters()[stats.TcpExtTCPAbortOnData])
	_, err = p.s.Read(make([]byte, 64))
	require.ErrorIs(t, err, tcp.ErrConnectionReset)
}

// lingerClose runs Close on another goroutine and returns once it is waiting on its
// linger timer (the only timer of the virtual clock in these tests).
func lingerClose(t *testing.T, p *pairNet) <-chan struct{} {
	t.Helper()
	done := make(chan struct{})
	go func() {
		require.NoError(t, p.c.Close())
		close(done)
	}()
	settleUntil(t, p.n, func() bool { _, ok := p.n.Clock.NextTimer(); return ok })
	select {
	case <-done:
		t.Fatal("Close returned before the FIN was acknowledged")
	default:
	}
	return done
}

// SetLinger(n > 0): Close waits for the FIN to be acknowledged, and returns as soon as it
// is (well before the timeout).
func TestLinger_CompletesWhenAcknowledged(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	p.n.RunUntil(at(1), nil)
	require.NoError(t, p.c.SetLinger(5))
	_, err := p.c.Write(make([]byte, 3000))
	require.NoError(t, err)
	p.w.cutToS = true // the data waits for a retransmission
	done := lingerClose(t, p)
	deadline, _ := p.n.Clock.NextTimer()
	require.Equal(t, at(6), deadline, "five seconds on the stack's clock")
	p.n.RunUntil(at(1.1), nil)
	p.w.cutToS = false
	pump(t, p.n, done, 5*time.Second)
	require.Less(t, p.n.Now(), at(2), "Close returned when the FIN was acknowledged")
	r, ok := p.clientRow(t)
	require.True(t, ok)
	require.Equal(t, tcp.StateFinWait2, r.State)
	require.Empty(t, p.w.sent(true, fRSTACK, 0))
	buf := make([]byte, 4000)
	k, err := io.ReadFull(p.s, buf[:3000])
	require.NoError(t, err)
	require.Equal(t, 3000, k)
}

// SetLinger(n > 0) with a peer that never acknowledges: Close returns after n seconds, and,
// as with Linux's close(2), the connection is not reset: it stays in FIN-WAIT-1 as an
// orphan, retransmitting, and completes when the peer comes back.
func TestLinger_TimesOutThenFinishesInBackground(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetLinger(2))
	p.w.cutToS = true
	_, err := p.c.Write([]byte("hello"))
	require.NoError(t, err)
	done := lingerClose(t, p)
	p.n.RunUntil(at(1.999), nil)
	select {
	case <-done:
		t.Fatal("Close returned before its linger time")
	default:
	}
	p.n.RunUntil(at(2), nil)
	<-done
	r, ok := p.clientRow(t)
	require.True(t, ok)
	require.Equal(t, tcp.StateFinWait1, r.State)
	require.Empty(t, p.w.sent(true, fRSTACK, 0), "no reset after the linger time")
	p.w.cutToS = false
	p.n.RunUntil(at(10), nil)
	buf := make([]byte, 8)
	k, err := p.s.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf[:k]))
	_, err = p.s.Read(buf)
	require.Equal(t, io.EOF, err)
}

// blockedRead starts a Read of c on another goroutine and returns once it is parked: it
// has a read deadline an hour away, so the wait shows as the virtual clock's only timer.
func blockedRead(t *testing.T, p *pairNet, c *tcp.Conn) <-chan error {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Hour)))
	return blockedOn(t, p, func() error {
		_, err := c.Read(make([]byte, 16))
		return err
	})
}

// blockedOn runs fn on another goroutine and returns once a timer of the virtual clock
// shows it waiting.
func blockedOn(t *testing.T, p *pairNet, fn func() error) <-chan error {
	t.Helper()
	_, busy := p.n.Clock.NextTimer()
	require.False(t, busy)
	res := make(chan error, 1)
	go func() { res <- fn() }()
	settleUntil(t, p.n, func() bool { _, ok := p.n.Clock.NextTimer(); return ok })
	return res
}

// A Write blocked on a full send buffer, and a Read blocked on an empty receive buffer,
// return net.ErrClosed when the connection is closed under them, as with Go's net (not
// EPIPE, nor io.EOF).
func TestClose_WakesBlockedWrite(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	p.w.cutToS = true // nothing is acknowledged: the send buffer fills
	require.NoError(t, p.c.SetWriteDeadline(time.Now().Add(time.Hour)))
	wr := blockedOn(t, p, func() error {
		_, err := p.c.Write(make([]byte, 1<<20))
		return err
	})
	require.NoError(t, p.c.Close())
	p.n.Settle() // the shard takes the Close: FIN-WAIT-1
	require.ErrorIs(t, <-wr, net.ErrClosed)
}

func TestClose_WakesBlockedRead(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	rd := blockedRead(t, p, p.s)
	require.NoError(t, p.s.Close())
	p.n.Settle()
	require.ErrorIs(t, <-rd, net.ErrClosed)
	_, err := p.s.Write([]byte("x"))
	require.ErrorIs(t, err, net.ErrClosed)

	// Without a deadline the Read parks on its channel alone; Close wakes it all the same.
	res := make(chan error, 1)
	go func() {
		_, err := p.c.Read(make([]byte, 16))
		res <- err
	}()
	p.n.RunFor(time.Millisecond) // the server's FIN: io.EOF, not a hang
	require.Equal(t, io.EOF, <-res)
	res2 := make(chan error, 1)
	require.NoError(t, p.c.CloseRead())
	go func() {
		_, err := p.c.Read(make([]byte, 16))
		res2 <- err
	}()
	require.Equal(t, io.EOF, <-res2)
	require.NoError(t, p.c.Close())
	_, err = p.c.Read(make([]byte, 16))
	require.ErrorIs(t, err, net.ErrClosed)
}

// SetLinger(0) in LAST-ACK with the FIN still unsent (the peer's window is full): Linux's
// tcp_disconnect resets there too (snd_nxt != write_seq), though tcp_need_reset leaves
// LAST-ACK out.
func TestLinger_ZeroInLastAckWithUnsentFIN(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.s.CloseWrite())
	p.n.RunFor(100 * time.Millisecond)
	require.Equal(t, tcp.StateCloseWait, p.c.State())
	chunk := make([]byte, 4096)
	for range 20 { // more than the server, which does not read, has room for
		p.c.TryWrite(chunk)
		p.n.RunFor(time.Millisecond)
	}
	require.NoError(t, p.c.CloseWrite())
	p.n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateLastAck, p.c.State())
	require.Empty(t, p.w.withFlag(true, header.TCPFlagFIN), "the FIN waits behind the data")
	require.NoError(t, p.c.SetLinger(0))
	require.NoError(t, p.c.Close())
	p.n.RunFor(time.Millisecond)
	require.Len(t, p.w.sent(true, fRSTACK, 0), 1, p.w.trace())
	require.Equal(t, uint64(1), p.n.Client.Counters()[stats.TcpExtTCPAbortOnData])
	_, ok := p.clientRow(t)
	require.False(t, ok)
	require.ErrorIs(t, p.s.Err(), tcp.ErrConnectionReset)
}

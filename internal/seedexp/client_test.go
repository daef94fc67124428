package seedexp

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/tcp"
)

const s = time.Second

// oneClient returns a driver with one client starting at start and its scripted conn.
func oneClient(start time.Duration) (*Driver, *fakeClock, *fakeConn) {
	clk := &fakeClock{}
	conn := newFakeConn(clk)
	d := New(Config{Starts: []time.Duration{start}}, clk, &fakeDialer{conns: []*fakeConn{conn}, clock: clk}, nil)
	return d, clk, conn
}

func TestClient_ConnectFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refused", tcp.ErrConnectionRefused, OutcomeRefused},
		{"reset", tcp.ErrConnectionReset, OutcomeReset},
		{"timed out", tcp.ErrTimedOut, OutcomeTimedOut},
		{"refused, as Go's net says it", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, OutcomeRefused},
		{"reset, as Go's net says it", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, OutcomeReset},
		{"a dial deadline", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, OutcomeTimedOut},
		{"anything else", tcp.ErrNetUnreachable, "CONNECT FAILED: tcp: network is unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, clk, conn := oneClient(s)
			clk.at(3*s, func() { conn.err = tc.err })
			d.RunUntil(999 * time.Millisecond)
			require.Equal(t, OutcomeNotStarted, d.Clients()[0].Outcome)
			d.RunUntil(2 * s)
			require.Equal(t, OutcomeConnecting, d.Clients()[0].Outcome)
			d.RunUntil(10 * s)
			r := d.Clients()[0]
			require.Equal(t, tc.want, r.Outcome)
			require.ErrorIs(t, r.Err, tc.err)
			require.False(t, r.Connected)
			require.True(t, conn.closed, "client.c closes its socket when connect() fails")
			require.Empty(t, conn.writes, "nothing is sent on a failed connect")
			require.Equal(t, uint16(40000), r.LocalPort)
		})
	}
}

func TestClient_DialError(t *testing.T) {
	clk := &fakeClock{}
	d := New(Config{Starts: []time.Duration{0}}, clk, &fakeDialer{err: tcp.ErrAddrNotAvail, clock: clk}, nil)
	d.RunUntil(s)
	r := d.Clients()[0]
	require.True(t, r.Started)
	require.ErrorIs(t, r.Err, syscall.EADDRNOTAVAIL)
	require.Equal(t, "CONNECT FAILED: tcp: cannot assign requested address", r.Outcome)
	require.Nil(t, d.Conn(0))
}

// The client sends 2 s after connect() returns, then waits for the reply however long it
// takes, and sends again 2 s after it.
func TestClient_WaitsForReply(t *testing.T) {
	d, clk, conn := oneClient(s)
	clk.at(1500*time.Millisecond, func() { conn.connected = true })
	d.RunUntil(10 * s)
	r := d.Clients()[0]
	require.True(t, r.Connected)
	require.Equal(t, 1500*time.Millisecond, r.ConnectedAt, "connect() returns when the handshake completes")
	require.Equal(t, []time.Duration{3500 * time.Millisecond}, conn.writeTimes(), "one message, then recv() blocks")
	require.Equal(t, Message, conn.writes[0].data)
	require.Equal(t, 1, r.Messages)
	require.Equal(t, 13, r.Sent)
	require.Equal(t, OutcomeConnected, r.Outcome)

	clk.at(12*s, func() { conn.inbox = append(conn.inbox, "a reply"...) })
	d.RunUntil(20 * s)
	require.Equal(t, []time.Duration{3500 * time.Millisecond, 14 * s}, conn.writeTimes(),
		"the next message goes 2 s after the reply, and no other before its own reply")
	r = d.Clients()[0]
	require.Equal(t, 1, r.Replies)
	require.Equal(t, len("a reply"), r.Received)
	require.Equal(t, "a reply", r.LastReply)
	require.Equal(t, 2, r.Messages)

	// recv() returning 0 ends the program, which closes its socket.
	clk.at(21*s, func() { conn.eof = true })
	d.RunUntil(30 * s)
	r = d.Clients()[0]
	require.True(t, r.Closed)
	require.NoError(t, r.Err)
	require.Equal(t, OutcomeClosed, r.Outcome)
	require.True(t, conn.closed)
	require.Len(t, conn.writes, 2)
}

// Whatever one recv() returns is the reply, as in client.c: a reply split in two ends one
// wait with its first part, and the rest is read by the wait after the next send.
func TestClient_AnyDataEndsTheWait(t *testing.T) {
	d, clk, conn := oneClient(0)
	conn.connected = true
	clk.at(3*s, func() { conn.inbox = append(conn.inbox, "part one"...) })
	clk.at(3*s+time.Millisecond, func() { conn.inbox = append(conn.inbox, "part two"...) })
	d.RunUntil(6 * s)
	require.Equal(t, []time.Duration{2 * s, 5 * s}, conn.writeTimes())
	r := d.Clients()[0]
	require.Equal(t, 2, r.Replies, "the second part was already there when the second recv() came")
	require.Equal(t, "part two", r.LastReply)
}

// A reset while the client waits in recv() ends it at once.
func TestClient_ResetWhileWaiting(t *testing.T) {
	d, clk, conn := oneClient(0)
	conn.connected = true
	clk.at(2500*time.Millisecond, func() { conn.readErr = tcp.ErrConnectionReset })
	d.RunUntil(2500 * time.Millisecond)
	r := d.Clients()[0]
	require.True(t, r.Connected)
	require.Equal(t, OutcomeReset, r.Outcome)
	require.True(t, conn.closed)
}

// send() blocks until the whole message is taken; the message counts once.
func TestClient_PartialWrites(t *testing.T) {
	d, clk, conn := oneClient(0)
	conn.connected = true
	conn.room = 5
	clk.at(2100*time.Millisecond, func() { conn.room = 5 })
	clk.at(2200*time.Millisecond, func() { conn.room = 100 })
	d.RunUntil(2150 * time.Millisecond)
	r := d.Clients()[0]
	require.Equal(t, 10, r.Sent)
	require.Zero(t, r.Messages, "still in send()")
	d.RunUntil(3 * s)
	r = d.Clients()[0]
	require.Equal(t, 13, r.Sent)
	require.Equal(t, 1, r.Messages)
	var all string
	for _, w := range conn.writes {
		all += w.data
	}
	require.Equal(t, Message, all)
	require.Equal(t, []time.Duration{2 * s, 2100 * time.Millisecond, 2200 * time.Millisecond}, conn.writeTimes())
}

// A send error ends the client, as client.c's "send message error" does.
func TestClient_SendError(t *testing.T) {
	d, clk, conn := oneClient(0)
	conn.connected = true
	clk.at(time.Second, func() { conn.closed = true })
	d.RunUntil(3 * s)
	r := d.Clients()[0]
	require.ErrorIs(t, r.Err, io.ErrClosedPipe)
	require.Zero(t, r.Sent)
	require.Equal(t, "CONNECT FAILED: io: read/write on closed pipe", r.Outcome)
}

package seedexp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The server of §1.4 and §1.6 never calls accept().
func TestServer_NeverAccepts(t *testing.T) {
	clk := &fakeClock{}
	l := &fakeListener{queue: []*fakeConn{newFakeConn(clk)}}
	d := New(Config{}, clk, &fakeDialer{clock: clk}, l)
	d.RunUntil(10 * s)
	require.Zero(t, l.calls)
	require.Zero(t, d.Server().Accepted)
}

// The server of §1.5 accepts at once, and each handler replies 1 s after each message with
// the message, " : " and ctime() of the clock's calendar time.
func TestServer_RepliesAfterPause(t *testing.T) {
	clk := &fakeClock{}
	a, b := newFakeConn(clk), newFakeConn(clk)
	l := &fakeListener{}
	d := New(Config{Accept: true}, clk, &fakeDialer{clock: clk}, l)
	clk.at(500*time.Millisecond, func() { l.queue = append(l.queue, a) })
	clk.at(700*time.Millisecond, func() { l.queue = append(l.queue, b) })
	clk.at(2*s, func() { a.inbox = append(a.inbox, Message...) })
	clk.at(2500*time.Millisecond, func() { b.inbox = append(b.inbox, "other"...) })
	d.RunUntil(2999 * time.Millisecond)
	require.Equal(t, 2, d.Server().Accepted)
	require.Empty(t, a.writes, "still in sleep(1)")
	d.RunUntil(5 * s)
	require.Equal(t, []fakeWrite{{3 * s, "hello, world! : Thu Oct 17 15:25:37 2013\n"}}, a.writes)
	require.Equal(t, []fakeWrite{{3500 * time.Millisecond, "other : Thu Oct 17 15:25:37 2013\n"}}, b.writes)
	require.Len(t, a.writes[0].data, ReplyLen)

	// A handler whose connection ends closes it; the other goes on.
	clk.at(6*s, func() { a.eof = true })
	clk.at(7*s, func() { b.inbox = append(b.inbox, Message...) })
	d.RunUntil(9 * s)
	require.True(t, a.closed)
	require.False(t, b.closed)
	require.Equal(t, []time.Duration{3500 * time.Millisecond, 8 * s}, b.writeTimes())
	r := d.Server()
	require.Equal(t, []ServerConnResult{
		{Received: 13, Sent: ReplyLen, Replies: 1, Closed: true},
		{Received: 5 + 13, Sent: len("other : ") + 25 + ReplyLen, Replies: 2},
	}, r.Conns)

	d.Close()
	require.True(t, b.closed, "Close closes what the server accepted")
}

// An accept error stops the accept loop; the handlers go on.
func TestServer_AcceptError(t *testing.T) {
	clk := &fakeClock{}
	a := newFakeConn(clk)
	l := &fakeListener{queue: []*fakeConn{a}, err: errClosedForTest}
	d := New(Config{Accept: true}, clk, &fakeDialer{clock: clk}, l)
	clk.at(s, func() { a.inbox = append(a.inbox, Message...) })
	d.RunUntil(3 * s)
	r := d.Server()
	require.Equal(t, 1, r.Accepted)
	require.ErrorIs(t, r.AcceptErr, errClosedForTest)
	require.Equal(t, 2, l.calls, "no accept after the error")
	require.Len(t, a.writes, 1)
}

func TestReply(t *testing.T) {
	got := Reply([]byte(Message), time.Date(2013, time.October, 7, 9, 5, 3, 0, time.UTC))
	require.Equal(t, "hello, world! : Mon Oct  7 09:05:03 2013\n", string(got), "ctime pads the day with a space")
	require.Len(t, got, ReplyLen)
	require.Equal(t, 41, ReplyLen, "the seed's client printed length=41")
}

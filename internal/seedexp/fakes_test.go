package seedexp

import (
	"io"
	"sort"
	"time"
)

// fakeClock is a virtual clock with scripted events: Advance runs the events due up to
// its target in time order and calls wake after each, as simnet's RunUntil does.
type fakeClock struct {
	now    time.Duration
	events []fakeEvent
}

type fakeEvent struct {
	at time.Duration
	do func()
}

// at schedules do at time t.
func (c *fakeClock) at(t time.Duration, do func()) {
	c.events = append(c.events, fakeEvent{t, do})
	sort.SliceStable(c.events, func(i, j int) bool { return c.events[i].at < c.events[j].at })
}

func (c *fakeClock) Now() time.Duration { return c.now }

func (c *fakeClock) Advance(t time.Duration, wake func() bool) {
	for len(c.events) > 0 && c.events[0].at <= t {
		e := c.events[0]
		c.events = c.events[1:]
		c.now = max(c.now, e.at)
		e.do()
		if wake != nil && wake() {
			return
		}
	}
	c.now = max(c.now, t)
}

func (c *fakeClock) Wall(t time.Duration) time.Time { return Epoch.Add(t) }

// fakeConn is a connection whose peer the test scripts.
type fakeConn struct {
	clock     *fakeClock
	connected bool
	err       error // Err's answer (a failed connect)
	inbox     []byte
	eof       bool
	readErr   error
	room      int // bytes TryWrite takes before it blocks; < 0: unlimited
	writes    []fakeWrite
	closed    bool
	port      uint16
}

type fakeWrite struct {
	at   time.Duration
	data string
}

func newFakeConn(c *fakeClock) *fakeConn { return &fakeConn{clock: c, room: -1, port: 40000} }

func (f *fakeConn) TryRead(p []byte) (int, error) {
	switch {
	case f.closed:
		return 0, io.ErrClosedPipe
	case len(f.inbox) > 0:
		n := copy(p, f.inbox)
		f.inbox = f.inbox[n:]
		return n, nil
	case f.readErr != nil:
		return 0, f.readErr
	case f.eof:
		return 0, io.EOF
	}
	return 0, ErrWouldBlock
}

func (f *fakeConn) TryWrite(p []byte) (int, error) {
	if f.closed {
		return 0, io.ErrClosedPipe
	}
	n := len(p)
	if f.room >= 0 {
		n = min(n, f.room)
		f.room -= n
	}
	if n > 0 {
		f.writes = append(f.writes, fakeWrite{f.clock.now, string(p[:n])})
	}
	if n < len(p) {
		return n, ErrWouldBlock
	}
	return n, nil
}

func (f *fakeConn) Close() error      { f.closed = true; return nil }
func (f *fakeConn) Connected() bool   { return f.connected }
func (f *fakeConn) Err() error        { return f.err }
func (f *fakeConn) LocalPort() uint16 { return f.port }

// writeTimes returns when each write happened.
func (f *fakeConn) writeTimes() []time.Duration {
	var out []time.Duration
	for _, w := range f.writes {
		out = append(out, w.at)
	}
	return out
}

// fakeDialer hands out prepared connections in order, or fails with err.
type fakeDialer struct {
	conns []*fakeConn
	err   error
	dials []time.Duration
	clock *fakeClock
}

func (d *fakeDialer) Dial() (ClientConn, error) {
	d.dials = append(d.dials, d.clock.now)
	if d.err != nil {
		return nil, d.err
	}
	c := d.conns[0]
	d.conns = d.conns[1:]
	return c, nil
}

// fakeListener hands out queued connections and counts the calls.
type fakeListener struct {
	queue []*fakeConn
	calls int
	err   error
}

func (l *fakeListener) TryAccept() (Conn, error) {
	l.calls++
	if len(l.queue) > 0 {
		c := l.queue[0]
		l.queue = l.queue[1:]
		return c, nil
	}
	if l.err != nil {
		return nil, l.err
	}
	return nil, ErrWouldBlock
}

var errClosedForTest = io.ErrClosedPipe

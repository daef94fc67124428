package seedexp

import (
	"errors"
	"io"
	"time"
)

// ClientResult is what one client did and saw so far.
type ClientResult struct {
	ID          int           // 1-based, in the order of Config.Starts
	Start       time.Duration // when it calls connect()
	Started     bool          // connect() was called
	Connected   bool          // connect() returned 0
	ConnectedAt time.Duration // when it did
	LocalPort   uint16        // the connection's local port, once known
	Messages    int           // messages wholly sent
	Sent        int           // bytes sent
	Replies     int           // recv() calls that returned data
	Received    int           // bytes received
	LastReply   string        // what the last of them returned
	Closed      bool          // recv() returned 0: the server closed the connection
	Err         error         // what failed: connect(), send() or recv(); nil otherwise
	Outcome     string        // the above in the lab's words (the Outcome constants)
}

// clientPhase is where client.c is in its program.
type clientPhase uint8

const (
	clientIdle       clientPhase = iota // before its start time
	clientConnecting                    // in connect()
	clientSleeping                      // in sleep(2)
	clientSending                       // in send()
	clientWaiting                       // in recv()
	clientDone                          // exited
)

// client is client.c as a state machine; step runs it as far as it can go now.
type client struct {
	cfg    *Config
	phase  clientPhase
	conn   ClientConn
	wakeAt time.Duration
	out    []byte // the part of the message send() has not taken yet
	buf    [ClientBuffer]byte
	res    ClientResult
}

// step advances the client at time now; it reports whether anything happened.
func (c *client) step(now time.Duration, dial Dialer) bool {
	switch c.phase {
	case clientIdle:
		if now < c.res.Start {
			return false
		}
		c.res.Started = true
		conn, err := dial.Dial()
		if err != nil {
			c.fail(err)
			return true
		}
		c.conn, c.phase = conn, clientConnecting
		return true
	case clientConnecting:
		if err := c.conn.Err(); err != nil {
			c.fail(err)
			return true
		}
		if !c.conn.Connected() {
			return false
		}
		c.res.Connected, c.res.ConnectedAt = true, now
		c.notePort()
		c.sleep(now)
		return true
	case clientSleeping:
		if now < c.wakeAt {
			return false
		}
		c.out, c.phase = []byte(c.cfg.Message), clientSending
		c.send()
		return true
	case clientSending:
		return c.send()
	case clientWaiting:
		return c.recv(now)
	}
	return false
}

func (c *client) sleep(now time.Duration) {
	c.phase, c.wakeAt = clientSleeping, now+c.cfg.SendEvery
}

// send is a blocking send(): it goes on until every byte is taken.
func (c *client) send() bool {
	n, err := c.conn.TryWrite(c.out)
	c.res.Sent += n
	c.out = c.out[n:]
	switch {
	case err != nil && !wouldBlock(err):
		c.fail(err)
		return true
	case len(c.out) == 0:
		c.res.Messages++
		c.phase = clientWaiting
		return true
	}
	return n > 0
}

// recv is a blocking recv() of up to ClientBuffer bytes: any data ends the wait, as in
// client.c, which takes whatever one recv() returns for the reply.
func (c *client) recv(now time.Duration) bool {
	n, err := c.conn.TryRead(c.buf[:])
	if n > 0 {
		c.res.Replies++
		c.res.Received += n
		c.res.LastReply = string(c.buf[:n])
		c.sleep(now)
		return true
	}
	switch {
	case err == nil || wouldBlock(err):
		return false
	case errors.Is(err, io.EOF):
		c.res.Closed = true
		c.exit()
	default:
		c.fail(err)
	}
	return true
}

// fail ends the program with an error, as client.c's perror and exit, or break, do.
func (c *client) fail(err error) {
	c.res.Err = err
	c.exit()
}

func (c *client) exit() {
	c.phase = clientDone
	if c.conn != nil {
		c.notePort()
		_ = c.conn.Close()
	}
}

// notePort remembers the local port while the connection can still tell it.
func (c *client) notePort() {
	if c.res.LocalPort == 0 && c.conn != nil {
		c.res.LocalPort = c.conn.LocalPort()
	}
}

// result returns the client's record with its outcome.
func (c *client) result() ClientResult {
	if c.phase != clientDone {
		c.notePort()
	}
	r := c.res
	switch {
	case !r.Started:
		r.Outcome = OutcomeNotStarted
	case r.Err != nil:
		r.Outcome = failure(r.Err)
	case r.Closed:
		r.Outcome = OutcomeClosed
	case r.Connected:
		r.Outcome = OutcomeConnected
	default:
		r.Outcome = OutcomeConnecting
	}
	return r
}

// next returns when the client is next due to act by itself.
func (c *client) next() (time.Duration, bool) {
	switch c.phase {
	case clientIdle:
		return c.res.Start, true
	case clientSleeping:
		return c.wakeAt, true
	}
	return 0, false
}

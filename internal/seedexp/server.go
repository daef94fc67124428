package seedexp

import (
	"errors"
	"io"
	"time"
)

// ServerResult is what the server did so far.
type ServerResult struct {
	Accepted  int                // connections accept() returned
	AcceptErr error              // the error that stopped the accept loop, if any
	Conns     []ServerConnResult // per accepted connection, in accept order
}

// ServerConnResult is what one connection's handler did.
type ServerConnResult struct {
	Received int   // bytes recv() returned
	Sent     int   // bytes sent
	Replies  int   // replies wholly sent
	Closed   bool  // the handler ended (EOF or an error) and closed the connection
	Err      error // the error that ended it, if not EOF
}

// server is server.c: with accept, an accept loop and a handler per connection;
// without, nothing at all (it sleeps in its for loop).
type server struct {
	cfg    *Config
	clock  Clock
	l      Listener
	conns  []*handler
	res    ServerResult
	closed bool
}

// handler is server.c's thread(): recv(), sleep(1), append the time, send().
type handler struct {
	conn   Conn
	phase  handlerPhase
	wakeAt time.Duration
	buf    [ServerBuffer]byte
	msg    []byte // what the last recv() returned
	out    []byte // the part of the reply send() has not taken yet
	res    ServerConnResult
}

type handlerPhase uint8

const (
	handlerReading handlerPhase = iota // in recv()
	handlerPausing                     // in sleep(1)
	handlerWriting                     // in send()
	handlerDone                        // closed
)

// step runs the server at time now; it reports whether anything happened.
func (s *server) step(now time.Duration) bool {
	if !s.cfg.Accept || s.closed {
		return false
	}
	did := false
	for s.res.AcceptErr == nil {
		conn, err := s.l.TryAccept()
		if err != nil {
			if !wouldBlock(err) {
				s.res.AcceptErr = err
				did = true
			}
			break
		}
		s.conns = append(s.conns, &handler{conn: conn})
		s.res.Accepted++
		did = true
	}
	for _, h := range s.conns {
		if h.step(now, s.cfg, s.clock) {
			did = true
		}
	}
	return did
}

func (h *handler) step(now time.Duration, cfg *Config, clk Clock) bool {
	switch h.phase {
	case handlerReading:
		n, err := h.conn.TryRead(h.buf[:])
		if n > 0 {
			h.res.Received += n
			h.msg = append(h.msg[:0], h.buf[:n]...)
			h.phase, h.wakeAt = handlerPausing, now+cfg.ReplyPause
			return true
		}
		if err == nil || wouldBlock(err) {
			return false
		}
		h.end(err)
		return true
	case handlerPausing:
		if now < h.wakeAt {
			return false
		}
		h.out, h.phase = Reply(h.msg, clk.Wall(now)), handlerWriting
		h.send()
		return true
	case handlerWriting:
		return h.send()
	}
	return false
}

func (h *handler) send() bool {
	n, err := h.conn.TryWrite(h.out)
	h.res.Sent += n
	h.out = h.out[n:]
	switch {
	case err != nil && !wouldBlock(err):
		h.end(err)
		return true
	case len(h.out) == 0:
		h.res.Replies++
		h.phase = handlerReading
		return true
	}
	return n > 0
}

// end closes the connection; io.EOF is no error.
func (h *handler) end(err error) {
	if err != nil && !errors.Is(err, io.EOF) {
		h.res.Err = err
	}
	h.res.Closed = true
	h.phase = handlerDone
	_ = h.conn.Close()
}

func (h *handler) next() (time.Duration, bool) {
	if h.phase == handlerPausing {
		return h.wakeAt, true
	}
	return 0, false
}

func (s *server) result() ServerResult {
	r := s.res
	r.Conns = make([]ServerConnResult, len(s.conns))
	for i, h := range s.conns {
		r.Conns[i] = h.res
	}
	return r
}

// close closes every accepted connection; the listener stays the caller's.
func (s *server) close() {
	s.closed = true
	for _, h := range s.conns {
		if h.phase != handlerDone {
			h.phase = handlerDone
			_ = h.conn.Close()
		}
	}
}

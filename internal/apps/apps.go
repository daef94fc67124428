// Package apps holds the small servers `shardstack serve` runs on its listeners, written
// against net.Listener and net.Conn so that the same code serves on shardstack and on
// Linux's own stack: echo (returns what it reads), discard (reads and drops), hello (reads
// one HTTP/1.0 request, writes a fixed reply and closes first, as the load generator
// expects) and http (a net/http server whose handler answers "hello"). A Server tracks
// every connection so that Close can end them all.
package apps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/internal/loadgen"
)

// Names lists the applications.
var Names = []string{"echo", "discard", "hello", "http"}

// Server runs one application on any number of listeners.
type Server struct {
	app      string
	http     *http.Server
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	lns      []net.Listener
	closed   bool
	wg       sync.WaitGroup
	accepted atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
}

// New returns a server for the named application.
func New(app string) (*Server, error) {
	s := &Server{app: app, conns: map[net.Conn]struct{}{}}
	switch app {
	case "echo", "discard", "hello":
	case "http":
		s.http = &http.Server{
			Handler:           http.HandlerFunc(hello),
			ReadHeaderTimeout: 10 * time.Second,
			ConnState:         s.httpState,
		}
	default:
		return nil, fmt.Errorf("apps: unknown application %q (want one of %v)", app, Names)
	}
	return s, nil
}

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "hello\n")
}

func (s *Server) httpState(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.accepted.Add(1)
	}
}

// Serve accepts on l until it or the server closes, and serves every connection on a
// goroutine of its own. It returns once l stops accepting.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.lns = append(s.lns, l)
	s.mu.Unlock()
	if s.http != nil {
		err := s.http.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.accepted.Add(1)
		s.wg.Add(1)
		go s.serve(c)
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	switch s.app {
	case "echo":
		_, _ = io.Copy(counting{c, &s.bytesOut}, counting{c, &s.bytesIn})
	case "discard":
		_, _ = io.Copy(io.Discard, counting{c, &s.bytesIn})
	case "hello":
		serveHello(c, &s.bytesIn, &s.bytesOut)
	}
}

// serveHello reads up to the end of a request's header (or 4 KiB), answers and closes.
func serveHello(c net.Conn, in, out *atomic.Int64) {
	var buf [4096]byte
	got := 0
	for got < len(buf) {
		n, err := c.Read(buf[got:])
		got += n
		if bytes.Contains(buf[:got], []byte("\r\n\r\n")) {
			break
		}
		if err != nil {
			in.Add(int64(got))
			return
		}
	}
	in.Add(int64(got))
	n, _ := c.Write(loadgen.Reply)
	out.Add(int64(n))
}

// counting counts the bytes that pass through a connection in one direction.
type counting struct {
	net.Conn
	n *atomic.Int64
}

func (c counting) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c counting) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// Stats are a server's totals.
type Stats struct {
	Accepted int64 `json:"accepted"`
	Open     int   `json:"open"`
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// Stats returns the totals so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	return Stats{Accepted: s.accepted.Load(), Open: open, BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load()}
}

// Close stops every listener it serves, closes every connection and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	lns := s.lns
	conns := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var err error
	if s.http != nil {
		err = s.http.Close()
	}
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	s.wg.Wait()
	return err
}

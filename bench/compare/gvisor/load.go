package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The bytes each connection exchanges: the same as shardstack's demo.
var (
	request = []byte("GET / HTTP/1.0\r\n\r\n")
	reply   = []byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
)

// warmConns is how many connections run one by one before measuring, so that the
// stacks' pools, goroutines and tables exist.
const warmConns = 64

// maxErrorKinds bounds how many distinct error messages a client keeps.
const maxErrorKinds = 16

// config is one run.
type config struct {
	Duration    time.Duration // stop opening connections after this long (required)
	Conns       int           // also stop after this many connections (0: no limit)
	Concurrency int           // client goroutines
	RST         bool          // clients close with RST (linger 0) instead of FIN
	Link        string        // linkChannel or linkPipe
	Queue       int           // channel link queue length per side
	Grace       time.Duration // how long clients may take to finish after Duration
}

// result is what a run measured.
type result struct {
	Stack         string           `json:"stack"`
	GVisorVersion string           `json:"gvisor_version"`
	Link          string           `json:"link"`
	Close         string           `json:"close"`
	Concurrency   int              `json:"concurrency"`
	GOMAXPROCS    int              `json:"gomaxprocs"`
	Conns         int64            `json:"conns"`
	Failures      int64            `json:"failures"`
	Stuck         int64            `json:"stuck_clients"`
	Seconds       float64          `json:"seconds"`
	ConnsPerSec   float64          `json:"conns_per_sec"`
	P50us         float64          `json:"p50_us"`
	P99us         float64          `json:"p99_us"`
	P999us        float64          `json:"p999_us"`
	AllocsPerConn float64          `json:"allocs_per_conn"`
	BytesPerConn  float64          `json:"bytes_per_conn"`
	Errors        map[string]int64 `json:"errors,omitempty"`
}

// closeName names the way clients close.
func closeName(rst bool) string {
	if rst {
		return "rst"
	}
	return "fin"
}

// run builds a fresh pair, serves on one stack, loads it from the other and measures.
func run(cfg config) (*result, error) {
	if cfg.Duration <= 0 {
		return nil, errors.New("gvisor: --duration must be positive")
	}
	if cfg.Concurrency <= 0 {
		return nil, errors.New("gvisor: --concurrency must be positive")
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8192
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 10 * time.Second
	}
	p, err := newPair(cfg.Link, cfg.Queue)
	if err != nil {
		return nil, err
	}
	defer p.close()
	target := tcpip.FullAddress{NIC: nicID, Addr: serverAddr, Port: serverPort}
	l, err := gonet.ListenTCP(p.server, target, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	go serve(l)
	cl := client{stack: p.client, target: target, rst: cfg.RST}
	if err := cl.warm(); err != nil {
		return nil, fmt.Errorf("gvisor: warm-up: %w", err)
	}
	res := cl.load(cfg, p.close)
	res.Link = cfg.Link
	return res, nil
}

// serve accepts until l closes, answering each connection on its own goroutine, as a
// net.Listener program does.
func serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

// handle reads one request, writes the reply and closes (first, so that the server
// holds TIME-WAIT and the client's port comes free at once).
func handle(c net.Conn) {
	var buf [64]byte
	got := 0
	for got < len(request) {
		n, err := c.Read(buf[got:])
		got += n
		if err != nil {
			break
		}
	}
	if got == len(request) {
		c.Write(reply)
	}
	c.Close()
}

// client opens connections on one stack to the server on the other.
type client struct {
	stack  *stack.Stack
	target tcpip.FullAddress
	rst    bool
}

// dial opens one connection. Closing with FIN uses gonet.DialContextTCP as it is;
// gonet gives no way to set SO_LINGER on its conns, so closing with RST takes the same
// steps by hand and sets linger 0 on the endpoint first.
func (cl *client) dial(ctx context.Context) (net.Conn, error) {
	if !cl.rst {
		return gonet.DialContextTCP(ctx, cl.stack, cl.target, ipv4.ProtocolNumber)
	}
	var wq waiter.Queue
	ep, terr := cl.stack.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	// Linger on with a zero timeout: Close sends RST instead of FIN, as SO_LINGER {1, 0}
	// does on Linux, so the client never enters LAST-ACK.
	ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(cl.target)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, fmt.Errorf("connect: %s", terr)
	}
	return gonet.NewTCPConn(&wq, ep), nil
}

// exchange writes the request and reads the reply up to the server's FIN.
func exchange(c net.Conn, buf []byte) error {
	if _, err := c.Write(request); err != nil {
		return err
	}
	got := 0
	for {
		n, err := c.Read(buf[got:])
		got += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if got == len(buf) {
			return errors.New("reply too long")
		}
	}
	if got != len(reply) {
		return fmt.Errorf("reply of %d bytes, want %d", got, len(reply))
	}
	return nil
}

// warm makes warmConns connections one after another; each must succeed.
func (cl *client) warm() error {
	var buf [128]byte
	for i := 0; i < warmConns; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := cl.dial(ctx)
		cancel()
		if err != nil {
			return err
		}
		err = exchange(c, buf[:])
		c.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// worker is one client goroutine's tally, merged when the run ends.
type worker struct {
	lat      latency
	done     int64
	failures int64
	errs     map[string]int64
}

func (w *worker) fail(err error) {
	w.failures++
	msg := err.Error()
	if _, ok := w.errs[msg]; !ok && len(w.errs) >= maxErrorKinds {
		msg = "other errors"
	}
	w.errs[msg]++
}

// load runs cfg.Concurrency clients until cfg.Duration (or cfg.Conns) and measures the
// connections per second, the dial latency and the heap allocations of the whole
// process (both stacks, server and clients) per connection. abort closes the stacks; it
// runs only when clients are still blocked cfg.Grace after the deadline.
func (cl *client) load(cfg config, abort func()) *result {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration)
	defer cancel()
	limit := int64(cfg.Conns)
	if limit <= 0 {
		limit = 1 << 62
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{errs: map[string]int64{}}
	}
	var issued, active atomic.Int64
	var wg sync.WaitGroup
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start := time.Now()
	for _, w := range workers {
		wg.Add(1)
		active.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			var buf [128]byte
			for ctx.Err() == nil && issued.Add(1) <= limit {
				t0 := time.Now()
				c, err := cl.dial(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					w.fail(err)
					continue
				}
				w.lat.record(int64(time.Since(t0)))
				if err := exchange(c, buf[:]); err != nil {
					w.fail(err)
				} else {
					w.done++
				}
				c.Close()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	res := &result{Stack: "gvisor", GVisorVersion: gvisorVersion(), Close: closeName(cfg.RST),
		Concurrency: cfg.Concurrency, GOMAXPROCS: runtime.GOMAXPROCS(0), Errors: map[string]int64{}}
	select {
	case <-finished:
	case <-ctx.Done():
		grace := time.NewTimer(cfg.Grace)
		select {
		case <-finished:
		case <-grace.C:
			// A client still blocked here waits on a connection the stack lost.
			res.Stuck = active.Load()
		}
		grace.Stop()
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	if res.Stuck > 0 {
		// Closing the stacks fails the blocked reads and dials, so the clients return
		// and their tallies can be read; those connections count as failures.
		abort()
		select {
		case <-finished:
		case <-time.After(cfg.Grace):
			res.Errors["clients still blocked after the stacks closed"] = res.Stuck
			return res
		}
	}
	var lat latency
	for _, w := range workers {
		lat.merge(&w.lat)
		res.Conns += w.done
		res.Failures += w.failures
		for k, v := range w.errs {
			res.Errors[k] += v
		}
	}
	res.Seconds = elapsed.Seconds()
	res.ConnsPerSec = float64(res.Conns) / res.Seconds
	res.P50us = float64(lat.quantile(0.50)) / 1e3
	res.P99us = float64(lat.quantile(0.99)) / 1e3
	res.P999us = float64(lat.quantile(0.999)) / 1e3
	if res.Conns > 0 {
		res.AllocsPerConn = float64(ms1.Mallocs-ms0.Mallocs) / float64(res.Conns)
		res.BytesPerConn = float64(ms1.TotalAlloc-ms0.TotalAlloc) / float64(res.Conns)
	}
	return res
}

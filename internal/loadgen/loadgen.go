// Package loadgen is shardstack's connection-rate load: C concurrent clients that each open a
// connection, send one small HTTP/1.0 request, read the reply up to the server's FIN and
// close, again and again, until a count or a time is reached. The server closes first
// (HTTP/1.0), so it holds TIME-WAIT and the clients' ephemeral ports come free at once.
//
// It runs on a shardstack stack, written either with tcp.Events callbacks that run inside
// the shards (no goroutine per connection) or as a goroutine per client over net.Conn; and,
// for comparison, over any dial function (Linux's own stack through Go's net). The demo runs
// it over the in-memory pair, `shardstack load` over a real link.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/shardstack/shardstack/internal/hist"
	"github.com/shardstack/shardstack/pkg/stack"
)

// Request is what each client sends; Reply is what the demo's own server answers (any
// "HTTP/1.x 200" reply ending in the server's FIN is a success).
var (
	Request = []byte("GET / HTTP/1.0\r\n\r\n")
	Reply   = []byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
)

// MaxReply is the longest reply a client accepts.
const MaxReply = 1 << 16

// The APIs Config.API accepts.
const (
	APIEvents     = "events"
	APIGoroutines = "goroutines"
)

// Config is one run.
type Config struct {
	Target      netip.AddrPort
	Conns       int           // stop after this many connections (0: only Duration)
	Concurrency int           // clients at once (default 256)
	Duration    time.Duration // stop after this long (0: only Conns)
	API         string        // APIEvents (default) or APIGoroutines
	// Progress, if set, is called about every ProgressEvery (default 200 ms) with the
	// connections completed so far.
	Progress      func(done int64, elapsed time.Duration)
	ProgressEvery time.Duration
}

// Result is what a run measured.
type Result struct {
	Conns       int64            `json:"conns"`
	Failures    int64            `json:"failures"`
	Seconds     float64          `json:"seconds"`
	ConnsPerSec float64          `json:"conns_per_sec"`
	P50us       float64          `json:"p50_us"`  // handshake: dial to established
	P99us       float64          `json:"p99_us"`  //
	P999us      float64          `json:"p999_us"` //
	ConnP50us   float64          `json:"conn_p50_us"`
	ConnP99us   float64          `json:"conn_p99_us"` // whole connection: dial to the reply's end
	Concurrency int              `json:"concurrency"`
	API         string           `json:"api"`
	FirstError  string           `json:"first_error,omitempty"`
	Errors      map[string]int64 `json:"errors,omitempty"`
	Handshake   *hist.Histogram  `json:"-"`
	Total       *hist.Histogram  `json:"-"`
	Mallocs     uint64           `json:"-"` // heap allocations during the run
	AllocBytes  uint64           `json:"-"`
}

func (c *Config) fill() error {
	if c.Concurrency <= 0 {
		c.Concurrency = 256
	}
	if c.Conns < 0 || c.Duration < 0 || (c.Conns == 0 && c.Duration == 0) {
		return errors.New("loadgen: need a number of connections or a duration")
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 200 * time.Millisecond
	}
	switch c.API {
	case "":
		c.API = APIEvents
	case APIEvents, APIGoroutines:
	default:
		return fmt.Errorf("loadgen: unknown API %q (want events or goroutines)", c.API)
	}
	if !c.Target.IsValid() || c.Target.Port() == 0 {
		return fmt.Errorf("loadgen: bad target %v", c.Target)
	}
	return nil
}

// Run runs the load from a shardstack stack.
func Run(cli *stack.Stack, cfg Config) (*Result, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if cfg.API == APIEvents {
		return runEvents(cli, cfg), nil
	}
	return runGoroutines(func(ctx context.Context) (net.Conn, error) {
		c, err := cli.DialTCP(ctx, cfg.Target)
		if err != nil {
			return nil, err
		}
		return c, nil
	}, cfg)
}

// RunNet runs the goroutine-per-client load over dial (Linux's stack through Go's net, or
// anything else that makes connections to the target).
func RunNet(dial func(ctx context.Context) (net.Conn, error), cfg Config) (*Result, error) {
	cfg.API = APIGoroutines
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	return runGoroutines(dial, cfg)
}

// CheckReply reports whether reply is a successful HTTP/1.x response.
func CheckReply(reply []byte) error {
	if len(reply) < 12 || !bytes.HasPrefix(reply, []byte("HTTP/1.")) || string(reply[8:13]) != " 200 " && string(reply[8:12]) != " 200" {
		n := min(len(reply), 24)
		return fmt.Errorf("loadgen: not an HTTP 200 reply: %q", reply[:n])
	}
	return nil
}

// Exchange writes the request and reads the reply up to the server's FIN into buf, then
// checks it; any connection will do.
func Exchange(c io.ReadWriter, buf []byte) error {
	if _, err := c.Write(Request); err != nil {
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
			return errors.New("loadgen: reply too long")
		}
	}
	return CheckReply(buf[:got])
}

// measure brackets a run: wall time and the heap allocations made during it.
type measure struct {
	start time.Time
	ms0   runtime.MemStats
}

func startMeasure() *measure {
	m := &measure{}
	runtime.GC()
	runtime.ReadMemStats(&m.ms0)
	m.start = time.Now()
	return m
}

func (m *measure) finish(cfg Config, hs, total *hist.Histogram) *Result {
	elapsed := time.Since(m.start)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	return &Result{
		Concurrency: cfg.Concurrency, API: cfg.API,
		Seconds: elapsed.Seconds(), Errors: map[string]int64{},
		Handshake: hs, Total: total,
		Mallocs: ms1.Mallocs - m.ms0.Mallocs, AllocBytes: ms1.TotalAlloc - m.ms0.TotalAlloc,
	}
}

// summarize fills in the derived figures once Conns is known.
func (res *Result) summarize() {
	if res.Seconds > 0 {
		res.ConnsPerSec = float64(res.Conns) / res.Seconds
	}
	us := func(h *hist.Histogram, q float64) float64 { return float64(h.Quantile(q)) / 1e3 }
	res.P50us, res.P99us, res.P999us = us(res.Handshake, 0.5), us(res.Handshake, 0.99), us(res.Handshake, 0.999)
	res.ConnP50us, res.ConnP99us = us(res.Total, 0.5), us(res.Total, 0.99)
}

type worker struct {
	hs, total hist.Histogram
	done      int64
	failures  int64
	errs      map[string]int64
}

func (w *worker) fail(err error) {
	w.failures++
	w.errs[err.Error()]++
}

// runGoroutines runs cfg.Concurrency goroutines, each dialing, exchanging and closing until
// the limit or the deadline.
func runGoroutines(dial func(ctx context.Context) (net.Conn, error), cfg Config) (*Result, error) {
	var issued, done atomic.Int64
	limit := int64(cfg.Conns)
	if limit <= 0 {
		limit = 1 << 62
	}
	var ctx context.Context
	var cancel context.CancelFunc
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
		ctx, cancel = context.WithDeadline(context.Background(), deadline)
	} else {
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	// ended reports whether the run is over: a dial cut short by the deadline is not a
	// failure (the dialer's own timer can fire a moment before the context's).
	ended := func() bool { return ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) }
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{errs: map[string]int64{}}
	}
	pool, err := ants.NewPool(cfg.Concurrency, ants.WithPreAlloc(true))
	if err != nil {
		return nil, fmt.Errorf("loadgen: client pool: %w", err)
	}
	defer pool.Release()
	m := startMeasure()
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		err := pool.Submit(func() {
			defer wg.Done()
			buf := make([]byte, MaxReply)
			for ctx.Err() == nil && issued.Add(1) <= limit {
				t0 := time.Now()
				c, err := dial(ctx)
				if err != nil {
					if ended() {
						return
					}
					w.fail(err)
					continue
				}
				w.hs.Record(int64(time.Since(t0)))
				if err := Exchange(c, buf); err != nil {
					w.fail(err)
				} else {
					w.total.Record(int64(time.Since(t0)))
					w.done++
					done.Add(1)
				}
				c.Close()
			}
		})
		if err != nil {
			// The pool holds exactly Concurrency workers, so this is a broken pool, not
			// load: stop the clients already running and report it.
			wg.Done()
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("loadgen: start client %d of %d: %w", i+1, len(workers), err)
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	if cfg.Progress != nil {
		t := time.NewTicker(cfg.ProgressEvery)
	loop:
		for {
			select {
			case <-finished:
				break loop
			case <-t.C:
				cfg.Progress(done.Load(), time.Since(m.start))
			}
		}
		t.Stop()
	}
	<-finished
	var hs, total hist.Histogram
	for _, w := range workers {
		hs.Merge(&w.hs)
		total.Merge(&w.total)
	}
	res := m.finish(cfg, &hs, &total)
	for _, w := range workers {
		res.Conns += w.done
		res.Failures += w.failures
		for k, v := range w.errs {
			res.Errors[k] += v
			if res.FirstError == "" {
				res.FirstError = k
			}
		}
	}
	res.summarize()
	return res, nil
}

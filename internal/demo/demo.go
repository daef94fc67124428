// Package demo is the load the `shardstack demo` command and the end-to-end benchmarks run:
// two stacks in one process over the in-memory pair, C concurrent clients that each open a
// connection, send a small request, read the reply and close, again and again, while the
// server accepts, answers and closes (HTTP/1.0 style, so the server holds TIME-WAIT and
// the client's ephemeral ports come free at once).
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/panjf2000/ants/v2"

	"github.com/shardstack/shardstack/internal/hist"
	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Request and Reply are the bytes each connection exchanges (the load generator's).
var (
	Request = loadgen.Request
	Reply   = loadgen.Reply
)

// Addresses of the two stacks (RFC 2544's benchmarking range, never routed).
var (
	ServerAddr = netip.MustParsePrefix("198.18.0.1/24")
	ClientAddr = netip.MustParsePrefix("198.18.0.2/24")
	ServerPort = uint16(8080)
)

// Config is one run.
type Config struct {
	Conns       int           // stop after this many connections (0: only Duration)
	Concurrency int           // clients at once
	Shards      int           // shards per stack
	Duration    time.Duration // stop after this long (0: only Conns)
	Progress    func(done int64, elapsed time.Duration)
	ProgressInt time.Duration
	Backlog     int
	Seed        uint64
	// API picks how the demo's client and server are written: "events" (tcp.Events
	// callbacks that run inside the shards, no goroutine per connection) or "goroutines"
	// (a goroutine per client and per accepted connection, blocking Dial/Read/Write, the
	// shape of a net.Conn program).
	API string
	// DialPort is the port the clients dial; 0 means ServerPort, where the server listens.
	// Any other port has no listener, so every connection is refused: that is how tests
	// make a whole run fail.
	DialPort uint16
}

// The APIs Config.API accepts.
const (
	APIEvents     = "events"
	APIGoroutines = "goroutines"
)

// Result is what a run measured.
type Result struct {
	Conns         int64             `json:"conns"`
	Failures      int64             `json:"failures"`
	Seconds       float64           `json:"seconds"`
	ConnsPerSec   float64           `json:"conns_per_sec"`
	P50us         float64           `json:"p50_us"`
	P99us         float64           `json:"p99_us"`
	P999us        float64           `json:"p999_us"`
	AllocsPerConn float64           `json:"allocs_per_conn"`
	BytesPerConn  float64           `json:"bytes_per_conn"`
	Shards        int               `json:"shards"`
	Concurrency   int               `json:"concurrency"`
	API           string            `json:"api"`
	FirstError    string            `json:"first_error,omitempty"`
	Server        map[string]uint64 `json:"server_counters"`
	Client        map[string]uint64 `json:"client_counters"`
	Errors        map[string]int64  `json:"errors,omitempty"`
	ServerStats   stats.Counters    `json:"-"`
	ClientStats   stats.Counters    `json:"-"`
	Latency       *hist.Histogram   `json:"-"`
}

// Pair is two stacks wired back to back.
type Pair struct {
	Server, Client *stack.Stack
	PortS, PortC   *dpdkshim.MemPort
	group          *stack.Group
}

// NewPair builds the two stacks with n shards each.
func NewPair(shards int, seed uint64) (*Pair, error) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{
		Queues:   shards,
		RingSize: 8192,
		Pool:     dpdkshim.PoolConfig{Size: 8192},
	})
	// Both stacks share the flow-hash seed (the hash is symmetric), so a flow lives on the
	// same shard index on both sides, as symmetric RSS arranges on real NICs.
	hseed := hash.RandomHasher().Seed()
	srv, err := stack.New(stack.Config{Port: a, Addr: ServerAddr, Shards: shards, Seed: seed, HashSeed: hseed, Manual: true, Name: "server"})
	if err != nil {
		return nil, err
	}
	cseed := seed
	if cseed != 0 {
		cseed++
	}
	cli, err := stack.New(stack.Config{Port: b, Addr: ClientAddr, Shards: shards, Seed: cseed, HashSeed: hseed, Manual: true, Name: "client"})
	if err != nil {
		srv.Close()
		return nil, err
	}
	// Core i runs shard i of both stacks: each flow's packets stay on one core.
	g, err := stack.RunGroup(srv, cli)
	if err != nil {
		srv.Close()
		cli.Close()
		return nil, err
	}
	return &Pair{Server: srv, Client: cli, PortS: a, PortC: b, group: g}, nil
}

// Close stops both stacks.
func (p *Pair) Close() {
	p.group.Stop()
	p.Client.Close()
	p.Server.Close()
}

// Serve accepts on l until it closes, answering each connection from a bounded pool of
// handler goroutines.
func Serve(l *tcp.Listener, handlers int) (stop func(), err error) {
	pool, err := ants.NewPoolWithFunc(handlers, func(arg any) {
		Handle(arg.(*tcp.Conn))
	}, ants.WithPreAlloc(true))
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	acceptors := max(1, runtime.GOMAXPROCS(0))
	for i := 0; i < acceptors; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.AcceptTCP()
				if err != nil {
					return
				}
				if err := pool.Invoke(c); err != nil {
					// The pool refuses work only once released: drop the connection,
					// which its client sees and counts as a failure.
					c.Close()
				}
			}
		}()
	}
	return func() {
		l.Close()
		wg.Wait()
		pool.Release()
	}, nil
}

// Handle reads one request, writes the reply and closes: the demo's server. It takes the
// concrete *tcp.Conn so that its buffer stays on the stack (HandleNet serves any net.Conn).
func Handle(c *tcp.Conn) {
	var buf [64]byte
	got := 0
	for got < len(Request) {
		n, err := c.Read(buf[got:])
		got += n
		if err != nil {
			break
		}
	}
	if got == len(Request) {
		c.Write(Reply)
	}
	c.Close()
}

// Run runs the load on a fresh pair.
func Run(cfg Config) (*Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 256
	}
	if cfg.Shards <= 0 {
		cfg.Shards = runtime.GOMAXPROCS(0)
	}
	if cfg.Conns <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("demo: need --conns or --duration")
	}
	if cfg.Backlog <= 0 {
		cfg.Backlog = 4096
	}
	switch cfg.API {
	case "":
		cfg.API = APIEvents
	case APIEvents, APIGoroutines:
	default:
		return nil, fmt.Errorf("demo: unknown --api %q (want events or goroutines)", cfg.API)
	}
	p, err := NewPair(cfg.Shards, cfg.Seed)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	target := netip.AddrPortFrom(ServerAddr.Addr(), ServerPort)
	dial := target
	if cfg.DialPort != 0 {
		dial = netip.AddrPortFrom(ServerAddr.Addr(), cfg.DialPort)
	}
	opts := tcp.ListenOptions{Backlog: cfg.Backlog}
	if cfg.API == APIEvents {
		opts.Events = EventServer{}
	}
	l, err := p.Server.ListenTCP(target, opts)
	if err != nil {
		return nil, err
	}
	if cfg.API == APIEvents {
		defer l.Close()
	} else {
		stop, err := Serve(l, cfg.Concurrency*2)
		if err != nil {
			l.Close()
			return nil, err
		}
		defer stop()
	}
	warm(p, target)
	lr, err := loadgen.Run(p.Client, loadgen.Config{
		Target: dial, Conns: cfg.Conns, Concurrency: cfg.Concurrency, Duration: cfg.Duration,
		API: cfg.API, Progress: cfg.Progress, ProgressEvery: cfg.ProgressInt,
	})
	if err != nil {
		return nil, err
	}
	return result(lr, cfg, p), nil
}

// result adds the demo's own figures to the load's.
func result(lr *loadgen.Result, cfg Config, p *Pair) *Result {
	res := &Result{
		Conns: lr.Conns, Failures: lr.Failures, Seconds: lr.Seconds, ConnsPerSec: lr.ConnsPerSec,
		P50us: lr.P50us, P99us: lr.P99us, P999us: lr.P999us,
		Shards: cfg.Shards, Concurrency: cfg.Concurrency, API: cfg.API,
		FirstError: lr.FirstError, Errors: lr.Errors, Latency: lr.Handshake,
	}
	if res.Conns > 0 {
		res.AllocsPerConn = float64(lr.Mallocs) / float64(res.Conns)
		res.BytesPerConn = float64(lr.AllocBytes) / float64(res.Conns)
	}
	res.ServerStats = p.Server.Counters()
	res.ClientStats = p.Client.Counters()
	res.Server = res.ServerStats.NonZero()
	res.Client = res.ClientStats.NonZero()
	return res
}

// warm makes a few connections before measuring, so that ARP has resolved and the pools
// and goroutines exist.
func warm(p *Pair, target netip.AddrPort) {
	var buf [128]byte
	for i := 0; i < 64; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := p.Client.DialTCP(ctx, target)
		cancel()
		if err != nil {
			continue
		}
		_ = loadgen.Exchange(c, buf[:]) // a failure here shows up in the measured run
		c.Close()
	}
}

// Exchange is loadgen.Exchange (the Linux loopback benchmark calls it).
func Exchange(c io.ReadWriter, buf []byte) error { return loadgen.Exchange(c, buf) }

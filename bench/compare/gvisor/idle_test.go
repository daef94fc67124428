package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	idleConns = flag.Int("idle.conns", 20000, "BenchmarkIdleConnMemory: established connections to hold")
	idleBytes = flag.Int("idle.bytes", 32<<10, "BenchmarkIdleConnMemory data=true: bytes each connection moves each way")
)

const (
	// idlePortsPerListener keeps each listener's 4-tuples well inside gVisor's ephemeral
	// range (16000-65535).
	idlePortsPerListener = 40000
	idleWorkers          = 64
)

// idleMem is what one measurement found, in heap bytes per connection.
type idleMem struct {
	pairAlloc, pairInuse     float64
	serverAlloc, serverInuse float64
}

// BenchmarkIdleConnMemory is shardstack's bench.BenchmarkIdleConnMemory on gVisor's
// netstack: -idle.conns (20,000) established connections between two gVisor stacks in
// one process (channel link, gonet on both sides), a forced GC, and the heap they hold
// per connection pair and per server-side connection, as HeapAlloc and HeapInuse deltas.
// The server-side figure is taken after the client stack is destroyed behind a link that
// discards what it sends (so the server never hears of it) and released to the garbage
// collector. data=true first moves -idle.bytes (32 KiB, about what fills shardstack's
// default buffers) each way through every connection, written by one side and read by
// the other. One op is one whole measurement; use -benchtime 1x.
//
//	cd bench/compare && go test -run '^$' -bench BenchmarkIdleConnMemory -benchtime 1x ./gvisor/
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, data := range []bool{false, true} {
		b.Run(fmt.Sprintf("data=%v", data), func(b *testing.B) {
			b.ReportAllocs()
			var m idleMem
			for i := 0; i < b.N; i++ {
				m = measureIdle(b, *idleConns, data)
			}
			b.ReportMetric(m.pairAlloc, "B/pair")
			b.ReportMetric(m.pairInuse, "inuse-B/pair")
			b.ReportMetric(m.serverAlloc, "B/server-conn")
			b.ReportMetric(m.serverInuse, "inuse-B/server-conn")
		})
	}
}

func heap() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// switchedPump moves packets from one channel endpoint into another while on is set and
// discards them once it is cleared (to may then be nil), until ctx ends.
func switchedPump(ctx context.Context, from, to *channel.Endpoint, on *atomic.Bool) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		if !on.Load() {
			pkt.DecRef()
			continue
		}
		proto := pkt.NetworkProtocolNumber
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: pkt.ToBuffer()})
		pkt.DecRef()
		to.InjectInbound(proto, in)
		in.DecRef()
	}
}

func measureIdle(tb testing.TB, n int, data bool) idleMem {
	nl := (n + idlePortsPerListener - 1) / idlePortsPerListener
	clientConns := make([]net.Conn, n)
	serverConns := make([]net.Conn, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wire atomic.Bool
	wire.Store(true)

	ca := channel.New(8192, mtu, "")
	srv, err := newStack(ca, serverAddr)
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Destroy()
	targets := make([]tcpip.FullAddress, nl)
	ls := make([]*gonet.TCPListener, nl)
	for i := range ls {
		targets[i] = tcpip.FullAddress{NIC: nicID, Addr: serverAddr, Port: uint16(serverPort + i)}
		if ls[i], err = gonet.ListenTCP(srv, targets[i], ipv4.ProtocolNumber); err != nil {
			tb.Fatal(err)
		}
		defer ls[i].Close()
	}
	s0, si0 := heap()

	cb := channel.New(8192, mtu, "")
	cli, err := newStack(cb, clientAddr)
	if err != nil {
		tb.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); switchedPump(pctx, ca, cb, &wire) }()
	go func() { defer pumps.Done(); switchedPump(pctx, cb, ca, &wire) }()
	c0, ci0 := heap()

	// Accept on every listener while workers dial; connection i goes to listener i % nl.
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for accepted.Load() < int64(n) {
				c, err := l.Accept()
				if err != nil {
					return
				}
				serverConns[accepted.Add(1)-1] = c
			}
		}()
	}
	if err := parallel(n, func(i int) error {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		defer dcancel()
		c, err := gonet.DialContextTCP(dctx, cli, targets[i%nl], ipv4.ProtocolNumber)
		clientConns[i] = c
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	for accepted.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	for _, l := range ls {
		l.Close() // ends the accept goroutines
	}
	wg.Wait()
	if data {
		// The server side's conns are in accept order, not dial order: pair them by
		// address, then move idleBytes each way.
		byPeer := make(map[string]net.Conn, n)
		for _, c := range serverConns {
			byPeer[c.RemoteAddr().String()] = c
		}
		buf := make([]byte, *idleBytes)
		if err := parallel(n, func(i int) error {
			c := clientConns[i]
			s := byPeer[c.LocalAddr().String()]
			if s == nil {
				return fmt.Errorf("no server side for %v", c.LocalAddr())
			}
			rb := make([]byte, len(buf))
			for _, dir := range [][2]net.Conn{{c, s}, {s, c}} {
				if _, err := dir[0].Write(buf); err != nil {
					return err
				}
				if _, err := io.ReadFull(dir[1], rb); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			tb.Fatal(err)
		}
		byPeer = nil
		time.Sleep(time.Second) // delayed ACKs and window updates
	}
	if ce, se := cli.Stats().TCP.CurrentEstablished.Value(), srv.Stats().TCP.CurrentEstablished.Value(); ce != uint64(n) || se != uint64(n) {
		tb.Fatalf("%d client and %d server connections established, want %d", ce, se, n)
	}
	p1, pi1 := heap()

	// The client goes: the pumps stop (the one into the client holds its endpoint), what
	// the server sends from now on is discarded, the client stack is destroyed and
	// nothing of it stays reachable.
	wire.Store(false)
	pcancel()
	pumps.Wait()
	go switchedPump(ctx, ca, nil, &wire)
	cli.Destroy()
	clear(clientConns)
	s1, si1 := heap()
	if se := srv.Stats().TCP.CurrentEstablished.Value(); se != uint64(n) {
		tb.Fatalf("%d server connections left after the client went, want %d", se, n)
	}
	runtime.KeepAlive(serverConns)
	fn := float64(n)
	return idleMem{
		pairAlloc: (float64(p1) - float64(c0)) / fn, pairInuse: (float64(pi1) - float64(ci0)) / fn,
		serverAlloc: (float64(s1) - float64(s0)) / fn, serverInuse: (float64(si1) - float64(si0)) / fn,
	}
}

// parallel runs fn(0..n-1) on idleWorkers goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := 0; w < idleWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := fn(i); err != nil {
					err = fmt.Errorf("connection %d: %w", i, err)
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

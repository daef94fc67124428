package bench

import (
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var idleConns = flag.Int("idle.conns", 20000, "BenchmarkIdleConnMemory: established connections to hold")

// Batches of the idle-memory harness: dials in flight at once, and connections whose
// buffers fill at once (each holds about a dozen frames in flight, and the pools hold
// idlePool packets, so they never grow).
const (
	idleDialBatch = 512
	idleDataBatch = 128
	idlePool      = 4096
	// idlePortsPerListener spreads the connections over listeners, 10,000 each: the client
	// picks each ephemeral port for its destination, and today's pickPort probes past the
	// ports in use for that destination, so a destination holding most of the range makes
	// each dial cost as much as the ports already taken (40,000 connections to one port
	// spent 93% of a 64 s run in pickPort).
	idlePortsPerListener = 10000
)

// idleMem is what one measurement found, in heap bytes per connection.
type idleMem struct {
	pairAlloc, pairInuse     float64 // both stacks: HeapAlloc and HeapInuse delta / N
	serverAlloc, serverInuse float64 // the server stack alone, the client stack gone
	bytesMoved               int64   // per connection, both directions (data runs)
}

// BenchmarkIdleConnMemory holds -idle.conns (20,000; 100,000 is measurable) established
// connections between two shardstack stacks in one process (manual stacks on a virtual
// clock over the in-memory pair, one shard each), forces a GC and reports the heap they
// hold: per connection pair (both ends) and per server-side connection, as HeapAlloc
// and HeapInuse deltas. The server-side figure is taken after the client stack is closed
// behind a link that drops everything (so the server never hears of it) and released to
// the garbage collector: what remains over the server's own baseline is its connections.
//
// data=false measures connections straight after the handshake; data=true after each
// connection's buffers were filled both ways (the sender writes until its send buffer and
// the peer's receive window are both full) and then drained by the reader, and every
// timer that was due has run. One op is one whole measurement; use -benchtime 1x.
//
//	go test -run '^$' -bench BenchmarkIdleConnMemory -benchtime 1x ./bench/ -idle.conns 100000
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
			if data {
				b.ReportMetric(float64(m.bytesMoved), "bytes-moved/conn")
			}
		})
	}
}

// heap returns HeapAlloc and HeapInuse after two forced collections (the second frees
// what finalizers of the first released).
func heap() (alloc, inuse uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// manualStacks is the idle harness's pair: manual stacks the caller polls.
type manualStacks struct {
	vc           *clock.Virtual
	sport, cport *dpdkshim.MemPort
	srv, cli     *stack.Stack
}

// settle polls the stacks that are still open until none has anything left to do now.
func (m *manualStacks) settle(tb testing.TB) {
	idle := 0
	for i := 0; i < 1_000_000; i++ {
		n := m.srv.Poll()
		if m.cli != nil {
			n += m.cli.Poll()
		}
		if n == 0 {
			if idle++; idle == 2 {
				return
			}
		} else {
			idle = 0
		}
	}
	tb.Fatal("idle: the stacks never settled")
}

// runFor advances the virtual clock by d, deadline by deadline, settling at each.
func (m *manualStacks) runFor(tb testing.TB, d time.Duration) {
	end := m.vc.Now() + int64(d)
	for {
		m.settle(tb)
		t, ok := m.srv.NextDeadline()
		if m.cli != nil {
			if c, cok := m.cli.NextDeadline(); cok && (!ok || c < t) {
				t, ok = c, true
			}
		}
		if !ok || t > end {
			m.vc.Set(end)
			m.settle(tb)
			return
		}
		if t > m.vc.Now() {
			m.vc.Set(t)
		}
	}
}

// measureIdle opens n connections, optionally passes data through them, and measures.
func measureIdle(tb testing.TB, n int, data bool) idleMem {
	vc := clock.NewVirtual(0)
	sport, cport := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, Pool: dpdkshim.PoolConfig{Size: idlePool}})
	nl := (n + idlePortsPerListener - 1) / idlePortsPerListener
	cs := make([]tcp.Handle, n)
	ss := make([]tcp.Handle, 0, n)
	targets := make([]netip.AddrPort, nl)
	wbuf, rbuf := make([]byte, 64<<10), make([]byte, 64<<10)
	m := &manualStacks{vc: vc, sport: sport, cport: cport}
	var err error
	m.srv, err = stack.New(stack.Config{Port: sport, Addr: simnet.ServerAddr, Shards: 1, Clock: vc, Manual: true, Seed: 21, Name: "server",
		StaticNeighbours: map[netip.Addr][6]byte{simnet.ClientAddr.Addr(): cport.MAC()}})
	if err != nil {
		tb.Fatal(err)
	}
	defer m.srv.Close()
	ls := make([]*tcp.Listener, nl)
	for i := range ls {
		targets[i] = netip.AddrPortFrom(simnet.ServerAddr.Addr(), uint16(bulkPort+i))
		if ls[i], err = m.srv.ListenTCP(targets[i], tcp.ListenOptions{Backlog: 4096}); err != nil {
			tb.Fatal(err)
		}
	}
	s0, si0 := heap()
	m.cli, err = stack.New(stack.Config{Port: cport, Addr: simnet.ClientAddr, Shards: 1, Clock: vc, Manual: true, Seed: 22, Name: "client",
		TCP:              tcp.Settings{IPLocalPortRange: [2]uint16{1024, 65535}},
		StaticNeighbours: map[netip.Addr][6]byte{simnet.ServerAddr.Addr(): sport.MAC()}})
	if err != nil {
		tb.Fatal(err)
	}
	c0, ci0 := heap()

	for i := 0; i < n; i += idleDialBatch {
		for j := i; j < min(i+idleDialBatch, n); j++ {
			if cs[j], err = m.cli.TCP().DialAsyncHandle(targets[j%nl], tcp.DialOptions{}); err != nil {
				tb.Fatalf("dial %d: %v", j, err)
			}
		}
		m.settle(tb)
		for _, l := range ls {
			for {
				h, err := l.TryAcceptHandle()
				if err != nil {
					break
				}
				ss = append(ss, h)
			}
		}
	}
	if len(ss) != n {
		tb.Fatalf("idle: %d of %d connections accepted", len(ss), n)
	}
	// ss[k] must be cs[k]'s peer: with more than one listener each accepts its own, so
	// the accept order is not the dial order.
	peer := make(map[[2]netip.AddrPort]int, n) // client's address, server's
	for k, h := range cs {
		peer[[2]netip.AddrPort{h.LocalAddrPort(), h.RemoteAddrPort()}] = k
	}
	byPeer := make([]tcp.Handle, n)
	for _, h := range ss {
		k, ok := peer[[2]netip.AddrPort{h.RemoteAddrPort(), h.LocalAddrPort()}]
		if !ok || byPeer[k].Valid() {
			tb.Fatalf("idle: server connection from %v has no client connection of its own", h.RemoteAddrPort())
		}
		byPeer[k] = h
	}
	ss = byPeer
	var moved int64
	if data {
		for i := 0; i < n; i += idleDataBatch {
			// Client to server, then back: each write side fills, then the reader drains.
			moved += fillAndDrain(tb, m, cs, ss, i, min(i+idleDataBatch, n), wbuf, rbuf)
			moved += fillAndDrain(tb, m, ss, cs, i, min(i+idleDataBatch, n), wbuf, rbuf)
		}
		m.runFor(tb, 3*time.Second) // delayed ACKs, any other due timer, the chunk pools back to their reserve
	}
	if ce, se := m.cli.Counters().Value(stats.TcpCurrEstab), m.srv.Counters().Value(stats.TcpCurrEstab); ce != int64(n) || se != int64(n) {
		tb.Fatalf("idle: %d client and %d server connections established, want %d", ce, se, n)
	}
	p1, pi1 := heap()

	// The client goes: its frames are dropped so the server never hears, its stack is
	// closed, and nothing of it stays reachable.
	cport.SetHook(func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Drop} })
	m.cli.Close()
	m.cli = nil
	clear(cs)
	m.settle(tb)
	s1, si1 := heap()
	if se := m.srv.Counters().Value(stats.TcpCurrEstab); se != int64(n) {
		tb.Fatalf("idle: %d server connections left after the client went, want %d", se, n)
	}
	runtime.KeepAlive(ss)
	runtime.KeepAlive(ls)
	fn := float64(n)
	return idleMem{
		pairAlloc: (float64(p1) - float64(c0)) / fn, pairInuse: (float64(pi1) - float64(ci0)) / fn,
		serverAlloc: (float64(s1) - float64(s0)) / fn, serverInuse: (float64(si1) - float64(si0)) / fn,
		bytesMoved: moved / int64(n),
	}
}

// fillAndDrain makes each connection from[i:j] write until its send buffer and the
// peer's receive window are full (a write takes nothing more), then has to[i:j] read
// everything; it returns the bytes moved. A batch whose readers get nothing more for
// idleStall of virtual time fails the benchmark, naming a connection that is short.
func fillAndDrain(tb testing.TB, m *manualStacks, from, to []tcp.Handle, i, j int, wbuf, rbuf []byte) int64 {
	var written, read int64
	sent := make([]int64, j-i)
	got := make([]int64, j-i)
	for {
		took := 0
		for k := i; k < j; k++ {
			w, _ := from[k].TryWrite(wbuf)
			took += w
			sent[k-i] += int64(w)
		}
		m.settle(tb)
		if took == 0 {
			break
		}
		written += int64(took)
	}
	stalled := time.Duration(0)
	for read < written {
		n := 0
		for k := i; k < j; k++ {
			for {
				r, _ := to[k].TryRead(rbuf)
				if r == 0 {
					break
				}
				n += r
				got[k-i] += int64(r)
			}
		}
		m.settle(tb)
		if n > 0 {
			read += int64(n)
			stalled = 0
			continue
		}
		if stalled >= idleStall {
			for k := range sent {
				if got[k] < sent[k] {
					cc, sc := m.cli.Counters(), m.srv.Counters()
					tb.Fatalf("idle: connection %d (%v -> %v, %v) received %d of %d bytes, nothing more for %v of virtual time; "+
						"%d of %d bytes read in connections %d-%d; counters: client %v, server %v",
						i+k, from[i+k].LocalAddrPort(), from[i+k].RemoteAddrPort(), to[i+k].State(), got[k], sent[k], idleStall, read, written, i, j-1,
						cc.NonZero(), sc.NonZero())
				}
			}
		}
		m.runFor(tb, 50*time.Millisecond) // a window update waiting for a timer
		stalled += 50 * time.Millisecond
	}
	return written
}

// idleStall is how long fillAndDrain waits for a reader to get more.
const idleStall = 150 * time.Second

package bench

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/flows"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// bulkPort is the port the flows receiver listens on.
const bulkPort = 9000

// livePair is two running shardstack stacks (their own shard goroutines, the real clock)
// over the in-memory pair, with a flows receiver listening on the server stack. The
// client's port is the one an impairment hook goes on: it sees what the sender sends.
type livePair struct {
	sport, cport *dpdkshim.MemPort
	srv, cli     *stack.Stack
	l            *tcp.Listener
	recv         *flows.Server
	target       netip.AddrPort
}

// newLivePair builds the pair with shards shards per stack and default TCP settings
// (whatever the stack does today), neighbours filled in so no ARP crosses.
func newLivePair(tb testing.TB, shards int) *livePair {
	tb.Helper()
	sport, cport := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: shards})
	p := &livePair{sport: sport, cport: cport, recv: &flows.Server{Deadline: 10 * time.Minute},
		target: netip.AddrPortFrom(simnet.ServerAddr.Addr(), bulkPort)}
	var err error
	p.srv, err = stack.New(stack.Config{Port: sport, Addr: simnet.ServerAddr, Shards: shards, Seed: 11, Name: "server",
		StaticNeighbours: map[netip.Addr][6]byte{simnet.ClientAddr.Addr(): cport.MAC()}})
	if err != nil {
		tb.Fatal(err)
	}
	p.cli, err = stack.New(stack.Config{Port: cport, Addr: simnet.ClientAddr, Shards: shards, Seed: 12, Name: "client",
		StaticNeighbours: map[netip.Addr][6]byte{simnet.ServerAddr.Addr(): sport.MAC()}})
	if err != nil {
		p.srv.Close()
		tb.Fatal(err)
	}
	if p.l, err = p.srv.ListenTCP(p.target, tcp.ListenOptions{Backlog: 1024}); err != nil {
		p.close()
		tb.Fatal(err)
	}
	go p.recv.Serve(p.l)
	return p
}

// dial is the workload's dialer: a net.Conn from the client stack to the receiver.
func (p *livePair) dial(ctx context.Context) (net.Conn, error) { return p.cli.DialTCP(ctx, p.target) }

// counters returns both stacks' counters added together.
func (p *livePair) counters() stats.Counters {
	c, s := p.cli.Counters(), p.srv.Counters()
	c.Merge(&s)
	return c
}

// close stops both stacks (which resets what is still open) and the receiver.
func (p *livePair) close() {
	p.cport.SetHook(nil)
	if p.l != nil {
		p.l.Close()
	}
	p.cli.Close()
	p.srv.Close()
	p.recv.Wait()
}

// impairment stands in for netem on the in-memory pair: a dpdkshim.Hook that drops
// dropPerMille/1000 of the TCP segments that carry payload (SYNs, pure ACKs and FINs
// always pass, so the handshakes are not what is measured) and delays delayPerMille/1000
// of all frames by delay, so that later frames overtake them. The choice comes from a
// seeded PRNG per transmit queue: each queue's hook runs on its own shard goroutine.
type impairment struct {
	dropPerMille, delayPerMille int
	delay                       time.Duration
	queues                      []impairQueue
}

type impairQueue struct {
	rng           rand.PCG
	drops, delays atomic.Uint64
	dataSegs      atomic.Uint64
	_             [40]byte
}

func newImpairment(queues int, seed uint64, dropPerMille, delayPerMille int, delay time.Duration) *impairment {
	m := &impairment{dropPerMille: dropPerMille, delayPerMille: delayPerMille, delay: delay, queues: make([]impairQueue, queues)}
	for i := range m.queues {
		m.queues[i].rng.Seed(seed, uint64(i))
	}
	return m
}

// hook is the dpdkshim.Hook; bind it once (m.hook) so that no closure is made per frame.
func (m *impairment) hook(txq int, frame []byte) dpdkshim.Action {
	q := &m.queues[txq]
	if m.dropPerMille > 0 {
		if seg, ok := simnet.TCPOf(frame); ok && len(seg.Payload()) > 0 {
			q.dataSegs.Add(1)
			if int(q.rng.Uint64()%1000) < m.dropPerMille {
				q.drops.Add(1)
				return dpdkshim.Action{Kind: dpdkshim.Drop}
			}
		}
	}
	if m.delayPerMille > 0 && int(q.rng.Uint64()%1000) < m.delayPerMille {
		q.delays.Add(1)
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: m.delay}
	}
	return dpdkshim.Action{}
}

// totals returns the frames dropped and delayed, and the data segments seen, so far.
func (m *impairment) totals() (drops, delays, dataSegs uint64) {
	for i := range m.queues {
		drops += m.queues[i].drops.Load()
		delays += m.queues[i].delays.Load()
		dataSegs += m.queues[i].dataSegs.Load()
	}
	return
}

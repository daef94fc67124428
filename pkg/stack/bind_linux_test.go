package stack

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// bindingPort is a port that wants to know its queues' threads (dpdkshim.ThreadBinder, as
// DPDK's port does): it records the thread each queue was bound on, every thread a burst
// ran on, and the thread each unbind ran on.
type bindingPort struct {
	dpdkshim.Port
	mu      sync.Mutex
	bound   map[int]int   // queue -> tid of BindThread
	bursts  map[int][]int // queue -> distinct tids of its bursts
	unbound map[int]int   // queue -> tid of the unbind
	early   int           // bursts before the queue was bound
}

func (p *bindingPort) BindThread(q int) (func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bound[q] = unix.Gettid()
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.unbound[q] = unix.Gettid()
	}, nil
}

func (p *bindingPort) RxBurst(q int, pkts []*dpdkshim.Packet) int {
	tid := unix.Gettid()
	p.mu.Lock()
	if _, ok := p.bound[q]; !ok {
		p.early++
	}
	if _, ok := p.unbound[q]; ok {
		// Close's last poll, on the closing goroutine once the cores have stopped.
		p.mu.Unlock()
		return p.Port.RxBurst(q, pkts)
	}
	seen := false
	for _, t := range p.bursts[q] {
		seen = seen || t == tid
	}
	if !seen {
		p.bursts[q] = append(p.bursts[q], tid)
	}
	p.mu.Unlock()
	return p.Port.RxBurst(q, pkts)
}

// TestThreadBinder: a ThreadBinder port's queues are bound on the thread of their shard
// before its first burst, every burst of a queue runs on that one thread (the goroutine is
// locked to it without Pin), and the unbind runs there when the stack closes (Close's last
// poll then runs on the closing goroutine, unbound).
func TestThreadBinder(t *testing.T) {
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	bp := &bindingPort{Port: a, bound: map[int]int{}, bursts: map[int][]int{}, unbound: map[int]int{}}
	srv, err := New(Config{Port: bp, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: 2})
	require.NoError(t, err)
	cli, err := New(Config{Port: b, Addr: netip.MustParsePrefix("198.18.0.2/24"), Shards: 2})
	require.NoError(t, err)
	defer cli.Close()
	l, err := srv.Listen(":80", 64)
	require.NoError(t, err)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := cli.Dial(ctx, "198.18.0.1:80")
		cancel()
		require.NoError(t, err)
		c.Close()
	}
	srv.Close()

	bp.mu.Lock()
	defer bp.mu.Unlock()
	require.Zero(t, bp.early, "no burst before its queue was bound")
	for q := 0; q < 2; q++ {
		require.Contains(t, bp.bound, q)
		require.Equal(t, []int{bp.bound[q]}, bp.bursts[q], "queue %d: every burst on the bound thread", q)
		require.Equal(t, bp.bound[q], bp.unbound[q], "queue %d: unbound on the same thread", q)
	}
	require.NotEqual(t, bp.bound[0], bp.bound[1], "each shard has a thread of its own")
}

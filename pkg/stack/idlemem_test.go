package stack_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestIdleConnectionMemory: an established connection that has moved data and gone idle
// holds no buffer memory: 2,000 of them, both ends in this process, cost less than 4 KiB
// per pair (so under 2 KiB an end), tables and control blocks included.
func TestIdleConnectionMemory(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true})
	l, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 4096})
	require.NoError(t, err)
	// Data moves in waves of `wave` connections, and a first wave's worth of connections
	// runs and closes before the measure: that grows the shards' packet pools to what a
	// wave needs, a fixed cost per shard, not per connection (the chunk pools decay back
	// to their reserve, before each measure). Those first connections' control blocks then
	// wait in the shards' caches and are reused, so the figure is over the N - wave
	// control blocks that are new.
	const N, wave = 4000, 250
	openIdle(t, n, l, wave, wave).closeAll(n)
	before := heapInUse()
	idle := openIdle(t, n, l, N, wave)
	after := heapInUse()
	perPair := float64(after-before) / (N - wave)
	t.Logf("%.0f bytes of heap per idle established pair (both ends)", perPair)
	require.Less(t, perPair, 4096.0)
	for i := range idle.clients {
		require.Equal(t, tcp.StateEstablished, idle.clients[i].State())
	}
	idle.closeAll(n)
}

type idleConns struct{ clients, servers []tcp.Handle }

func (c *idleConns) closeAll(n *simnet.Net) {
	for i := range c.clients {
		c.clients[i].Close()
		c.servers[i].Close()
	}
	n.RunFor(3 * time.Minute) // TIME-WAIT ends
}

// openIdle opens N connections and moves 3,000 bytes one way and 100 back on each, wave
// connections at a time, and lets them go idle.
func openIdle(t *testing.T, n *simnet.Net, l *tcp.Listener, N, wave int) *idleConns {
	t.Helper()
	var err error
	clients := make([]tcp.Handle, N)
	servers := make([]tcp.Handle, 0, N)
	for i := range clients {
		clients[i], err = n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{})
		require.NoError(t, err)
		if i%wave == wave-1 {
			n.RunFor(10 * time.Millisecond)
		}
	}
	n.RunFor(10 * time.Millisecond)
	byPeer := map[uint16]tcp.Handle{}
	for len(byPeer) < N {
		h, err := l.TryAcceptHandle()
		require.NoError(t, err)
		byPeer[h.RemoteAddrPort().Port()] = h
	}
	for _, c := range clients {
		servers = append(servers, byPeer[c.LocalAddrPort().Port()]) // servers[i] is clients[i]'s peer
	}
	msg := make([]byte, 3000)
	buf := make([]byte, 4096)
	// Read everything, letting virtual time run (what a pool could not carry at once the
	// retransmission timer sends).
	drain := func(hs []tcp.Handle, want int) {
		got := make([]int, len(hs))
		for round := 0; ; round++ {
			require.Less(t, round, 100, "data did not arrive")
			done := true
			for i, h := range hs {
				for got[i] < want {
					k, err := h.TryRead(buf)
					if err != nil {
						require.ErrorIs(t, err, tcp.ErrWouldBlock)
						break
					}
					got[i] += k
				}
				done = done && got[i] == want
			}
			if done {
				return
			}
			n.RunFor(100 * time.Millisecond)
		}
	}
	for w := 0; w < N; w += wave {
		cs, ss := clients[w:min(w+wave, N)], servers[w:min(w+wave, N)]
		for i := range cs {
			_, err := cs[i].TryWrite(msg)
			require.NoError(t, err)
		}
		drain(ss, len(msg))
		for i := range ss {
			_, err := ss[i].TryWrite(msg[:100])
			require.NoError(t, err)
		}
		drain(cs, 100)
	}
	n.RunFor(3 * time.Second) // delayed ACKs, trims, and the chunk pools back to their reserve (two decays)
	return &idleConns{clients, servers}
}

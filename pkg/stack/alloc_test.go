package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// One whole connection on both stacks - dial, handshake, accept, request, reply, close on
// both sides, TIME-WAIT and its expiry - allocates nothing once the pools are warm. This is
// the zero-garbage principle on the full path, client and server, through the Handle API
// (net.Conn's wrapper is the one allocation per connection it adds, on each side).
func TestConnectionLifecycleAllocatesNothing(t *testing.T) {
	t.Run("IPv4", func(t *testing.T) { lifecycleAllocs(t, serverAP) })
	t.Run("IPv6", func(t *testing.T) { lifecycleAllocs(t, serverAP6) })
}

func lifecycleAllocs(t *testing.T, serverAP netip.AddrPort) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true, IPv6: true})
	l, err := n.Server.Listen(":80", 64)
	require.NoError(t, err)
	req, rep := []byte("GET / HTTP/1.0\r\n\r\n"), []byte("HTTP/1.0 200 OK\r\n\r\nok")
	buf := make([]byte, 64)
	cycle := func() {
		c, err := n.Client.TCP().DialAsyncHandle(serverAP, tcp.DialOptions{})
		if err != nil {
			panic(err)
		}
		n.Settle()
		s, err := l.TryAcceptHandle()
		if err != nil {
			panic(err)
		}
		c.TryWrite(req)
		n.Settle()
		s.TryRead(buf)
		s.TryWrite(rep)
		s.Close()
		n.Settle()
		c.TryRead(buf)
		c.TryRead(buf)
		c.Close()
		// Let TIME-WAIT expire so its entries come back to the pool.
		n.RunFor(61 * time.Second)
	}
	for i := 0; i < 300; i++ {
		cycle()
	}
	allocs := testing.AllocsPerRun(200, cycle)
	require.Zero(t, allocs)
	require.Len(t, n.Server.Sockets(), 1)
	require.Len(t, n.Client.Sockets(), 0)
}

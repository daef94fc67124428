package stack_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// TestManyConcurrentClients opens a wave of connections at once on two shards per stack,
// answers them all, and checks that nothing fails, leaks or resets.
func TestManyConcurrentClients(t *testing.T) {
	for _, shards := range []int{1, 2, 3} {
		n := newNet(t, simnet.Options{Shards: shards, StaticARP: true})
		l, err := n.Server.Listen(":80", 4096)
		require.NoError(t, err)
		const N = 500
		clients := make([]*tcp.Conn, N)
		for i := range clients {
			c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
			require.NoError(t, err)
			clients[i] = c
		}
		n.RunFor(5 * time.Millisecond)
		for _, c := range clients {
			require.Equal(t, tcp.StateEstablished, c.State())
			k := hash.KeyV4(c.LocalAddrPort().Addr().As4(), c.LocalAddrPort().Port(), serverAP.Addr().As4(), serverAP.Port())
			require.Equal(t, n.PortC.Steering().Queue(k, shards), c.Shard(), "the shard the link steers the flow to owns it")
			_, err := c.TryWrite([]byte("ping"))
			require.NoError(t, err)
		}
		n.RunFor(time.Millisecond)
		buf := make([]byte, 16)
		for i := 0; i < N; i++ {
			s, err := l.TryAccept()
			require.NoError(t, err, "accept %d", i)
			k, err := s.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "ping", string(buf[:k]))
			_, err = s.TryWrite([]byte("pong"))
			require.NoError(t, err)
			require.NoError(t, s.Close())
		}
		n.RunFor(time.Millisecond)
		for _, c := range clients {
			k, err := c.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "pong", string(buf[:k]))
			_, err = c.TryRead(buf)
			require.Equal(t, io.EOF, err)
			require.NoError(t, c.Close())
		}
		n.RunFor(time.Millisecond)
		sc, cc := n.Server.Counters(), n.Client.Counters()
		require.Equal(t, uint64(N), sc[stats.TcpPassiveOpens])
		require.Equal(t, uint64(N), cc[stats.TcpActiveOpens])
		require.Zero(t, sc[stats.TcpAttemptFails]+cc[stats.TcpAttemptFails])
		require.Zero(t, sc[stats.TcpOutRsts]+cc[stats.TcpOutRsts])
		require.Zero(t, sc.Value(stats.TcpCurrEstab)+cc.Value(stats.TcpCurrEstab))
		require.Len(t, n.Client.Sockets(), 0)
	}
}

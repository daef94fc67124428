package stack_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Without RSS the pair delivers queue i to queue i, so about half the segments reach a
// shard that does not own their flow; it hands them to the owner through its inbox, and
// every connection still works, with every packet counted once.
func TestHandoffWithoutRSS(t *testing.T) {
	n := newNet(t, simnet.Options{Shards: 2, StaticARP: true, ByTxQueue: true})
	l, err := n.Server.Listen(":80", 1024)
	require.NoError(t, err)
	const N = 200
	cs := make([]*tcp.Conn, N)
	for i := range cs {
		cs[i], err = n.Client.DialAsync(serverAP, tcp.DialOptions{})
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	for _, c := range cs {
		require.Equal(t, tcp.StateEstablished, c.State())
		_, err := c.TryWrite([]byte("x"))
		require.NoError(t, err)
	}
	n.RunFor(5 * time.Millisecond)
	buf := make([]byte, 4)
	for i := 0; i < N; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		k, err := s.TryRead(buf)
		require.NoError(t, err)
		require.Equal(t, "x", string(buf[:k]))
		require.Equal(t, s.Shard(), int(s.FlowHash()>>32*2>>32), "the owner shard holds the flow")
	}
	var handoffs int64
	for _, ld := range append(n.Server.ShardLoads(), n.Client.ShardLoads()...) {
		handoffs += ld.Handoffs
	}
	require.Greater(t, handoffs, int64(N/2), "segments crossed shards")
	sc := n.Server.Counters()
	require.Equal(t, sc[stats.RxPackets], sc[stats.IpInReceives], "a handed-off packet counts once")
	require.Equal(t, sc[stats.IpInReceives], sc[stats.IpInDelivers])
}

package stack_test

import (
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var serverAP = netip.AddrPortFrom(simnet.ServerAddr.Addr(), 80)

func newNet(t *testing.T, opts simnet.Options) *simnet.Net {
	t.Helper()
	n, err := simnet.New(opts)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}

func dump(n *simnet.Net) string {
	s := ""
	for _, f := range n.Frames() {
		s += simnet.Describe(f) + "\n"
	}
	return s
}

// exchange runs one request/response/close on a Net with a listener, all on the virtual
// clock, and returns the client's view.
func exchange(t *testing.T, n *simnet.Net, l *tcp.Listener) {
	t.Helper()
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State(), dump(n))
	s, err := l.TryAccept()
	require.NoError(t, err)
	_, err = c.TryWrite([]byte("hello"))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	buf := make([]byte, 64)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf[:k]))
	_, err = s.TryWrite([]byte("world"))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	n.RunFor(time.Millisecond)
	k, err = c.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "world", string(buf[:k]))
	_, err = c.TryRead(buf)
	require.Equal(t, io.EOF, err)
	require.NoError(t, c.Close())
	n.RunFor(time.Millisecond)
}

func TestHandshakeExchangeClose(t *testing.T) {
	n := newNet(t, simnet.Options{})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	exchange(t, n, l)
	sc, cc := n.Server.Counters(), n.Client.Counters()
	require.Equal(t, uint64(1), sc[stats.TcpPassiveOpens])
	require.Equal(t, uint64(1), cc[stats.TcpActiveOpens])
	require.Zero(t, sc.Value(stats.TcpCurrEstab))
	require.Zero(t, cc.Value(stats.TcpCurrEstab))
	require.Zero(t, sc[stats.TcpAttemptFails]+cc[stats.TcpAttemptFails], dump(n))
	require.Zero(t, sc[stats.TcpOutRsts]+cc[stats.TcpOutRsts], dump(n))
	// The server closed first: it holds TIME-WAIT, the client holds nothing.
	rows := n.Server.Sockets()
	var tw int
	for _, r := range rows {
		if r.State == tcp.StateTimeWait {
			tw++
		}
	}
	require.Equal(t, 1, tw)
	require.Len(t, n.Client.Sockets(), 0)
	// TIME-WAIT lasts 60 s.
	n.RunFor(61 * time.Second)
	require.Len(t, n.Server.Sockets(), 1) // only the listener
	require.Equal(t, uint64(1), n.Server.Counters()[stats.TcpExtTW])
}

func TestSequentialConnectionsReusePorts(t *testing.T) {
	n := newNet(t, simnet.Options{ClientTCP: tcp.Settings{IPLocalPortRange: [2]uint16{40000, 40003}}})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		exchange(t, n, l)
	}
	sc, cc := n.Server.Counters(), n.Client.Counters()
	require.Equal(t, uint64(20), sc[stats.TcpPassiveOpens])
	require.Zero(t, sc[stats.TcpAttemptFails]+cc[stats.TcpAttemptFails], dump(n))
	require.Zero(t, cc[stats.TcpOutRsts], dump(n))
}

package stack_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// With checksum offload on the link (as on a veth), segments leave with only the
// pseudo-header sum in their checksum field, arrive marked CsumVerified, and the receiver
// does not check them: the exchange works, and no checksum error is counted although not one
// segment on the wire carries a complete checksum.
func TestChecksumOffload(t *testing.T) {
	n := newNet(t, simnet.Options{Offloads: true, StaticARP: true})
	l, err := n.Server.Listen(":80", 16)
	require.NoError(t, err)
	exchange(t, n, l)
	segs := 0
	for _, f := range n.TCPFrames(nil) {
		eth, _ := header.ParseEthernet(f.Data)
		ip, _ := header.ParseIPv4(eth.Payload())
		tc := header.TCP(ip.Payload())
		require.False(t, tc.ChecksumValidIPv4(ip.Src(), ip.Dst()), "a partial checksum on the wire: %s", simnet.Describe(f))
		// Completing it the way the link would gives a valid segment.
		tc.SetChecksumIPv4(ip.Src(), ip.Dst())
		require.True(t, tc.ChecksumValidIPv4(ip.Src(), ip.Dst()))
		segs++
	}
	require.Greater(t, segs, 6)
	for _, c := range []stats.Counters{n.Server.Counters(), n.Client.Counters()} {
		require.Zero(t, c[stats.TcpInCsumErrors])
		require.Zero(t, c[stats.TcpInErrs])
	}

	// Without the offload the same exchange carries full checksums.
	m := newNet(t, simnet.Options{StaticARP: true})
	l2, err := m.Server.Listen(":80", 16)
	require.NoError(t, err)
	exchange(t, m, l2)
	for _, f := range m.TCPFrames(nil) {
		eth, _ := header.ParseEthernet(f.Data)
		ip, _ := header.ParseIPv4(eth.Payload())
		require.True(t, header.TCP(ip.Payload()).ChecksumValidIPv4(ip.Src(), ip.Dst()))
	}
}

package tcp_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// A connection in SYN-RECV after a simultaneous open answers further SYNs as Linux's
// tcp_validate_incoming does: a challenge ACK, rate-limited per connection by
// tcp_invalid_ratelimit (TcpExtTCPSYNChallenge counts them all), and not a SYN-ACK per
// SYN. A thousand SYNs in one instant draw one answer; the crossed SYN-ACK still completes
// the handshake.
func TestHostile_SynFloodInActiveSynRecv(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	p := newRawPeer(t, n)
	const pport, lport = 7000, 7001
	c, err := n.Server.DialAsync(netip.AddrPortFrom(simnet.ClientAddr.Addr(), pport), tcp.DialOptions{LocalPort: lport})
	require.NoError(t, err)
	n.Settle()
	require.Len(t, p.got, 1)
	syn := p.got[0]
	require.Equal(t, fSYN, syn.flags)
	// The peer's own SYN crosses ours: the stack goes to SYN-RECV and sends a SYN-ACK.
	const iss = 5000
	p.send(crafted{sport: pport, dport: lport, seq: iss, flags: fSYN, win: 65535}, nil)
	require.Len(t, p.got, 2)
	require.Equal(t, fSYNACK, p.got[1].flags)
	require.Equal(t, syn.seq, p.got[1].seq, "the SYN-ACK carries the original ISN")
	require.Equal(t, tcp.StateSynRecv, c.State())
	mark := len(p.got)
	for i := 0; i < flood; i++ {
		p.send(crafted{sport: pport, dport: lport, seq: iss + uint32(i%3), flags: fSYN, win: 65535}, nil)
	}
	answers := p.since(mark)
	require.Len(t, answers, 1, "one challenge ACK per tcp_invalid_ratelimit: %v", answers)
	requireAck(t, answers[0], syn.seq+1, iss+1, "the challenge ACK")
	sc := counters(n.Server)
	require.Equal(t, uint64(flood), sc[stats.TcpExtTCPSYNChallenge])
	// The peer's SYN-ACK (the crossed one) completes the handshake.
	p.send(crafted{sport: pport, dport: lport, seq: iss, ack: syn.seq + 1, flags: fSYNACK, win: 65535}, nil)
	require.Equal(t, tcp.StateEstablished, c.State())
}

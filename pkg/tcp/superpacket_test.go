package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// A segment longer than the MSS, as a Linux peer with TSO sends over a veth (a GSO
// super-packet the link delivers whole), counts as the full segments it is made of: it is
// acknowledged at once, not after the 40 ms delayed-ACK timer, which would hold a bulk
// upload to one window per 40 ms. A segment shorter than two full ones still waits.
func TestSuperPacketAckedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		delayed bool
	}{{"three segments' worth", 3 * 1448, false}, {"one segment", 1448, true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, simnet.Options{StaticARP: true, Pool: dpdkshim.PoolConfig{BufSize: 8192}, ServerTCP: tcp.Settings{TCPTimestampsOff: true}, ClientTCP: tcp.Settings{TCPTimestampsOff: true}})
			l, err := n.Server.Listen(":80", 8)
			require.NoError(t, err)
			c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
			require.NoError(t, err)
			n.RunFor(time.Millisecond)
			require.Equal(t, tcp.StateEstablished, c.State())
			_, err = l.TryAccept()
			require.NoError(t, err)
			segs := segments(n)
			last := segs[len(segs)-1] // the client's final ACK of the handshake
			require.True(t, last.toServer)
			tp := newTap(n)
			// The client never sent these bytes: keep its answers to the server's ACK of
			// them (it sees an ACK of unsent data) off the wire.
			tp.toServer = func(header.TCP, []byte) dpdkshim.Action { return drop }
			// The first segments of a transfer are acknowledged at once (quick-ACK mode,
			// up to half the window in full segments, at most 16; tcp_rmem's default
			// window allows the 16): sixteen short ones use that up.
			seq := last.seq
			for i := 0; i < 16; i++ {
				tp.inject(t, crafted{sport: last.sport, dport: 80, seq: seq, ack: last.ack,
					flags: header.TCPFlagACK | header.TCPFlagPSH, win: 1024, payload: make([]byte, 10)})
				seq += 10
			}
			require.Len(t, filter(segments(n), false, header.TCPFlagACK), 16, "quick ACKs\n%s", trace(n))
			n.ResetFrames()
			tp.inject(t, crafted{sport: last.sport, dport: 80, seq: seq, ack: last.ack,
				flags: header.TCPFlagACK | header.TCPFlagPSH, win: 1024, payload: make([]byte, tc.size)})
			acks := filter(segments(n), false, header.TCPFlagACK)
			if tc.delayed {
				require.Empty(t, acks, "one full segment waits for the delayed ACK")
				n.RunFor(50 * time.Millisecond)
				acks = filter(segments(n), false, header.TCPFlagACK)
			}
			require.Len(t, acks, 1, trace(n))
			require.Equal(t, seq+uint32(tc.size), acks[0].ack)
		})
	}
}

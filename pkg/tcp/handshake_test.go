package tcp_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// The three segments of a handshake carry Linux's options, and the sequence numbers tie
// together: SYN-ACK acks ISN+1, the ACK acks the server's ISN+1.
func TestHandshake_SegmentsOnWire(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State())
	segs := segments(n)
	require.Len(t, segs, 3, trace(n))
	syn, synack, ack := segs[0], segs[1], segs[2]
	require.True(t, syn.toServer)
	require.Equal(t, fSYN, syn.flags)
	require.Equal(t, uint16(1460), syn.opts.MSS)
	require.True(t, syn.opts.SACKPermitted)
	require.True(t, syn.opts.TS)
	require.GreaterOrEqual(t, syn.opts.WScale, int8(0))
	require.Equal(t, fSYNACK, synack.flags)
	require.Equal(t, syn.seq+1, synack.ack)
	require.Equal(t, uint16(1460), synack.opts.MSS)
	require.True(t, synack.opts.SACKPermitted)
	require.Equal(t, syn.opts.TSVal, synack.opts.TSEcr)
	require.Equal(t, fACK, ack.flags)
	require.Equal(t, syn.seq+1, ack.seq)
	require.Equal(t, synack.seq+1, ack.ack)
	require.Equal(t, synack.opts.TSVal, ack.opts.TSEcr)

	s, err := l.TryAccept()
	require.NoError(t, err)
	require.Equal(t, tcp.StateEstablished, s.State())
	require.Equal(t, c.LocalAddrPort(), s.RemoteAddrPort())
	require.Equal(t, uint64(1), n.Server.Counters()[stats.TcpPassiveOpens])
	require.Equal(t, uint64(1), n.Client.Counters()[stats.TcpActiveOpens])
	require.Equal(t, int64(1), n.Server.Counters().Value(stats.TcpCurrEstab))
	require.Equal(t, int64(1), n.Client.Counters().Value(stats.TcpCurrEstab))
}

// ARP resolves the first time, and the SYN that waited for it goes out.
func TestHandshake_ResolvesNeighbours(t *testing.T) {
	n := newNet(t, simnet.Options{})
	_, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State())
	require.Equal(t, uint64(1), n.Client.Counters()[stats.ArpRequestsSent])
	require.Equal(t, uint64(1), n.Server.Counters()[stats.ArpRepliesSent])
	// The server learned the client from its request: no ARP of its own.
	require.Zero(t, n.Server.Counters()[stats.ArpRequestsSent])
	require.Zero(t, n.Client.Counters()[stats.ArpUnresolvedDiscards])
}

// S11: a connection to a port with no listener is refused with RST|ACK (seq 0, ack ISN+1).
func TestS11_ConnectToClosedPort(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateClosed, c.State())
	require.ErrorIs(t, c.Err(), tcp.ErrConnectionRefused)
	segs := segments(n)
	require.Len(t, segs, 2, trace(n))
	require.Equal(t, fRSTACK, segs[1].flags)
	require.Zero(t, segs[1].seq)
	require.Equal(t, segs[0].seq+1, segs[1].ack)
	require.Equal(t, uint64(1), n.Server.Counters()[stats.TcpOutRsts])
	require.Equal(t, uint64(1), n.Client.Counters()[stats.TcpAttemptFails])
	_, err := c.TryRead(make([]byte, 1))
	require.ErrorIs(t, err, tcp.ErrConnectionRefused)
}

// Data and FIN that arrive before Accept are kept by the queued child (S10).
func TestS10_DataAndFINBeforeAccept(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	_, err = c.TryWrite([]byte("early bytes"))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	n.RunFor(time.Millisecond)
	rows := n.Server.Sockets()
	var child tcp.SocketRow
	for _, r := range rows {
		if r.State != tcp.StateListen {
			child = r
		}
	}
	require.Equal(t, tcp.StateCloseWait, child.State)
	require.Equal(t, len("early bytes"), child.RecvQ)
	s, err := l.TryAccept()
	require.NoError(t, err)
	buf := make([]byte, 64)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "early bytes", string(buf[:k]))
	_, err = s.TryRead(buf)
	require.Equal(t, io.EOF, err)
	require.NoError(t, s.Close())
	n.RunFor(time.Millisecond)
	require.Len(t, n.Server.Sockets(), 1) // only the listener: LAST-ACK finished
}

// A lost data segment is retransmitted after the RTO (RFC 6298 with Linux's 200 ms floor).
func TestData_LostSegmentRetransmitted(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	s, err := l.TryAccept()
	require.NoError(t, err)
	dropped := 0
	dropTo(n, true, func(tc header.TCP) bool {
		if len(tc.Payload()) > 0 && dropped == 0 {
			dropped++
			return true
		}
		return false
	})
	start := n.Now()
	_, err = c.TryWrite([]byte("lost once"))
	require.NoError(t, err)
	n.RunFor(100 * time.Millisecond)
	_, err = s.TryRead(make([]byte, 16))
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
	n.RunFor(time.Second)
	buf := make([]byte, 16)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "lost once", string(buf[:k]))
	data := filter(segments(n), true, header.TCPFlagACK|header.TCPFlagPSH)
	require.Len(t, data, 1, trace(n)) // the hook hides the lost one from the capture
	gap := data[0].t - start
	require.GreaterOrEqual(t, gap, int64(200*time.Millisecond))
	require.Less(t, gap, int64(400*time.Millisecond))
	// One segment in flight: the loss probe's timeout (2 SRTT + 200 ms) is capped at the
	// RTO's, and the probe goes then instead of a timeout (Linux tcp_schedule_loss_probe).
	require.Equal(t, uint64(1), n.Client.Counters()[stats.TcpRetransSegs])
	require.Equal(t, uint64(1), n.Client.Counters()[stats.TcpExtTCPLossProbes])
	require.Zero(t, n.Client.Counters()[stats.TcpExtTCPTimeouts])
}

// A window full of data from a reader that is not reading: the sender stops at the
// advertised window and resumes when the reader drains it.
func TestData_FlowControl(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c := dial(t, n)
	n.RunFor(time.Millisecond)
	s, err := l.TryAccept()
	require.NoError(t, err)
	payload := make([]byte, 100_000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	var got []byte
	sent := 0
	buf := make([]byte, 4096)
	for step := 0; step < 10000 && len(got) < len(payload); step++ {
		if sent < len(payload) {
			k, _ := c.TryWrite(payload[sent:])
			sent += k
		}
		n.RunFor(time.Millisecond)
		if step%3 == 0 { // a slow reader
			k, err := s.TryRead(buf)
			if err == nil {
				got = append(got, buf[:k]...)
			}
		}
	}
	require.Equal(t, payload, got)
	require.Zero(t, n.Server.Counters()[stats.TcpExtTCPRcvQDrop])
}

// After Close on both sides nothing is left but the server's TIME-WAIT, which expires.
func TestClose_NoLeaks(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, Shards: 2})
	l, err := n.Server.Listen(":80", 64)
	require.NoError(t, err)
	var cs []*tcp.Conn
	for i := 0; i < 40; i++ {
		cs = append(cs, dial(t, n))
	}
	n.RunFor(time.Millisecond)
	for i := 0; i < 40; i++ {
		s, err := l.TryAccept()
		require.NoError(t, err)
		if i%2 == 0 {
			require.NoError(t, s.Close()) // server first
		} else {
			require.NoError(t, cs[i].Close()) // client first
			n.RunFor(time.Millisecond)
			require.NoError(t, s.Close())
		}
	}
	n.RunFor(time.Millisecond)
	for i := 0; i < 40; i += 2 {
		require.NoError(t, cs[i].Close())
	}
	n.RunFor(time.Millisecond)
	for _, r := range append(n.Server.Sockets(), n.Client.Sockets()...) {
		require.Contains(t, []tcp.State{tcp.StateListen, tcp.StateTimeWait}, r.State, "%+v", r)
	}
	n.RunFor(61 * time.Second)
	require.Len(t, n.Server.Sockets(), 1)
	require.Len(t, n.Client.Sockets(), 0)
	require.Zero(t, n.Server.Counters().Value(stats.TcpCurrEstab))
	require.Zero(t, n.Client.Counters().Value(stats.TcpCurrEstab))
	require.Equal(t, uint64(40), n.Server.Counters()[stats.TcpExtTW]+n.Client.Counters()[stats.TcpExtTW])
}

// The ACK that completes a request carries SYN again, at the peer's ISN, and data after it:
// Linux's tcp_check_req truncates the SYN to make the child, and the child, seeing the SYN
// (tcp_validate_incoming, RFC 5961 §4), answers with a challenge ACK and takes neither the
// data nor a FIN. The data must not be read as though it began at the SYN's number: the
// peer's bytes are then delivered whole when it sends them again at ISN+1.
func TestHandshake_SynAckCompletingRequestTakesNoData(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
	require.NoError(t, err)
	p := newRawPeer(t, n)
	const iss = 5000
	p.send(crafted{sport: 40001, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, nil)
	require.Len(t, p.got, 1, "SYN-ACK")
	sa := p.got[0]
	p.send(crafted{sport: 40001, dport: seedPort, seq: iss, ack: sa.seq + 1, flags: fSYNACK | header.TCPFlagFIN,
		win: 65535, payload: []byte("xy")}, nil)
	s, err := l.TryAccept()
	require.NoError(t, err)
	n.Settle()
	require.Len(t, p.got, 2, "one answer to the SYN-ACK: %v", p.got)
	requireAck(t, p.got[1], sa.seq+1, iss+1, "a challenge ACK, acknowledging nothing past the SYN")
	require.Zero(t, p.got[1].opts.NumSACK, "no D-SACK of the SYN's sequence number")
	cc := counters(n.Server)
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPSYNChallenge])
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPChallengeACK])
	require.Equal(t, tcp.StateEstablished, s.State(), "the FIN was not taken")
	buf := make([]byte, 16)
	_, err = s.TryRead(buf)
	require.ErrorIs(t, err, tcp.ErrWouldBlock, "no data was taken")
	p.send(crafted{sport: 40001, dport: seedPort, seq: iss + 1, ack: sa.seq + 1, flags: fACK, win: 65535, payload: []byte("xy")}, nil)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "xy", string(buf[:k]))
}

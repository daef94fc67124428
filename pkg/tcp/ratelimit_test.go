package tcp_test

// Out-of-window ACK rate limiting for requests (SYN-RECV) and TIME-WAIT entries, and
// TIME-WAIT's answer to resets (tcp_rfc1337), as Linux's tcp_check_req and
// tcp_timewait_state_process have them. Each test runs on the virtual clock and checks the
// exact segments the server sends and its counters.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// timeWaitPeer closes a hand-made connection from the server's side first, so that the
// server holds its TIME-WAIT; it returns the peer's numbers (c.seq is TIME-WAIT's rcv_nxt,
// c.ack its snd_nxt) and when TIME-WAIT began.
func timeWaitPeer(t *testing.T, st tcp.Settings, sport uint16) (*simnet.Net, *rawPeer, *peerConn, int64) {
	t.Helper()
	n := scenarioNet(t, 1, st, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.enterTimeWait(l, sport)
	return n, p, c, n.Now()
}

// enterTimeWait opens a connection from sport and closes it, the server first.
func (p *rawPeer) enterTimeWait(l *tcp.Listener, sport uint16) *peerConn {
	t, n := p.t, p.n
	t.Helper()
	c := p.connect(l, sport, 7000, nil)
	require.NoError(t, c.srv.Close())
	n.RunFor(time.Millisecond)
	fin := p.got[len(p.got)-1]
	require.Equal(t, fFINACK, fin.flags)
	require.Equal(t, c.ack, fin.seq)
	c.ack++
	c.inject(fFINACK, c.seq, c.ack, nil)
	c.seq++
	last := p.got[len(p.got)-1]
	requireAck(t, last, c.ack, c.seq, "the ACK of the peer's FIN")
	requireTimeWait(t, n, sport, true)
	return c
}

// requireTimeWait checks whether the server holds a TIME-WAIT entry for the peer's port.
func requireTimeWait(t *testing.T, n *simnet.Net, sport uint16, want bool) {
	t.Helper()
	r, ok := serverTable(t, n).byPort[sport]
	if !want {
		require.False(t, ok, "no entry for port %d: %+v", sport, r)
		return
	}
	require.True(t, ok, "an entry for port %d", sport)
	require.Equal(t, tcp.StateTimeWait, r.State)
}

// Linux tcp_timewait_state_process: only an RST at exactly rcv_nxt ends TIME-WAIT
// (tcp_rfc1337 = 0); with tcp_rfc1337 = 1 even that one is ignored and TIME-WAIT lasts its
// 60 s. No RST is ever answered.
func TestTimeWait_RST(t *testing.T) {
	for _, rfc1337 := range []bool{false, true} {
		name := "tcp_rfc1337=0"
		if rfc1337 {
			name = "tcp_rfc1337=1"
		}
		t.Run(name, func(t *testing.T) {
			n, p, c, t0 := timeWaitPeer(t, tcp.Settings{TCPRFC1337: rfc1337}, 44000)
			mark := len(p.got)
			for _, seq := range []uint32{c.seq + 1, c.seq - 1, c.seq + 1<<30, c.seq + 100} {
				c.inject(fRST, seq, 0, nil)
				c.inject(fRSTACK, seq, c.ack, nil)
				requireTimeWait(t, n, c.sport, true)
			}
			c.inject(fRST, c.seq, 0, nil)
			require.Empty(t, p.since(mark), "no answer to any reset")
			requireTimeWait(t, n, c.sport, rfc1337)
			n.RunUntil(t0+at(60), nil)
			requireTimeWait(t, n, c.sport, false)
			cnt := counters(n.Server)
			if rfc1337 {
				require.Equal(t, uint64(1), cnt[stats.TcpExtTW], "it lasted its 60 s")
			} else {
				require.Zero(t, cnt[stats.TcpExtTW], "assassinated")
			}
			require.Zero(t, cnt[stats.TcpOutRsts])
		})
	}
}

// TIME-WAIT answers what it cannot accept with one ACK per 500 ms
// (TcpExtTCPACKSkippedTimeWait for the rest), except a retransmitted FIN or data, which is
// acknowledged every time; a bare ACK at rcv_nxt is not answered; a segment with the ACK
// bit restarts the 60 s.
func TestTimeWait_OutOfWindowRateLimited(t *testing.T) {
	n, p, c, t0 := timeWaitPeer(t, tcp.Settings{}, 44001)
	mark := len(p.got)
	for range flood {
		c.inject(fACK, c.seq+1000, c.ack, nil)
	}
	out := p.since(mark)
	require.Len(t, out, 1, "one ACK for the burst")
	requireAck(t, out[0], c.ack, c.seq, "TIME-WAIT's ACK")
	require.Equal(t, uint64(flood-1), counters(n.Server)[stats.TcpExtTCPACKSkippedTimeWait])

	for range 3 {
		c.inject(fFINACK, c.seq-1, c.ack, nil) // the peer retransmits its FIN
		c.inject(fACK, c.seq, c.ack, []byte("late"))
	}
	c.inject(fSYN, c.seq-10, 0, nil)  // an old SYN
	c.inject(fACK, c.seq, c.ack, nil) // in window: a bare ACK at rcv_nxt
	out = p.since(mark)
	require.Len(t, out, 1+6, "the FINs and the data are always acknowledged")
	for _, s := range out[1:] {
		requireAck(t, s, c.ack, c.seq, "TIME-WAIT's ACK")
	}
	require.Equal(t, uint64(flood), counters(n.Server)[stats.TcpExtTCPACKSkippedTimeWait], "the old SYN is limited")

	// The bare ACK at rcv_nxt 30 s in restarts the 60 s.
	n.RunUntil(t0+at(30), nil)
	c.inject(fACK, c.seq, c.ack, nil)
	n.RunUntil(t0+at(90)-1, nil)
	requireTimeWait(t, n, c.sport, true)
	n.RunUntil(t0+at(90), nil)
	requireTimeWait(t, n, c.sport, false)
	require.Len(t, p.since(mark), 7, "nothing else was sent")
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTW])
}

// A request (SYN-RECV) answers a retransmitted SYN, ECN flags and all, with its SYN-ACK and
// an out-of-window segment with an ACK, both at most once per 500 ms unless the segment
// carries data (Linux tcp_check_req; TcpExtTCPACKSkippedSynRecv).
func TestRequest_OutOfWindowRateLimited(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	const sport, iss = 44002, 3000
	p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, nil)
	require.Len(t, p.got, 1)
	sa := p.got[0]
	t0 := n.Now()

	ecnSYN := fSYN | header.TCPFlagECE | header.TCPFlagCWR
	p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: ecnSYN, win: 65535}, nil)
	p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, nil)
	require.Len(t, p.got, 2, "the first retransmitted SYN is answered, the second is within 500 ms")
	require.Equal(t, fSYNACK, p.got[1].flags)
	require.Equal(t, sa.seq, p.got[1].seq)
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPACKSkippedSynRecv])

	n.RunUntil(t0+at(0.5), nil)
	for range flood {
		p.send(crafted{sport: sport, dport: seedPort, seq: iss + 1 + 100000, ack: sa.seq + 1, flags: fACK, win: 65535}, nil)
	}
	for range 3 {
		p.send(crafted{sport: sport, dport: seedPort, seq: iss + 1 + 100000, ack: sa.seq + 1, flags: fACK,
			win: 65535, payload: []byte("data")}, nil)
	}
	out := p.since(2)
	require.Len(t, out, 1+3)
	for _, s := range out {
		requireAck(t, s, sa.seq+1, iss+1, "the request's ACK")
		require.Equal(t, t0+at(0.5), s.t)
	}
	require.Equal(t, uint64(1+flood-1), counters(n.Server)[stats.TcpExtTCPACKSkippedSynRecv])
	require.Equal(t, 1, l.SynQueueLen(), "the request is still there")
}

package tcp_test

// RFC 5961 on an established connection as Linux applies it: the rate-limited duplicate ACK
// for out-of-window segments (tcp_validate_incoming step 1), challenge ACKs for resets and
// SYNs and their limits (tcp_send_challenge_ack), and the range of acceptable ACK values
// (tcp_ack). Each test runs on the virtual clock and checks the exact segments the server
// sends and its counters.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// 1000 pure ACKs outside the window draw one ACK, and another only once
// tcp_invalid_ratelimit (500 ms) has passed since it; the rest count as
// TcpExtTCPACKSkippedSeq (Linux tcp_validate_incoming step 1, tcp_oow_rate_limited).
// Out-of-window data is acknowledged every time, as Linux does: a retransmission must be.
func TestEstablished_OutOfWindowAcksRateLimited(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43000, 7000, cat(optMSS1460))
	t0 := n.Now()

	mark := len(p.got)
	for range flood {
		c.inject(fACK, c.seq+100000, c.ack, nil)
	}
	out := p.since(mark)
	require.Len(t, out, 1, "one ACK for the whole burst")
	requireAck(t, out[0], c.ack, c.seq, "the duplicate ACK")
	require.Equal(t, t0, out[0].t)
	require.Equal(t, uint64(flood-1), counters(n.Server)[stats.TcpExtTCPACKSkippedSeq])

	n.RunUntil(t0+int64(500*time.Millisecond)-1, nil)
	c.inject(fACK, c.seq+100000, c.ack, nil)
	require.Len(t, p.since(mark), 1, "still within 500 ms")
	n.RunUntil(t0+int64(500*time.Millisecond), nil)
	c.inject(fACK, c.seq+100000, c.ack, nil)
	out = p.since(mark)
	require.Len(t, out, 2, "500 ms later the next one is answered")
	require.Equal(t, t0+int64(500*time.Millisecond), out[1].t)
	require.Equal(t, uint64(flood), counters(n.Server)[stats.TcpExtTCPACKSkippedSeq])

	// Old data (a retransmission of bytes already received) is acknowledged each time.
	mark = len(p.got)
	for range 10 {
		c.inject(fACK, c.seq-100, c.ack, []byte("0123456789"))
	}
	out = p.since(mark)
	require.Len(t, out, 10, "data outside the window is never rate-limited")
	for _, s := range out {
		requireAck(t, s, c.ack, c.seq, "duplicate ACK for old data")
	}
	require.Equal(t, uint64(flood), counters(n.Server)[stats.TcpExtTCPACKSkippedSeq])
	require.Equal(t, tcp.StateEstablished, c.srv.State())
	require.Zero(t, counters(n.Server)[stats.TcpExtTCPChallengeACK])
}

// tcp_invalid_ratelimit = 0 turns the limit off: every out-of-window ACK is answered.
func TestEstablished_OutOfWindowNoRatelimit(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{TCPInvalidRatelimit: -1}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43001, 7000, nil)
	mark := len(p.got)
	for range flood {
		c.inject(fACK, c.seq+100000, c.ack, nil)
	}
	require.Len(t, p.since(mark), flood)
	require.Zero(t, counters(n.Server)[stats.TcpExtTCPACKSkippedSeq])
}

// RFC 5961 §4: a SYN on an established connection, in the window or not, draws a challenge
// ACK and never resets; 1000 of them draw one (the connection's own limit, counted as
// TcpExtTCPACKSkippedChallenge). Linux counts every one as TcpExtTCPSYNChallenge and, in
// ESTABLISHED, as TcpInErrs.
func TestEstablished_SYNChallengeAck(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43002, 7000, nil)
	mark := len(p.got)
	for i := range flood {
		seq := c.seq + 10 // in the window
		if i%2 == 1 {
			seq = c.seq + 1<<30 // far outside
		}
		c.inject(fSYN, seq, 0, nil)
	}
	out := p.since(mark)
	require.Len(t, out, 1, "one challenge ACK")
	requireAck(t, out[0], c.ack, c.seq, "challenge ACK")
	cnt := counters(n.Server)
	require.Equal(t, uint64(flood), cnt[stats.TcpExtTCPSYNChallenge])
	require.Equal(t, uint64(1), cnt[stats.TcpExtTCPChallengeACK])
	require.Equal(t, uint64(flood-1), cnt[stats.TcpExtTCPACKSkippedChallenge])
	require.Equal(t, uint64(flood), cnt[stats.TcpInErrs])
	require.Zero(t, cnt[stats.TcpOutRsts])
	require.Equal(t, tcp.StateEstablished, c.srv.State())
}

// RFC 5961 §3.2: an RST in the window but not at rcv_nxt draws a challenge ACK (one for
// 1000), an RST outside the window draws nothing, the exact one resets.
func TestEstablished_RSTChallengeAck(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43003, 7000, nil)
	mark := len(p.got)
	for range flood {
		c.inject(fRST, c.seq+100, 0, nil)
		c.inject(fRST, c.seq+1<<30, 0, nil)
		c.inject(fRST, c.seq-1, 0, nil)
	}
	out := p.since(mark)
	require.Len(t, out, 1, "one challenge ACK, nothing for the RSTs outside the window")
	requireAck(t, out[0], c.ack, c.seq, "challenge ACK")
	cnt := counters(n.Server)
	require.Equal(t, uint64(1), cnt[stats.TcpExtTCPChallengeACK])
	require.Equal(t, uint64(flood-1), cnt[stats.TcpExtTCPACKSkippedChallenge])
	require.Zero(t, cnt[stats.TcpExtTCPACKSkippedSeq], "an RST outside the window is not answered at all")
	require.Equal(t, tcp.StateEstablished, c.srv.State())

	c.inject(fRST, c.seq, 0, nil)
	require.Equal(t, tcp.StateClosed, c.srv.State())
	require.ErrorIs(t, c.srv.Err(), tcp.ErrConnectionReset)
	require.Len(t, p.since(mark), 1)
}

// Linux tcp_reset_check: once the peer's FIN is in (CLOSE-WAIT), an RST carrying the FIN's
// own sequence number, rcv_nxt-1, is exact too.
func TestCloseWait_ResetAtFinSeq(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43004, 7000, nil)
	c.inject(fFINACK, c.seq, c.ack, nil)
	c.seq++
	require.Equal(t, tcp.StateCloseWait, c.srv.State())
	mark := len(p.got)
	c.inject(fRST, c.seq-1, 0, nil)
	require.Equal(t, tcp.StateClosed, c.srv.State())
	require.Empty(t, p.since(mark))
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpEstabResets])
}

// tcp_challenge_ack_limit: the stack-wide budget of challenge ACKs per second, shared by
// every connection on every shard (as Linux shares it between CPUs), drawn each second
// from [limit/2, limit + limit/2 - 1]; with the per-connection limit off
// (tcp_invalid_ratelimit = 0) it is the only one. Linux counts only the challenge ACKs sent.
func TestChallengeAckLimit_StackWide(t *testing.T) {
	const limit = 10
	n := scenarioNet(t, 2, tcp.Settings{TCPInvalidRatelimit: -1, TCPChallengeAckLimit: limit}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	a := p.connect(l, 43005, 7000, nil)
	var b *peerConn
	for sport := uint16(43006); b == nil; sport++ {
		if c := p.connect(l, sport, 9000, nil); c.srv.Shard() != a.srv.Shard() {
			b = c
		}
	}
	n.RunUntil(at(10), nil)
	for second := range 2 {
		// One connection spends the second's budget, then the other, on the other shard,
		// finds nothing left.
		first, other := a, b
		if second == 1 {
			first, other = b, a
		}
		mark := len(p.got)
		before := counters(n.Server)[stats.TcpExtTCPChallengeACK]
		for range flood {
			first.inject(fSYN, first.seq, 0, nil)
		}
		sent := len(p.since(mark))
		require.GreaterOrEqual(t, sent, limit/2, "second %d", second)
		require.LessOrEqual(t, sent, limit+limit/2-1, "second %d", second)
		for _, s := range p.since(mark) {
			require.Equal(t, first.sport, s.dport)
		}
		for range flood {
			other.inject(fSYN, other.seq, 0, nil)
		}
		require.Len(t, p.since(mark), sent, "second %d: the budget is the stack's, not the shard's", second)
		cnt := counters(n.Server)
		require.Equal(t, uint64(sent), cnt[stats.TcpExtTCPChallengeACK]-before)
		require.Zero(t, cnt[stats.TcpExtTCPACKSkippedChallenge])
		require.Equal(t, uint64(2*flood*(second+1)), cnt[stats.TcpExtTCPSYNChallenge])
		n.RunFor(time.Second) // a new second, a new budget
	}
}

// With Linux's default (INT_MAX) there is no stack-wide budget: with the per-connection
// limit off, every challenge is answered.
func TestChallengeAckLimit_DefaultUnlimited(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{TCPInvalidRatelimit: -1}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43007, 7000, nil)
	mark := len(p.got)
	for range flood {
		c.inject(fSYN, c.seq, 0, nil)
	}
	require.Len(t, p.since(mark), flood)
	require.Equal(t, uint64(flood), counters(n.Server)[stats.TcpExtTCPChallengeACK])
}

// RFC 5961 §5.2 as Linux's tcp_ack applies it. The server has sent 3000 bytes and the peer
// acknowledged them (bytes_acked 3000, max_window 65535). Data whose ACK is a million bytes
// below snd_una, or 3001 below (more than bytes_acked: "do not accept ACK of bytes we never
// sent"), or above snd_nxt draws a challenge ACK and is dropped; an ACK 1000 below snd_una
// is an old duplicate: ignored, and the data it carries is delivered.
func TestEstablished_AckOutsideRFC5961Range(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43010, 7000, nil)
	_, err := c.srv.TryWrite(make([]byte, 3000))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	c.ack += 3000
	c.inject(fACK, c.seq, c.ack, nil) // acknowledges all 3000
	buf := make([]byte, 64)

	cases := []struct {
		name      string
		ack       uint32
		delivered bool
	}{
		{"a million below snd_una", c.ack - 1_000_000, false},
		{"1000 below: an old duplicate", c.ack - 1000, true},
		{"more than bytes_acked below", c.ack - 3001, false},
		{"above snd_nxt: data never sent", c.ack + 1, false},
		{"far above snd_nxt", c.ack + 1<<30, false},
		{"at snd_una", c.ack, true},
	}
	challenges := uint64(0)
	for _, tc := range cases {
		n.RunFor(time.Second) // past the previous challenge ACK's rate limit
		mark := len(p.got)
		msg := []byte(tc.name)
		c.inject(fACK, c.seq, tc.ack, msg)
		k, err := c.srv.TryRead(buf)
		out := p.since(mark)
		if tc.delivered {
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.name, string(buf[:k]))
			c.seq += uint32(len(msg))
			// No challenge: at most the data's own ACK (quick or delayed, as the receiver
			// decides).
			require.LessOrEqual(t, len(out), 1, tc.name)
			for _, o := range out {
				requireAck(t, o, c.ack, c.seq, tc.name+": the data's ACK")
			}
			continue
		}
		require.ErrorIs(t, err, tcp.ErrWouldBlock, "%s: the data is dropped", tc.name)
		require.Len(t, out, 1, tc.name)
		requireAck(t, out[0], c.ack, c.seq, tc.name+": the challenge ACK")
		challenges++
		require.Equal(t, challenges, counters(n.Server)[stats.TcpExtTCPChallengeACK], tc.name)
	}
	require.Equal(t, tcp.StateEstablished, c.srv.State())
}

// A passive child starts with bytes_acked 0 (tcp_create_openreq_child), so before anything
// of ours is acknowledged even an ACK one below snd_una is refused.
func TestEstablished_FreshChildRefusesAckBelowSndUna(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43011, 7000, nil)
	mark := len(p.got)
	c.inject(fACK, c.seq, c.ack-1, []byte("injected"))
	_, err := c.srv.TryRead(make([]byte, 16))
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
	out := p.since(mark)
	require.Len(t, out, 1)
	requireAck(t, out[0], c.ack, c.seq, "challenge ACK")
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPChallengeACK])
}

// The bad segment's timestamp does not become ts_recent: the challenge ACK echoes the
// last good one (Linux updates ts_recent only after tcp_ack's checks; its selftest
// tcp_ts_recent_invalid_ack.pkt).
func TestEstablished_BadAckKeepsTSRecent(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43012, 7000, cat(optMSS1460, optTS100))
	ts := func(v uint32) *header.TCPOptions {
		return &header.TCPOptions{WScale: -1, TS: true, TSVal: v, TSEcr: c.synack.opts.TSVal}
	}
	p.send(crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 65535,
		opts: ts(200), payload: []byte("a")}, nil)
	c.seq++
	mark := len(p.got)
	p.send(crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack + 9999, flags: fFINACK, win: 65535,
		opts: ts(200000)}, nil)
	out := p.since(mark)
	require.Len(t, out, 1, "a challenge ACK for SEG.ACK > SND.NXT")
	requireAck(t, out[0], c.ack, c.seq, "challenge ACK")
	require.True(t, out[0].opts.TS)
	require.Equal(t, uint32(200), out[0].opts.TSEcr, "ts_recent is still the good segment's")
	require.Equal(t, tcp.StateEstablished, c.srv.State(), "the FIN was dropped with the segment")
}

// An orphaned FIN-WAIT-2 (the application closed, the peer acknowledged our FIN and keeps
// its side open) is a FIN-WAIT-2 timewait sock in Linux, whose skipped out-of-window ACKs
// count as TcpExtTCPACKSkippedFinWait2.
func TestFinWait2_OrphanOutOfWindowRateLimited(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43020, 7000, nil)
	require.NoError(t, c.srv.Close())
	n.RunFor(time.Millisecond)
	c.ack++ // the server's FIN
	c.inject(fACK, c.seq, c.ack, nil)
	require.Equal(t, tcp.StateFinWait2, serverTable(t, n).byPort[c.sport].State)
	mark := len(p.got)
	for range flood {
		c.inject(fACK, c.seq+100000, c.ack, nil)
	}
	out := p.since(mark)
	require.Len(t, out, 1)
	requireAck(t, out[0], c.ack, c.seq, "FIN-WAIT-2's ACK")
	cnt := counters(n.Server)
	require.Equal(t, uint64(flood-1), cnt[stats.TcpExtTCPACKSkippedFinWait2])
	require.Zero(t, cnt[stats.TcpExtTCPACKSkippedSeq])
}

// Nothing follows the peer's FIN: once it is in (CLOSE-WAIT, then LAST-ACK), a second FIN
// at rcv_nxt, one past the first, is no FIN of the stream, and Linux ignores what lies at or
// after rcv_nxt in those states (tcp_rcv_state_process). Taking it moved rcv_nxt past the
// peer's FIN, so the peer's own ACK of our FIN, at FIN+1, fell below rcv_nxt and was
// dropped as old: LAST-ACK retransmitted its FIN until tcp_retries2 ran out.
func TestCloseWait_FinAfterFinIgnored(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43007, 7000, nil)
	c.inject(fFINACK, c.seq, c.ack, nil)
	c.seq++
	require.Equal(t, tcp.StateCloseWait, c.srv.State())
	c.inject(fFINACK, c.seq, c.ack, nil) // a FIN after the FIN
	mark := len(p.got)
	require.NoError(t, c.srv.Close())
	n.Settle()
	rows := n.Server.Sockets()
	require.Len(t, rows, 2)
	require.Equal(t, tcp.StateLastAck, rows[1].State, "%v", rows)
	c.inject(fFINACK, c.seq, c.ack, nil) // and another, in LAST-ACK
	out := p.since(mark)
	require.NotEmpty(t, out)
	require.Equal(t, fFINACK, out[0].flags, "our FIN: %v", out[0])
	for _, s := range out {
		require.Equal(t, c.seq, s.ack, "acknowledges past the peer's FIN: %v", s)
	}
	c.inject(fACK, c.seq, c.ack+1, nil) // the peer acknowledges our FIN
	require.Len(t, n.Server.Sockets(), 1, "only the listener is left: %v", n.Server.Sockets())
}

package tcp

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// senderWithSegments is a sender with n full segments on its scoreboard from sequence 1000.
func senderWithSegments(t *testing.T, n int) (*shard, *endpoint) {
	t.Helper()
	s, ep := newTestReceiver(t, 1, 64<<10)
	s.initSender(ep)
	for i := 0; i < n; i++ {
		start := seqnum.Value(1000 + 1448*i)
		ep.sb.push(start, start.Add(1448), 0, ep.nextOrder(), 0)
	}
	return s, ep
}

// prrEndpoint is an endpoint in fast recovery with n segments on its scoreboard, sacked of
// them SACKed and lost marked lost (none resent yet), after a window of priorCwnd was cut
// to ssthresh.
func prrEndpoint(t *testing.T, n, sacked, lost int, priorCwnd, ssthresh uint32) (*shard, *endpoint) {
	t.Helper()
	s, ep := senderWithSegments(t, n)
	for i := 0; i < sacked; i++ {
		ep.markSacked(ep.sb.at(n - 1 - i))
	}
	for i := 0; i < lost; i++ {
		s.markLost(ep, ep.sb.at(i))
	}
	ep.caState = caRecovery
	ep.priorCwnd, ep.cc.ssthresh, ep.cc.cwnd = priorCwnd, ssthresh, priorCwnd
	s.newlyLost = 0
	return s, ep
}

// PRR as Linux's tcp_cwnd_reduction computes it (RFC 6937 with the 5.19 change that lets
// the sender catch up to what was delivered below ssthresh).
func TestPRR_AsLinux(t *testing.T) {
	t.Run("nothing delivered leaves the window", func(t *testing.T) {
		// A window update or a D-SACK in recovery: Linux returns before touching cwnd.
		s, ep := prrEndpoint(t, 10, 2, 2, 10, 7)
		ep.cc.cwnd = 9
		s.prr(ep, 0, false)
		require.Equal(t, uint32(9), ep.cc.cwnd)
		require.Zero(t, ep.prrDelivered)
	})
	t.Run("above ssthresh: in proportion", func(t *testing.T) {
		// 10 in flight of a window of 10 cut to 7: every delivery lets 0.7 segments out,
		// rounded up over the whole episode.
		s, ep := prrEndpoint(t, 12, 2, 0, 10, 7)
		require.Equal(t, uint32(10), ep.inflight())
		s.prr(ep, 1, false) // ceil(7*1/10) - 0 = 1
		require.Equal(t, uint32(11), ep.cc.cwnd)
		ep.prrOut = 1
		s.prr(ep, 2, false) // ceil(7*3/10) - 1 = 2
		require.Equal(t, uint32(12), ep.cc.cwnd)
	})
	t.Run("below ssthresh: catch up to what was delivered", func(t *testing.T) {
		// Five delivered over the episode, two sent: a SACK that delivers one more lets the
		// sender send the four it is owed (ssthresh permitting), not just one.
		s, ep := prrEndpoint(t, 6, 4, 1, 10, 7)
		ep.prrDelivered, ep.prrOut = 5, 2
		inflight := ep.inflight()
		require.Equal(t, uint32(1), inflight)
		s.prr(ep, 1, false) // max(6-2, 1) = 4, within delta 6
		require.Equal(t, inflight+4, ep.cc.cwnd)
	})
	t.Run("below ssthresh: one more when SND.UNA advances with no new loss", func(t *testing.T) {
		s, ep := prrEndpoint(t, 6, 4, 1, 10, 7)
		ep.prrDelivered, ep.prrOut = 5, 2
		s.prr(ep, 1, true) // max(6-2, 1) + 1 = 5
		require.Equal(t, ep.inflight()+5, ep.cc.cwnd)
		s.newlyLost = 1 // this ACK marked a segment lost: no extra one
		ep.prrDelivered, ep.prrOut = 5, 2
		s.prr(ep, 1, true)
		require.Equal(t, ep.inflight()+4, ep.cc.cwnd)
	})
	t.Run("below ssthresh: never past it", func(t *testing.T) {
		s, ep := prrEndpoint(t, 6, 4, 1, 10, 3)
		ep.prrDelivered, ep.prrOut = 20, 2
		s.prr(ep, 1, true)
		require.Equal(t, uint32(3), ep.cc.cwnd)
	})
}

// tlpEndpoint is an Open endpoint with n segments on its scoreboard, a window of cwnd,
// and a loss probe outstanding that resent the last one.
func tlpEndpoint(t *testing.T, n int, cwnd uint32) (*shard, *endpoint) {
	t.Helper()
	s, ep := senderWithSegments(t, n)
	ep.sndMax = seqnum.Value(1000 + 1448*n)
	ep.caState = caOpen
	ep.cc.cwnd = cwnd
	ep.tlpOut, ep.tlpRetrans, ep.tlpHigh = true, true, ep.sndMax
	return s, ep
}

// A loss probe that repaired a loss cuts the window once and at once and leaves the
// connection Open, as Linux's tcp_process_tlp_ack does (CWR entered and ended in one
// step, then tcp_try_keep_open), so that the window grows and probes go out again at once.
func TestTLP_RepairedLossAsLinux(t *testing.T) {
	t.Run("cut to ssthresh, back to Open", func(t *testing.T) {
		s, ep := tlpEndpoint(t, 4, 20)
		ep.sndMax = ep.sndMax.Add(1448) // something new went out after the probe
		before := s.ctr.Value(stats.TcpExtTCPLossProbeRecovery)
		s.tlpAck(ep, ep.tlpHigh.Add(1448), true, false, 4)
		require.False(t, ep.tlpOut)
		require.Equal(t, caOpen, ep.caState)
		require.Equal(t, uint32(14), ep.cc.ssthresh) // CUBIC: 20 x 717/1024
		require.Equal(t, ep.cc.ssthresh, ep.cc.cwnd)
		require.Equal(t, ep.sndMax, ep.highSeq)
		require.Equal(t, uint32(20), ep.priorCwnd)
		require.Equal(t, before+1, s.ctr.Value(stats.TcpExtTCPLossProbeRecovery))
	})
	t.Run("SACKed data left: Disorder", func(t *testing.T) {
		s, ep := tlpEndpoint(t, 4, 10)
		ep.markSacked(ep.sb.at(3))
		s.tlpAck(ep, ep.tlpHigh.Add(1), true, false, 1)
		require.Equal(t, caDisorder, ep.caState)
		require.Equal(t, uint32(7), ep.cc.cwnd)
	})
	t.Run("the probe's own ACK says nothing was lost", func(t *testing.T) {
		s, ep := tlpEndpoint(t, 4, 10)
		s.tlpAck(ep, ep.tlpHigh, false, true, 0) // a D-SACK: original and probe both arrived
		require.False(t, ep.tlpOut)
		require.Equal(t, uint32(10), ep.cc.cwnd)
		require.Equal(t, caOpen, ep.caState)
	})
	t.Run("recovery ends the probe's episode", func(t *testing.T) {
		// Entering recovery reduces the window for every loss up to SND.NXT, the probe's
		// included: the ACK that later ends recovery must not reduce it a second time.
		s, ep := tlpEndpoint(t, 4, 10)
		s.markLost(ep, ep.sb.at(0))
		s.enterRecovery(ep, ep.inflight())
		require.False(t, ep.tlpOut)
	})
}

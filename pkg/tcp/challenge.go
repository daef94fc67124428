package tcp

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// RFC 5961 on a synchronized connection, as Linux's tcp_validate_incoming and tcp_ack apply
// it: what a segment that fails the sequence check draws, the challenge ACK for resets and
// SYNs that could be blind attacks (§3, §4), the range of acceptable ACK values (§5.2), and
// the throttling of challenge ACKs (§7). The state machine (input.go) calls in here at each
// of the RFC 9293 steps; the rate limits are in ratelimit.go.

// ackGuard is what a connection keeps for these checks.
type ackGuard struct {
	oow        oowLimit // the last out-of-window or challenge ACK (tcp_sock.last_oow_ack_time)
	maxWindow  uint32   // the largest window the peer offered (tcp_sock.max_window)
	bytesAcked uint64   // what the peer has acknowledged, our SYN included (tcp_sock.bytes_acked)
}

// noteWindow records the peer's window after it changed (Linux tcp_ack_update_window: the
// largest one becomes max_window).
func (ep *endpoint) noteWindow() {
	if ep.sndWnd > ep.guard.maxWindow {
		ep.guard.maxWindow = ep.sndWnd
	}
}

// synAcked starts the RFC 5961 §5.2 bounds when the peer acknowledges our SYN on the active
// side: Linux's tcp_ack in SYN-SENT (or SYN-RECV of a simultaneous open) counts that one
// sequence number in bytes_acked and takes the SYN-ACK's window as the first max_window. A
// passive child starts with bytes_acked 0 (tcp_create_openreq_child).
func (ep *endpoint) synAcked() {
	ep.guard.bytesAcked = 1
	ep.noteWindow()
}

// unacceptable answers a segment that failed the sequence check, Linux tcp_validate_incoming
// step 1: a reset is dropped unless it is at rcv_nxt-1 after the peer's FIN
// (tcp_reset_check), a SYN draws a challenge ACK, anything else a duplicate ACK
// (tcp_send_dupack, with its D-SACK and quick-ACK for old data: receiver.go), at most one
// per tcp_invalid_ratelimit unless the segment carries data or a FIN (TcpExtTCPACKSkippedSeq).
func (s *shard) unacceptable(ep *endpoint, sg *segment) {
	switch {
	case sg.rst():
		if ep.resetCheck(sg) {
			s.peerReset(ep)
		}
	case sg.syn():
		s.synChallenge(ep)
	default:
		id := stats.TcpExtTCPACKSkippedSeq
		if ep.orphan && ep.state == StateFinWait2 {
			// Linux keeps an orphaned FIN-WAIT-2 as a TIME-WAIT sock in its FIN-WAIT-2
			// substate, whose out-of-window ACKs count here instead.
			id = stats.TcpExtTCPACKSkippedFinWait2
		}
		if !s.oowRateLimited(&ep.guard.oow, sg, id) {
			ep.ackNow = true
			s.oldDataAgain(ep, sg)
		}
	}
}

// resetCheck is Linux tcp_reset_check: after the peer's FIN, an RST may carry rcv_nxt-1
// (the FIN's own sequence number) and still be exact.
func (ep *endpoint) resetCheck(sg *segment) bool {
	switch ep.state {
	case StateCloseWait, StateLastAck, StateClosing:
		return sg.seq.Add(1) == ep.rcvNxt
	}
	return false
}

// synChallenge answers a SYN on a synchronized connection (RFC 5961 §4.2, Linux
// tcp_validate_incoming's syn_challenge): TcpExtTCPSYNChallenge, and in ESTABLISHED
// TcpInErrs too (tcp_rcv_established passes syn_inerr), then a challenge ACK.
func (s *shard) synChallenge(ep *endpoint) {
	if ep.state == StateEstablished {
		s.ctr.Inc(stats.TcpInErrs)
	}
	s.ctr.Inc(stats.TcpExtTCPSYNChallenge)
	s.challengeAck(ep)
}

// challengeAck is Linux tcp_send_challenge_ack (RFC 5961 §7): first the connection's own
// limit, one per tcp_invalid_ratelimit whatever the segment carried
// (TcpExtTCPACKSkippedChallenge), then the stack-wide budget of tcp_challenge_ack_limit per
// second, unless that is INT_MAX (the default); a challenge ACK that passes both is counted
// (TcpExtTCPChallengeACK) and goes out at the end of this input.
func (s *shard) challengeAck(ep *endpoint) {
	if s.oowLimited(&ep.guard.oow, stats.TcpExtTCPACKSkippedChallenge) {
		return
	}
	if !s.challengeBudget() {
		return
	}
	s.ctr.Inc(stats.TcpExtTCPChallengeACK)
	ep.ackNow = true
}

// challengeState is the stack-wide challenge-ACK budget, shared by the shards as Linux
// shares it between CPUs (net->ipv4.tcp_challenge_timestamp and tcp_challenge_count).
type challengeState struct {
	second atomic.Int64  // the second the budget is for
	count  atomic.Uint32 // challenge ACKs left in it
}

// challengeBudget takes one challenge ACK from the stack-wide budget. Each second the
// budget is drawn afresh, uniformly from [limit/2, limit + limit/2 - 1] (rounded as Linux's
// u32 arithmetic rounds), so that an attacker cannot count the challenge ACKs to learn
// when the limit is reached (the side channel of CVE-2016-5696).
func (s *shard) challengeBudget() bool {
	limit := uint32(s.eng.settings.TCPChallengeAckLimit)
	if limit == challengeAckUnlimited {
		return true
	}
	c := &s.eng.challenge
	now := s.now / 1e9
	if c.second.Load() != now {
		half := (limit + 1) >> 1
		c.second.Store(now)
		c.count.Store(s.randInclusive(now, half, limit+half-1))
	}
	for {
		n := c.count.Load()
		if n == 0 {
			return false
		}
		if c.count.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// randInclusive is Linux's get_random_u32_inclusive(lo, hi) drawn from a keyed PRF of the
// second: unpredictable without the stack's secret, reproducible with a seeded stack.
func (s *shard) randInclusive(second int64, lo, hi uint32) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(second))
	span := uint64(hi) - uint64(lo) + 1
	return lo + uint32(sip(s.eng.sec.challenge, b[:])%span)
}

// Verdicts of checkAck.
const (
	ackNew = iota // snd_una <= SEG.ACK <= snd_nxt: process the ACK
	ackOld        // an old duplicate within max_window: ignore the ACK field, keep the text
	ackBad        // outside RFC 5961 §5.2's range: a challenge ACK (if not limited), drop
)

// checkAck is the RFC 5961 §5.2 check on SEG.ACK as Linux's tcp_ack makes it, before the ACK
// changes anything (so a bad segment does not even refresh ts_recent):
//
//   - below snd_una - min(max_window, bytes_acked): a challenge ACK and drop the segment
//     (the bytes_acked bound is "tcp: do not accept ACK of bytes we never sent", 6.8);
//   - otherwise below snd_una: an old ACK, ignored, and the segment's text is still
//     processed (tcp_ack's old_ack);
//   - above snd_nxt (our sndMax, the highest sequence sent): a challenge ACK and drop
//     ("tcp: send a challenge ACK on SEG.ACK > SND.NXT", Linux 7.1 and 6.18.y; RFC 9293
//     §3.10.7.4 and RFC 5961 §5.2 both ask for the ACK).
func (s *shard) checkAck(ep *endpoint, sg *segment) int {
	ack := sg.ack
	if ack.LessThan(ep.sndUna) {
		maxWin := ep.guard.maxWindow
		if ep.guard.bytesAcked < uint64(maxWin) {
			maxWin = uint32(ep.guard.bytesAcked)
		}
		if ack.LessThan(seqnum.Value(uint32(ep.sndUna) - maxWin)) {
			s.challengeAck(ep)
			return ackBad
		}
		return ackOld
	}
	if ep.sndMax.LessThan(ack) {
		s.challengeAck(ep)
		return ackBad
	}
	return ackNew
}

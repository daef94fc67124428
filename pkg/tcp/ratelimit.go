package tcp

import "github.com/shardstack/shardstack/pkg/stats"

// Out-of-window ACK rate limiting, as Linux has done since 4.0 ("tcp: mitigate ACK loops
// for connections as tcp_sock" and its siblings for requests and TIME-WAIT): a connection,
// a request or a TIME-WAIT entry answers segments it cannot accept with at most one ACK per
// tcp_invalid_ratelimit (500 ms), so that two ends that disagree about the sequence space
// (one of them confused by an attacker, a middlebox or a bug) cannot ACK each other
// forever, and a flood of bogus segments does not become a flood of ACKs.

// oowLimit is the time of the last ACK sent for an out-of-window segment or as a challenge
// ACK: Linux's last_oow_ack_time, which tcp_sock, tcp_request_sock and tcp_timewait_sock
// each keep. The zero value means none was sent yet.
type oowLimit struct {
	at  int64 // stack clock, ns
	set bool  // Linux: last_oow_ack_time != 0
}

// oowRateLimited is Linux's tcp_oow_rate_limited: a segment that carries data or a FIN and
// no SYN is never limited ("data packets without SYNs are not likely part of an ACK loop":
// the peer's retransmission must always be acknowledged); for the rest it is oowLimited.
func (s *shard) oowRateLimited(l *oowLimit, sg *segment, id stats.ID) bool {
	if sg.seqLen() != 0 && !sg.syn() {
		return false
	}
	return s.oowLimited(l, id)
}

// oowLimited is Linux's __tcp_oow_rate_limited: true, counting id, when the last such ACK
// went out less than tcp_invalid_ratelimit ago (a clock that went backwards does not
// limit); otherwise it records now as the time of the ACK the caller is about to send.
func (s *shard) oowLimited(l *oowLimit, id stats.ID) bool {
	if l.set {
		elapsed := s.now - l.at
		if elapsed >= 0 && elapsed < int64(s.eng.settings.TCPInvalidRatelimit) {
			s.ctr.Inc(id)
			return true
		}
	}
	l.at, l.set = s.now, true
	return false
}

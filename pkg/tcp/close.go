package tcp

import (
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// appClose is close(2) on the shard: Linux tcp_close. Unread data means a reset
// (TcpExtTCPAbortOnClose), and so does SO_LINGER with a zero timeout (TcpExtTCPAbortOnData,
// checked after the unread data, as Linux does); otherwise the FIN is queued behind the
// data and the state moves on (tcp_close_state).
func (s *shard) appClose(ep *endpoint) {
	ep.orphan = true
	if ep.listener != nil {
		ep.listener = nil
	}
	switch ep.state {
	case StateClosed, StateTimeWait:
		return
	}
	if ep.rcv.used() > 0 {
		s.ctr.Inc(stats.TcpExtTCPAbortOnClose)
		s.abort(ep, errNone, true)
		return
	}
	if ep.opts.linger.Load() == 1 {
		// tcp_disconnect: a reset where tcp_need_reset says so, and in CLOSING or LAST-ACK
		// while something, the FIN at least, is still unsent (snd_nxt != write_seq).
		s.ctr.Inc(stats.TcpExtTCPAbortOnData)
		if (ep.state == StateClosing || ep.state == StateLastAck) && !ep.finSent {
			s.sendRST(&ep.key, ep.hash, ep.sndNxt, ep.rcvNxt, true)
		}
		s.abort(ep, errNone, true)
		return
	}
	if ep.state == StateFinWait2 {
		// CloseWrite's FIN is acknowledged already: the orphan now times out like any other
		// (tcp_fin_timeout).
		s.wheel.Schedule(&ep.rtx, s.now+int64(s.eng.settings.TCPFinTimeout))
		return
	}
	s.closeState(ep)
}

// closeState queues the FIN and moves the state on, as Linux's tcp_close_state (and
// inet_shutdown, which disconnects an attempt still in SYN-SENT); a state whose FIN is
// queued already is left alone.
func (s *shard) closeState(ep *endpoint) {
	if ep.finQueued {
		return
	}
	switch ep.state {
	case StateSynSent:
		s.closeEndpoint(ep, errNone)
		return
	case StateSynRecv, StateEstablished:
		s.setState(ep, StateFinWait1)
	case StateCloseWait:
		s.setState(ep, StateLastAck)
	default:
		return
	}
	ep.finQueued = true
}

// finWait2Timer ends an orphaned FIN-WAIT-2 after tcp_fin_timeout (Linux then resets
// nothing: the peer simply never finished).
func (s *shard) finWait2Timer(ep *endpoint) {
	if !ep.orphan {
		return
	}
	s.closeEndpoint(ep, errNone)
}

// synTimeout retransmits the SYN of an active open (or the SYN-ACK of a simultaneous one)
// on the profile's schedule (spec §8), and gives up with ETIMEDOUT.
func (s *shard) synTimeout(ep *endpoint) {
	st := &s.eng.settings
	linear := 0
	if st.Profile == ProfileLinux {
		linear = st.TCPSynLinearTimeouts
	}
	retries := st.TCPSynRetries
	if ep.synCnt > 0 {
		retries = int(ep.synCnt) // TCP_SYNCNT
	}
	// Linux gives up by time, not by count (retransmits_timed_out): once the first SYN is
	// older than the time tcp_syn_retries doublings from 1 s would take (127 s for 6),
	// the next timeout ends the attempt. With the linear timeouts of the linux profile the
	// SYNs come faster, so more of them fit before that (eleven for the defaults).
	if s.now-ep.synStart >= synModelTimeout(retries) {
		s.ctr.Inc(stats.TcpExtTCPAbortOnTimeout)
		s.closeEndpoint(ep, errTimedOut)
		return
	}
	ep.retries++
	ep.timing = false
	s.ctr.Inc(stats.TcpExtTCPTimeouts)
	s.ctr.Inc(stats.TcpRetransSegs)
	s.ctr.Inc(stats.TcpExtTCPSynRetrans)
	if ep.state == StateSynSent {
		s.sendSyn(ep)
	} else {
		s.sendSynAckEndpoint(ep)
	}
	s.wheel.Schedule(&ep.rtx, s.now+synBackoff(ep.retries, linear))
}

// synModelTimeout is Linux tcp_model_timeout for SYNs (rto_base = 1 s): the time that
// `boundary` exponential retransmissions would take, (2^(boundary+1) - 1) s, then TCP_RTO_MAX
// for each one beyond ilog2(TCP_RTO_MAX / 1 s) = 6.
func synModelTimeout(boundary int) int64 {
	const thresh = 6
	if boundary <= thresh {
		return int64((2<<boundary)-1) * int64(timeoutInit)
	}
	return int64((2<<thresh)-1)*int64(timeoutInit) + int64(boundary-thresh)*int64(rtoMax)
}

// synBackoff is the interval after the k-th SYN timeout: linear (1 s) for the first
// `linear` timeouts, then doubling from 2 s, capped at TCP_RTO_MAX.
func synBackoff(k, linear int) int64 {
	if k <= linear {
		return int64(timeoutInit)
	}
	shift := k - linear
	if shift > 7 {
		return int64(rtoMax)
	}
	return min(int64(timeoutInit)<<shift, int64(rtoMax))
}

// timewait is a connection in TIME-WAIT: what is needed to re-acknowledge a retransmitted
// FIN and to judge a new SYN, and nothing else (Linux inet_timewait_sock).
type timewait struct {
	key       hash.Key
	hash      uint64
	rcvNxt    uint32
	sndNxt    uint32
	tsRecent  uint32
	tsOff     uint32
	tsOK      bool
	rcvWscale uint8
	oow       oowLimit // the last ACK sent for an out-of-window segment (tcp_invalid_ratelimit)
	timer     wheel.Timer
}

// enterTimeWait moves a connection to TIME-WAIT (Linux tcp_time_wait): a small entry takes
// its place for 60 s and the connection itself is released. Past tcp_max_tw_buckets the
// connection closes at once (TcpExtTCPTimeWaitOverflow).
func (s *shard) enterTimeWait(ep *endpoint) {
	if s.eng.twCount.Add(1) > int64(s.eng.settings.TCPMaxTwBuckets) {
		s.eng.twCount.Add(-1)
		s.ctr.Inc(stats.TcpExtTCPTimeWaitOverflow)
		s.setState(ep, StateTimeWait)
		s.closeEndpoint(ep, errNone)
		return
	}
	var tw *timewait
	if n := len(s.twFree); n > 0 {
		tw = s.twFree[n-1]
		s.twFree = s.twFree[:n-1]
	} else {
		tw = &timewait{}
		tw.timer.Kind, tw.timer.Owner = timerTimeWait, tw
	}
	tw.key, tw.hash = ep.key, ep.hash
	tw.rcvNxt, tw.sndNxt = uint32(ep.rcvNxt), uint32(ep.sndNxt)
	tw.tsRecent, tw.tsOff, tw.tsOK = ep.tsRecent, ep.tsOff, ep.tsOK
	tw.rcvWscale = ep.rcvWscale
	tw.oow = oowLimit{} // Linux tcp_time_wait: tw_last_oow_ack_time = 0
	s.tw.Put(&tw.key, tw.hash, tw)
	s.wheel.Schedule(&tw.timer, s.now+int64(timewaitLen))
	s.setState(ep, StateTimeWait)
	// Release the connection without touching TcpCurrEstab or resets again.
	s.release(ep)
}

func (s *shard) freeTimewait(tw *timewait) {
	s.wheel.Cancel(&tw.timer)
	s.tw.Delete(&tw.key, tw.hash)
	s.eng.twCount.Add(-1)
	s.twFree = append(s.twFree, tw)
}

// timewaitTimer ends TIME-WAIT (TcpExtTW counts it, as Linux's TIMEWAITED).
func (s *shard) timewaitTimer(tw *timewait) {
	s.ctr.Inc(stats.TcpExtTW)
	s.freeTimewait(tw)
}

// timewaitInput is Linux tcp_timewait_state_process for the TIME-WAIT substate, less PAWS
// (the stack keeps no timestamp clock per peer). It returns true for a SYN that opens a new
// incarnation: the caller takes it to the listener.
//
//   - At rcv_nxt, only a reset or a bare ACK is in the window. The reset ends TIME-WAIT
//     ("TIME-WAIT assassination") unless tcp_rfc1337 is set, when it is ignored (RFC 1337);
//     the bare ACK restarts the 60 s and is not answered.
//   - A SYN without ACK whose sequence number is after rcv_nxt, or whose timestamp is newer
//     than the last one seen, is a new incarnation (RFC 1122 §4.2.2.13).
//   - Any other reset is ignored: only one at exactly rcv_nxt may end TIME-WAIT.
//   - Anything else (a retransmitted FIN, an old ACK, data, an old SYN) is acknowledged, at
//     most once per tcp_invalid_ratelimit unless it carries data or a FIN
//     (TcpExtTCPACKSkippedTimeWait), and restarts the 60 s when it has the ACK bit.
func (s *shard) timewaitInput(tw *timewait, sg *segment) bool {
	rcvNxt := seqnum.Value(tw.rcvNxt)
	if sg.seq == rcvNxt && (sg.seqLen() == 0 || sg.rst()) {
		if sg.rst() {
			if !s.eng.settings.TCPRFC1337 {
				s.freeTimewait(tw)
				return false
			}
		} else {
			s.wheel.Schedule(&tw.timer, s.now+int64(timewaitLen))
		}
		if tw.tsOK && sg.opts.TS {
			tw.tsRecent = sg.opts.TSVal
		}
		return false
	}
	if sg.syn() && !sg.rst() && !sg.ackf() &&
		(rcvNxt.LessThan(sg.seq) || (tw.tsOK && sg.opts.TS && int32(tw.tsRecent-sg.opts.TSVal) < 0)) {
		// Linux starts the new connection's ISN well past the old one (tcp_tw_isn).
		sg.isnHint, sg.hasISNHint = tw.sndNxt+65535+2, true
		s.freeTimewait(tw)
		return true
	}
	if sg.rst() {
		return false
	}
	if sg.ackf() {
		s.wheel.Schedule(&tw.timer, s.now+int64(timewaitLen))
	}
	if !s.oowRateLimited(&tw.oow, sg, stats.TcpExtTCPACKSkippedTimeWait) {
		s.twAck(tw)
	}
	return false
}

func (s *shard) twAck(tw *timewait) {
	var opts *header.TCPOptions
	if tw.tsOK {
		opts = s.tsOptions(tw.tsOff, tw.tsRecent)
	}
	s.emit(&tw.key, tw.hash, seqnum.Value(tw.sndNxt), seqnum.Value(tw.rcvNxt),
		header.TCPFlagACK, 0, opts, nil, 0, 0)
}

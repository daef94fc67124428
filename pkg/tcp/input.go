package tcp

import (
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// endpointInput runs the state machine of a connection for one segment (RFC 9293 §3.10.7,
// Linux tcp_rcv_state_process), one method per state.
func (s *shard) endpointInput(ep *endpoint, sg *segment) {
	switch ep.state {
	case StateSynSent:
		s.synSentState(ep, sg)
	case StateSynRecv:
		s.synRecvState(ep, sg)
	default:
		s.synchronizedState(ep, sg)
	}
	if ep.state != StateClosed && ep.state != StateTimeWait {
		s.output(ep)
	}
}

// negotiate records the peer's SYN options against ours (RFC 7323 §1.3: window scale and
// timestamps only when both sides offered them).
func (s *shard) negotiate(ep *endpoint, o *header.TCPOptions, weOffered bool) {
	st := &s.eng.settings
	s.initMSS(ep, min(peerMSS(o), uint16(s.eng.mssFor(ep.key.V6)))) // the path may lower it (pmtu.go)
	ep.sackOK = weOffered && !st.TCPSackOff && o.SACKPermitted
	ep.tsOK = weOffered && !st.TCPTimestampsOff && o.TS
	if ep.tsOK {
		ep.tsRecent = o.TSVal
	}
	if ws := peerWScale(o); ws >= 0 && weOffered && !st.TCPWindowScalingOff {
		ep.sndWscale = uint8(ws)
		ep.rcvWscale = s.ourWScale()
	} else {
		ep.sndWscale, ep.rcvWscale = 0, 0
	}
}

// synSentState is RFC 9293 §3.10.7.3 (Linux tcp_rcv_synsent_state_process).
func (s *shard) synSentState(ep *endpoint, sg *segment) {
	// First, check the ACK: it must acknowledge our SYN and nothing beyond.
	if sg.ackf() && (sg.ack.LessThanEq(ep.iss) || ep.sndNxt.LessThan(sg.ack)) {
		if !sg.rst() {
			s.sendRST(&ep.key, ep.hash, sg.ack, 0, false)
		}
		return
	}
	// Second, check RST: only an acceptable ACK makes it a refusal.
	if sg.rst() {
		if sg.ackf() {
			s.closeEndpoint(ep, errRefused)
		}
		return
	}
	// Fourth, check SYN.
	if !sg.syn() {
		return
	}
	ep.irs = sg.seq
	ep.rcvNxt = sg.seq.Add(1)
	s.negotiate(ep, &sg.opts, true)
	if !sg.ackf() {
		// Simultaneous open: SYN-RECV, and a SYN-ACK that carries our original ISN.
		s.setState(ep, StateSynRecv)
		ep.sndWnd = uint32(sg.wnd)
		s.sendSynAckEndpoint(ep)
		return
	}
	ep.sndUna = sg.ack
	ep.sndWnd = uint32(sg.wnd) // a SYN's window is never scaled
	ep.sndWl1, ep.sndWl2 = sg.seq, sg.ack
	ep.synAcked() // RFC 5961 §5.2's bounds start (challenge.go)
	s.established(ep)
	s.sendAck(ep)
}

// established finishes a handshake on the active side.
func (s *shard) established(ep *endpoint) {
	if ep.retries == 0 && ep.timing {
		s.rttSample(ep, s.now-ep.rttStart)
	} else {
		ep.rto = int64(timeoutInit)
	}
	ep.timing = false
	ep.retries = 0
	s.initSender(ep)
	s.wheel.Cancel(&ep.rtx)
	s.setState(ep, StateEstablished)
	s.queueWake(ep, true, true)
}

// synRecvState handles the active side's SYN-RECV (simultaneous open): the peer's SYN-ACK
// or ACK of our SYN-ACK completes the handshake.
func (s *shard) synRecvState(ep *endpoint, sg *segment) {
	if sg.rst() {
		if sg.seq.InWindow(ep.rcvNxt, max(uint32(s.synWindow(s.eng.mssFor(ep.key.V6), ep.tsOK)), 1)) {
			s.closeEndpoint(ep, errRefused)
		}
		return
	}
	if sg.syn() {
		// Linux accepts the crossed SYN-ACK of a simultaneous open here; any other SYN (a
		// repeated SYN, one with another sequence number) draws a rate-limited challenge
		// ACK (tcp_validate_incoming's syn_challenge), not a SYN-ACK per SYN. Our own
		// SYN-ACK is resent by its timer.
		if !(sg.ackf() && sg.seq.Add(1) == ep.rcvNxt && sg.ack == ep.sndNxt) {
			s.synChallenge(ep)
			return
		}
	}
	if !sg.ackf() {
		return
	}
	if !(ep.sndUna.LessThan(sg.ack) && sg.ack.LessThanEq(ep.sndNxt)) {
		s.sendRST(&ep.key, ep.hash, sg.ack, 0, false)
		return
	}
	ep.sndUna = sg.ack
	ep.sndWnd = uint32(sg.wnd)
	if !sg.syn() {
		ep.sndWnd <<= ep.sndWscale
	}
	ep.sndWl1, ep.sndWl2 = sg.seq, sg.ack
	ep.synAcked() // RFC 5961 §5.2's bounds start (challenge.go)
	s.established(ep)
	if sg.syn() {
		s.sendAck(ep)
		return
	}
	s.synchronizedState(ep, sg)
}

// acceptable is RFC 9293 §3.10.7.4's first check, against the window we advertised.
func (s *shard) acceptable(ep *endpoint, sg *segment) bool {
	wnd := uint32(0)
	if ep.rcvNxt.LessThan(ep.rcvAdv) {
		wnd = ep.rcvAdv.Sub(ep.rcvNxt)
	}
	n := sg.seqLen()
	switch {
	case n == 0 && wnd == 0:
		return sg.seq == ep.rcvNxt
	case n == 0:
		return sg.seq.InWindow(ep.rcvNxt, wnd)
	case wnd == 0:
		return false
	default:
		return sg.seq.InWindow(ep.rcvNxt, wnd) || sg.seq.Add(n-1).InWindow(ep.rcvNxt, wnd)
	}
}

// synchronizedState processes a segment for ESTABLISHED through LAST-ACK, following RFC
// 9293 §3.10.7.4's steps in order.
func (s *shard) synchronizedState(ep *endpoint, sg *segment) {
	// First, check the sequence number. A segment outside the window draws what Linux
	// sends for it (challenge.go): a rate-limited duplicate ACK, or a challenge ACK for a SYN.
	if !s.acceptable(ep, sg) {
		s.unacceptable(ep, sg)
		return
	}
	// Second, check RST (RFC 5961 §3.2: only an exact match resets; in-window gets a
	// challenge ACK, rate-limited).
	if sg.rst() {
		if sg.seq != ep.rcvNxt {
			s.challengeAck(ep)
			return
		}
		s.peerReset(ep)
		return
	}
	// Fourth, check SYN (RFC 5961 §4: a challenge ACK, never a reset).
	if sg.syn() {
		s.synChallenge(ep)
		return
	}
	// Fifth, check ACK. RFC 5961 §5.2 as Linux's tcp_ack applies it (challenge.go): an
	// ACK of data never sent, or older than the peer's largest window, draws a challenge
	// ACK and drops the segment; an older one within it is ignored but the text is kept.
	if !sg.ackf() {
		return
	}
	switch s.checkAck(ep, sg) {
	case ackBad:
		return
	case ackNew:
		if ep.tsOK && sg.opts.TS && sg.seq.LessThanEq(ep.rcvNxt) {
			ep.tsRecent = sg.opts.TSVal
		}
		if !s.ackInput(ep, sg) {
			return
		}
	}
	s.heard(ep) // keepalive.go: the peer is alive
	switch ep.state {
	case StateFinWait1:
		if ep.finAcked(sg.ack) {
			s.setState(ep, StateFinWait2)
			if ep.orphan {
				// The retransmission timer, idle now, times the orphan out (tcp_fin_timeout).
				s.wheel.Schedule(&ep.rtx, s.now+int64(s.eng.settings.TCPFinTimeout))
			}
		}
	case StateClosing:
		if ep.finAcked(sg.ack) {
			s.enterTimeWait(ep)
			return
		}
	case StateLastAck:
		if ep.finAcked(sg.ack) {
			s.closeEndpoint(ep, errNone)
			return
		}
	}
	// Seventh, process the segment text.
	if len(sg.payload) > 0 {
		switch ep.state {
		case StateEstablished, StateFinWait1, StateFinWait2:
			if ep.orphan && sg.end().Sub(ep.rcvNxt) > 0 {
				// Linux: data for a socket the application closed resets the connection.
				s.ctr.Inc(stats.TcpExtTCPAbortOnData)
				s.abort(ep, errReset, true)
				return
			}
			s.dataInput(ep, sg)
		}
	}
	// Eighth, check FIN: it counts only once every byte before it has arrived; one that
	// comes beyond a hole waits for the hole to fill. After the peer's FIN (CLOSE-WAIT,
	// CLOSING, LAST-ACK) nothing is at rcv_nxt any more: another FIN there is ignored, as
	// Linux ignores whatever lies at or after rcv_nxt in those states.
	if sg.fin() && ep.state.receives() {
		switch at := sg.seq.Add(uint32(len(sg.payload))); {
		case at == ep.rcvNxt:
			s.finInput(ep)
		case ep.rcvNxt.LessThan(at):
			ep.finAt, ep.finPend = at, true
			ep.ackNow = true
		}
	}
}

// peerReset is an acceptable RST on a synchronized connection (Linux tcp_reset).
func (s *shard) peerReset(ep *endpoint) {
	switch ep.state {
	case StateClosing, StateLastAck:
		s.closeEndpoint(ep, errNone)
	default:
		s.closeEndpoint(ep, errReset)
	}
}

// finInput handles the peer's FIN (RFC 9293 §3.10.7.4 eighth step, Linux tcp_fin).
func (s *shard) finInput(ep *endpoint) {
	ep.rcvNxt = ep.rcvNxt.Add(1)
	// Out-of-order data held beyond the FIN is past the end of the stream: Linux's tcp_fin
	// purges it and resets the SACK state (tcp_sack_reset), so no SACK block describes it.
	s.clearOOO(ep)
	ep.dsackSet = false
	ep.eof.Store(true)
	s.queueWake(ep, true, false)
	switch ep.state {
	case StateEstablished:
		// Linux enters pingpong mode here: the ACK is delayed, hoping our own FIN carries it.
		s.setState(ep, StateCloseWait)
		ep.pingpong = true
		s.scheduleAck(ep, 0)
	case StateFinWait1:
		ep.ackNow = true
		if ep.finAcked(ep.sndUna) {
			s.sendAck(ep)
			s.enterTimeWait(ep)
			return
		}
		s.setState(ep, StateClosing)
	case StateFinWait2:
		s.sendAck(ep)
		s.enterTimeWait(ep)
	default:
		ep.ackNow = true
	}
}

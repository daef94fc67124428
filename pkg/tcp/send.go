package tcp

import (
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// initialCwnd is RFC 6928's initial window of ten segments, Linux's default.
const initialCwnd = 10

// canSend reports whether the state lets new data or a FIN go out.
func (ep *endpoint) canSend() bool {
	switch ep.state {
	case StateEstablished, StateCloseWait, StateFinWait1, StateClosing, StateLastAck:
		return true
	}
	return false
}

// inflightData is how many data bytes are sent and not yet acknowledged.
func (ep *endpoint) inflightData() uint32 {
	n := ep.sndNxt.Sub(ep.sndUna)
	if ep.finSent && n > 0 {
		n-- // the FIN's sequence number is not a byte in the ring
	}
	return n
}

// output sends what the window, the congestion window and the send ring allow, the FIN
// when the application closed and all data is out, and a pure ACK if one is owed and
// nothing else carried it.
func (s *shard) output(ep *endpoint) {
	if ep.canSend() {
		s.sendData(ep)
	}
	if ep.ackNow {
		s.sendAck(ep)
	}
}

func (s *shard) sendData(ep *endpoint) {
	mss := ep.sendMSS()
	for !ep.finSent {
		pos := ep.snd.tail.Load() + uint64(ep.inflightData())
		unsent := uint32(ep.snd.head.Load() - pos)
		// The usable window: what the peer offers beyond what is in flight, and the
		// congestion window in segments.
		inflight := ep.sndNxt.Sub(ep.sndUna)
		var usable uint32
		if ep.sndWnd > inflight {
			usable = ep.sndWnd - inflight
		}
		if cw := ep.cwnd * mss; cw > inflight {
			usable = min(usable, cw-inflight)
		} else {
			usable = 0
		}
		n := min(unsent, usable, mss)
		if ep.sndNxt.LessThan(ep.sndMax) {
			// A retransmission resends what was already sent, no more: new data after it
			// waits for its turn (and for Nagle), as Linux retransmits its queued segments.
			sent := ep.sndMax.Sub(ep.sndNxt)
			if ep.finEver {
				sent--
			}
			if n > sent {
				n = sent
				unsent = sent + 1 // not the last byte: no FIN on it
				if ep.finEver {
					unsent = sent
				}
			}
		}
		// The FIN rides on the segment that carries the last byte, or goes alone once every
		// byte is out (a lone FIN is sent even into a closed window, as Linux does).
		fin := ep.finQueued && n == unsent
		flags := header.TCPFlagACK
		if fin {
			flags |= header.TCPFlagFIN
		}
		if n == 0 && !fin {
			if unsent > 0 && inflight == 0 && !ep.rtx.Pending() {
				// Zero window with data waiting: probe when the timer fires.
				s.armRtx(ep)
			}
			return
		}
		// Nagle (RFC 896) as Linux does it (tcp_nagle_check with Minshall's change): a
		// segment shorter than a full one waits while an earlier short segment is still
		// unacknowledged, unless the connection has TCP_NODELAY or the segment carries FIN.
		// Retransmissions are never held.
		if n < mss && !fin && ep.sndNxt == ep.sndMax && !ep.noDelay.Load() && ep.sndUna.LessThan(ep.sndSml) {
			return
		}
		if n > 0 && n == unsent {
			flags |= header.TCPFlagPSH
		}
		var opts *header.TCPOptions
		if ep.tsOK {
			opts = s.tsOptions(ep.tsOff, ep.tsRecent)
		}
		wnd := s.rcvWindow(ep)
		if !s.emit(&ep.key, ep.hash, ep.sndNxt, ep.rcvNxt, flags, wnd, opts, &ep.snd, pos, int(n)) {
			if !ep.rtx.Pending() {
				s.armRtx(ep)
			}
			return
		}
		s.ackSent(ep)
		isRetrans := ep.sndNxt.LessThan(ep.sndMax)
		if isRetrans {
			s.ctr.Inc(stats.TcpRetransSegs)
		} else if n > 0 {
			s.ctr.Inc(stats.TcpExtTCPOrigDataSent)
		}
		if !ep.timing && !isRetrans {
			ep.rttSeq, ep.rttStart, ep.timing = ep.sndNxt, s.now, true
		}
		ep.sndNxt = ep.sndNxt.Add(n)
		if n < mss {
			ep.sndSml = ep.sndNxt // the end of the last short segment (Minshall)
		}
		if fin {
			ep.sndNxt = ep.sndNxt.Add(1)
			ep.finSent, ep.finEver = true, true
		}
		if ep.sndMax.LessThan(ep.sndNxt) {
			ep.sndMax = ep.sndNxt
		}
		if !ep.rtx.Pending() {
			s.armRtx(ep)
		}
		if fin {
			return
		}
	}
}

// armRtx (re)starts the retransmission timer at the current RTO.
func (s *shard) armRtx(ep *endpoint) {
	s.wheel.Schedule(&ep.rtx, s.now+ep.rto)
}

// rttSample feeds one round-trip measurement into RFC 6298's estimator. Like Linux, the
// variance term never goes below TCP_RTO_MIN, so RTO = SRTT + max(4*RTTVAR, 200 ms).
func (s *shard) rttSample(ep *endpoint, r int64) {
	if r < 0 {
		return
	}
	if ep.srtt == 0 {
		ep.srtt = max(r, 1)
		ep.rttvar = r / 2
	} else {
		d := ep.srtt - r
		if d < 0 {
			d = -d
		}
		ep.rttvar = (3*ep.rttvar + d) / 4
		ep.srtt = (7*ep.srtt + r) / 8
	}
	ep.rto = min(ep.srtt+max(4*ep.rttvar, int64(rtoMin)), int64(rtoMax))
}

// rtxTimer handles the retransmission timer of a connection: SYN retransmission in
// SYN-SENT, window probes, and data/FIN retransmission.
func (s *shard) rtxTimer(ep *endpoint) {
	switch ep.state {
	case StateSynSent, StateSynRecv:
		s.synTimeout(ep)
		return
	case StateFinWait2:
		s.finWait2Timer(ep)
		return
	case StateClosed, StateTimeWait:
		return
	}
	if ep.sndUna == ep.sndMax {
		// Nothing in flight: a zero-window probe (one byte past the window) if data waits.
		waiting := ep.snd.head.Load()-ep.snd.tail.Load() > 0
		if waiting && ep.sndWnd == 0 {
			s.windowProbe(ep)
			ep.rto = min(ep.rto*2, int64(rtoMax))
			s.armRtx(ep)
			return
		}
		if waiting || (ep.finQueued && !ep.finSent) {
			// Data or a FIN that found no packet buffer when it was due: send it now.
			s.sendData(ep)
		}
		return
	}
	if ep.retries >= s.eng.settings.TCPRetries2 {
		s.ctr.Inc(stats.TcpExtTCPAbortOnTimeout)
		s.abort(ep, errTimedOut, true)
		return
	}
	s.ctr.Inc(stats.TcpExtTCPTimeouts)
	ep.retries++
	ep.rto = min(ep.rto*2, int64(rtoMax))
	ep.cwnd = 1
	ep.timing = false // Karn: no sample from a retransmitted segment
	// Go back to the first unacknowledged byte and resend one segment.
	ep.sndNxt = ep.sndUna
	ep.finSent = false
	s.sendData(ep)
	s.armRtx(ep)
}

// windowProbe sends one byte beyond a zero window so the peer's ACK reports when it opens.
func (s *shard) windowProbe(ep *endpoint) {
	var opts *header.TCPOptions
	if ep.tsOK {
		opts = s.tsOptions(ep.tsOff, ep.tsRecent)
	}
	pos := ep.snd.tail.Load() + uint64(ep.inflightData())
	s.emit(&ep.key, ep.hash, ep.sndNxt, ep.rcvNxt, header.TCPFlagACK,
		s.rcvWindow(ep), opts, &ep.snd, pos, 1)
}

// delackTimer sends the ACK a delayed-ACK decision held back.
func (s *shard) delackTimer(ep *endpoint) {
	if ep.state == StateClosed || !ep.state.synchronized() {
		return
	}
	s.ctr.Inc(stats.TcpExtDelayedACKs)
	s.sendAck(ep)
}

// scheduleAck decides between an immediate and a delayed ACK for received data (RFC 9293
// §3.8.6.3: at least every second full segment, and within 500 ms; Linux's minimum delay
// is 40 ms). full is how many full-sized segments the data was.
func (s *shard) scheduleAck(ep *endpoint, full int) {
	ep.delack += full
	if ep.delack >= 2 {
		ep.ackNow = true
		return
	}
	if !ep.ack.Pending() {
		s.wheel.Schedule(&ep.ack, s.now+int64(delackMin))
	}
}

// maybeWindowUpdate sends a window update after the application read enough to matter
// (Linux tcp_cleanup_rbuf: the window would at least double, or grow by a full segment from
// below one).
func (s *shard) maybeWindowUpdate(ep *endpoint) {
	space := uint32(ep.rcv.space())
	adv := ep.advWnd.Load()
	if space >= 2*adv || (adv < uint32(ep.mss) && space >= uint32(ep.mss)) {
		s.sendAck(ep)
	}
}

// finAcked reports whether an acknowledgment covers our FIN.
func (ep *endpoint) finAcked(ack seqnum.Value) bool {
	return ep.finEver && ack == ep.sndMax
}

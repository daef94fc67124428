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

// windowProbe probes a zero window as Linux does when nothing fits in it (tcp_write_wakeup,
// tcp_xmit_probe_skb): a segment with no data and the sequence number snd_una-1, which the
// peer can only answer with an ACK that carries its window (TcpExtTCPWinProbe). A probe of
// one new byte (RFC 9293 §3.8.6.1) would need that byte counted as sent: sent uncounted, a
// peer whose window had opened took it, and its ACK of the byte, beyond anything this side
// had sent, started an endless exchange of ACKs.
func (s *shard) windowProbe(ep *endpoint) {
	s.ctr.Inc(stats.TcpExtTCPWinProbe)
	s.xmitProbe(ep)
}

// xmitProbe sends Linux's probe segment (tcp_xmit_probe_skb), for a zero window and for
// keepalive alike: an ACK with no data and the sequence number snd_una-1, which the peer
// has already acknowledged and so answers with an ACK of its own (RFC 9293 §3.8.4). It
// reports whether the probe left (false: no packet buffer).
func (s *shard) xmitProbe(ep *endpoint) bool {
	var opts *header.TCPOptions
	if ep.tsOK {
		opts = s.tsOptions(ep.tsOff, ep.tsRecent)
	}
	return s.emit(&ep.key, ep.hash, ep.sndUna.Add(^uint32(0)), ep.rcvNxt, header.TCPFlagACK,
		s.rcvWindow(ep), opts, nil, 0, 0)
}

// delackTimer sends the ACK a delayed-ACK decision held back.
func (s *shard) delackTimer(ep *endpoint) {
	if ep.state == StateClosed || !ep.state.synchronized() {
		return
	}
	s.ctr.Inc(stats.TcpExtDelayedACKs)
	// The delayed ACK went unanswered by our data: no longer interactive (Linux
	// tcp_delack_timer_handler leaves pingpong mode).
	ep.pingpong = false
	s.sendAck(ep)
}

// scheduleAck decides between an immediate and a delayed ACK for n bytes of received data
// (RFC 9293 §3.8.6.3: at least every second full segment, and within 500 ms; Linux's
// minimum delay is 40 ms): an ACK goes at once when more than one of the peer's full
// segments arrived since the last (Linux: rcv_nxt - rcv_wup > rcv_mss).
func (s *shard) scheduleAck(ep *endpoint, n int) {
	ep.delack += n
	if ep.delack > int(max(ep.rcvMSS, 1)) {
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

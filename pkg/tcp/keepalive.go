package tcp

import (
	"time"

	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// alive is a connection's TCP_USER_TIMEOUT bookkeeping, shard-owned (part of conn, so
// recycling clears it). Its two small fields, the keepalive probe count and whether
// zero-window probing is on, sit with conn's other flags (kaProbes, zwpOn); when the peer
// was last heard from is the sender's lastAck (Linux rcv_tstamp).
type alive struct {
	rtxStamp int64 // when the oldest unacknowledged data went out, once it is retransmitted (retrans_stamp)
	zwpStart int64 // when zero-window probing began (icsk_probes_tstamp)
}

// kaTimer is a connection's keepalive timer, apart from the retransmission timer as Linux
// has it (sk_timer). Most connections never turn keepalive on, so the timer is not part of
// every endpoint: the shard lends one from its pool while keepalive is on and takes it back
// when keepalive goes off or the connection ends.
type kaTimer struct {
	wheel.Timer
	next *kaTimer // the shard's free list
}

// kaArm (re)arms the connection's keepalive timer for when, lending it one if it has none.
func (s *shard) kaArm(ep *endpoint, when int64) {
	t := ep.ka
	if t == nil {
		if t = s.kaFree; t != nil {
			s.kaFree, t.next = t.next, nil
		} else {
			t = &kaTimer{}
			t.Kind = timerAlive
		}
		t.Owner = ep
		ep.ka = t
	}
	s.wheel.Schedule(&t.Timer, when)
}

// kaStop stops the connection's keepalive timer and gives it back to the pool.
func (s *shard) kaStop(ep *endpoint) {
	t := ep.ka
	if t == nil {
		return
	}
	s.wheel.Cancel(&t.Timer)
	t.Owner = nil
	t.next, s.kaFree = s.kaFree, t
	ep.ka = nil
}

// resourceProbeInterval is how soon a keepalive probe that found no packet buffer is tried
// again (Linux TCP_RESOURCE_PROBE_INTERVAL).
const resourceProbeInterval = 500 * time.Millisecond

// keepIdle, keepIntvl and keepCnt are the connection's TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT, or the stack's sysctls where the application set none (Linux
// keepalive_time_when, keepalive_intvl_when, keepalive_probes).
func (s *shard) keepIdle(ep *endpoint) int64 {
	if v := ep.opts.keepIdle.Load(); v > 0 {
		return int64(v) * int64(time.Second)
	}
	return int64(s.eng.settings.TCPKeepaliveTime)
}

func (s *shard) keepIntvl(ep *endpoint) int64 {
	if v := ep.opts.keepIntvl.Load(); v > 0 {
		return int64(v) * int64(time.Second)
	}
	return int64(s.eng.settings.TCPKeepaliveIntvl)
}

func (s *shard) keepCnt(ep *endpoint) int {
	if v := ep.opts.keepCnt.Load(); v > 0 {
		return int(v)
	}
	return s.eng.settings.TCPKeepaliveProbes
}

// keepaliveStart runs when the connection is established: the peer has just been heard
// from, and with SO_KEEPALIVE already on (set on the Dial, or inherited from the listener)
// the timer starts (Linux tcp_finish_connect, tcp_create_openreq_child).
func (s *shard) keepaliveStart(ep *endpoint) {
	if ep.opts.keepalive() {
		s.kaArm(ep, s.now+s.keepIdle(ep))
	}
}

// keepaliveChanged applies SO_KEEPALIVE and TCP_KEEPIDLE as the application set them: off
// stops the timer; turned on, the first probe is due one idle time from now (Linux
// tcp_set_keepalive); with a new idle time while on, one idle time after the peer was last
// heard from (do_tcp_setsockopt, TCP_KEEPIDLE).
func (s *shard) keepaliveChanged(ep *endpoint) {
	if !ep.opts.keepalive() {
		s.kaStop(ep)
		return
	}
	if !ep.state.synchronized() || ep.state == StateTimeWait {
		return // keepaliveStart arms it once the handshake is done
	}
	idle := s.keepIdle(ep)
	if ep.ka == nil || !ep.ka.Pending() {
		s.kaArm(ep, s.now+idle)
		return
	}
	s.kaArm(ep, max(ep.lastAck+idle, s.now))
}

// heard notes a valid ACK from the peer (Linux tcp_ack: icsk_probes_out = 0, while
// ackInput keeps rcv_tstamp in lastAck; tcp_ack_probe: an open window ends zero-window
// probing).
func (s *shard) heard(ep *endpoint) {
	ep.kaProbes = 0
	if ep.sndWnd > 0 {
		ep.zwpOn = false
	}
}

// keepaliveBusy reports whether data or a FIN is queued or in flight: then the connection
// is "alive without keepalive" and the retransmission timer watches it.
func (ep *endpoint) keepaliveBusy() bool {
	return ep.snd.used() > 0 || ep.sndUna != ep.sndMax || (ep.finQueued && !ep.finEver)
}

// keepaliveTimer is Linux tcp_keepalive_timer. The timer is not moved on every segment:
// when it fires it looks at how long the peer has been silent and either sleeps until one
// idle time after it was last heard, or probes, or gives up once the probes (or, with
// TCP_USER_TIMEOUT, the time) are used up: a reset, ETIMEDOUT, TcpExtTCPAbortOnTimeout.
func (s *shard) keepaliveTimer(ep *endpoint) {
	if !ep.opts.keepalive() {
		s.kaStop(ep)
		return
	}
	switch ep.state {
	case StateClosed, StateSynSent, StateSynRecv, StateTimeWait:
		s.kaStop(ep)
		return
	case StateFinWait2:
		if ep.orphan {
			s.kaStop(ep)
			return // tcp_fin_timeout ends it, on the retransmission timer
		}
	}
	idle := s.keepIdle(ep)
	if ep.keepaliveBusy() {
		s.kaArm(ep, s.now+idle)
		return
	}
	elapsed := s.now - ep.lastAck
	if elapsed < idle {
		s.kaArm(ep, ep.lastAck+idle)
		return
	}
	if ut := ep.opts.userTimeoutNs(); (ut != 0 && elapsed >= ut && ep.kaProbes > 0) ||
		(ut == 0 && int(ep.kaProbes) >= s.keepCnt(ep)) {
		s.ctr.Inc(stats.TcpExtTCPAbortOnTimeout) // tcp_write_err
		s.abort(ep, errTimedOut, true)           // tcp_send_active_reset
		return
	}
	next := s.keepIntvl(ep)
	if s.keepaliveProbe(ep) {
		if ep.kaProbes < 255 {
			ep.kaProbes++
		}
	} else {
		next = int64(resourceProbeInterval) // no packet buffer: try again soon
	}
	s.kaArm(ep, s.now+next)
}

// keepaliveProbe sends a keepalive probe (Linux tcp_write_wakeup with nothing to send:
// tcp_xmit_probe_skb, TcpExtTCPKeepAlive) and reports whether it left. The probe carries
// RCV.NXT, so it stands for any ACK that was owed.
func (s *shard) keepaliveProbe(ep *endpoint) bool {
	s.ctr.Inc(stats.TcpExtTCPKeepAlive)
	if !s.xmitProbe(ep) {
		return false
	}
	s.ackSent(ep)
	return true
}

// rtxFire runs the retransmission timer with TCP_USER_TIMEOUT around it (Linux
// retransmits_timed_out with icsk_user_timeout, tcp_probe_timer, and
// tcp_clamp_rto_to_user_timeout): the connection is given up once what the timer is
// retrying has waited that long, and the timer never sleeps past that moment.
func (s *shard) rtxFire(ep *endpoint) {
	if s.userTimedOut(ep) {
		return
	}
	s.rtxTimer(ep)
	ut := ep.opts.userTimeoutNs()
	if ut <= 0 || !ep.rtx.Pending() {
		return
	}
	if start, ok := ep.userTimeoutStart(); ok && start+ut < ep.rtx.When() {
		s.wheel.Schedule(&ep.rtx, max(start+ut, s.now)) // at once if already past (Linux: 1 jiffy)
	}
}

// userTimedOut keeps the times TCP_USER_TIMEOUT counts from (whether or not it is set, so
// that setting it later counts from the right moment) and ends the connection when the
// timeout has passed: ETIMEDOUT and TcpExtTCPAbortOnTimeout, without a reset (Linux
// tcp_write_err).
func (s *shard) userTimedOut(ep *endpoint) bool {
	switch {
	case ep.state == StateSynSent || ep.state == StateSynRecv:
	case ep.sndUna != ep.sndMax:
		if ep.retries == 0 && !ep.tlpOut && ep.sb.len() > 0 {
			// The first timeout of this data: it counts from when the oldest segment in
			// flight was sent (Linux retrans_stamp; here its last send, which is its first
			// unless recovery resent it already). A loss probe that went at the RTO's time
			// resent it: the timeout behind the probe keeps the stamp taken before it.
			ep.rtxStamp = ep.sb.at(0).xmit
		}
	case ep.sndWnd == 0 && ep.snd.used() > 0 && ep.canSend():
		if !ep.zwpOn {
			ep.zwpOn, ep.zwpStart = true, s.now
		}
	default:
		ep.zwpOn = false
	}
	ut := ep.opts.userTimeoutNs()
	if ut <= 0 {
		return false
	}
	start, ok := ep.userTimeoutStart()
	if !ok || s.now-start < ut {
		return false
	}
	s.ctr.Inc(stats.TcpExtTCPAbortOnTimeout)
	s.closeEndpoint(ep, errTimedOut)
	return true
}

// userTimeoutStart returns when the wait that TCP_USER_TIMEOUT bounds began: the first SYN,
// the oldest unacknowledged data, or the first zero-window probe. As in Linux it counts only
// once something has been retransmitted (a zero-window probe counts from the first).
func (ep *endpoint) userTimeoutStart() (int64, bool) {
	switch {
	case ep.state == StateSynSent || ep.state == StateSynRecv:
		return ep.synStart, ep.retries > 0
	case ep.sndUna != ep.sndMax:
		return ep.rtxStamp, ep.retries > 0
	case ep.zwpOn:
		return ep.zwpStart, true
	}
	return 0, false
}

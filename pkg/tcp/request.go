package tcp

import (
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// request is a half-open passive connection (Linux request_sock): the 4-tuple, both ISNs,
// the peer's options, the retransmission count and the acked flag. It is not a socket; it
// lives in its shard's SYN table and comes from the shard's pool.
type request struct {
	key        hash.Key
	hash       uint64
	l          *Listener
	irs        seqnum.Value // rcv_isn
	iss        seqnum.Value // snt_isn
	mss        uint16       // the peer's MSS
	sndWscale  int8         // the peer's window scale, -1 if it sent none
	rcvWscale  uint8        // ours, used only when sndWscale >= 0
	sackOK     bool
	tsOK       bool
	tsRecent   uint32
	tsOff      uint32
	numTimeout int  // SYN-ACK timeouts so far (Linux num_timeout)
	acked      bool // a valid final ACK was dropped (accept queue full, or deferred accept)
	sentAt     int64
	oow        oowLimit // the last SYN-ACK or ACK sent for a bad segment (tcp_invalid_ratelimit)
	timer      wheel.Timer
}

func (s *shard) allocRequest() *request {
	if n := len(s.reqFree); n > 0 {
		r := s.reqFree[n-1]
		s.reqFree = s.reqFree[:n-1]
		return r
	}
	r := &request{}
	r.timer.Kind, r.timer.Owner = timerRequest, r
	return r
}

// removeRequest takes a request out of the SYN queue and returns it to the pool.
func (s *shard) removeRequest(req *request) {
	s.wheel.Cancel(&req.timer)
	s.syn.Delete(&req.key, req.hash)
	q := &req.l.synq[s.id]
	q.qlen.Add(-1)
	if req.numTimeout == 0 {
		q.young.Add(-1)
	}
	s.freeRequest(req)
}

func (s *shard) freeRequest(req *request) {
	t := req.timer
	*req = request{}
	req.timer.Kind, req.timer.Owner = t.Kind, t.Owner
	s.reqFree = append(s.reqFree, req)
}

// listenInput is a segment for a listener with no request or connection of its own
// (Linux tcp_rcv_state_process, TCP_LISTEN).
func (s *shard) listenInput(l *Listener, sg *segment) {
	switch {
	case sg.rst():
		return
	case sg.ackf():
		if s.cookieCheck(l, sg) {
			return
		}
		s.sendResetFor(sg)
		return
	case !sg.syn() || sg.fin():
		return
	}
	s.connRequest(l, sg)
}

// connRequest is a SYN arriving at a listener: Linux tcp_conn_request, spec §3.
func (s *shard) connRequest(l *Listener, sg *segment) {
	st := &s.eng.settings
	wantCookie := false
	// 2. The SYN queue is full (or cookies are forced): a cookie, or a drop.
	if (st.TCPSyncookies == 2 || l.synQueueFull()) && !sg.hasISNHint {
		if st.TCPSyncookies == 0 {
			s.ctr.Inc(stats.TcpExtTCPReqQFullDrop)
			s.listenDrop()
			return
		}
		wantCookie = true
		s.ctr.Inc(stats.TcpExtTCPReqQFullDoCookies)
	}
	// 3. The accept queue is full.
	if l.acceptQueueFull() {
		if st.Profile == ProfileLinux || l.qlenYoung() > 1 {
			s.ctr.Inc(stats.TcpExtListenOverflows)
			s.listenDrop()
			return
		}
	}
	if wantCookie {
		s.cookieSynAck(l, sg)
		return
	}
	// Without cookies, keep the last quarter of tcp_max_syn_backlog for peers known to be
	// alive (we keep no peer metrics, so no peer is).
	if st.TCPSyncookies == 0 && !sg.hasISNHint &&
		int32(st.TCPMaxSynBacklog)-l.qlen() < int32(st.TCPMaxSynBacklog>>2) {
		s.listenDrop()
		return
	}
	// 4. Make the request, send the SYN-ACK, queue it, arm its timer.
	req := s.allocRequest()
	req.key, req.hash, req.l = sg.key, sg.hash, l
	req.irs = sg.seq
	if sg.hasISNHint {
		req.iss = seqnum.Value(sg.isnHint)
	} else {
		req.iss = seqnum.Value(s.eng.sec.isnFor(&sg.key, s.now))
	}
	s.fillRequestOptions(req, l, &sg.opts)
	if !s.sendSynAck(req) {
		s.freeRequest(req)
		s.listenDrop()
		return
	}
	req.sentAt = s.now
	s.syn.Put(&req.key, req.hash, req)
	q := &l.synq[s.id]
	q.qlen.Add(1)
	q.young.Add(1)
	s.wheel.Schedule(&req.timer, s.now+int64(timeoutInit))
}

func (s *shard) listenDrop() { s.ctr.Inc(stats.TcpExtListenDrops) }

// fillRequestOptions records what the SYN offered and what we will use.
func (s *shard) fillRequestOptions(req *request, l *Listener, o *header.TCPOptions) {
	st := &s.eng.settings
	req.mss = peerMSS(o)
	req.sackOK = o.SACKPermitted && !st.TCPSackOff
	req.tsOK = o.TS && !st.TCPTimestampsOff
	if req.tsOK {
		req.tsRecent = o.TSVal
		req.tsOff = s.tsOffset(&req.key)
	}
	req.sndWscale = -1
	if ws := peerWScale(o); ws >= 0 && !st.TCPWindowScalingOff {
		req.sndWscale = ws
		req.rcvWscale = s.ourWScale()
	}
}

// advMSS is the MSS a listener advertises for a request of its family: the link's, or
// less under TCP_MAXSEG.
func (s *shard) advMSS(l *Listener, v6 bool) uint16 {
	m := s.eng.mssFor(v6)
	if ms := int(l.maxSeg.Load()); ms > 0 && ms < m {
		m = ms
	}
	return uint16(m)
}

// sendSynAck sends (or resends) a request's SYN-ACK: same ISN every time.
func (s *shard) sendSynAck(req *request) bool {
	ws := int8(-1)
	if req.sndWscale >= 0 {
		ws = int8(req.rcvWscale)
	}
	opts := s.synOptions(s.advMSS(req.l, req.key.V6), ws, req.sackOK, req.tsOK, tsNow(s.now)+req.tsOff, req.tsRecent)
	return s.emit(&req.key, req.hash, req.iss, req.irs.Add(1),
		header.TCPFlagSYN|header.TCPFlagACK, s.synWindow(int(s.advMSS(req.l, req.key.V6)), req.tsOK), opts, nil, 0, 0)
}

// requestTimer is Linux reqsk_timer_handler (and 3.12's inet_csk_reqsk_queue_prune for one
// request): SYN-ACK retransmission at 1, 3, 7, 15, 31 s, expiry at 63 s, a smaller budget
// when the queue is more than half full of old requests, TCP_DEFER_ACCEPT's rules (spec §4).
func (s *shard) requestTimer(req *request) {
	l := req.l
	if l.closed.Load() {
		s.removeRequest(req)
		return
	}
	st := &s.eng.settings
	maxRetries := st.TCPSynackRetries
	if n := int(l.synCnt.Load()); n > 0 {
		maxRetries = n
	}
	thresh := maxRetries
	qlen := l.qlen()
	var halfFull bool
	if st.Profile == ProfileLinux312 {
		halfFull = qlen>>(l.maxQlenLog.Load()-1) != 0
	} else {
		halfFull = 2*qlen > max(8, l.backlog.Load())
	}
	if halfFull {
		young := 2 * l.qlenYoung()
		for thresh > 2 {
			if qlen < young {
				break
			}
			thresh--
			young <<= 1
		}
	}
	deferAccept := int(l.deferAccept.Load())
	var expire, resend bool
	if deferAccept == 0 {
		expire = req.numTimeout >= thresh
		resend = true
	} else {
		expire = req.numTimeout >= thresh && (!req.acked || req.numTimeout >= deferAccept)
		resend = !req.acked || req.numTimeout >= deferAccept-1
	}
	s.ctr.Inc(stats.TcpExtTCPTimeouts) // tcp_syn_ack_timeout
	if !expire && (!resend || s.rtxSynAck(req) || req.acked) {
		if req.numTimeout == 0 {
			l.synq[s.id].young.Add(-1)
		}
		req.numTimeout++
		s.wheel.Schedule(&req.timer, s.now+reqTimeout(req.numTimeout))
		return
	}
	s.removeRequest(req)
}

// reqTimeout is Linux reqsk_timeout: TCP_TIMEOUT_INIT << num_timeout, capped.
func reqTimeout(n int) int64 {
	if n > 7 {
		return int64(rtoMax)
	}
	return min(int64(timeoutInit)<<n, int64(rtoMax))
}

// rtxSynAck retransmits a SYN-ACK (Linux tcp_rtx_synack), counting it.
func (s *shard) rtxSynAck(req *request) bool {
	if !s.sendSynAck(req) {
		return false
	}
	s.ctr.Inc(stats.TcpRetransSegs)
	s.ctr.Inc(stats.TcpExtTCPSynRetrans)
	return true
}

// inWindow is Linux tcp_in_window for a request's receive window.
func inWindow(seq, end, sWin, eWin seqnum.Value) bool {
	if seq == sWin {
		return true
	}
	if sWin.LessThan(end) && seq.LessThan(eWin) {
		return true
	}
	return seq == eWin && seq == end
}

// requestInput is a segment for a request: Linux tcp_check_req, spec §5.
func (s *shard) requestInput(req *request, sg *segment) {
	l := req.l
	if l.closed.Load() {
		s.removeRequest(req)
		s.sendResetFor(sg)
		return
	}
	// A retransmitted SYN: the same SYN-ACK again (rate limited), timer restarted. Linux
	// looks at RST, SYN and ACK only, so a SYN with ECE and CWR (ECN setup) counts too.
	const rsa = header.TCPFlagRST | header.TCPFlagSYN | header.TCPFlagACK
	if sg.flags&rsa == header.TCPFlagSYN && sg.seq == req.irs {
		if !s.oowRateLimited(&req.oow, sg, stats.TcpExtTCPACKSkippedSynRecv) && s.rtxSynAck(req) {
			s.wheel.Schedule(&req.timer, s.now+reqTimeout(req.numTimeout))
		}
		return
	}
	// An ACK that does not acknowledge our SYN: the listener answers with a reset and the
	// request stays (spec §5, scenario S8).
	if sg.ackf() && sg.ack != req.iss.Add(1) {
		if !sg.rst() {
			s.sendRST(&sg.key, sg.hash, sg.ack, 0, false)
		}
		return
	}
	// Out of window: an ACK (unless it is a reset, and at most one per
	// tcp_invalid_ratelimit unless it carries data), and drop.
	rcvNxt := req.irs.Add(1)
	if !inWindow(sg.seq, sg.end(), rcvNxt, rcvNxt.Add(uint32(s.synWindow(int(s.advMSS(req.l, req.key.V6)), req.tsOK)))) {
		if !sg.rst() && !s.oowRateLimited(&req.oow, sg, stats.TcpExtTCPACKSkippedSynRecv) {
			s.requestAck(req)
		}
		return
	}
	if req.tsOK && sg.opts.TS && sg.seq.LessThanEq(rcvNxt) {
		req.tsRecent = sg.opts.TSVal
	}
	flags := sg.flags
	if sg.seq == req.irs {
		flags &^= header.TCPFlagSYN // the SYN itself is out of window
	}
	if flags&(header.TCPFlagRST|header.TCPFlagSYN) != 0 {
		s.ctr.Inc(stats.TcpAttemptFails)
		s.embryonicReset(req, sg, flags&header.TCPFlagRST != 0)
		return
	}
	if flags&header.TCPFlagACK == 0 {
		return
	}
	// TCP_DEFER_ACCEPT: a bare ACK only marks the request; data will make the child.
	if req.numTimeout < int(l.deferAccept.Load()) && sg.end() == req.irs.Add(1) {
		req.acked = true
		s.ctr.Inc(stats.TcpExtTCPDeferAcceptDrop)
		return
	}
	if !l.reserveAccept() {
		s.ctr.Inc(stats.TcpExtListenOverflows)
		s.listenDrop()
		if !s.eng.settings.TCPAbortOnOverflow {
			req.acked = true
			return
		}
		s.embryonicReset(req, sg, false)
		return
	}
	s.createOpenreqChild(req, sg, false)
}

// embryonicReset removes a request, resetting the peer unless it was the one resetting.
func (s *shard) embryonicReset(req *request, sg *segment, gotRST bool) {
	if !gotRST {
		s.sendResetFor(sg)
	}
	s.removeRequest(req)
	s.ctr.Inc(stats.TcpExtEmbryonicRsts)
}

// requestAck answers an out-of-window segment for a request (tcp_v4_reqsk_send_ack).
func (s *shard) requestAck(req *request) {
	var opts *header.TCPOptions
	if req.tsOK {
		opts = s.tsOptions(req.tsOff, req.tsRecent)
	}
	s.emit(&req.key, req.hash, req.iss.Add(1), req.irs.Add(1),
		header.TCPFlagACK, s.synWindow(int(s.advMSS(req.l, req.key.V6)), req.tsOK), opts, nil, 0, 0)
}

// createOpenreqChild makes the connection a valid final ACK completes (Linux
// tcp_v4_syn_recv_sock + tcp_create_openreq_child + inet_csk_complete_hashdance): the child
// is born ESTABLISHED, replaces the request, takes the segment's data and FIN, and joins the
// accept queue (its place already reserved).
func (s *shard) createOpenreqChild(req *request, sg *segment, fromCookie bool) {
	l := req.l
	ep := s.allocChild()
	ep.key, ep.hash = req.key, req.hash
	ep.keyed.Store(true)
	ep.iss, ep.irs = req.iss, req.irs
	ep.sndUna = req.iss.Add(1)
	ep.sndNxt, ep.sndMax, ep.sndSml = ep.sndUna, ep.sndUna, ep.sndUna
	ep.rcvNxt = req.irs.Add(1)
	ep.rcvAdv = ep.rcvNxt.Add(uint32(s.synWindow(int(s.advMSS(req.l, req.key.V6)), req.tsOK)))
	s.initMSS(ep, min(req.mss, s.advMSS(l, req.key.V6))) // the path may lower it (pmtu.go)
	ep.sackOK, ep.tsOK = req.sackOK, req.tsOK
	ep.tsRecent, ep.tsOff = req.tsRecent, req.tsOff
	if req.sndWscale >= 0 {
		ep.sndWscale, ep.rcvWscale = uint8(req.sndWscale), req.rcvWscale
	}
	ep.sndWnd = uint32(sg.wnd) << ep.sndWscale
	ep.sndWl1, ep.sndWl2 = sg.seq, sg.ack
	ep.noteWindow() // Linux tcp_create_openreq_child: max_window = snd_wnd, bytes_acked 0
	ep.rto = int64(timeoutInit)
	if req.numTimeout == 0 && !fromCookie {
		// Linux tcp_synack_rtt_meas: the SYN-ACK was not retransmitted, so its RTT is clean.
		s.rttSample(ep, s.now-req.sentAt)
	}
	s.initSender(ep)
	ep.listener = l
	s.inheritOptions(ep, l) // sockopt.go: keepalive, TCP_USER_TIMEOUT
	s.est.Put(&ep.key, ep.hash, ep)
	ep.inTable = true
	s.setState(ep, StateEstablished)
	s.ctr.Inc(stats.TcpPassiveOpens)
	if !fromCookie {
		s.removeRequest(req)
	}
	// Data and FIN riding on the ACK. An ACK that carries the SYN again (at IRS, which
	// requestInput truncated) is a SYN to the child, still in SYN-RECV for Linux: its
	// tcp_validate_incoming answers it with a challenge ACK (TcpExtTCPSYNChallenge, not
	// TcpInErrs) and takes nothing from it (RFC 5961 §4), unless it is a bare SYN-ACK.
	switch {
	case sg.syn():
		if len(sg.payload) > 0 || sg.fin() {
			s.ctr.Inc(stats.TcpExtTCPSYNChallenge)
			s.challengeAck(ep)
		}
	default:
		if len(sg.payload) > 0 {
			s.dataInput(ep, sg)
		}
		if sg.fin() && sg.seq.Add(uint32(len(sg.payload))) == ep.rcvNxt {
			s.finInput(ep)
		}
	}
	if l.events != nil {
		// An event-driven listener takes the child at once: its place in the accept queue
		// is given back and its callbacks run when this iteration's wake-ups are flushed.
		l.ackBacklog.Add(-1)
		ep.events = l.events
		s.queueWake(ep, false, false)
	} else {
		l.enqueue(ep)
	}
	if ep.ackNow {
		s.sendAck(ep)
	}
}

// dropListenerRequests removes every request of a closed listener from this shard.
func (s *shard) dropListenerRequests(l *Listener) {
	var doomed []*request
	s.syn.Range(func(_ *hash.Key, r *request) bool {
		if r.l == l {
			doomed = append(doomed, r)
		}
		return true
	})
	for _, r := range doomed {
		s.removeRequest(r)
	}
}

package tcp

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// SYN cookies (spec §6), as Linux's secure_tcp_syn_cookie / check_tcp_syn_cookie compute
// them: the 24 low bits carry data, the 8 high bits a minute counter,
//
//	cookie = H0(4-tuple) + peer ISN + (count << 24) + ((H1(4-tuple, count) + data) & 0xFFFFFF)
//
// with H0 and H1 SipHash under two secret keys. data is the index of the MSS in
// the family's cookie MSS table (family.go). When the SYN carried timestamps, our TSval's low 6 bits carry the window scale,
// SACK-permitted and ECN (cookie_init_timestamp), so those options survive.
const (
	cookieBits   = 24
	cookieMask   = 1<<cookieBits - 1
	cookieMaxAge = 2 // minutes: the counter may differ by 0 or 1 (MAX_SYNCOOKIE_AGE)
	tsBits       = 6
	tsOptWScale  = 0xf
	tsOptSACK    = 1 << 4
	tsOptECN     = 1 << 5
)

func (s *shard) cookieHash(k int, sg *segment, count uint32) uint32 {
	// Linux hashes (saddr, daddr, sport<<16|dport, count) of the SYN: the peer first.
	var b [40]byte
	in := b[:16]
	if !sg.key.V6 {
		copy(b[0:4], sg.key.RemoteAddr[:4])
		copy(b[4:8], sg.key.LocalAddr[:4])
		binary.BigEndian.PutUint16(b[8:], sg.key.RemotePort)
		binary.BigEndian.PutUint16(b[10:], sg.key.LocalPort)
		binary.BigEndian.PutUint32(b[12:], count)
	} else {
		copy(b[0:16], sg.key.RemoteAddr[:])
		copy(b[16:32], sg.key.LocalAddr[:])
		binary.BigEndian.PutUint16(b[32:], sg.key.RemotePort)
		binary.BigEndian.PutUint16(b[34:], sg.key.LocalPort)
		binary.BigEndian.PutUint32(b[36:], count)
		in = b[:]
	}
	return uint32(sip(s.eng.sec.cookie[k], in))
}

// cookieTime is the minute counter (tcp_cookie_time) on the stack's clock.
func (s *shard) cookieTime() uint32 { return uint32(s.now / 60e9) }

func (s *shard) makeCookie(sg *segment, sseq uint32, data uint32) uint32 {
	count := s.cookieTime()
	return s.cookieHash(0, sg, 0) + sseq + count<<cookieBits +
		((s.cookieHash(1, sg, count) + data) & cookieMask)
}

// checkCookie returns the data a cookie carries, or false when it is not ours or too old.
func (s *shard) checkCookie(sg *segment, cookie, sseq uint32) (uint32, bool) {
	count := s.cookieTime()
	cookie -= s.cookieHash(0, sg, 0) + sseq
	diff := (count - cookie>>cookieBits) & (0xffffffff >> cookieBits)
	if diff >= cookieMaxAge {
		return 0, false
	}
	return (cookie - s.cookieHash(1, sg, count-diff)) & cookieMask, true
}

// cookieSynAck answers a SYN with a cookie and keeps no state (Linux tcp_conn_request with
// want_cookie).
func (s *shard) cookieSynAck(l *Listener, sg *segment) {
	st := &s.eng.settings
	o := &sg.opts
	mss := peerMSS(o)
	tab := cookieMSS(sg.key.V6)
	idx := len(tab) - 1
	for ; idx > 0; idx-- {
		if mss >= tab[idx] {
			break
		}
	}
	iss := s.makeCookie(sg, uint32(sg.seq), uint32(idx))
	ts := o.TS && !st.TCPTimestampsOff
	ws := int8(-1)
	sack := false
	var tsVal, tsOff uint32
	if ts {
		// Without timestamps there is nowhere to keep window scale and SACK: Linux clears
		// them (tcp_clear_options) and the SYN-ACK carries only the MSS.
		sack = o.SACKPermitted && !st.TCPSackOff
		opts := uint32(tsOptWScale)
		if pws := peerWScale(o); pws >= 0 && !st.TCPWindowScalingOff {
			ws = int8(s.ourWScale())
			opts = uint32(pws)
		}
		if sack {
			opts |= tsOptSACK
		}
		now := tsNow(s.now)
		v := now>>tsBits<<tsBits | opts
		if v > now {
			v -= 1 << tsBits
		}
		tsOff = s.tsOffset(&sg.key)
		tsVal = v + tsOff
	}
	out := s.synOptions(s.advMSS(l, sg.key.V6), ws, sack, ts, tsVal, o.TSVal)
	if s.emit(&sg.key, sg.hash, seqnum.Value(iss), sg.seq.Add(1),
		header.TCPFlagSYN|header.TCPFlagACK, s.synWindow(int(s.advMSS(l, sg.key.V6)), ts), out, nil, 0, 0) {
		s.ctr.Inc(stats.TcpExtSyncookiesSent)
		l.lastOverflow.Store(s.now)
		l.cookiesActive.Store(true)
	}
}

// cookieCheck handles an ACK that reached a listener with no request: if cookies were sent
// in the last two minutes it is checked as one (Linux cookie_v4_check). It returns true
// when it consumed the segment; false means the caller answers with a reset.
func (s *shard) cookieCheck(l *Listener, sg *segment) bool {
	st := &s.eng.settings
	if st.TCPSyncookies == 0 || sg.rst() || sg.syn() || !l.cookiesActive.Load() ||
		s.now-l.lastOverflow.Load() > int64(cookieValid) {
		return false
	}
	data, ok := s.checkCookie(sg, uint32(sg.ack)-1, uint32(sg.seq)-1)
	tab := cookieMSS(sg.key.V6)
	if !ok || data >= uint32(len(tab)) {
		s.ctr.Inc(stats.TcpExtSyncookiesFailed)
		return false
	}
	// Rebuild the request the cookie stands for.
	req := s.allocRequest()
	defer s.freeRequest(req)
	req.key, req.hash, req.l = sg.key, sg.hash, l
	req.irs = sg.seq.Add(^uint32(0))
	req.iss = sg.ack.Add(^uint32(0))
	req.mss = tab[data]
	req.sndWscale = -1
	if sg.opts.TS {
		if st.TCPTimestampsOff {
			s.ctr.Inc(stats.TcpExtSyncookiesFailed)
			return false
		}
		req.tsOK = true
		req.tsOff = s.tsOffset(&sg.key)
		req.tsRecent = sg.opts.TSVal
		enc := sg.opts.TSEcr - req.tsOff
		req.sackOK = enc&tsOptSACK != 0 && !st.TCPSackOff
		if w := enc & tsOptWScale; w != tsOptWScale && !st.TCPWindowScalingOff {
			req.sndWscale = int8(w)
			req.rcvWscale = s.ourWScale()
		}
	}
	s.ctr.Inc(stats.TcpExtSyncookiesRecv)
	if !l.reserveAccept() {
		s.ctr.Inc(stats.TcpExtListenOverflows)
		s.listenDrop()
		return true
	}
	// The child is made as from a request that was never in the SYN queue.
	s.createOpenreqChild(req, sg, true)
	return true
}

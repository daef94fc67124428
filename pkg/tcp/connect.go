package tcp

import (
	"net/netip"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// connect starts an active open on the shard (Linux tcp_v4_connect / tcp_v6_connect + tcp_connect): pick the
// local port, choose the ISN, send the SYN, arm its timer.
func (s *shard) connect(ep *endpoint) {
	raddr, rport := ep.dialAddr, ep.dialPort
	laddr := s.eng.source(raddr)
	if !laddr.IsValid() {
		s.closeEndpoint(ep, errAddrNotAvail)
		return
	}
	var key hash.Key
	var h uint64
	if lport := ep.dialLocalPort; lport != 0 {
		key = keyFor(laddr, lport, raddr, rport)
		h = s.eng.hasher.Sum(&key)
		if s.est.Contains(&key, h) || s.tw.Contains(&key, h) {
			s.closeEndpoint(ep, errAddrInUse)
			return
		}
	} else {
		var ok bool
		key, h, ok = s.pickPort(laddr, raddr, rport)
		if !ok {
			s.closeEndpoint(ep, errAddrNotAvail)
			return
		}
	}
	st := &s.eng.settings
	ep.key, ep.hash = key, h
	ep.keyed.Store(true)
	ep.iss = seqnum.Value(s.eng.sec.isnFor(&ep.key, s.now))
	ep.sndUna = ep.iss
	ep.sndNxt = ep.iss.Add(1)
	ep.sndMax = ep.sndNxt
	ep.sndSml = ep.sndNxt
	if !st.TCPTimestampsOff {
		ep.tsOff = s.tsOffset(&ep.key)
	}
	ep.rto = int64(timeoutInit)
	ep.retries = 0
	ep.rttStart, ep.timing = s.now, true
	ep.synStart = s.now
	s.est.Put(&ep.key, ep.hash, ep)
	ep.inTable = true
	s.setState(ep, StateSynSent)
	s.ctr.Inc(stats.TcpActiveOpens)
	if !s.sendSyn(ep) {
		// Linux tcp_connect: no buffer for the SYN fails connect(2) with ENOBUFS, so the
		// caller sees the back-pressure at once instead of a SYN that never left.
		s.closeEndpoint(ep, errNoBufs)
		return
	}
	s.wheel.Schedule(&ep.rtx, s.now+int64(timeoutInit))
}

// pickPort chooses an ephemeral port the way Linux's __inet_hash_connect does (RFC 6056
// §3.3.4, "double-hash" with a perturbation table): start at a keyed hash of (local ip,
// remote ip, remote port) plus a per-bucket counter, walk the range even ports first, skip
// 4-tuples in use. In a sharded stack it also skips ports whose flow another shard owns
// (the link would deliver its replies to another queue), so that every reply lands on the
// shard that owns the connection. Any flow with the same 4-tuple would live on this shard
// too, so the in-use check is local.
func (s *shard) pickPort(laddr, raddr netip.Addr, rport uint16) (hash.Key, uint64, bool) {
	r := s.eng.settings.IPLocalPortRange
	lo := uint32(r[0])
	n := uint32(r[1]) - lo + 1
	key := keyFor(laddr, 0, raddr, rport)
	f := s.eng.sec.portOffset(&key)
	idx := f & uint32(len(s.perturb)-1)
	off := (s.perturb[idx] + (f >> 16)) % n
	off &^= 1
	nShards := len(s.eng.shards)
	for pass := uint32(0); pass < 2; pass++ {
		for i := pass; i < n; i += 2 {
			key.LocalPort = uint16(lo + (off+i)%n)
			h := s.eng.hasher.Sum(&key)
			if nShards > 1 && s.eng.owner(key, h) != s.id {
				continue
			}
			if s.est.Contains(&key, h) || s.tw.Contains(&key, h) || s.eng.portListened(&key) {
				continue
			}
			s.perturb[idx] += i + 2
			return key, h, true
		}
	}
	return hash.Key{}, 0, false
}

package tcp

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stats"
)

// Path MTU discovery (RFC 1191, RFC 8201) as Linux does it for TCP.
//
// The engine keeps a table of path MTUs by destination address, Linux's route exceptions
// (fib_nh_exception): an entry is made or lowered only by a fragmentation-needed (or Packet
// Too Big) error that quotes a segment of one of our connections in its window
// (tcp_v4_err, then __ip_rt_update_pmtu), never raised by one, and lasts
// net.ipv4.route.mtu_expires (600 s) on the stack's clock. An IPv4 report below
// net.ipv4.route.min_pmtu (552) lowers the path only to that and locks it, as Linux does:
// segments to a locked path go without DF, so that a router on the narrower link can
// fragment them (ip_dont_fragment); IPv6 never goes below 1280 (RFC 8200 §5). The table
// holds at most pmtuMax entries, dropping the expired and then the soonest to expire, so
// hostile reports cannot grow it.
//
// Readers (a new connection choosing its MSS, a connection checking that its path has not
// changed) load an immutable snapshot without a lock; the rare writer copies it. A
// generation number moves with every change, so a connection notices at its next
// transmission that its destination's path MTU moved (Linux's tcp_current_mss comparing
// dst_mtu with icsk_pmtu_cookie) with one atomic load, and when its entry expires it
// goes back to the link's MTU.
//
// The connection the error names lowers its MSS at once (tcp_sync_mss), marks lost every
// segment in flight larger than the new MSS and resends them split to it (tcp_simple_
// retransmit: the Loss state without touching the congestion window, since the data in
// flight did not grow, only its unit shrank). Other connections to the destination take
// the new MSS at their next transmission and split their larger segments in flight, so
// that whatever they resend fits the path.

// pmtuMax bounds the path MTU table (Linux bounds exceptions per next hop and bucket).
const pmtuMax = 2048

// ipv6MinMTU is the smallest IPv6 link MTU (RFC 8200 §5).
const ipv6MinMTU = 1280

// tcpMinSndMSS is Linux's tcp_min_snd_mss default: no path makes segments smaller.
const tcpMinSndMSS = 48

type pmtuKey struct {
	addr [16]byte
	v6   bool
}

type pmtuEntry struct {
	mtu     uint32
	locked  bool
	expires int64
}

type pmtuTable struct {
	mu     sync.Mutex // writers only
	snap   atomic.Pointer[map[pmtuKey]pmtuEntry]
	gen    atomic.Uint32
	locked atomic.Int32 // entries of the snapshot that are locked (any expired ones too)
}

// mayFragment reports whether a datagram to k goes without DF: its path MTU is locked
// (Linux's ip_dont_fragment under IP_PMTUDISC_WANT). One atomic load while no path is.
func (t *pmtuTable) mayFragment(k *hash.Key, now int64) bool {
	if k.V6 || t.locked.Load() == 0 {
		return false
	}
	ent, ok := t.lookup(remoteKey(k), now)
	return ok && ent.locked
}

func remoteKey(k *hash.Key) pmtuKey { return pmtuKey{k.RemoteAddr, k.V6} }

// lookup returns the path MTU learned for a destination, if one is in force at now.
func (t *pmtuTable) lookup(k pmtuKey, now int64) (pmtuEntry, bool) {
	m := t.snap.Load()
	if m == nil {
		return pmtuEntry{}, false
	}
	e, ok := (*m)[k]
	if !ok || now >= e.expires {
		return pmtuEntry{}, false
	}
	return e, true
}

// set stores an entry, dropping expired ones, and the soonest to expire when full.
func (t *pmtuTable) set(k pmtuKey, e pmtuEntry, now int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old map[pmtuKey]pmtuEntry
	if p := t.snap.Load(); p != nil {
		old = *p
	}
	m := make(map[pmtuKey]pmtuEntry, min(len(old)+1, pmtuMax))
	for kk, v := range old {
		if now < v.expires && kk != k {
			m[kk] = v
		}
	}
	for len(m) >= pmtuMax {
		var victim pmtuKey
		first := true
		var soonest int64
		for kk, v := range m {
			if first || v.expires < soonest {
				victim, soonest, first = kk, v.expires, false
			}
		}
		delete(m, victim)
	}
	m[k] = e
	var locked int32
	for _, v := range m {
		if v.locked {
			locked++
		}
	}
	t.snap.Store(&m)
	t.locked.Store(locked)
	t.gen.Add(1)
}

// linkMTU is the MTU of the link the engine was made for.
func (e *Engine) linkMTU() uint32 { return uint32(e.mss4) + 40 }

// mssForMTU is the MSS a path MTU allows: the MTU less the IP and TCP headers.
func mssForMTU(mtu uint32, v6 bool) uint32 {
	if v6 {
		return mtu - 60
	}
	return mtu - 40
}

// routeMTU returns the path MTU to a flow's destination at now, with the time it expires
// (0: the link's MTU, which does not).
func (e *Engine) routeMTU(k *hash.Key, now int64) (mtu uint32, expires int64) {
	link := e.linkMTU()
	if ent, ok := e.pmtu.lookup(remoteKey(k), now); ok && ent.mtu < link {
		return ent.mtu, ent.expires
	}
	return link, 0
}

// PathMTU returns the path MTU the engine has learned for dst, if one is in force; it is
// what a fragmentation-needed or Packet Too Big error set (Linux: `ip route get` showing
// "mtu N" with an expiry).
func (e *Engine) PathMTU(dst netip.Addr) (int, bool) {
	var k pmtuKey
	if dst.Is4() {
		a := dst.As4()
		copy(k.addr[:4], a[:])
	} else {
		k.addr, k.v6 = dst.As16(), true
	}
	ent, ok := e.pmtu.lookup(k, e.clock.Now())
	if !ok {
		return 0, false
	}
	return int(ent.mtu), true
}

// updatePMTU is Linux's __ip_rt_update_pmtu for a report of mtu on the path to k's remote
// address. It returns the path MTU in force afterwards.
func (s *shard) updatePMTU(k *hash.Key, mtu uint32) uint32 {
	eng := s.eng
	key := remoteKey(k)
	ent, have := eng.pmtu.lookup(key, s.now)
	old := eng.linkMTU()
	if have && ent.mtu < old {
		old = ent.mtu
	}
	if have && ent.locked {
		return old
	}
	if old < mtu {
		return old // a report never raises the path MTU
	}
	lock := false
	if floor := uint32(eng.settings.RouteMinPMTU); !k.V6 && mtu < floor {
		lock, mtu = true, min(old, floor)
	}
	if k.V6 && mtu < ipv6MinMTU {
		mtu = min(old, ipv6MinMTU)
	}
	expires := int64(eng.settings.RouteMTUExpires)
	if have && ent.mtu == mtu && !lock && s.now < ent.expires-expires/2 {
		return mtu // the same report again, recently: nothing to refresh
	}
	eng.pmtu.set(key, pmtuEntry{mtu: mtu, locked: lock, expires: s.now + expires}, s.now)
	s.ctr.Inc(stats.RtPMTUUpdates)
	return mtu
}

// initMSS sets a connection's MSS when its handshake fixes the peer's: clamp is the most
// the connection may use (the peer's MSS, ours, TCP_MAXSEG), and the path may lower it.
func (s *shard) initMSS(ep *endpoint, clamp uint16) {
	ep.mssClamp = clamp
	mtu, exp := s.eng.routeMTU(&ep.key, s.now)
	ep.mss = uint16(min(uint32(clamp), max(mssForMTU(mtu, ep.key.V6), tcpMinSndMSS)))
	ep.pmtu, ep.pmtuExp, ep.pmtuGen = mtu, exp, s.eng.pmtu.gen.Load()
}

// synMSS is the MSS a SYN to k advertises: what the link allows, or less on a path whose
// MTU is known to be smaller (Linux advertises the route's advmss).
func (s *shard) synMSS(k *hash.Key) uint16 {
	mtu, _ := s.eng.routeMTU(k, s.now)
	return uint16(min(uint32(s.eng.mssFor(k.V6)), mssForMTU(mtu, k.V6)))
}

// pmtuCheck runs before a connection sends new data: if the path MTU table changed, or
// the entry its MSS follows expired, the MSS follows the path again (tcp_current_mss).
func (s *shard) pmtuCheck(ep *endpoint) {
	if ep.pmtuGen == s.eng.pmtu.gen.Load() && (ep.pmtuExp == 0 || s.now < ep.pmtuExp) {
		return
	}
	mtu, _ := s.eng.routeMTU(&ep.key, s.now)
	s.syncMSS(ep, mtu)
}

// syncMSS is tcp_sync_mss: the MSS follows the path MTU (never above the clamp, never
// below tcp_min_snd_mss), and what is in flight is cut to it.
func (s *shard) syncMSS(ep *endpoint, mtu uint32) {
	_, exp := s.eng.routeMTU(&ep.key, s.now)
	ep.pmtu, ep.pmtuExp, ep.pmtuGen = mtu, exp, s.eng.pmtu.gen.Load()
	if ep.mssClamp == 0 {
		ep.mssClamp = ep.mss
	}
	mss := uint16(min(uint32(ep.mssClamp), max(mssForMTU(mtu, ep.key.V6), tcpMinSndMSS)))
	if mss == ep.mss || ep.mss == 0 {
		return
	}
	lower := mss < ep.mss
	ep.mss = mss
	if lower {
		s.ctr.Inc(stats.TcpPMTUReductions)
		s.resegment(ep)
	}
}

// mtuReduced is tcp_v4_mtu_reduced (tcp_v6_mtu_reduced): a fragmentation-needed or
// Packet Too Big error for a segment of ep reported mtu.
func (s *shard) mtuReduced(ep *endpoint, mtu uint32) {
	route := s.updatePMTU(&ep.key, mtu)
	if ent, _ := s.eng.pmtu.lookup(remoteKey(&ep.key), s.now); mtu < route && !ent.locked {
		// Linux: "something is about to be wrong", remembered in case the connection
		// never recovers.
		ep.softErr = errMsgSize
	}
	if !ep.state.synchronized() || ep.mss == 0 {
		return // the handshake has not fixed an MSS yet: it will take the path's (initMSS)
	}
	cookie := ep.pmtu
	if cookie == 0 {
		cookie = s.eng.linkMTU()
	}
	if cookie <= route {
		ep.pmtuGen = s.eng.pmtu.gen.Load()
		return // already at or below it: the retransmission timer handles the rest
	}
	s.simpleRetransmit(ep, route)
}

// simpleRetransmit is tcp_sync_mss followed by tcp_simple_retransmit: every segment in
// flight larger than the new MSS is lost (it was dropped for its size), the scoreboard is
// cut to the new MSS, and the pieces are resent now, in the Loss state but with the
// congestion window as it was.
func (s *shard) simpleRetransmit(ep *endpoint, route uint32) {
	if ep.mssClamp == 0 {
		ep.mssClamp = ep.mss
	}
	ep.pmtu, ep.pmtuGen = route, s.eng.pmtu.gen.Load()
	_, ep.pmtuExp = s.eng.routeMTU(&ep.key, s.now)
	mss := uint16(min(uint32(ep.mssClamp), max(mssForMTU(route, ep.key.V6), tcpMinSndMSS)))
	if mss >= ep.mss {
		return
	}
	ep.mss = mss
	s.ctr.Inc(stats.TcpPMTUReductions)
	limit := ep.sendMSS()
	for i := 0; i < ep.sb.len(); i++ {
		if g := ep.sb.at(i); segPayload(g) > limit {
			s.markLost(ep, g)
		}
	}
	s.resegment(ep)
	if ep.lostOut == 0 {
		return
	}
	if !ep.sackOK {
		// tcp_limit_reno_sacked: the duplicate ACKs cannot stand for more segments than
		// are in flight and not lost.
		holes := min(max(ep.lostOut, 1), uint32(ep.sb.len()))
		if ep.sackedOut+holes > uint32(ep.sb.len()) {
			ep.sackedOut = uint32(ep.sb.len()) - holes
		}
	}
	if ep.caState != caLoss {
		ep.highSeq = ep.sndNxt
		ep.cc.ssthresh = ep.currentSsthresh()
		ep.priorSsthresh = 0
		ep.undoSet = false
		ep.caState = caLoss
	}
	s.output(ep)
	if ep.sb.len() > 0 && !ep.rtx.Pending() {
		s.armRtx(ep)
	}
}

// segPayload is the number of data bytes a segment in flight carries.
func segPayload(g *txSeg) uint32 {
	n := g.end.Sub(g.start)
	if g.has(segFin) {
		n--
	}
	return n
}

// resegment cuts every segment in flight that is not SACKed and carries more than the
// send MSS into pieces of at most the MSS, in one pass (Linux fragments such an skb when
// it is next sent, tcp_fragment). A piece keeps its segment's marks and times, so each
// counts as the segment did (lost, resent); the FIN stays with the last piece.
func (s *shard) resegment(ep *endpoint) {
	limit := ep.sendMSS()
	if limit == 0 || ep.sb.len() == 0 {
		return
	}
	b := &ep.sb
	extra := 0
	for i := 0; i < b.len(); i++ {
		g := b.at(i)
		if p := segPayload(g); p > limit && !g.has(segSacked) {
			extra += int((p+limit-1)/limit) - 1
		}
	}
	if extra == 0 {
		return
	}
	n := b.len() + extra
	ring := b.pools.get(segClass(n))
	for len(ring) < n { // the largest class may be too small for a huge window
		ring = append(ring, make([]txSeg, len(ring))...)
	}
	j := 0
	for i := 0; i < b.len(); i++ {
		g := *b.at(i)
		p := segPayload(&g)
		if p <= limit || g.has(segSacked) {
			ring[j] = g
			j++
			continue
		}
		fin := g.has(segFin)
		for start := g.start; ; {
			piece := g
			piece.start = start
			left := g.end.Sub(start)
			if fin {
				left--
			}
			if left > limit {
				piece.end = start.Add(limit)
				piece.flags &^= segFin
				ring[j] = piece
				j++
				ep.countPiece(&piece)
				start = piece.end
				continue
			}
			ring[j] = piece // the last piece: the rest, and the FIN
			j++
			break
		}
	}
	b.pools.put(b.segs)
	b.segs, b.head, b.n = ring, 0, n
}

// countPiece counts one more segment in flight with g's marks (resegment).
func (ep *endpoint) countPiece(g *txSeg) {
	if g.has(segLost) {
		ep.lostOut++
		if !g.has(segRetrans) {
			ep.rtxQueued++
		}
	}
	if g.has(segRetrans) {
		ep.retransOut++
	}
}

// The path MTU knobs, by the names of Linux's route sysctls.
func init() {
	sysctls["net.ipv4.route.min_pmtu"] = intKnob(func(s *Settings) *int { return &s.RouteMinPMTU }, 68)
	sysctls["net.ipv4.route.mtu_expires"] = secondsKnob(func(s *Settings) *time.Duration { return &s.RouteMTUExpires })
}

package stack

import (
	"net/netip"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// The neighbour cache, as Linux's neighbour layer (net/core/neighbour.c) runs it for ARP
// (net/ipv4/arp.c) and for IPv6's neighbour discovery (net/ipv6/ndisc.c, RFC 4861), with
// their defaults (NeighSettings). Each shard keeps two tables, one per family, each
// bounded on its own as Linux's arp_tbl and nd_tbl are; the shard that receives an ARP
// packet or a neighbour solicitation or advertisement for us answers it and copies it to
// the others so that all of them learn. An IPv6 entry resolves by multicast neighbour
// solicitations to the target's solicited-node group while INCOMPLETE and unicast ones
// while PROBE; an advertisement with the Solicited flag confirms it (ndisc.go).
//
// An entry moves through Linux's NUD states:
//
//	INCOMPLETE  a packet needs the address: broadcast requests every retrans_time,
//	            mcast_solicit of them; packets wait, at most unres_qlen (oldest dropped)
//	REACHABLE   confirmed by a reply to us within reachable_time (base_reachable_time
//	            randomised 0.5-1.5x)
//	STALE       the address is known but unconfirmed; used as it is
//	DELAY       used while STALE: wait delay_first_probe_time for a confirmation
//	PROBE       unicast requests every retrans_time, ucast_solicit of them
//	FAILED      nobody answered; waiting packets dropped; the next packet starts over
//
// The table is bounded as Linux bounds it: above gc_thresh1 entries, a periodic collection
// (every base_reachable_time/2) removes FAILED entries and those unused for gc_staletime;
// a new entry with gc_thresh3 entries (or gc_thresh2 and no collection for 5 s) forces a
// collection of FAILED and STALE entries not updated for 5 s, oldest first, down to
// gc_thresh2; if the table is still full the entry is refused (arp_cache.table_fulls).
// Entries in a timer state (INCOMPLETE, REACHABLE, DELAY, PROBE) hold a reference in
// Linux and are not collected. Static entries (PERMANENT) are outside the bound.
//
// One addition to Linux: packets waiting on all of a shard's unresolved neighbours
// together are capped at NeighSettings.UnresQLenTotal, since they hold buffers of the
// shard's fixed packet pool where Linux holds socket-buffer memory.
//
// Entries come from a per-shard free list and are reused, so that neither resolution nor
// aging allocates once the table has been as large as it gets.

const (
	timerNeighbour   = tcpdrv.TimerKindLimit     // an entry's state timer
	timerNeighbourGC = tcpdrv.TimerKindLimit + 1 // the periodic collection
)

type neighState uint8

// NUD states (include/net/neighbour.h).
const (
	neighNone neighState = iota
	neighIncomplete
	neighReachable
	neighStale
	neighDelay
	neighProbe
	neighFailed
	neighPermanent
)

var neighStateNames = [...]string{"NONE", "INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "PERMANENT"}

func (s neighState) String() string { return neighStateNames[s] }

// valid is NUD_VALID: the address is known and packets go out.
func (s neighState) valid() bool {
	return s >= neighReachable && s <= neighProbe || s == neighPermanent
}

// inTimer is NUD_IN_TIMER.
func (s neighState) inTimer() bool {
	return s == neighIncomplete || s == neighReachable || s == neighDelay || s == neighProbe
}

type neighbour struct {
	ip      [16]byte // the table's layout: an IPv4 address in the first 4 bytes
	mac     header.MAC
	state   neighState
	probes  int
	updated int64 // last change of state or address
	used    int64 // last packet sent through it
	confirm int64 // last confirmation of reachability
	pending []*dpdkshim.Packet
	tbl     *neighbours // the table it belongs to
	t       wheel.Timer
	// The collection list (not for static entries), least recently updated first.
	gcPrev, gcNext *neighbour
}

// neighCounters are a table's counters: arp_cache's or ndisc_cache's.
type neighCounters struct {
	entries, allocs, destroys, forcedGC, tableFulls, unresolved stats.ID
}

var (
	arpCounters   = neighCounters{stats.ArpEntries, stats.ArpAllocs, stats.ArpDestroys, stats.ArpForcedGCRuns, stats.ArpTableFulls, stats.ArpUnresolvedDiscards}
	ndiscCounters = neighCounters{stats.NdiscEntries, stats.NdiscAllocs, stats.NdiscDestroys, stats.NdiscForcedGCRuns, stats.NdiscTableFulls, stats.NdiscUnresolvedDiscards}
)

type neighbours struct {
	sh        *shard
	cfg       NeighSettings
	v6        bool   // nd_tbl rather than arp_tbl
	etherType uint16 // of the packets it sends on
	ids       neighCounters
	m         map[[16]byte]*neighbour
	free      []*neighbour
	last      *neighbour
	gcHead    *neighbour
	gcTail    *neighbour
	gcEntries int // entries on the collection list (Linux gc_entries)
	held      int // packets waiting on all unresolved entries
	lastFlush int64
	gc        wheel.Timer
	reachable int64 // the randomised reachable_time
	reRand    int64 // when to pick reachable_time again
	rnd       uint64
}

func newNeighbours(sh *shard, cfg NeighSettings, seed uint64, v6 bool) *neighbours {
	n := &neighbours{sh: sh, cfg: cfg, m: make(map[[16]byte]*neighbour), rnd: seed | 1,
		v6: v6, etherType: header.EtherTypeIPv4, ids: arpCounters}
	if v6 {
		n.etherType, n.ids = header.EtherTypeIPv6, ndiscCounters
	}
	n.gc.Kind, n.gc.Owner = timerNeighbourGC, n
	n.pickReachable()
	return n
}

// pickReachable is neigh_rand_reach_time: base_reachable_time times a factor in [0.5, 1.5).
func (n *neighbours) pickReachable() {
	n.rnd ^= n.rnd << 13
	n.rnd ^= n.rnd >> 7
	n.rnd ^= n.rnd << 17
	base := int64(n.cfg.BaseReachableTime)
	if base <= 0 {
		n.reachable = 0
	} else {
		n.reachable = base/2 + int64(n.rnd%uint64(base))
	}
	n.reRand = n.sh.now + 300e9 // neigh_periodic_work picks again every 300 s
}

func (n *neighbours) reachableTime() int64 {
	if n.sh.now >= n.reRand {
		n.pickReachable()
	}
	return n.reachable
}

func (n *neighbours) setStatic(ip [16]byte, mac header.MAC) {
	e := n.alloc(ip)
	e.mac, e.state = mac, neighPermanent
	n.m[ip] = e
	n.sh.ctr.Inc(n.ids.entries)
	n.sh.ctr.Inc(n.ids.allocs)
}

// addr returns an entry's address as a netip.Addr.
func (n *neighbours) addr(e *neighbour) netip.Addr {
	if n.v6 {
		return netip.AddrFrom16(e.ip)
	}
	return netip.AddrFrom4([4]byte(e.ip[:4]))
}

// key4 is an IPv4 address in the table's layout.
func key4(a [4]byte) (k [16]byte) {
	copy(k[:4], a[:])
	return k
}

func (n *neighbours) alloc(ip [16]byte) *neighbour {
	var e *neighbour
	if k := len(n.free); k > 0 {
		e = n.free[k-1]
		n.free[k-1] = nil
		n.free = n.free[:k-1]
	} else {
		e = &neighbour{}
		e.t.Kind, e.t.Owner = timerNeighbour, e
	}
	pending := e.pending[:0]
	*e = neighbour{ip: ip, pending: pending, tbl: n, t: e.t, updated: n.sh.now, used: n.sh.now}
	return e
}

// create is neigh_alloc + neigh_create: a new entry on the collection list, or nil when
// the table stays full after a forced collection.
func (n *neighbours) create(ip [16]byte) *neighbour {
	now := n.sh.now
	if n.gcEntries >= n.cfg.GCThresh3 || (n.gcEntries >= n.cfg.GCThresh2 && now > n.lastFlush+5e9) {
		if !n.forcedGC() && n.gcEntries >= n.cfg.GCThresh3 {
			n.sh.ctr.Inc(n.ids.tableFulls)
			return nil
		}
	}
	e := n.alloc(ip)
	n.m[ip] = e
	n.gcPush(e)
	n.sh.ctr.Inc(n.ids.entries)
	n.sh.ctr.Inc(n.ids.allocs)
	if n.gcEntries > n.cfg.GCThresh1 && !n.gc.Pending() {
		n.sh.wheel.Schedule(&n.gc, now+int64(n.cfg.BaseReachableTime)/2)
	}
	return e
}

// forcedGC is neigh_forced_gc: it removes FAILED entries and idle ones not updated in the
// last 5 s, oldest first, until the table is down to gc_thresh2, and reports whether it
// removed any.
func (n *neighbours) forcedGC() bool {
	n.sh.ctr.Inc(n.ids.forcedGC)
	now := n.sh.now
	maxClean := n.gcEntries - n.cfg.GCThresh2
	shrunk := 0
	for e := n.gcHead; e != nil && shrunk < maxClean; {
		next := e.gcNext
		if !e.state.inTimer() && (e.state == neighFailed || e.updated < now-5e9) {
			n.remove(e)
			shrunk++
		}
		e = next
	}
	n.lastFlush = now
	return shrunk > 0
}

// periodicGC is neigh_periodic_work: above gc_thresh1 entries, FAILED entries and those
// unused for gc_staletime go.
func (n *neighbours) periodicGC() {
	now := n.sh.now
	if n.gcEntries >= n.cfg.GCThresh1 {
		for e := n.gcHead; e != nil; {
			next := e.gcNext
			if !e.state.inTimer() && (e.state == neighFailed || now >= e.used+int64(n.cfg.GCStaleTime)) {
				n.remove(e)
			}
			e = next
		}
	}
	if n.gcEntries > n.cfg.GCThresh1 {
		n.sh.wheel.Schedule(&n.gc, now+int64(n.cfg.BaseReachableTime)/2)
	}
}

// remove takes a non-static entry out of the table and back to the free list.
func (n *neighbours) remove(e *neighbour) {
	n.sh.wheel.Cancel(&e.t)
	n.dropPending(e)
	n.gcUnlink(e)
	delete(n.m, e.ip)
	if n.last == e {
		n.last = nil
	}
	e.state = neighNone
	n.free = append(n.free, e)
	n.sh.ctr.Dec(n.ids.entries)
	n.sh.ctr.Inc(n.ids.destroys)
}

func (n *neighbours) gcPush(e *neighbour) {
	e.gcPrev, e.gcNext = n.gcTail, nil
	if n.gcTail != nil {
		n.gcTail.gcNext = e
	} else {
		n.gcHead = e
	}
	n.gcTail = e
	n.gcEntries++
}

func (n *neighbours) gcUnlink(e *neighbour) {
	if e.gcPrev != nil {
		e.gcPrev.gcNext = e.gcNext
	} else {
		n.gcHead = e.gcNext
	}
	if e.gcNext != nil {
		e.gcNext.gcPrev = e.gcPrev
	} else {
		n.gcTail = e.gcPrev
	}
	e.gcPrev, e.gcNext = nil, nil
	n.gcEntries--
}

// touch marks an update (neigh_update_gc_list keeps the list in update order).
func (n *neighbours) touch(e *neighbour) {
	e.updated = n.sh.now
	if n.gcTail != e {
		n.gcUnlink(e)
		n.gcPush(e)
	}
}

func (n *neighbours) dropPending(e *neighbour) {
	for i, p := range e.pending {
		p.Free()
		e.pending[i] = nil
		n.sh.ctr.Inc(n.ids.unresolved)
	}
	n.held -= len(e.pending)
	e.pending = e.pending[:0]
}

// output sends an IP packet of the table's family to next hop nh, resolving it first if
// needed (neigh_event_send and neigh_resolve_output).
func (n *neighbours) output(p *dpdkshim.Packet, nh [16]byte) {
	e := n.last
	if e == nil || e.ip != nh {
		e = n.m[nh]
	}
	now := n.sh.now
	if e != nil {
		e.used = now
		switch e.state {
		case neighPermanent, neighReachable, neighDelay, neighProbe:
			n.last = e
			n.sh.sendFrame(p, e.mac, n.etherType)
			return
		case neighStale:
			n.setState(e, neighDelay, now+int64(n.cfg.DelayFirstProbeTime))
			n.last = e
			n.sh.sendFrame(p, e.mac, n.etherType)
			return
		}
	}
	if e == nil {
		if e = n.create(nh); e == nil {
			p.Free() // Linux: the skb is dropped (SKB_DROP_REASON_NEIGH_CREATEFAIL)
			return
		}
	}
	if e.state != neighIncomplete { // NONE or FAILED: start resolving
		e.probes = n.cfg.UcastSolicit
		n.setState(e, neighIncomplete, now+int64(n.cfg.RetransTime))
		n.probe(e)
	}
	n.enqueue(e, p)
}

// enqueue holds p until e resolves: at most unres_qlen packets per entry, the oldest
// dropped first (__neigh_event_send), and at most UnresQLenTotal per shard.
func (n *neighbours) enqueue(e *neighbour, p *dpdkshim.Packet) {
	if len(e.pending) >= n.cfg.UnresQLen {
		if len(e.pending) == 0 {
			p.Free()
			n.sh.ctr.Inc(n.ids.unresolved)
			return
		}
		e.pending[0].Free()
		k := copy(e.pending, e.pending[1:])
		e.pending[k] = nil
		e.pending = e.pending[:k]
		n.held--
		n.sh.ctr.Inc(n.ids.unresolved)
	}
	if n.held >= n.cfg.UnresQLenTotal {
		p.Free()
		n.sh.ctr.Inc(n.ids.unresolved)
		return
	}
	e.pending = append(e.pending, p)
	n.held++
}

// setState moves e to a new state and arms its timer for when if the state has one.
func (n *neighbours) setState(e *neighbour, s neighState, when int64) {
	if s != e.state {
		n.touch(e)
	}
	e.state = s
	if s == neighProbe {
		e.probes = 0
	}
	if s.inTimer() {
		n.sh.wheel.Schedule(&e.t, when)
	} else {
		n.sh.wheel.Cancel(&e.t)
	}
}

// probe is neigh_probe + arp_solicit (ndisc_solicit for IPv6): a broadcast request (a
// solicitation to the solicited-node group) while INCOMPLETE, a unicast one to the known
// address while PROBE.
func (n *neighbours) probe(e *neighbour) {
	e.probes++
	if n.v6 {
		n.sh.sendNS(e.ip, e.mac, e.state == neighProbe)
		return
	}
	dst := header.Broadcast
	if e.state == neighProbe {
		dst = e.mac
	}
	ip := [4]byte(e.ip[:4])
	n.sh.sendARP(header.ARPRequest, n.sh.st.source4(ip), header.MAC{}, ip, dst)
}

// maxProbes is neigh_max_probes (app_solicit and mcast_resolicit 0). INCOMPLETE entries
// start counting at ucast_solicit, so they send mcast_solicit broadcasts.
func (n *neighbours) maxProbes(e *neighbour) int {
	if e.state == neighProbe {
		return n.cfg.UcastSolicit
	}
	return n.cfg.UcastSolicit + n.cfg.McastSolicit
}

// neighTimer runs an entry's state timer (neigh_timer_handler) or a table's periodic
// collection.
func neighTimer(t *wheel.Timer) {
	switch o := t.Owner.(type) {
	case *neighbours:
		o.periodicGC()
	case *neighbour:
		o.tbl.timer(o)
	}
}

func (n *neighbours) timer(e *neighbour) {
	now := n.sh.now
	delay := int64(n.cfg.DelayFirstProbeTime)
	switch e.state {
	case neighReachable:
		switch {
		case now < e.confirm+n.reachableTime():
			n.sh.wheel.Schedule(&e.t, e.confirm+n.reachableTime())
		case now < e.used+delay:
			n.setState(e, neighDelay, now+delay)
		default:
			n.setState(e, neighStale, 0)
		}
		return
	case neighDelay:
		if now < e.confirm+delay {
			n.setState(e, neighReachable, e.confirm+n.reachableTime())
			return
		}
		n.setState(e, neighProbe, now+int64(n.cfg.RetransTime))
	case neighProbe, neighIncomplete:
		n.sh.wheel.Schedule(&e.t, now+int64(n.cfg.RetransTime))
	default:
		return
	}
	if e.probes >= n.maxProbes(e) {
		// neigh_invalidate: the waiting packets are dropped (unresolved_discards).
		n.setState(e, neighFailed, 0)
		n.dropPending(e)
		return
	}
	n.probe(e)
}

// update is __neigh_update for an ARP packet that carries ip at mac: to REACHABLE when it
// confirms reachability, else STALE; override lets a different address replace a known
// one.
func (n *neighbours) update(e *neighbour, mac header.MAC, s neighState, override bool) {
	old := e.state
	if old == neighPermanent {
		return
	}
	now := n.sh.now
	if old.valid() {
		if mac != e.mac && !override {
			return
		}
		if mac == e.mac && s == neighStale {
			s = old // a known address, unchanged, keeps its state
		}
	}
	if s == neighReachable {
		e.confirm = now
	}
	if mac != e.mac {
		e.mac = mac
		if s != neighReachable {
			e.confirm = now - 2*int64(n.cfg.BaseReachableTime)
		}
		n.touch(e)
	}
	if s != old {
		when := now
		if s == neighReachable {
			when = now + n.reachableTime()
		}
		n.setState(e, s, when)
	}
	if !old.valid() && s.valid() && len(e.pending) > 0 {
		// The waiting packets go out through the entry's output, which starts the
		// DELAY timer for a STALE entry.
		if e.state == neighStale {
			n.setState(e, neighDelay, now+int64(n.cfg.DelayFirstProbeTime))
		}
		e.used = now
		for i, p := range e.pending {
			n.sh.sendFrame(p, mac, n.etherType)
			e.pending[i] = nil
		}
		n.held -= len(e.pending)
		e.pending = e.pending[:0]
	}
}

func (n *neighbours) dropAll() {
	for _, e := range n.m {
		for i, p := range e.pending {
			p.Free()
			e.pending[i] = nil
		}
		e.pending = e.pending[:0]
		n.sh.wheel.Cancel(&e.t)
	}
	n.held = 0
	n.sh.wheel.Cancel(&n.gc)
}

// arpInput is arp_process: it answers requests for our addresses (creating or refreshing
// the sender's entry STALE, as neigh_event_ns does), updates an entry the sender already
// has, and creates nothing for an ARP packet that is not a request for us (arp_accept=0).
// The shard that received the packet copies it to the others.
func (sh *shard) arpInput(p *dpdkshim.Packet, b []byte, host bool) {
	a, err := header.ParseARP(b)
	if err != nil {
		sh.ctr.Inc(stats.ArpInErrors)
		sh.frees.Free(p)
		return
	}
	n := sh.neigh
	sip, tip, sha := a.SenderIP(), a.TargetIP(), a.SenderMAC()
	sk := key4(sip)
	forUs := sh.st.isLocal4(ip4(tip))
	op := a.Op()
	// Any shard's entry may be the one the packet answers (the link steers ARP by its
	// own rules), so whatever is addressed to us goes to every shard.
	replicate := forUs && p.Mark != markReplicated
	switch {
	case isMulticast4(ip4(tip)) || isLoopback4(ip4(tip)):
		// arp_process ignores these outright.
		replicate = false
	case sip == [4]byte{}:
		replicate = false
		// Duplicate address detection (RFC 5227): answered, nothing learnt.
		if op == header.ARPRequest && forUs && p.Mark != markReplicated {
			sh.sendARP(header.ARPReply, tip, sha, sip, sha)
		}
	case op == header.ARPRequest && forUs && sh.st.routeInput(sip, tip) == routeLocal:
		e := n.m[sk]
		if e == nil {
			e = n.create(sk)
		}
		if e == nil {
			break // the table is full: Linux sends no reply either
		}
		n.update(e, sha, neighStale, true)
		if p.Mark != markReplicated {
			sh.sendARP(header.ARPReply, tip, sha, sip, sha)
		}
	default:
		e := n.m[sk]
		if e == nil {
			break
		}
		// Only a reply to our MAC confirms reachability; the first of several replies
		// within locktime wins, unless the packet is gratuitous.
		s := neighStale
		if op == header.ARPReply && host {
			s = neighReachable
		}
		override := sh.now > e.updated+int64(n.cfg.Locktime) || sip == tip
		n.update(e, sha, s, override)
	}
	if replicate {
		sh.replicate(p)
	}
	sh.frees.Free(p)
}

// replicate copies a neighbour message for us (ARP or NDP) to every other shard, so that
// each shard's cache learns what one shard received.
func (sh *shard) replicate(p *dpdkshim.Packet) {
	for i := range sh.st.shards {
		if i == sh.id {
			continue
		}
		if c := sh.pool.Get(); c != nil {
			c.SetData(p.Data())
			sh.handoff(c, i, markReplicated)
		}
	}
}

// sendARP builds and queues an ARP packet from our address spa.
func (sh *shard) sendARP(op uint16, spa [4]byte, tha header.MAC, tpa [4]byte, dst header.MAC) {
	p := sh.NewPacket()
	if p == nil {
		return
	}
	b := p.Append(header.ARPLen)
	header.EncodeARP(b, op, sh.st.mac, spa, tha, tpa)
	if op == header.ARPRequest {
		sh.ctr.Inc(stats.ArpRequestsSent)
	} else {
		sh.ctr.Inc(stats.ArpRepliesSent)
	}
	sh.sendFrame(p, dst, header.EtherTypeARP)
}

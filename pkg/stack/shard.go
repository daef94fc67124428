package stack

import (
	"time"

	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/queue"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// Packet marks (dpdkshim.Packet.Mark) for packets that reach a shard from another shard.
const (
	markNone       uint8 = iota
	markHandoff          // a flow's packet that arrived on the wrong shard's queue
	markReplicated       // a copy of an ARP packet another shard already answered
)

const inboxSize = 1024

// shard is one core's slice of the stack: one port queue, its pool, its wheel, its
// counters, its neighbour cache and its TCP shard. Only its goroutine touches them.
type shard struct {
	st     *Stack
	id     int
	port   dpdkshim.Port
	pool   *dpdkshim.Pool
	wheel  *wheel.Wheel
	tcp    tcpdrv.Shard
	ctr    stats.Counters
	now    int64
	key    hash.Key // the flow key of the segment being processed
	lastRx int      // frames the last receive burst returned

	rx    []*dpdkshim.Packet
	tx    []*dpdkshim.Packet
	burst int
	// txRefused: the port refused frames in this poll iteration (flushTx left some), so
	// TxBacklogged does not ask it again until the next one.
	txRefused bool
	inbox     []*queue.SPSC[*dpdkshim.Packet] // inbox[from]: packets other shards hand us

	neigh  *neighbours          // IPv4's (ARP)
	neigh6 *neighbours          // IPv6's (neighbour discovery)
	opts   header.IPv4OptionSet // scratch for ipInput

	icmp icmpShard // icmp_out.go

	wait     dpdkshim.Wait // how the shard's core sleeps until its queue has frames
	frees    dpdkshim.FreeBatch
	busy     int64 // clock time spent in iterations that did work
	polls    int64 // iterations that did work
	handoffs int64 // packets passed to their owner shard
	core     *core // the core that runs the shard: its own, or a Group's
	own      *core
	fire     func(t *wheel.Timer, now int64)
}

func newShard(s *Stack, id int) *shard {
	sh := &shard{
		st:    s,
		id:    id,
		port:  s.port,
		pool:  s.port.Pool(id),
		wheel: wheel.New(s.clock.Now(), time.Millisecond),
		burst: s.cfg.Burst,
		own:   newCore(id, s.clock),
	}
	sh.core = sh.own
	sh.own.shards = []*shard{sh}
	sh.own.busyPoll, sh.own.pin, sh.own.coalesce = s.cfg.BusyPoll, s.cfg.Pin, s.cfg.RxCoalesce
	sh.rx = make([]*dpdkshim.Packet, sh.burst)
	sh.tx = make([]*dpdkshim.Packet, 0, 4*sh.burst)
	sh.wait = s.port.RxWait(id)
	seed := s.cfg.Seed
	if seed == 0 {
		seed = uint64(s.clock.Now())
	}
	sh.neigh = newNeighbours(sh, s.cfg.Neigh, seed*0x9e3779b97f4a7c15+uint64(id)+1, false)
	sh.neigh6 = newNeighbours(sh, s.cfg.Neigh6, seed*0xbf58476d1ce4e5b9+uint64(id)+1, true)
	for a, mac := range s.cfg.StaticNeighbours {
		if a = a.WithZone("").Unmap(); a.Is4() {
			sh.neigh.setStatic(key4(a.As4()), header.MAC(mac))
		} else {
			sh.neigh6.setStatic(a.As16(), header.MAC(mac))
		}
	}
	sh.icmp.rng = seed*0x2545f4914f6cdd1d + uint64(id) + 1
	sh.tcp = tcpdrv.NewShard(s.tcp, id, sh, sh.wheel, &sh.ctr)
	sh.fire = sh.fireTimer
	return sh
}

func (sh *shard) initInboxes() {
	sh.inbox = make([]*queue.SPSC[*dpdkshim.Packet], len(sh.st.shards))
	for i := range sh.inbox {
		if i != sh.id {
			sh.inbox[i] = queue.NewSPSC[*dpdkshim.Packet](inboxSize)
		}
	}
}

// poll is one iteration: receive a burst, process it, hand-offs, application work, timers,
// transmit, then wake the applications whose connections changed.
func (sh *shard) poll() int {
	start := sh.st.clock.Now()
	sh.now = start
	sh.txRefused = false
	sh.tcp.SetNow(sh.now)
	work := 0
	n := sh.port.RxBurst(sh.id, sh.rx)
	sh.lastRx = n
	for i := 0; i < n; i++ {
		p := sh.rx[i]
		sh.rx[i] = nil
		sh.input(p)
	}
	work += n
	work += sh.drainInboxes()
	work += sh.tcp.ProcessWork()
	work += sh.wheel.Advance(sh.now, sh.fire)
	sh.flushTx()
	sh.frees.Flush()
	sh.tcp.FlushWakes()
	if work != 0 {
		sh.busy += sh.st.clock.Now() - start
		sh.polls++
	}
	return work
}

func (sh *shard) drainInboxes() int {
	n := 0
	for _, in := range sh.inbox {
		if in == nil {
			continue
		}
		for !in.Empty() {
			k := in.PopBatch(sh.rx)
			for i := 0; i < k; i++ {
				p := sh.rx[i]
				sh.rx[i] = nil
				sh.input(p)
			}
			n += k
		}
	}
	return n
}

func (sh *shard) fireTimer(t *wheel.Timer, now int64) {
	if t.Kind < tcpdrv.TimerKindLimit {
		sh.tcp.Fire(t, now)
		return
	}
	neighTimer(t)
}

// hasWork is the last look before parking.
func (sh *shard) hasWork() bool {
	if nt := sh.wait.Notifier; nt != nil && nt.RxReady(sh.id) {
		return true
	}
	for _, in := range sh.inbox {
		if in != nil && !in.Empty() {
			return true
		}
	}
	return sh.tcp.HasWork() || len(sh.tx) > 0
}

// Wake implements dpdkshim.Waker and tcpdrv.Env: it wakes the core that runs the shard.
func (sh *shard) Wake() { sh.core.Wake() }

// NewPacket implements tcpdrv.Env.
func (sh *shard) NewPacket() *dpdkshim.Packet {
	p := sh.pool.Get()
	if p == nil {
		sh.ctr.Inc(stats.TxNoBuffer)
	}
	return p
}

// TxBacklogged implements tcpdrv.Env. Three quarters of the transmit queue may hold data;
// beyond that, TCP holds its senders until the port takes frames again (the quarter left is
// for ACKs and other control segments, which are dropped only when the queue is full). The
// port is asked again at most once per poll iteration.
func (sh *shard) TxBacklogged() bool {
	limit := cap(sh.tx) - cap(sh.tx)/4
	if len(sh.tx) < limit {
		return false
	}
	if !sh.txRefused {
		sh.flushTx()
	}
	return len(sh.tx) >= limit
}

// queueTx adds a finished frame to the transmit burst.
func (sh *shard) queueTx(p *dpdkshim.Packet) {
	if len(sh.tx) == cap(sh.tx) {
		sh.flushTx()
		if len(sh.tx) == cap(sh.tx) {
			sh.ctr.Inc(stats.TxDropped)
			p.Free()
			return
		}
	}
	sh.tx = append(sh.tx, p)
}

// flushTx hands the transmit burst to the port; what it refuses waits for the next turn.
func (sh *shard) flushTx() {
	if len(sh.tx) == 0 {
		return
	}
	for _, p := range sh.tx {
		sh.ctr.Add(stats.TxBytes, uint64(p.Len()))
	}
	n := sh.port.TxBurst(sh.id, sh.tx)
	sh.ctr.Add(stats.TxPackets, uint64(n))
	for _, p := range sh.tx[n:] {
		sh.ctr[stats.TxBytes] -= uint64(p.Len())
	}
	rest := copy(sh.tx, sh.tx[n:])
	clear(sh.tx[rest:])
	sh.tx = sh.tx[:rest]
	sh.txRefused = rest > 0
}

// handoff moves a packet to the shard that owns its flow.
func (sh *shard) handoff(p *dpdkshim.Packet, to int, mark uint8) {
	dst := sh.st.shards[to]
	sh.handoffs++
	p.Mark = mark
	p.MarkAlien()
	if !dst.inbox[sh.id].Push(p) {
		p.FreeRemote()
		sh.ctr.Inc(stats.RxDropped)
		return
	}
	dst.Wake()
}

// input processes one received frame to the end.
func (sh *shard) input(p *dpdkshim.Packet) {
	frame := p.Data()
	if p.Mark == markNone {
		sh.ctr.Inc(stats.RxPackets)
		sh.ctr.Add(stats.RxBytes, uint64(len(frame)))
	}
	if sh.st.l3 {
		sh.l3Input(p, frame) // a bare IP packet: no Ethernet header, no L2 filters
		return
	}
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		sh.ctr.Inc(stats.RxLengthErrors)
		sh.frees.Free(p)
		return
	}
	// eth_type_trans: a frame to our MAC is PACKET_HOST, one to a group address (broadcast
	// or multicast) PACKET_BROADCAST or PACKET_MULTICAST, any other PACKET_OTHERHOST, which
	// IP drops first of all (ip_rcv_core, rx_otherhost_dropped). ARP takes group frames;
	// TCP refuses them (tcp_v4_rcv).
	d := eth.Dst()
	host := d == sh.st.mac
	if !host && !d.IsMulticast() {
		sh.ctr.Inc(stats.RxOtherhostDropped)
		sh.frees.Free(p)
		return
	}
	switch eth.Type() {
	case header.EtherTypeIPv4:
		sh.ipInput(p, eth.Payload(), host)
	case header.EtherTypeARP:
		sh.arpInput(p, eth.Payload(), host)
	case header.EtherTypeIPv6:
		sh.ip6Input(p, eth.Payload(), host)
	default:
		sh.ctr.Inc(stats.RxNoHandler)
		sh.frees.Free(p)
	}
}

// ipInput is Linux ip_rcv + ip_local_deliver for IPv4, counting every drop by its MIB name;
// host says the frame came to our MAC (PACKET_HOST).
func (sh *shard) ipInput(p *dpdkshim.Packet, b []byte, host bool) {
	if p.Mark != markHandoff { // counted once, by the shard that received it
		sh.ctr.Inc(stats.IpInReceives)
	}
	ip, err := header.ParseIPv4(b)
	if err != nil {
		switch {
		case err == header.ErrChecksum:
			sh.ctr.Inc(stats.IpExtInCsumErrors)
			sh.ctr.Inc(stats.IpInHdrErrors)
		case err == header.ErrTotalLength && len(b) >= 4 && int(b[2])<<8|int(b[3]) > len(b):
			sh.ctr.Inc(stats.IpExtInTruncatedPkts)
		default:
			sh.ctr.Inc(stats.IpInHdrErrors)
		}
		sh.frees.Free(p)
		return
	}
	src, dst := ip.Src(), ip.Dst()
	// ip_rcv_finish_core: the input route first, then the options.
	rt := sh.st.routeInput(src, dst)
	switch rt {
	case routeMartianSrc:
		sh.ctr.Inc(stats.RtInMartianSrc)
		sh.frees.Free(p)
		return
	case routeMartianDst:
		sh.ctr.Inc(stats.RtInMartianDst)
		sh.frees.Free(p)
		return
	case routeNotLocal:
		sh.ctr.Inc(stats.IpInAddrErrors)
		sh.frees.Free(p)
		return
	case routeBroadcast:
		sh.ctr.Inc(stats.IpExtInBcastPkts)
		host = false
	case routeMulticast:
		sh.ctr.Inc(stats.IpExtInMcastPkts)
		host = false
	}
	if ip.HeaderLen() > header.IPv4MinLen {
		// ip_rcv_options: malformed options are header errors; a source route is
		// refused (accept_source_route=0).
		if err := header.ParseIPv4Options(ip.Options(), &sh.opts); err != nil {
			sh.ctr.Inc(stats.IpInHdrErrors)
			sh.frees.Free(p)
			return
		}
		if sh.opts.SourceRouted() {
			sh.ctr.Inc(stats.IpInSourceRouteDrops)
			sh.frees.Free(p)
			return
		}
	}
	if ip.IsFragment() {
		// Reassembly comes later; a fragment is counted as a request that failed.
		sh.ctr.Inc(stats.IpReasmReqds)
		sh.ctr.Inc(stats.IpReasmFails)
		sh.frees.Free(p)
		return
	}
	if ip.Protocol() != header.ProtoTCP {
		sh.otherProtoInput(p, ip, rt, host) // icmp_out.go: ICMP, UDP, unknown protocols
		return
	}
	seg := ip.Payload()
	if !host {
		// ip_local_deliver_finish counts the delivery; tcp_v4_rcv then discards what is
		// not PACKET_HOST, and tcp_v4_conn_request never answers a SYN sent to a
		// broadcast or multicast route.
		sh.ctr.Inc(stats.IpInDelivers)
		sh.ctr.Inc(stats.TcpInNotHostDrops)
		sh.frees.Free(p)
		return
	}
	sh.key = hash.KeyV4(dst, 0, src, 0)
	sh.tcpDeliver(p, seg, stats.IpInDelivers)
}

// tcpDeliver is both families' last input step: the flow key (sh.key, its addresses set by
// the caller) takes the segment's ports, the shard that owns the flow takes the packet (a
// hand-off when that is another), and TCP gets the segment, counted as delivered (IpInDelivers
// or Ip6InDelivers). A segment too short for ports reaches TCP with the addresses only, to
// be dropped there. The key lives in the shard, not on the stack: the interface call would
// move a local one to the heap on every packet.
func (sh *shard) tcpDeliver(p *dpdkshim.Packet, seg []byte, delivered stats.ID) {
	key := &sh.key
	var h uint64
	if len(seg) >= 4 {
		key.LocalPort, key.RemotePort = uint16(seg[2])<<8|uint16(seg[3]), uint16(seg[0])<<8|uint16(seg[1])
		h = sh.st.hasher.Sum(key)
		if owner := sh.st.owner(*key, h); owner != sh.id {
			sh.handoff(p, owner, markHandoff)
			return
		}
	}
	sh.ctr.Inc(delivered)
	sh.tcp.Input(seg, key, h, p.Flags&dpdkshim.CsumVerified != 0)
	sh.frees.Free(p)
}

// Output implements tcpdrv.Env for a TCP segment of either family.
func (sh *shard) Output(p *dpdkshim.Packet, k *hash.Key) {
	if k.V6 {
		sh.output6(p, &k.LocalAddr, &k.RemoteAddr, header.ProtoTCP, hopLimit)
		return
	}
	sh.outputIPv4(p, [4]byte(k.LocalAddr[:4]), [4]byte(k.RemoteAddr[:4]))
}

// outputIPv4 is route, IPv4 header, neighbour, Ethernet header, transmit (on a LinkIP
// port: route, IPv4 header, transmit).
func (sh *shard) outputIPv4(p *dpdkshim.Packet, src, dst [4]byte) {
	sh.ctr.Inc(stats.IpOutRequests)
	nh, ok := sh.route4(dst)
	if !ok {
		p.Free()
		return
	}
	ipb := p.Prepend(header.IPv4MinLen)
	if ipb == nil {
		sh.ctr.Inc(stats.TxDropped)
		p.Free()
		return
	}
	if p.Flags&dpdkshim.MayFragment != 0 {
		// A locked path MTU: no DF, so the datagram needs an identification of its own
		// for the fragments a router may make of it.
		sh.icmp.ipID++
		header.EncodeIPv4(ipb, &header.IPv4Fields{
			TotalLen: uint16(p.Len()), ID: sh.icmp.ipID, TTL: 64, Protocol: header.ProtoTCP, Src: src, Dst: dst,
		})
	} else {
		header.PutIPv4Header(ipb, uint16(p.Len()), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	}
	sh.linkOutput(p, nh)
}

// route4 is every IPv4 output path's route lookup: the next hop to dst is dst itself on a
// subnet of ours, else the gateway; false, counted as IpOutNoRoutes, when there is neither.
func (sh *shard) route4(dst [4]byte) ([4]byte, bool) {
	if sh.st.onLink(dst) {
		return dst, true
	}
	if !sh.st.hasGW {
		sh.ctr.Inc(stats.IpOutNoRoutes)
		return dst, false
	}
	return sh.st.gw, true
}

// sendFrame prepends the Ethernet header and queues the frame.
func (sh *shard) sendFrame(p *dpdkshim.Packet, dst header.MAC, etherType uint16) {
	e := p.Prepend(header.EthernetLen)
	if e == nil {
		sh.ctr.Inc(stats.TxDropped)
		p.Free()
		return
	}
	header.EncodeEthernet(e, dst, sh.st.mac, etherType)
	sh.queueTx(p)
}

// shutdown resets what the shard still holds (the stack is closing).
func (sh *shard) shutdown() {
	sh.tcp.Shutdown()
	sh.flushTx()
	sh.neigh.dropAll()
	sh.neigh6.dropAll()
	for _, in := range sh.inbox {
		if in == nil {
			continue
		}
		for {
			p, ok := in.Pop()
			if !ok {
				break
			}
			p.Free()
		}
	}
}

package stack

import (
	"github.com/shardstack/shardstack/internal/tcpdrv"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// Neighbour resolution, as Linux's ARP does it with its defaults: a packet to an unknown
// next hop waits (with a few others) while a request goes out, retried every second up to
// three times (mcast_solicit 3, retrans_time 1 s); if nobody answers, the waiting packets
// are dropped (arp_cache unresolved_discards). Each shard keeps its own cache; the shard
// that receives an ARP packet answers it and copies it to the others so all of them learn.
// Resolved entries stay valid for the stack's life (no aging yet).

const (
	timerNeighbour  = tcpdrv.TimerKindLimit
	neighProbes     = 3
	neighRetrans    = 1e9 // 1 s
	neighQueueLimit = 256 // packets held per unresolved neighbour (Linux: unres_qlen_bytes 212992, ~270 small packets)
)

type neighState uint8

const (
	neighIncomplete neighState = iota
	neighReachable
	neighStatic
)

type neighbour struct {
	ip      [4]byte
	mac     header.MAC
	state   neighState
	probes  int
	pending []*dpdkshim.Packet
	t       wheel.Timer
}

type neighbours struct {
	sh   *shard
	m    map[[4]byte]*neighbour
	last *neighbour
}

func newNeighbours(sh *shard) *neighbours {
	return &neighbours{sh: sh, m: make(map[[4]byte]*neighbour)}
}

func (n *neighbours) setStatic(ip [4]byte, mac header.MAC) {
	n.m[ip] = &neighbour{ip: ip, mac: mac, state: neighStatic}
}

// output sends an IP packet to next hop nh, resolving it first if needed.
func (n *neighbours) output(p *dpdkshim.Packet, nh [4]byte) {
	e := n.last
	if e == nil || e.ip != nh {
		e = n.m[nh]
	}
	if e != nil && e.state != neighIncomplete {
		n.last = e
		n.sh.sendFrame(p, e.mac, header.EtherTypeIPv4)
		return
	}
	if e == nil {
		e = &neighbour{ip: nh, state: neighIncomplete}
		e.t.Kind, e.t.Owner = timerNeighbour, e
		n.m[nh] = e
		n.solicit(e)
	}
	if len(e.pending) >= neighQueueLimit {
		// Linux drops the oldest waiting packet.
		e.pending[0].Free()
		copy(e.pending, e.pending[1:])
		e.pending = e.pending[:len(e.pending)-1]
		n.sh.ctr.Inc(stats.ArpUnresolvedDiscards)
	}
	e.pending = append(e.pending, p)
}

func (n *neighbours) solicit(e *neighbour) {
	e.probes++
	n.sh.sendARP(header.ARPRequest, n.sh.st.source(e.ip), header.MAC{}, e.ip, header.Broadcast)
	n.sh.wheel.Schedule(&e.t, n.sh.now+neighRetrans)
}

// timer retries or gives up on an unresolved neighbour.
func (n *neighbours) timer(t *wheel.Timer) {
	e, ok := t.Owner.(*neighbour)
	if !ok || e.state != neighIncomplete {
		return
	}
	if e.probes < neighProbes {
		n.solicit(e)
		return
	}
	for _, p := range e.pending {
		p.Free()
		n.sh.ctr.Inc(stats.ArpUnresolvedDiscards)
	}
	e.pending = nil
	delete(n.m, e.ip)
	if n.last == e {
		n.last = nil
	}
}

// learn records ip at mac: always for an existing entry, and as a new one when create (the
// ARP packet was addressed to us, as Linux's arp_process decides).
func (n *neighbours) learn(ip [4]byte, mac header.MAC, create bool) {
	e := n.m[ip]
	if e == nil {
		if !create {
			return
		}
		e = &neighbour{ip: ip}
		e.t.Kind, e.t.Owner = timerNeighbour, e
		n.m[ip] = e
	}
	if e.state == neighStatic {
		return
	}
	e.mac, e.state = mac, neighReachable
	n.sh.wheel.Cancel(&e.t)
	for _, p := range e.pending {
		n.sh.sendFrame(p, mac, header.EtherTypeIPv4)
	}
	clear(e.pending)
	e.pending = e.pending[:0]
}

func (n *neighbours) dropAll() {
	for _, e := range n.m {
		for _, p := range e.pending {
			p.Free()
		}
		e.pending = nil
		n.sh.wheel.Cancel(&e.t)
	}
}

// arpInput answers requests for our address, learns the sender, and copies the packet to
// the other shards.
func (sh *shard) arpInput(p *dpdkshim.Packet, b []byte) {
	a, err := header.ParseARP(b)
	if err != nil {
		sh.ctr.Inc(stats.ArpInErrors)
		sh.frees.Free(p)
		return
	}
	target := a.TargetIP()
	forUs := sh.st.isLocal(target)
	sh.neigh.learn(a.SenderIP(), a.SenderMAC(), forUs)
	if p.Mark != markReplicated && forUs {
		if a.Op() == header.ARPRequest {
			sh.sendARP(header.ARPReply, target, a.SenderMAC(), a.SenderIP(), a.SenderMAC())
		}
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
	sh.frees.Free(p)
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

package stack

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
)

// The L3 link type (dpdkshim.LinkIP, a TUN device): frames are bare IP packets. Input
// dispatches on the version nibble, as tun_get_user does for IFF_TUN|IFF_NO_PI; output
// sends the IP packet as it is, with no Ethernet header and no neighbour resolution, so
// ARP and the neighbour cache are unused on such a link. Routing is unchanged: the
// stack's subnets are on the link and a gateway is a default route through it (its
// address is never resolved, as Linux's route through a point-to-point device).
//
// With no link-level destination every packet is PACKET_HOST (Linux's tun sets nothing
// else), so the L2 filters of the Ethernet path (a frame to another MAC, TCP to a
// broadcast or multicast MAC) do not apply; the IP-level ones (martians, broadcast and
// multicast routes, source routes) do.

// l3Input takes one bare IP packet.
func (sh *shard) l3Input(p *dpdkshim.Packet, b []byte) {
	if len(b) == 0 {
		sh.ctr.Inc(stats.RxLengthErrors)
		sh.frees.Free(p)
		return
	}
	switch b[0] >> 4 {
	case 4:
		sh.ipInput(p, b, true)
	case 6:
		sh.ip6Input(p, b, true)
	default:
		// tun_get_user drops a packet of any other version and counts it rx_dropped.
		sh.ctr.Inc(stats.RxDropped)
		sh.frees.Free(p)
	}
}

// linkOutput sends a finished IPv4 packet towards next hop nh: on an L3 link straight to
// the port (no link header, no neighbour to resolve), otherwise through the neighbour
// cache, which resolves nh and prepends the Ethernet header. Every IPv4 output path ends
// here.
func (sh *shard) linkOutput(p *dpdkshim.Packet, nh [4]byte) {
	if sh.st.l3 {
		sh.queueTx(p)
		return
	}
	sh.neigh.output(p, key4(nh))
}

// linkOutput6 is linkOutput for a finished IPv6 packet: straight to the port on an L3
// link (no neighbour discovery there), otherwise through the IPv6 neighbour cache.
func (sh *shard) linkOutput6(p *dpdkshim.Packet, nh [16]byte) {
	if sh.st.l3 {
		sh.queueTx(p)
		return
	}
	sh.neigh6.output(p, nh)
}

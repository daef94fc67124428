package stack_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// neighState returns the state of addr's entry ("" when there is none).
func (r *rawPeer) neighState(addr netip.Addr) string {
	for _, row := range r.s.Neighbours() {
		if row.Addr == addr {
			return row.State
		}
	}
	return ""
}

// arps returns the ARP requests among frames, with the Ethernet destination of each.
func arps(frames [][]byte) (reqs []header.MAC) {
	for _, f := range frames {
		eth, err := header.ParseEthernet(f)
		if err != nil || eth.Type() != header.EtherTypeARP {
			continue
		}
		if a, err := header.ParseARP(eth.Payload()); err == nil && a.Op() == header.ARPRequest {
			reqs = append(reqs, eth.Dst())
		}
	}
	return reqs
}

// An entry made STALE by a request for us goes DELAY when used, PROBE after
// delay_first_probe_time with unicast requests, REACHABLE on a unicast reply, STALE again
// after reachable_time unused, and FAILED after ucast_solicit unanswered probes.
func TestNeighbour_Aging(t *testing.T) {
	r := newRawPeer(t, nil)
	_, err := r.s.Listen(":80", 64)
	require.NoError(t, err)
	srv := simnet.ServerAddr.Addr()

	r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, peerAddr, header.MAC{}, srv))
	require.Len(t, r.recv(), 1, "the reply")
	require.Equal(t, "STALE", r.neighState(peerAddr), "an unsolicited request for us creates the entry STALE")

	r.send(tcpFrame(r.smac, r.mac, peerAddr, srv, 40000, header.TCPFlagSYN, nil))
	require.Equal(t, 1, synAcks(r.recv()), "a STALE entry is used as it is")
	require.Equal(t, "DELAY", r.neighState(peerAddr))
	// Reset the request, so that no retransmitted SYN-ACK uses the entry again.
	r.send(tcpSegFrame(r.smac, r.mac, peerAddr, srv, 40000, 1001, 0, header.TCPFlagRST, nil))
	require.Len(t, r.s.Sockets(), 1)

	r.runFor(4900 * time.Millisecond)
	require.Equal(t, "DELAY", r.neighState(peerAddr))
	require.Empty(t, arps(r.recv()))
	r.runFor(200 * time.Millisecond)
	require.Equal(t, "PROBE", r.neighState(peerAddr), "delay_first_probe_time 5 s")
	require.Equal(t, []header.MAC{r.mac}, arps(r.recv()), "one unicast probe")

	r.send(arpFrame(r.smac, r.mac, header.ARPReply, r.mac, peerAddr, r.smac, srv))
	require.Equal(t, "REACHABLE", r.neighState(peerAddr))

	// reachable_time is base_reachable_time 30 s randomised to [15 s, 45 s).
	r.runFor(14 * time.Second)
	require.Equal(t, "REACHABLE", r.neighState(peerAddr))
	r.runFor(32 * time.Second)
	require.Equal(t, "STALE", r.neighState(peerAddr), "unused past reachable_time")
	require.Empty(t, r.recv(), "going STALE sends nothing")

	// Used again, and this time nobody answers: three unicast probes a second apart.
	r.send(tcpFrame(r.smac, r.mac, peerAddr, srv, 40001, header.TCPFlagSYN, nil))
	require.Equal(t, "DELAY", r.neighState(peerAddr))
	r.send(tcpSegFrame(r.smac, r.mac, peerAddr, srv, 40001, 1001, 0, header.TCPFlagRST, nil))
	r.recv()
	r.runFor(5*time.Second + 2500*time.Millisecond)
	require.Equal(t, "PROBE", r.neighState(peerAddr))
	r.runFor(time.Second)
	require.Equal(t, "FAILED", r.neighState(peerAddr), "ucast_solicit 3 probes, retrans_time 1 s")
	require.Equal(t, []header.MAC{r.mac, r.mac, r.mac}, arps(r.recv()))
}

// A packet to an unknown neighbour waits while mcast_solicit broadcast requests go out a
// second apart; unanswered, the entry fails and the packet is dropped and counted.
func TestNeighbour_IncompleteFails(t *testing.T) {
	r := newRawPeer(t, nil)
	dst := netip.MustParseAddr("198.18.0.9")
	c, err := r.s.DialAsync(netip.AddrPortFrom(dst, 80), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	require.Equal(t, "INCOMPLETE", r.neighState(dst))
	require.NoError(t, c.Close()) // no SYN retransmission to restart the resolution
	r.runFor(2900 * time.Millisecond)
	require.Equal(t, "INCOMPLETE", r.neighState(dst))
	r.runFor(200 * time.Millisecond)
	require.Equal(t, "FAILED", r.neighState(dst))
	require.Equal(t, []header.MAC{header.Broadcast, header.Broadcast, header.Broadcast}, arps(r.recv()))
	require.Equal(t, uint64(1), r.s.Counters()[stats.ArpUnresolvedDiscards], "the SYN that waited")
}

// Linux's arp_process rules for what an ARP packet creates or changes.
func TestNeighbour_Learning(t *testing.T) {
	r := newRawPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	other := netip.MustParseAddr("198.18.0.77")
	m2 := header.MAC{0x02, 0, 0, 0, 0, 0x77}

	// Replies nobody asked for, requests for another host: nothing.
	r.send(arpFrame(r.smac, r.mac, header.ARPReply, r.mac, peerAddr, r.smac, srv))
	r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, peerAddr, header.MAC{}, other))
	require.Empty(t, r.s.Neighbours())
	require.Empty(t, r.recv())
	// Martian senders: no entry, no reply.
	for _, s := range []string{"127.0.0.1", "224.0.0.1", "255.255.255.255", "198.18.0.1"} {
		r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, netip.MustParseAddr(s), header.MAC{}, srv))
	}
	require.Empty(t, r.s.Neighbours())
	require.Empty(t, r.recv())
	// Duplicate address detection (sender 0.0.0.0) is answered, nothing learnt.
	r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, netip.IPv4Unspecified(), header.MAC{}, srv))
	require.Len(t, r.recv(), 1)
	require.Empty(t, r.s.Neighbours())

	// A request for us: STALE. A broadcast reply does not confirm; a unicast one does.
	r.send(arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, peerAddr, header.MAC{}, srv))
	require.Equal(t, "STALE", r.neighState(peerAddr))
	r.send(arpFrame(header.Broadcast, r.mac, header.ARPReply, r.mac, peerAddr, r.smac, srv))
	require.Equal(t, "STALE", r.neighState(peerAddr))
	r.send(arpFrame(r.smac, r.mac, header.ARPReply, r.mac, peerAddr, r.smac, srv))
	require.Equal(t, "REACHABLE", r.neighState(peerAddr))

	// Within locktime (1 s) a different address is ignored; after it, it replaces the
	// old one (STALE: a reply from elsewhere is not a confirmation of the new address
	// until it is unicast to us).
	r.send(arpFrame(r.smac, m2, header.ARPReply, m2, peerAddr, r.smac, srv))
	require.Equal(t, r.mac, neighMAC(r, peerAddr))
	r.runFor(1100 * time.Millisecond)
	r.send(arpFrame(header.Broadcast, m2, header.ARPReply, m2, peerAddr, r.smac, srv))
	require.Equal(t, m2, neighMAC(r, peerAddr))
	require.Equal(t, "STALE", r.neighState(peerAddr))
	require.Len(t, r.s.Neighbours(), 1)
}

func neighMAC(r *rawPeer, a netip.Addr) header.MAC {
	for _, row := range r.s.Neighbours() {
		if row.Addr == a {
			return row.MAC
		}
	}
	return header.MAC{}
}

// Packets to one unresolved neighbour: at most unres_qlen wait, the oldest dropped; when
// the reply comes, those that waited go out.
func TestNeighbour_UnresQLen(t *testing.T) {
	r := newRawPeer(t, nil)
	dst := netip.MustParseAddr("198.18.0.9")
	for i := 0; i < 150; i++ {
		_, err := r.s.DialAsync(netip.AddrPortFrom(dst, 80), tcp.DialOptions{})
		require.NoError(t, err)
	}
	r.settle()
	rows := r.s.Neighbours()
	require.Len(t, rows, 1)
	require.Equal(t, 101, rows[0].Queue)
	require.Equal(t, uint64(49), r.s.Counters()[stats.ArpUnresolvedDiscards])
	r.recv()
	m := header.MAC{0x02, 0, 0, 0, 0, 9}
	r.send(arpFrame(r.smac, m, header.ARPReply, m, dst, r.smac, simnet.ServerAddr.Addr()))
	n := 0
	for _, f := range r.recv() {
		if seg, ok := simnet.TCPOf(f); ok && seg.Flags() == header.TCPFlagSYN {
			n++
		}
	}
	require.Equal(t, 101, n, "the waiting SYNs leave on resolution")
	require.Equal(t, "REACHABLE", r.neighState(dst))
}

// ARP requests for our address from 1,000,000 distinct senders: each would make an entry,
// but the table never holds more than gc_thresh3 of them (forced collections and refusals
// counted), it shrinks back below gc_thresh1 once they go unused for gc_staletime, and the
// heap does not keep what the flood made.
func TestNeighbour_ARPFloodBounded(t *testing.T) {
	senders := 1_000_000
	if testing.Short() || raceEnabled {
		senders = 100_000
	}
	r := newRawPeer(t, nil)
	srv := simnet.ServerAddr.Addr().As4()
	pool := r.port.Pool(0)
	batch := make([]*dpdkshim.Packet, 0, 64)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	maxEntries := uint64(0)
	frame := arpFrame(header.Broadcast, r.mac, header.ARPRequest, r.mac, peerAddr, header.MAC{}, simnet.ServerAddr.Addr())
	for i := 0; i < senders; i++ {
		var sip [4]byte
		binary.BigEndian.PutUint32(sip[:], 10<<24|uint32(i+1))
		header.EncodeARP(frame[header.EthernetLen:], header.ARPRequest, r.mac, sip, header.MAC{}, srv)
		p := pool.Get()
		require.NotNil(t, p)
		p.SetData(frame)
		batch = append(batch, p)
		if len(batch) == cap(batch) || i == senders-1 {
			k := r.port.TxBurst(0, batch)
			for _, p := range batch[k:] {
				p.Free()
			}
			batch = batch[:0]
			r.vc.Advance(640 * time.Microsecond) // 100,000 requests a second
			r.settle()
			r.recv()
			if e := r.s.Counters()[stats.ArpEntries]; e > maxEntries {
				maxEntries = e
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	during := ms.HeapInuse
	c := r.s.Counters()
	require.LessOrEqual(t, maxEntries, uint64(1024), "gc_thresh3")
	require.Positive(t, c[stats.ArpForcedGCRuns])
	require.Positive(t, c[stats.ArpTableFulls], "100,000 a second outrun the 5 s a STALE entry is kept from forced collection")
	require.Equal(t, c[stats.ArpAllocs]-c[stats.ArpDestroys], c[stats.ArpEntries])

	r.runFor(3 * time.Minute)
	require.Less(t, r.s.Counters()[stats.ArpEntries], uint64(128), "periodic collection: unused for gc_staletime")
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%d senders: heap in use %.1f MiB before, %.1f MiB at the end of the flood, %.1f MiB after 3 min; at most %d entries; %d refused, %d forced collections",
		senders, mib(before), mib(during), mib(ms.HeapInuse), maxEntries, c[stats.ArpTableFulls], c[stats.ArpForcedGCRuns])
	require.Less(t, mib(during)-mib(before), 16.0, "the flood leaves the heap bounded")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// An on-link spoofed SYN flood whose SYN-ACKs wait for ARP holds at most gc_thresh3
// packets (the rest are refused), so a peer whose address is known keeps completing
// handshakes through the same, small packet pool.
func TestNeighbour_SpoofedFloodSparesResolvedPeers(t *testing.T) {
	vcPool := dpdkshim.PoolConfig{Size: 1536, Max: 1536}
	r := newRawPeerPool(t, vcPool, func(c *stack.Config) {
		c.Addr = netip.MustParsePrefix("198.18.0.1/16")
		c.StaticNeighbours = map[netip.Addr][6]byte{peerAddr: c.Port.(*dpdkshim.MemPort).Peer().MAC()}
	})
	l, err := r.s.Listen(":80", 4096)
	require.NoError(t, err)
	srv := simnet.ServerAddr.Addr()
	accepted := 0
	for round := 0; round < 100; round++ {
		// 500 spoofed SYNs from on-link addresses nobody answers ARP for...
		for i := 0; i < 500; i++ {
			var src [4]byte
			binary.BigEndian.PutUint32(src[:], 198<<24|18<<16|uint32(256+round*500+i))
			r.sendNoSettle(tcpFrame(r.smac, r.mac, netip.AddrFrom4(src), srv, uint16(1024+i), header.TCPFlagSYN, nil))
		}
		r.settle()
		r.recv()
		// ...and one real client, which must get its SYN-ACK and be accepted.
		sport := uint16(30000 + round)
		r.send(tcpFrame(r.smac, r.mac, peerAddr, srv, sport, header.TCPFlagSYN, nil))
		var sa header.TCP
		for _, f := range r.recv() {
			if seg, ok := simnet.TCPOf(f); ok && seg.DstPort() == sport {
				sa = seg
			}
		}
		require.NotNil(t, sa, "round %d: the real client got no SYN-ACK: %v", round, counters(r.s))
		r.send(tcpSegFrame(r.smac, r.mac, peerAddr, srv, sport, 1001, sa.Seq()+1, header.TCPFlagACK, nil))
		s, err := l.TryAccept()
		require.NoError(t, err, "round %d", round)
		s.Abort()
		accepted++
		r.vc.Advance(10 * time.Millisecond)
	}
	c := r.s.Counters()
	t.Logf("accepted %d; entries %d, table_fulls %d, unresolved_discards %d, tx_no_buffer %d, pool %d/%d free",
		accepted, c[stats.ArpEntries], c[stats.ArpTableFulls], c[stats.ArpUnresolvedDiscards], c[stats.TxNoBuffer],
		r.serverPool().Available(), r.serverPool().Total())
	require.Equal(t, 100, accepted)
	require.Zero(t, c[stats.TxNoBuffer], "the flood never emptied the pool")
	require.LessOrEqual(t, c[stats.ArpEntries], uint64(1024+1))
	require.Positive(t, c[stats.ArpTableFulls])
}

func counters(s *stack.Stack) map[string]uint64 {
	c := s.Counters()
	return c.NonZero()
}

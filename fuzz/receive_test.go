package fuzz

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var (
	fuzzServer  = netip.MustParsePrefix("198.18.0.1/24")
	fuzzPeer    = netip.MustParseAddr("198.18.0.2")
	fuzzServer6 = netip.MustParsePrefix("fd00:f022::1/64")
	fuzzPeer6   = netip.MustParseAddr("fd00:f022::2")
)

// capturePort is the port the golden capture's client connects to; FuzzReceivePath listens
// on it so that the captured SYNs reach the listener (loadGolden checks the capture).
const capturePort = 8080

// receiveRig is a server stack (manual, virtual clock) with a listener on capturePort, fed
// frames from the other end of an in-memory pair.
type receiveRig struct {
	vc   *clock.Virtual
	srv  *stack.Stack
	peer *dpdkshim.MemPort
	l    *tcp.Listener
	smac header.MAC
	rx   []*dpdkshim.Packet
	// The ISNs of each client port's connection: the one the capture's server chose (from
	// its SYN-ACKs in the input) and the one the stack chose (from the SYN-ACKs it sent).
	captureISS, stackISS map[uint16]uint32
}

// newRig builds a rig whose settings come from the first byte of the input: profile,
// tcp_syncookies, abort_on_overflow, backlog, shard count.
func newRig(t testing.TB, sel byte) *receiveRig {
	shards := 1 + int(sel>>7)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: shards, RingSize: 256, Pool: dpdkshim.PoolConfig{Size: 16, Max: 256}})
	vc := clock.NewVirtual(1)
	settings := tcp.Settings{
		Somaxconn:          64, // backlogs here are at most 7; a small accept ring keeps each input cheap
		Profile:            tcp.Profile(sel & 1),
		TCPSyncookies:      [3]int{tcp.SyncookiesOff, 1, 2}[int(sel>>1&3)%3],
		TCPAbortOnOverflow: sel&8 != 0,
	}
	srv, err := stack.New(stack.Config{
		Port: ps, Addr: fuzzServer, MoreAddrs: []netip.Prefix{fuzzServer6}, Shards: shards, Clock: vc, Manual: true, Seed: 7,
		TCP:              settings,
		StaticNeighbours: map[netip.Addr][6]byte{fuzzPeer: pc.MAC(), fuzzPeer6: pc.MAC()},
	})
	require.NoError(t, err)
	l, err := srv.Listen(fmt.Sprintf(":%d", capturePort), int(sel>>4&7))
	require.NoError(t, err)
	return &receiveRig{vc: vc, srv: srv, peer: pc, l: l, smac: ps.MAC(), rx: make([]*dpdkshim.Packet, 64),
		captureISS: map[uint16]uint32{}, stackISS: map[uint16]uint32{}}
}

// drain takes what the stack sent off the wire, noting the ISNs of its SYN-ACKs.
func (r *receiveRig) drain() {
	for q := 0; q < r.peer.NumQueues(); q++ {
		for n := r.peer.RxBurst(q, r.rx); n > 0; n = r.peer.RxBurst(q, r.rx) {
			for _, p := range r.rx[:n] {
				if t, ok := simnet.TCPOf(p.Data()); ok && t.SrcPort() == capturePort && t.Flags()&synAck == synAck {
					r.stackISS[t.DstPort()] = t.Seq()
				}
				p.Free()
			}
		}
	}
}

const synAck = header.TCPFlagSYN | header.TCPFlagACK

// rebase notes the ISN of a captured SYN-ACK, and moves a captured client segment's
// acknowledgment from the capture's server ISN onto the one the stack chose, so that the
// captured handshake completes against the stack and the rest of the connection follows.
func (r *receiveRig) rebase(t header.TCP) {
	switch {
	case t.SrcPort() == capturePort && t.Flags()&synAck == synAck:
		r.captureISS[t.DstPort()] = t.Seq()
	case t.DstPort() == capturePort && t.Flags()&header.TCPFlagACK != 0:
		c, ok1 := r.captureISS[t.SrcPort()]
		s, ok2 := r.stackISS[t.SrcPort()]
		if ok1 && ok2 {
			t.SetAck(t.Ack() - c + s)
		}
	}
}

// inject sends one frame to the server. With fix set it first aims the frame at the
// server (MACs, IPv4 addresses) and repairs the IPv4 and TCP checksums, so that the fuzzer
// reaches the TCP state machine instead of stopping at the checksum; with rebase set too,
// it moves a captured acknowledgment onto the stack's ISN (receiveRig.rebase).
func (r *receiveRig) inject(frame []byte, fix, rebase bool) bool {
	if fix {
		var rb func(header.TCP)
		if rebase {
			rb = r.rebase
		}
		fixup(frame, r.smac, r.peer.MAC(), rb)
	}
	p := r.peer.Pool(0).Get()
	if p == nil || !p.SetData(frame) {
		if p != nil {
			p.Free()
		}
		return false
	}
	if r.peer.TxBurst(0, []*dpdkshim.Packet{p}) == 0 {
		p.Free()
		return false
	}
	return true
}

func fixup(frame []byte, dst, src header.MAC, rebase func(header.TCP)) {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		return
	}
	eth.SetDst(dst)
	eth.SetSrc(src)
	if eth.Type() == header.EtherTypeIPv6 {
		fixup6(eth.Payload(), rebase)
		return
	}
	if eth.Type() != header.EtherTypeIPv4 {
		return
	}
	b := eth.Payload()
	if len(b) < header.IPv4MinLen {
		return
	}
	copy(b[12:16], fuzzPeer.AsSlice())
	copy(b[16:20], fuzzServer.Addr().AsSlice())
	ip, err := header.ParseIPv4(b)
	if err == header.ErrChecksum {
		header.IPv4(b).SetChecksum()
		ip, err = header.ParseIPv4(b)
	}
	if err != nil || ip.Protocol() != header.ProtoTCP {
		return
	}
	if t, err := header.ParseTCP(ip.Payload()); err == nil {
		if rebase != nil {
			rebase(t)
		}
		t.SetChecksumIPv4(ip.Src(), ip.Dst())
	}
}

// expectation classifies a frame the way the stack must account for it.
type expectation struct {
	link, ip, tcpBad bool
	v6, noNext       bool // an IPv6 datagram; its last header is "no next header"
}

func classify(frame []byte, smac header.MAC) expectation {
	eth, err := header.ParseEthernet(frame)
	if err == nil && eth.Type() == header.EtherTypeIPv6 && (eth.Dst() == smac || eth.Dst().IsMulticast()) {
		return classify6(eth.Payload())
	}
	if err != nil || (eth.Dst() != smac && !eth.Dst().IsMulticast()) || eth.Type() != header.EtherTypeIPv4 {
		return expectation{link: true}
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil || ip.Dst() != fuzzServer.Addr().As4() || ip.IsFragment() || ip.Protocol() != header.ProtoTCP {
		return expectation{ip: true}
	}
	t, err := header.ParseTCP(ip.Payload())
	// Malformed options are not an error: the stack reads what it can, as Linux's
	// tcp_parse_options does, and processes the segment.
	bad := err != nil || !t.ChecksumValidIPv4(ip.Src(), ip.Dst())
	return expectation{tcpBad: bad}
}

func delta(a, b *stats.Counters, ids ...stats.ID) uint64 {
	var d uint64
	for _, id := range ids {
		d += b[id] - a[id]
	}
	return d
}

// check is run after every frame: every frame is accounted for by a counter, the SYN
// queue's length is what the tables hold, the accept queue stays within backlog+1, and no
// counter goes backwards.
func (r *receiveRig) check(t *testing.T, before, after *stats.Counters, frame []byte) {
	// Link: every frame is received, and the ones not for IPv4 are dropped by name or are
	// ARP (which the ARP counters see when malformed).
	require.Equal(t, uint64(1), delta(before, after, stats.RxPackets), "frames received")
	ipIn := delta(before, after, stats.IpInReceives)
	linkDrops := delta(before, after, stats.RxLengthErrors, stats.RxOtherhostDropped, stats.RxNoHandler, stats.ArpInErrors)
	exp := classify(frame, r.smac)
	if exp.link {
		require.Zero(t, ipIn)
	}
	// IP: every datagram is delivered or dropped under an IP counter.
	ipOut := delta(before, after, stats.IpInHdrErrors, stats.IpInAddrErrors, stats.IpInUnknownProtos,
		stats.IpInDelivers, stats.IpExtInTruncatedPkts, stats.IpReasmReqds, stats.IpInSourceRouteDrops)
	if !exp.v6 {
		ipOut += delta(before, after, stats.RtInMartianSrc, stats.RtInMartianDst)
	}
	require.Equal(t, ipIn, ipOut, "IP in %d, accounted %d", ipIn, ipOut)
	ip6In := delta(before, after, stats.Ip6InReceives)
	ip6Out := delta(before, after, ip6Outcomes...)
	require.Equal(t, ip6In, ip6Out, "IPv6 in %d, accounted %d", ip6In, ip6Out)
	if exp.link {
		require.Zero(t, ip6In)
	}
	if ipIn == 0 && ip6In == 0 && !isARP(frame) {
		require.Equal(t, uint64(1), linkDrops, "a frame neither IP nor ARP must be dropped by name")
	}
	// TCP: every delivered segment is counted in, and a malformed one is an error. ICMP
	// and UDP datagrams are delivered too, to their own counters, and so is TCP that is
	// not for this host (a group-addressed frame or destination), which tcp_v4_rcv drops.
	// IPv6 delivers to ICMPv6 and "no next header" too.
	delivered := delta(before, after, stats.IpInDelivers)
	if exp.v6 {
		delivered = delta(before, after, stats.Ip6InDelivers)
		if exp.noNext && delivered > 0 { // delivered to "no next header", not TCP
			delivered--
		}
		delivered -= delta(before, after, stats.Icmp6InMsgs)
	}
	delivered -= delta(before, after, stats.IcmpInMsgs, stats.UdpNoPorts, stats.UdpInErrors, stats.UdpIgnoredMulti,
		stats.TcpInNotHostDrops)
	require.Equal(t, delivered, delta(before, after, stats.TcpInSegs))
	if delivered == 1 && exp.tcpBad {
		require.Equal(t, uint64(1), delta(before, after, stats.TcpInErrs), "malformed segment not counted")
	}
	r.invariants(t, before, after)
}

func isARP(frame []byte) bool {
	eth, err := header.ParseEthernet(frame)
	return err == nil && eth.Type() == header.EtherTypeARP
}

func (r *receiveRig) invariants(t *testing.T, before, after *stats.Counters) {
	for id := stats.ID(0); id < stats.NumIDs; id++ {
		if !id.Gauge() {
			require.GreaterOrEqual(t, after[id], before[id], "%v went backwards", id)
		}
	}
	requests := 0
	for _, row := range r.srv.Sockets() {
		if row.State == tcp.StateSynRecv {
			requests++
		}
	}
	require.Equal(t, r.l.SynQueueLen(), requests, "SYN queue length vs the tables")
	require.LessOrEqual(t, r.l.AcceptQueueLen(), r.l.Backlog()+1, "accept queue over backlog+1")
}

// FuzzReceivePath feeds arbitrary frames to a stack with a listener, under both profiles
// and every tcp_syncookies setting, with the virtual clock moving between frames. Input:
// one settings byte, then records of [flags, clock step, length(2), frame]; flags 1 aims
// the frame at the stack and fixes its checksums, 2 has the application accept and close,
// 4 (with 1) rebases a captured acknowledgment onto the stack's ISN.
func FuzzReceivePath(f *testing.F) {
	g := loadGolden(f)
	require.Equal(f, uint16(capturePort), g.synPort, "the capture's client connects elsewhere")
	for i, fr := range g.frames {
		rec := record(byte(i%2), byte(i), fr)
		f.Add(append([]byte{byte(i * 37)}, rec...))
	}
	// Whole connections from the capture in one input: the first as it was sent (its ACK
	// is for Linux's ISN, so the stack resets it), then all of them with their ACKs rebased
	// onto the stack's ISNs, the application leaving them be or accepting and closing.
	var all, rebased, closing []byte
	for i, fr := range g.frames {
		if i < 12 {
			all = append(all, record(1, 3, fr)...)
		}
		rebased = append(rebased, record(5, 3, fr)...)
		closing = append(closing, record(7, 3, fr)...)
	}
	f.Add(append([]byte{0x35}, all...))
	f.Add(append([]byte{0x35}, rebased...))
	f.Add(append([]byte{0x30}, closing...))
	f.Add([]byte{0})
	f.Add([]byte{1, 1, 0, 0, 3, 1, 2, 3})
	// Both families: the IPv6 datagrams of FuzzIPv6 in Ethernet frames (fixup aims them),
	// alone and after the captured IPv4 handshakes.
	var v6 []byte
	for i, d := range ip6Seeds() {
		fr := make([]byte, header.EthernetLen+len(d))
		header.EncodeEthernet(fr, header.MAC{}, header.MAC{}, header.EtherTypeIPv6)
		copy(fr[header.EthernetLen:], d)
		rec := record(1, byte(i), fr)
		f.Add(append([]byte{byte(i * 53)}, rec...))
		v6 = append(v6, rec...)
	}
	f.Add(append(append([]byte{0x35}, rebased...), v6...))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		r := newRig(t, data[0])
		defer r.srv.Close()
		data = data[1:]
		before := r.srv.Counters()
		for frames := 0; len(data) >= 4 && frames < 64; frames++ {
			flags, step := data[0], data[1]
			n := int(binary.BigEndian.Uint16(data[2:4]))
			data = data[4:]
			n = min(n, len(data))
			frame := append([]byte(nil), data[:n]...)
			data = data[n:]
			sent := r.inject(frame, flags&1 != 0, flags&4 != 0)
			r.srv.Poll()
			r.drain()
			after := r.srv.Counters()
			if sent {
				r.check(t, &before, &after, frame)
			}
			// Move the clock: up to ~2 minutes in coarse steps, so timers (SYN-ACK
			// retransmission, expiry, TIME-WAIT) fire between frames.
			r.vc.Advance(time.Duration(step) * time.Duration(step) * 2 * time.Millisecond)
			r.srv.Poll()
			r.drain()
			before = r.srv.Counters()
			if flags&2 != 0 {
				// Sometimes the application accepts and closes what is queued.
				for {
					h, err := r.l.TryAcceptHandle()
					if err != nil {
						break
					}
					h.Close()
				}
				r.srv.Poll()
				r.drain()
			}
			after = r.srv.Counters()
			r.invariants(t, &before, &after)
			before = after
		}
	})
}

func record(flags, step byte, frame []byte) []byte {
	b := []byte{flags, step, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(len(frame)))
	return append(b, frame...)
}

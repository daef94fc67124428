package stack_test

import (
	"encoding/binary"
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
)

// icmpFrame builds an Ethernet/IPv4/ICMP frame: the ICMP header (type, code, rest) and
// body, with a good checksum unless badCsum.
func icmpFrame(dmac, smac header.MAC, src, dst netip.Addr, typ, code uint8, rest uint32, body []byte, badCsum bool) []byte {
	return ipFrame(dmac, smac, src, dst, header.ProtoICMP, icmpMsg(typ, code, rest, body, badCsum))
}

func icmpMsg(typ, code uint8, rest uint32, body []byte, badCsum bool) []byte {
	m := make([]byte, header.ICMPv4Len+len(body))
	copy(m[header.ICMPv4Len:], body)
	header.PutICMPv4(m, typ, code, rest)
	if badCsum {
		m[2] ^= 0x55
	}
	return m
}

// ipFrame wraps a payload in IPv4 (no DF, TTL 64, TOS 0x10) and Ethernet.
func ipFrame(dmac, smac header.MAC, src, dst netip.Addr, proto uint8, payload []byte) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinLen+len(payload))
	header.EncodeEthernet(b, dmac, smac, header.EtherTypeIPv4)
	header.EncodeIPv4(b[header.EthernetLen:], &header.IPv4Fields{
		TOS: 0x10, TotalLen: uint16(header.IPv4MinLen + len(payload)), ID: 77, TTL: 64,
		Protocol: proto, Src: src.As4(), Dst: dst.As4(),
	})
	copy(b[header.EthernetLen+header.IPv4MinLen:], payload)
	return b
}

// icmpOf returns the IPv4 header and ICMP message of a frame, if it is one.
func icmpOf(f []byte) (header.IPv4, header.ICMPv4, bool) {
	if len(f) < header.EthernetLen || binary.BigEndian.Uint16(f[12:]) != header.EtherTypeIPv4 {
		return nil, nil, false
	}
	ip, err := header.ParseIPv4(f[header.EthernetLen:])
	if err != nil || ip.Protocol() != header.ProtoICMP {
		return nil, nil, false
	}
	m, err := header.ParseICMPv4(ip.Payload())
	if err != nil {
		return nil, nil, false
	}
	return ip, m, true
}

func icmpFrames(frames [][]byte) (out []header.ICMPv4, ips []header.IPv4) {
	for _, f := range frames {
		if ip, m, ok := icmpOf(f); ok {
			out = append(out, m)
			ips = append(ips, ip)
		}
	}
	return out, ips
}

func icmpPeer(t *testing.T, tweak func(c *stack.Config)) *rawPeer {
	return newRawPeer(t, func(c *stack.Config) {
		c.StaticNeighbours = peerStatic(c)
		c.Gateway = gwAddr
		if tweak != nil {
			tweak(c)
		}
	})
}

// An echo request is answered with an echo reply carrying its identifier, sequence number
// and data, from the address it was sent to, with the request's TOS and no DF; the counters
// are Linux's.
func TestICMPEcho_Reply(t *testing.T) {
	r := icmpPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz!")
	r.send(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Echo, 0, 0x1234_0007, data, false))
	msgs, ips := icmpFrames(r.recv())
	require.Len(t, msgs, 1)
	m, ip := msgs[0], ips[0]
	require.True(t, m.ChecksumValid())
	require.Equal(t, header.ICMPv4EchoReply, m.Type())
	require.Zero(t, m.Code())
	require.Equal(t, uint16(0x1234), m.Ident())
	require.Equal(t, uint16(7), m.Seq())
	require.Equal(t, data, m.Body())
	require.Equal(t, srv.As4(), ip.Src())
	require.Equal(t, peerAddr.As4(), ip.Dst())
	require.Equal(t, uint8(0x10), ip.TOS())
	require.False(t, ip.DontFragment())
	require.Equal(t, uint8(64), ip.TTL())
	c := r.s.Counters()
	for id, want := range map[stats.ID]uint64{
		stats.IcmpInMsgs: 1, stats.IcmpInEchos: 1, stats.IcmpMsgInType0 + 8: 1,
		stats.IcmpOutMsgs: 1, stats.IcmpOutEchoReps: 1, stats.IcmpMsgOutType0: 1,
		stats.IcmpInErrors: 0, stats.IpInDelivers: 1, stats.IpOutRequests: 1,
	} {
		require.Equal(t, want, c[id], id.String())
	}
	v, ok := c.Get("IcmpMsgInType8")
	require.True(t, ok)
	require.Equal(t, uint64(1), v)
}

// icmp_echo_ignore_all silences echo; the request is still counted, not as an error.
func TestICMPEcho_IgnoreAll(t *testing.T) {
	r := icmpPeer(t, func(c *stack.Config) { require.NoError(t, c.ICMP.Set("net.ipv4.icmp_echo_ignore_all", "1")) })
	r.send(icmpFrame(r.smac, r.mac, peerAddr, simnet.ServerAddr.Addr(), header.ICMPv4Echo, 0, 1, nil, false))
	require.Empty(t, r.recv())
	c := r.s.Counters()
	require.Equal(t, uint64(1), c[stats.IcmpInEchos])
	require.Zero(t, c[stats.IcmpInErrors])
	require.Zero(t, c[stats.IcmpOutMsgs])
}

// Echo to a broadcast or multicast address is dropped as an error by default
// (icmp_echo_ignore_broadcasts=1) and answered from our address when it is 0.
func TestICMPEcho_Broadcast(t *testing.T) {
	for _, dst := range []string{"255.255.255.255", "198.18.0.255", "224.0.0.1"} {
		d := netip.MustParseAddr(dst)
		r := icmpPeer(t, nil)
		r.send(icmpFrame(header.Broadcast, r.mac, peerAddr, d, header.ICMPv4Echo, 0, 1, nil, false))
		require.Empty(t, r.recv(), dst)
		require.Equal(t, uint64(1), r.s.Counters()[stats.IcmpInErrors], dst)

		r = icmpPeer(t, func(c *stack.Config) { c.ICMP.EchoIgnoreBroadcasts = -1 })
		r.send(icmpFrame(header.Broadcast, r.mac, peerAddr, d, header.ICMPv4Echo, 0, 1, nil, false))
		_, ips := icmpFrames(r.recv())
		require.Len(t, ips, 1, dst)
		require.Equal(t, simnet.ServerAddr.Addr().As4(), ips[0].Src(), dst)
	}
}

// Hostile and odd ICMP input: counted, never answered, nothing else moves.
func TestICMPInput_Hostile(t *testing.T) {
	srv := simnet.ServerAddr.Addr()
	cases := []struct {
		name    string
		payload []byte
		ctr     stats.ID
	}{
		{"bad checksum", icmpMsg(header.ICMPv4Echo, 0, 1, []byte("x"), true), stats.IcmpInCsumErrors},
		{"short", []byte{8, 0, 0xf7, 0xff}, stats.IcmpInErrors},
		{"empty", nil, stats.IcmpInCsumErrors},
		{"unknown type", icmpMsg(200, 0, 0, nil, false), stats.IcmpInErrors},
		{"unreach without a quote", icmpMsg(header.ICMPv4DestUnreach, 1, 0, []byte{0x45, 0}, false), stats.IcmpInErrors},
		{"unreach with a mangled quote", icmpMsg(header.ICMPv4DestUnreach, 1, 0, make([]byte, 28), false), stats.IcmpInErrors},
	}
	for _, tc := range cases {
		r := icmpPeer(t, nil)
		r.send(ipFrame(r.smac, r.mac, peerAddr, srv, header.ProtoICMP, tc.payload))
		require.Empty(t, r.recv(), tc.name)
		c := r.s.Counters()
		require.Equal(t, uint64(1), c[stats.IcmpInMsgs], tc.name)
		require.Equal(t, uint64(1), c[tc.ctr], tc.name)
		require.Zero(t, c[stats.IcmpOutMsgs], tc.name)
	}
}

// An unknown IP protocol draws protocol unreachable (ip_local_deliver_finish), quoting the
// datagram; UDP, with no sockets, draws port unreachable (UdpNoPorts).
func TestICMPErrors_ProtoAndPortUnreachable(t *testing.T) {
	srv := simnet.ServerAddr.Addr()
	r := icmpPeer(t, nil)
	r.send(ipFrame(r.smac, r.mac, peerAddr, srv, 99, []byte("hello")))
	msgs, ips := icmpFrames(r.recv())
	require.Len(t, msgs, 1)
	require.Equal(t, header.ICMPv4DestUnreach, msgs[0].Type())
	require.Equal(t, header.ICMPv4ProtoUnreach, msgs[0].Code())
	require.True(t, msgs[0].ChecksumValid())
	q, err := header.ParseIPv4(msgs[0].Body())
	require.NoError(t, err)
	require.Equal(t, uint8(99), q.Protocol())
	require.Equal(t, []byte("hello"), q.Payload())
	require.Equal(t, uint8(0xc0|0x10), ips[0].TOS())
	c := r.s.Counters()
	require.Equal(t, uint64(1), c[stats.IpInUnknownProtos])
	require.Equal(t, uint64(1), c[stats.IcmpOutDestUnreachs])

	udp := make([]byte, 12)
	binary.BigEndian.PutUint16(udp[0:], 5353)
	binary.BigEndian.PutUint16(udp[2:], 53)
	binary.BigEndian.PutUint16(udp[4:], 12)
	copy(udp[8:], "abcd")
	r.send(ipFrame(r.smac, r.mac, peerAddr, srv, header.ProtoUDP, udp))
	msgs, _ = icmpFrames(r.recv())
	require.Len(t, msgs, 1)
	require.Equal(t, header.ICMPv4PortUnreach, msgs[0].Code())
	require.Equal(t, uint64(1), r.s.Counters()[stats.UdpNoPorts])

	// No error about an error, to a broadcast, or in a broadcast frame.
	r.send(ipFrame(header.Broadcast, r.mac, peerAddr, srv, 99, nil))
	r.send(ipFrame(r.smac, r.mac, peerAddr, netip.MustParseAddr("198.18.0.255"), 99, nil))
	r.send(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4DestUnreach, 3, 0,
		ipFrame(header.MAC{}, header.MAC{}, srv, peerAddr, header.ProtoICMP, icmpMsg(header.ICMPv4DestUnreach, 1, 0, nil, false))[header.EthernetLen:], false))
	require.Empty(t, r.recv())
}

// unreachables counts the destination unreachable messages among frames.
func unreachables(frames [][]byte) int {
	msgs, _ := icmpFrames(frames)
	n := 0
	for _, m := range msgs {
		if m.Type() == header.ICMPv4DestUnreach {
			n++
		}
	}
	return n
}

// icmp_ratelimit: one destination gets a burst of six errors, then one per second
// (inet_peer_xrlim_allow's token bucket, XRLIM_BURST_FACTOR 6).
func TestICMPRateLimit_PerHost(t *testing.T) {
	r := icmpPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	flood := func(n int) int {
		for i := 0; i < n; i++ {
			r.sendNoSettle(ipFrame(r.smac, r.mac, peerAddr, srv, 99, nil))
		}
		r.settle()
		return unreachables(r.recv())
	}
	require.Equal(t, 6, flood(20))
	require.Equal(t, uint64(14), counter(r, stats.IcmpOutRateLimitHost))
	require.Equal(t, uint64(20), counter(r, stats.IpInUnknownProtos))
	r.vc.Set(r.vc.Now() + int64(time.Second))
	require.Equal(t, 1, flood(5))
	r.vc.Set(r.vc.Now() + int64(time.Hour))
	require.Equal(t, 6, flood(10), "the bucket holds six at most")
	// Echo replies are not in icmp_ratemask: never limited.
	for i := 0; i < 30; i++ {
		r.sendNoSettle(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Echo, 0, uint32(i), nil, false))
	}
	r.settle()
	msgs, _ := icmpFrames(r.recv())
	require.Len(t, msgs, 30)
}

// icmp_ratelimit=0 turns the per-destination limit off; icmp_ratemask with bit 0 limits
// echo replies too.
func TestICMPRateLimit_Settings(t *testing.T) {
	r := icmpPeer(t, func(c *stack.Config) {
		require.NoError(t, c.ICMP.Set("net.ipv4.icmp_ratelimit", "0"))
		require.NoError(t, c.ICMP.Set("net.ipv4.icmp_msgs_burst", "10000"))
	})
	srv := simnet.ServerAddr.Addr()
	for i := 0; i < 40; i++ {
		r.sendNoSettle(ipFrame(r.smac, r.mac, peerAddr, srv, 99, nil))
	}
	r.settle()
	require.Equal(t, 40, unreachables(r.recv()))

	r = icmpPeer(t, func(c *stack.Config) { require.NoError(t, c.ICMP.Set("net.ipv4.icmp_ratemask", "6169")) }) // 0x1819
	for i := 0; i < 20; i++ {
		r.sendNoSettle(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Echo, 0, uint32(i), nil, false))
	}
	r.settle()
	msgs, _ := icmpFrames(r.recv())
	require.Len(t, msgs, 6)
	var cfg stack.ICMPSettings
	v, err := cfg.Get("net.ipv4.icmp_ratemask")
	require.NoError(t, err)
	require.Equal(t, "6168", v)
	require.Error(t, cfg.Set("net.ipv4.icmp_ratemask", "-1"))
	require.Error(t, cfg.Set("net.ipv4.icmp_nonsense", "1"))
}

// icmp_msgs_per_sec / icmp_msgs_burst: many destinations share one budget of about
// icmp_msgs_burst messages (each takes 0 to 2 credits at random), refilled at
// icmp_msgs_per_sec.
func TestICMPRateLimit_Global(t *testing.T) {
	r := icmpPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	flood := func() int {
		for i := 0; i < 200; i++ {
			src := netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)}) // off-link, via the gateway
			r.sendNoSettle(ipFrame(r.smac, r.mac, src, srv, 99, nil))
			if i%32 == 31 {
				r.settle()
			}
		}
		r.settle()
		return unreachables(r.recv())
	}
	sent := flood()
	limited := counter(r, stats.IcmpOutRateLimitGlobal)
	require.Greater(t, sent, 25)
	require.Less(t, sent, 100)
	require.Equal(t, uint64(200-sent), limited+counter(r, stats.IcmpOutRateLimitHost))
	require.Zero(t, flood(), "no credit left at the same instant")
	r.vc.Set(r.vc.Now() + int64(10*time.Millisecond))
	require.Zero(t, flood(), "credit comes back in steps of at least 20 ms")
	r.vc.Set(r.vc.Now() + int64(time.Second))
	require.Greater(t, flood(), 25, "refilled to the burst")
}

// exchange sends a prebuilt frame to the stack, runs it, and frees what it sends back,
// without allocating on the test's side; it returns how many frames came back.
func (r *rawPeer) exchange(frame []byte, one []*dpdkshim.Packet) int {
	p := r.port.Pool(0).Get()
	if p == nil || !p.SetData(frame) {
		panic("peer pool")
	}
	one[0] = p
	if r.port.TxBurst(0, one) != 1 {
		p.Free()
	}
	r.settle()
	got := 0
	for {
		n := r.port.RxBurst(0, r.rx)
		if n == 0 {
			return got
		}
		got += n
		for _, q := range r.rx[:n] {
			q.Free()
		}
	}
}

// Answering an echo request, sending a protocol unreachable, and delivering ICMP errors
// to a connection (soft errors, a repeated frag-needed report) allocate nothing.
func TestICMPAllocsPerPacket(t *testing.T) {
	r, l := listenPeer(t, func(c *stack.Config) { c.ICMP.Ratelimit = -1; c.ICMP.Ratemask = -1 })
	srv := simnet.ServerAddr.Addr()
	one := make([]*dpdkshim.Packet, 1)
	echo := icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Echo, 0, 0x42_0001, make([]byte, 56), false)
	proto := ipFrame(r.smac, r.mac, peerAddr, srv, 99, make([]byte, 40))
	f := establish(t, r, l, 40000)
	_, err := f.h.TryWrite(make([]byte, 3000))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	require.NotEmpty(t, raw)
	soft := routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, raw[0])
	frag := routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1400, raw[0])
	r.exchange(frag, one)
	for name, frame := range map[string][]byte{"echo": echo, "protocol unreachable": proto, "soft error": soft, "frag needed": frag} {
		want := 0
		if name == "echo" || name == "protocol unreachable" {
			want = 1
		}
		require.Equal(t, want, r.exchange(frame, one), name)
		allocs := testing.AllocsPerRun(200, func() { r.exchange(frame, one) })
		require.Zero(t, allocs, name)
	}
}

// A timestamp request is answered (icmp_timestamp): the originate timestamp back, our
// receive and transmit times; one without room for the originate timestamp is an error.
func TestICMPTimestamp(t *testing.T) {
	r := icmpPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	body := []byte{0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0}
	r.send(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Timestamp, 0, 0x0009_0002, body, false))
	msgs, _ := icmpFrames(r.recv())
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, header.ICMPv4TimestampReply, m.Type())
	require.Equal(t, uint16(9), m.Ident())
	require.Len(t, m.Body(), 12)
	require.Equal(t, []byte{0, 1, 2, 3}, m.Body()[:4])
	require.Equal(t, m.Body()[4:8], m.Body()[8:12])
	require.Less(t, binary.BigEndian.Uint32(m.Body()[4:]), uint32(86_400_000))
	r.send(icmpFrame(r.smac, r.mac, peerAddr, srv, header.ICMPv4Timestamp, 0, 1, []byte{1, 2}, false))
	require.Empty(t, r.recv())
	c := r.s.Counters()
	require.Equal(t, uint64(2), c[stats.IcmpInTimestamps])
	require.Equal(t, uint64(1), c[stats.IcmpOutTimestampReps])
	require.Equal(t, uint64(1), c[stats.IcmpInErrors])
}

// BenchmarkICMPEcho is one echo request in and its reply out, through the whole stack.
func BenchmarkICMPEcho(b *testing.B) {
	vc := clock.NewVirtual(0)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, Pool: dpdkshim.PoolConfig{Size: 1024}})
	s, err := stack.New(stack.Config{Port: ps, Addr: simnet.ServerAddr, Clock: vc, Manual: true, Seed: 1, Shards: 1,
		StaticNeighbours: map[netip.Addr][6]byte{peerAddr: pc.MAC()}})
	require.NoError(b, err)
	defer s.Close()
	r := &rawPeer{vc: vc, s: s, port: pc, sport: ps, mac: pc.MAC(), smac: ps.MAC(), rx: make([]*dpdkshim.Packet, 64)}
	one := make([]*dpdkshim.Packet, 1)
	echo := icmpFrame(r.smac, r.mac, peerAddr, simnet.ServerAddr.Addr(), header.ICMPv4Echo, 0, 0x42_0001, make([]byte, 56), false)
	b.ReportAllocs()
	for b.Loop() {
		if r.exchange(echo, one) != 1 {
			b.Fatal("no reply")
		}
	}
}

package afpacket

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/linktest"
	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
)

var gsoModes = []mode{
	{"sendmmsg", Config{GSO: true}},
	{"txring", Config{TxRing: true, GSO: true}},
}

var (
	addr6A = netip.MustParseAddr("fd00::1")
	addr6B = netip.MustParseAddr("fd00::2")
)

// tcpSegs builds n consecutive data segments of one flow from the port's side to the
// peer, mss payload bytes each, PSH on the last, with partial checksums as the stack
// leaves them when the port offloads checksums.
func tcpSegs(t testing.TB, p *Port, v *vethPair, v6 bool, n, mss int) []*dpdkshim.Packet {
	t.Helper()
	var macA, macB header.MAC
	copy(macA[:], v.MACA)
	copy(macB[:], v.MACB)
	opts := &header.TCPOptions{WScale: -1, TS: true, TSVal: 7, TSEcr: 9}
	var out []*dpdkshim.Packet
	for i := 0; i < n; i++ {
		pk := p.Pool(0).Get()
		require.NotNil(t, pk)
		hl := header.TCPMinLen + opts.EncodedLen()
		b := pk.Append(hl + mss)
		flags := header.TCPFlagACK
		if i == n-1 {
			flags |= header.TCPFlagPSH
		}
		header.PutTCPHeader(b, 40000, 9, uint32(1000+i*mss), 77, flags, 512, opts)
		for j := hl; j < len(b); j++ {
			b[j] = byte(i*mss + j - hl)
		}
		if v6 {
			header.PartialTCPChecksumIPv6(header.TCP(b), addr6A.As16(), addr6B.As16())
			pk.SetTxCsum(0, header.TCPChecksumOffset)
			putIPv6(pk.Prepend(40), len(b), addr6A, addr6B)
			header.EncodeEthernet(pk.Prepend(header.EthernetLen), macB, macA, header.EtherTypeIPv6)
		} else {
			header.PartialTCPChecksumIPv4(header.TCP(b), v.AddrA.As4(), v.AddrB.As4())
			pk.SetTxCsum(0, header.TCPChecksumOffset)
			header.PutIPv4Header(pk.Prepend(header.IPv4MinLen), uint16(pk.Len()), header.IPv4FlagDontFragment, 64,
				header.ProtoTCP, v.AddrA.As4(), v.AddrB.As4())
			header.EncodeEthernet(pk.Prepend(header.EthernetLen), macB, macA, header.EtherTypeIPv4)
		}
		out = append(out, pk)
	}
	return out
}

// putIPv6 writes a bare IPv6 header for a TCP payload of n bytes.
func putIPv6(b []byte, n int, src, dst netip.Addr) {
	clear(b[:40])
	b[0] = 6 << 4
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	b[6], b[7] = header.ProtoTCP, 64
	copy(b[8:], src.AsSlice())
	copy(b[24:], dst.AsSlice())
}

// segOf reads a TCP frame of either family: its TCP segment and pseudo-header sum.
func segOf(t testing.TB, frame []byte) (seg []byte, ph uint32) {
	t.Helper()
	switch binary.BigEndian.Uint16(frame[12:]) {
	case header.EtherTypeIPv4:
		ip, err := header.ParseIPv4(frame[header.EthernetLen:])
		require.NoError(t, err)
		seg = ip.Payload()
		return seg, checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoTCP, uint16(len(seg)))
	case header.EtherTypeIPv6:
		ip := frame[header.EthernetLen:]
		require.GreaterOrEqual(t, len(ip), 40)
		seg = ip[40:]
		require.Equal(t, len(seg), int(binary.BigEndian.Uint16(ip[4:])))
		return seg, checksum.PseudoHeaderIPv6([16]byte(ip[8:]), [16]byte(ip[24:]), header.ProtoTCP, uint32(len(seg)))
	}
	t.Fatalf("not IP: %x", frame[:14])
	return nil, 0
}

// finish completes a checksum the kernel left partial (the peer's virtio-net header says
// where) and reports whether the TCP checksum is then right.
func finish(t testing.TB, frame, h []byte) bool {
	t.Helper()
	if h[0]&virtio.FlagNeedsCsum != 0 {
		start, off := int(binary.NativeEndian.Uint16(h[6:])), int(binary.NativeEndian.Uint16(h[8:]))
		binary.BigEndian.PutUint16(frame[start+off:], ^checksum.Fold(checksum.Partial(frame[start:], 0)))
	}
	seg, ph := segOf(t, frame)
	return checksum.Fold(checksum.Partial(seg, ph)) == 0xffff
}

// TestPort_GSOSuperPackets: with GSO, a burst of 20 consecutive segments of one flow goes
// to the kernel as one super-packet, in each family and on each transmit path. The veth
// (TSO on, its default) hands it whole to the peer, whose virtio-net header says how to
// cut it; with TSO and GSO off on the veth the kernel cuts it in software and the peer
// receives the 20 segments, each fitting the MTU, in order, with the payloads and a
// right checksum.
func TestPort_GSOSuperPackets(t *testing.T) {
	const n = 20
	for _, m := range gsoModes {
		for _, v6 := range []bool{false, true} {
			name := m.name + "/ipv4"
			if v6 {
				name = m.name + "/ipv6"
			}
			t.Run(name, func(t *testing.T) {
				v := newVethPair(t)
				p := openIn(t, v, m.cfg)
				pr := openPeer(t, v, true, true)
				mss := p.MTU() - 20 - 32 // IPv4 and TCP with timestamps
				if v6 {
					mss -= 20
				}
				var want []byte
				for _, pk := range tcpSegs(t, p, v, v6, n, mss) {
					seg, _ := segOf(t, pk.Data())
					want = append(want, seg[header.TCP(seg).DataOffset():]...)
					pk.Free()
				}

				// Whole: one frame of 20 segments.
				txAll(t, p, 0, tcpSegs(t, p, v, v6, n, mss), time.Second)
				f, h, err := pr.recv(5 * time.Second)
				require.NoError(t, err)
				typ := byte(virtio.GSOTCPv4)
				if v6 {
					typ = virtio.GSOTCPv6
				}
				require.Equal(t, typ, h[1]&^virtio.GSOECN, "a TCP super-packet")
				require.Equal(t, uint16(mss), binary.NativeEndian.Uint16(h[4:]))
				seg, _ := segOf(t, f)
				tcp := header.TCP(seg)
				require.Equal(t, want, seg[tcp.DataOffset():], "every payload, in order")
				require.Equal(t, uint32(1000), tcp.Seq())
				require.Equal(t, header.TCPFlagACK|header.TCPFlagPSH, tcp.Flags())
				require.True(t, finish(t, f, h))
				st := p.Stats()[0]
				require.Equal(t, uint64(1), st.TxSuper)
				require.Equal(t, uint64(n), st.TxSuperSegments)
				require.Equal(t, uint64(n), st.TxPackets)
				require.Equal(t, uint64(1), st.TxFrames())

				// Cut by the kernel: 20 frames on the wire.
				require.NoError(t, v.a.SetOffloads(t, v.IfA, false))
				txAll(t, p, 0, tcpSegs(t, p, v, v6, n, mss), time.Second)
				var got []byte
				for i := 0; i < n; i++ {
					f, h, err := pr.recv(5 * time.Second)
					require.NoError(t, err, "segment %d", i)
					require.LessOrEqual(t, len(f), header.EthernetLen+p.MTU(), "segment %d fits the MTU", i)
					require.Equal(t, byte(virtio.GSONone), h[1], "segment %d", i)
					require.True(t, finish(t, f, h), "segment %d's checksum", i)
					seg, _ := segOf(t, f)
					tcp := header.TCP(seg)
					require.Equal(t, uint32(1000+i*mss), tcp.Seq(), "segment %d", i)
					psh := byte(0)
					if i == n-1 {
						psh = header.TCPFlagPSH
					}
					require.Equal(t, header.TCPFlagACK|psh, tcp.Flags(), "segment %d", i)
					got = append(got, seg[tcp.DataOffset():]...)
				}
				require.Equal(t, want, got)
				_, _, err = pr.recv(100 * time.Millisecond)
				require.Error(t, err, "nothing more")
				st = p.Stats()[0]
				require.Equal(t, uint64(2), st.TxSuper)
				require.Equal(t, uint64(2*n), st.TxPackets)
				require.Zero(t, st.TxDropped+st.TxErrors)
			})
		}
	}
}

// TestOpen_GSOConfigErrors: GSO without the virtio-net header, or with the queueing
// discipline bypassed, is a configuration error, found before anything is opened.
func TestOpen_GSOConfigErrors(t *testing.T) {
	_, err := Open(Config{Interface: "lo", GSO: true, NoVnetHdr: true})
	require.ErrorIs(t, err, ErrConfig)
	_, err = Open(Config{Interface: "lo", GSO: true, QdiscBypass: true})
	require.ErrorIs(t, err, ErrConfig)
}

// TestPort_GSOTxAllocatesNothing: coalescing runs of segments into super-packets and
// handing them to the kernel allocates nothing, on each transmit path, and a burst of
// 64 segments is a few frames.
func TestPort_GSOTxAllocatesNothing(t *testing.T) {
	for _, m := range gsoModes {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			p := openIn(t, v, m.cfg)
			tx := make([]*dpdkshim.Packet, 64)
			segs := tcpSegs(t, p, v, false, len(tx), 1448)
			frames := make([][]byte, len(segs))
			for i, pk := range segs {
				frames[i] = append([]byte(nil), pk.Data()...)
				pk.Free()
			}
			cycle := func() {
				for i := range tx {
					tx[i] = p.Pool(0).Get()
					tx[i].SetData(frames[i])
					tx[i].SetTxCsum(34, 50)
				}
				for sent, tries := 0, 0; sent < len(tx) && tries < 2000; tries++ {
					sent += p.TxBurst(0, tx[sent:])
				}
			}
			for i := 0; i < 20; i++ {
				cycle()
			}
			before := p.Stats()[0]
			require.Zero(t, testing.AllocsPerRun(100, cycle))
			after := p.Stats()[0]
			segsSent := after.TxPackets - before.TxPackets
			require.Equal(t, uint64(101*64), segsSent)
			require.Equal(t, segsSent, after.TxSuperSegments-before.TxSuperSegments, "every segment in a super-packet")
			require.Less(t, after.TxFrames()-before.TxFrames(), segsSent/10)
			require.Zero(t, after.TxDropped)
		})
	}
}

// gsoDownload runs a stack with GSO on the port (198.18.0.1 and fd00::1) whose server
// writes size bytes to a Linux client in the peer namespace over the family's address;
// the client checks them.
func gsoDownload(t testing.TB, v *vethPair, p *Port, v6 bool, size int) {
	t.Helper()
	s, err := stack.New(stack.Config{Port: p, Addr: netip.PrefixFrom(v.AddrA, 24),
		MoreAddrs: []netip.Prefix{netip.PrefixFrom(addr6A, 64)}, Shards: p.NumQueues()})
	require.NoError(t, err)
	defer s.Close()
	l, err := s.Listen(":8080", 16)
	require.NoError(t, err)
	data := linktest.Pattern(size)
	srvErr := linktest.ServeOnce(l, data)
	network, target := "tcp4", v.AddrA
	if v6 {
		network, target = "tcp6", addr6A
	}
	var c net.Conn
	require.NoError(t, v.b.Do(func() (err error) {
		c, err = net.DialTimeout(network, net.JoinHostPort(target.String(), "8080"), 5*time.Second)
		return err
	}))
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	got, err := io.ReadAll(c)
	require.NoError(t, err)
	require.NoError(t, <-srvErr)
	require.Equal(t, len(data), len(got))
	require.True(t, string(data) == string(got), "the download arrived intact")
}

// TestStack_GSODownloadToLinux: a Linux client downloads 2 MiB from shardstack with GSO,
// over IPv4 and IPv6, on each transmit path, intact, while the port hands the kernel far
// fewer frames than segments. With TSO and GSO off on the port's veth (as bench/loss
// has them) the kernel cuts every super-packet, so the peer's veth receives every segment
// as a frame of its own, and a drop rule there loses single segments, which the stack
// retransmits; with the veth's defaults the super-packets reach the peer whole.
func TestStack_GSODownloadToLinux(t *testing.T) {
	const size = 2 << 20
	for _, m := range gsoModes {
		for _, v6 := range []bool{false, true} {
			for _, cut := range []bool{true, false} {
				name := fmt.Sprintf("%s/ipv4", m.name)
				if v6 {
					name = fmt.Sprintf("%s/ipv6", m.name)
				}
				if cut {
					name += "/segmented"
				} else {
					name += "/whole"
				}
				t.Run(name, func(t *testing.T) {
					v := newVethPair(t)
					if v6 {
						v.b.Sysctl(t, "net.ipv6.conf."+v.IfB+".disable_ipv6", "0")
						v.b.AddAddr(t, v.IfB, netip.PrefixFrom(addr6B, 64).String()) // the stack answers its neighbour solicitation
					}
					if cut {
						require.NoError(t, v.a.SetOffloads(t, v.IfA, false))
					}
					cfg := m.cfg
					cfg.Queues = 2
					p := openIn(t, v, cfg)
					drop := cut && !v6 // DropRandom drops IPv4 only
					if drop {
						v.b.DropRandom(t, v.IfB, netns.Ingress, 10)
					}
					rx0 := v.b.LinkStats(t, v.IfB).RxPackets
					gsoDownload(t, v, p, v6, size)
					rx := v.b.LinkStats(t, v.IfB).RxPackets - rx0
					var st QueueStats
					for i, q := range p.Stats() {
						if i == 0 {
							st = q
						} else {
							st = st.Add(q)
						}
					}
					t.Logf("%d segments in %d frames (%d super-packets), %d syscalls; the peer's veth received %d frames",
						st.TxPackets, st.TxFrames(), st.TxSuper, st.TxSyscalls, rx)
					require.Zero(t, st.TxDropped+st.TxErrors)
					require.Greater(t, st.TxPackets, uint64(size/1448))
					require.Less(t, st.TxFrames(), st.TxPackets/2, "runs of segments went as one frame each")
					if cut {
						require.GreaterOrEqual(t, rx, st.TxPackets, "every segment on the wire alone")
					} else {
						require.Less(t, rx, st.TxPackets, "super-packets crossed the veth whole")
					}
					if drop {
						dropped := v.b.Dropped(t, v.IfB, netns.Ingress)
						t.Logf("the drop rule dropped %d frames", dropped)
						require.Positive(t, dropped)
					}
				})
			}
		}
	}
}

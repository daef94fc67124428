package vnet

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// flow describes the segments a test builds: a family, a link header or none, and the
// header fields a run must keep.
type flow struct {
	v6, eth  bool
	src, dst netip.Addr
	sport    uint16
	ack      uint32
	wnd      uint16
	tos, ttl byte
	srcMAC   byte
	opts     []byte
}

var tsOpt = []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 7} // NOP NOP timestamps

func newFlow(v6, eth bool) flow {
	f := flow{v6: v6, eth: eth, sport: 1000, ack: 777, wnd: 500, ttl: 64, srcMAC: 1, opts: tsOpt}
	f.src, f.dst = netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	if v6 {
		f.src, f.dst = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	}
	return f
}

func (f flow) link() int {
	if f.eth {
		return header.EthernetLen
	}
	return 0
}

func (f flow) ipLen() int {
	if f.v6 {
		return 40
	}
	return 20
}

// seg builds a segment as the stack transmits it with checksum offload: the TCP checksum
// field holds the folded pseudo-header sum and the packet is marked TxCsum at the TCP
// header.
func (f flow) seg(pool *dpdkshim.Pool, seq uint32, flags byte, payload []byte) *dpdkshim.Packet {
	p := pool.Get()
	l, ipl := f.link(), f.ipLen()
	thl := header.TCPMinLen + len(f.opts)
	n := l + ipl + thl + len(payload)
	d := p.Append(n)
	if f.eth {
		copy(d[0:6], []byte{2, 0, 0, 0, 0, 2})
		copy(d[6:12], []byte{2, 0, 0, 0, 0, f.srcMAC})
		et := header.EtherTypeIPv4
		if f.v6 {
			et = header.EtherTypeIPv6
		}
		binary.BigEndian.PutUint16(d[12:], et)
	}
	ip := d[l:]
	var ph uint32
	tcpLen := thl + len(payload)
	if f.v6 {
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(f.tos)<<20|0x12345)
		binary.BigEndian.PutUint16(ip[4:], uint16(tcpLen))
		ip[6], ip[7] = 6, f.ttl
		copy(ip[8:], f.src.AsSlice())
		copy(ip[24:], f.dst.AsSlice())
		ph = checksum.PseudoHeaderIPv6(f.src.As16(), f.dst.As16(), 6, uint32(tcpLen))
	} else {
		ip[0], ip[1] = 0x45, f.tos
		binary.BigEndian.PutUint16(ip[2:], uint16(n-l))
		binary.BigEndian.PutUint16(ip[4:], uint16(seq)) // an ID that changes
		ip[6], ip[7], ip[8], ip[9] = 0x40, 0, f.ttl, 6
		copy(ip[12:], f.src.AsSlice())
		copy(ip[16:], f.dst.AsSlice())
		binary.BigEndian.PutUint16(ip[10:], checksum.Checksum(ip[:20], 0))
		ph = checksum.PseudoHeaderIPv4(f.src.As4(), f.dst.As4(), 6, uint16(tcpLen))
	}
	t := ip[ipl:]
	binary.BigEndian.PutUint16(t[0:], f.sport)
	binary.BigEndian.PutUint16(t[2:], 80)
	binary.BigEndian.PutUint32(t[4:], seq)
	binary.BigEndian.PutUint32(t[8:], f.ack)
	t[12], t[13] = byte(thl/4)<<4, flags
	binary.BigEndian.PutUint16(t[14:], f.wnd)
	copy(t[20:], f.opts)
	copy(t[thl:], payload)
	binary.BigEndian.PutUint16(t[16:], checksum.Fold(ph))
	p.SetTxCsum(l+ipl, l+ipl+16)
	return p
}

func payload(n int, b byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b + byte(i)
	}
	return out
}

var cases = []struct {
	name    string
	v6, eth bool
}{{"ipv4", false, false}, {"ipv6", true, false}, {"ipv4-ethernet", false, true}, {"ipv6-ethernet", true, true}}

// cut segments a super-packet as the kernel does (tcp_gso_segment): every piece gets the
// headers, its own sequence number and lengths, PSH on the last piece only, the next IPv4
// ID and a finished IPv4 header checksum. The TCP checksum is completed over each piece.
func cut(h, super []byte) [][]byte {
	hdr := int(binary.NativeEndian.Uint16(h[2:]))
	gso := int(binary.NativeEndian.Uint16(h[4:]))
	t := int(binary.NativeEndian.Uint16(h[6:]))
	v6 := h[1] == GSOTCPv6
	l := t - 20
	if v6 {
		l = t - 40
	}
	seq := binary.BigEndian.Uint32(super[t+4:])
	id := binary.BigEndian.Uint16(super[l+4:])
	var out [][]byte
	for off := hdr; off < len(super); off += gso {
		end := min(off+gso, len(super))
		s := append(append([]byte(nil), super[:hdr]...), super[off:end]...)
		binary.BigEndian.PutUint32(s[t+4:], seq+uint32(off-hdr))
		if end < len(super) {
			s[t+13] &^= header.TCPFlagPSH
		}
		var ph uint32
		if v6 {
			binary.BigEndian.PutUint16(s[l+4:], uint16(len(s)-t))
			ph = checksum.PseudoHeaderIPv6([16]byte(s[l+8:]), [16]byte(s[l+24:]), 6, uint32(len(s)-t))
		} else {
			binary.BigEndian.PutUint16(s[l+2:], uint16(len(s)-l))
			binary.BigEndian.PutUint16(s[l+4:], id+uint16(len(out)))
			binary.BigEndian.PutUint16(s[l+10:], 0)
			binary.BigEndian.PutUint16(s[l+10:], checksum.Checksum(s[l:l+20], 0))
			ph = checksum.PseudoHeaderIPv4([4]byte(s[l+12:]), [4]byte(s[l+16:]), 6, uint16(len(s)-t))
		}
		binary.BigEndian.PutUint16(s[t+16:], 0)
		binary.BigEndian.PutUint16(s[t+16:], checksum.Checksum(s[t:], ph))
		out = append(out, s)
	}
	return out
}

// finished is a copy of segment p with its checksum completed and, for IPv4, the ID the
// kernel gives the i-th piece of a super-packet starting at ID id.
func finished(p *dpdkshim.Packet, v6 bool, i int, id uint16) []byte {
	s := append([]byte(nil), p.Data()...)
	start, field, _ := p.TxCsumOffsets()
	if !v6 {
		l := start - 20
		binary.BigEndian.PutUint16(s[l+4:], id+uint16(i))
		binary.BigEndian.PutUint16(s[l+10:], 0)
		binary.BigEndian.PutUint16(s[l+10:], checksum.Checksum(s[l:l+20], 0))
	}
	ph := uint32(binary.BigEndian.Uint16(s[field:]))
	binary.BigEndian.PutUint16(s[field:], 0)
	binary.BigEndian.PutUint16(s[field:], checksum.Checksum(s[start:], ph))
	return s
}

// TestFindRun_SuperPacketCutsBackIntoTheSegments: four full segments and a short last one
// with PSH make one run of five, in each family, bare and behind Ethernet; the
// super-packet's header and lengths are right, and cut as the kernel cuts it, it gives
// back the segments (with the IDs the kernel assigns).
func TestFindRun_SuperPacketCutsBackIntoTheSegments(t *testing.T) {
	const mss = 1000
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 64})
			f := newFlow(c.v6, c.eth)
			var pkts []*dpdkshim.Packet
			for i := 0; i < 4; i++ {
				pkts = append(pkts, f.seg(pool, uint32(100+i*mss), header.TCPFlagACK, payload(mss, byte(i))))
			}
			pkts = append(pkts, f.seg(pool, 100+4*mss, header.TCPFlagACK|header.TCPFlagPSH, payload(300, 9)))
			r := FindRun(pkts, f.link(), 0xffff+100)
			hdr := f.link() + f.ipLen() + 32
			require.Equal(t, 5, r.N)
			require.Equal(t, hdr, r.Hdr)
			require.Equal(t, mss, r.GSOSize)
			require.Equal(t, hdr+4*mss+300, r.Len)

			buf := make([]byte, HdrLen+r.Len)
			require.Equal(t, HdrLen+r.Hdr, PutHeaders(buf, pkts, r))
			require.Equal(t, len(buf), PutSuper(buf, pkts, r))
			h, super := buf[:HdrLen], buf[HdrLen:]
			typ := byte(GSOTCPv4)
			if c.v6 {
				typ = GSOTCPv6
			}
			require.Equal(t, byte(FlagNeedsCsum), h[0])
			require.Equal(t, typ, h[1])
			require.Equal(t, uint16(hdr), binary.NativeEndian.Uint16(h[2:]), "hdr_len: every header")
			require.Equal(t, uint16(mss), binary.NativeEndian.Uint16(h[4:]))
			require.Equal(t, uint16(f.link()+f.ipLen()), binary.NativeEndian.Uint16(h[6:]), "csum_start")
			require.Equal(t, uint16(16), binary.NativeEndian.Uint16(h[8:]), "csum_offset")
			l, tcp := f.link(), f.link()+f.ipLen()
			var ph uint32
			if c.v6 {
				require.Equal(t, len(super)-l-40, int(binary.BigEndian.Uint16(super[l+4:])))
				ph = checksum.PseudoHeaderIPv6(f.src.As16(), f.dst.As16(), 6, uint32(len(super)-tcp))
			} else {
				require.Equal(t, len(super)-l, int(binary.BigEndian.Uint16(super[l+2:])))
				require.Equal(t, uint16(0), checksum.Checksum(super[l:l+20], 0), "a valid IPv4 header checksum")
				ph = checksum.PseudoHeaderIPv4(f.src.As4(), f.dst.As4(), 6, uint16(len(super)-tcp))
			}
			require.Equal(t, checksum.Fold(ph), binary.BigEndian.Uint16(super[tcp+16:]), "the pseudo-header sum of the whole TCP length")
			require.Equal(t, header.TCPFlagACK|header.TCPFlagPSH, super[tcp+13], "the last segment's PSH")

			pieces := cut(h, super)
			require.Len(t, pieces, 5)
			id := binary.BigEndian.Uint16(pkts[0].Data()[l+4:])
			for i, p := range pkts {
				require.Equal(t, finished(p, c.v6, i, id), pieces[i], "segment %d", i)
			}
		})
	}
}

// TestFindRun_WhatBreaksARun: in each family and on each link, the segments that must go
// alone or end a run.
func TestFindRun_WhatBreaksARun(t *testing.T) {
	const mss = 1000
	ack, psh := header.TCPFlagACK, header.TCPFlagACK|header.TCPFlagPSH
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 256})
			base := newFlow(c.v6, c.eth)
			run := func(pkts ...*dpdkshim.Packet) int {
				n := FindRun(pkts, base.link(), 0xffff+100).N
				for _, p := range pkts {
					p.Free()
				}
				return n
			}
			seg := func(f flow, seq uint32, fl byte, n int) *dpdkshim.Packet {
				return f.seg(pool, seq, fl, payload(n, 1))
			}
			other := func(change func(*flow)) flow {
				f := base
				change(&f)
				return f
			}
			b := base
			require.Equal(t, 3, run(seg(b, 0, ack, mss), seg(b, mss, ack, mss), seg(b, 2*mss, psh, 10)), "a run")
			require.Equal(t, 3, run(seg(b, 0, ack, 500), seg(b, 500, ack, 500), seg(b, 1000, ack, 500)), "equal short segments coalesce")
			require.Equal(t, 1, run(seg(b, 0, ack, mss)), "one segment is no run")
			require.Equal(t, 1, run(seg(b, 0, psh, mss), seg(b, mss, ack, mss)), "PSH ends a run")
			require.Equal(t, 2, run(seg(b, 0, ack, mss), seg(b, mss, psh, mss), seg(b, 2*mss, ack, mss)), "PSH ends a run after it")
			require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(b, mss+1, ack, mss)), "a gap")
			require.Equal(t, 1, run(seg(b, mss, ack, mss), seg(b, 0, ack, mss)), "out of order")
			require.Equal(t, 1, run(seg(b, 0, ack, 400), seg(b, 400, ack, 500)), "a longer segment after a shorter one")
			require.Equal(t, 2, run(seg(b, 0, ack, mss), seg(b, mss, ack, 400), seg(b, mss+400, ack, 400)), "nothing after a short one")
			require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(b, mss, ack, 0)), "no payload")
			require.Equal(t, 1, run(seg(b, 0, ack|header.TCPFlagFIN, mss), seg(b, mss, ack, mss)), "FIN goes alone")
			require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(b, mss, ack|header.TCPFlagFIN, 10)), "and does not join")
			require.Equal(t, 1, run(seg(b, 0, ack|header.TCPFlagCWR, mss), seg(b, mss, ack, mss)), "CWR goes alone")
			require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(b, mss, ack|header.TCPFlagECE, mss)), "ECE goes alone")
			require.Equal(t, 1, run(seg(b, 0, 0, mss), seg(b, mss, 0, mss)), "no ACK")
			for name, f := range map[string]flow{
				"another port":            other(func(f *flow) { f.sport++ }),
				"another acknowledgement": other(func(f *flow) { f.ack++ }),
				"another window":          other(func(f *flow) { f.wnd++ }),
				"other options (a newer timestamp)": other(func(f *flow) {
					f.opts = append([]byte(nil), tsOpt...)
					f.opts[7]++
				}),
				"no options":        other(func(f *flow) { f.opts = nil }),
				"another TOS/class": other(func(f *flow) { f.tos = 4 }),
				"another TTL/hops":  other(func(f *flow) { f.ttl = 63 }),
				"another address": other(func(f *flow) {
					f.src = f.src.Next()
				}),
			} {
				require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(f, mss, ack, mss)), name)
			}
			if c.eth {
				require.Equal(t, 1, run(seg(b, 0, ack, mss), seg(other(func(f *flow) { f.srcMAC = 9 }), mss, ack, mss)), "another MAC")
				p, q := seg(b, 0, ack, mss), seg(b, mss, ack, mss)
				p.Data()[12] = 0x81 // a VLAN tag's EtherType, which the version does not match
				require.Equal(t, 1, run(p, q), "an EtherType that is not the version's")
			}
			noCsum := seg(b, 0, ack, mss)
			noCsum.Flags &^= dpdkshim.TxCsum
			require.Equal(t, 1, run(noCsum, seg(b, mss, ack, mss)), "a complete checksum is not partial")
			if !c.v6 {
				p := seg(b, 0, ack, mss)
				p.Data()[b.link()+6] |= 0x20 // more fragments
				require.Equal(t, 1, run(p, seg(b, mss, ack, mss)), "a fragment")
				df := seg(b, mss, ack, mss)
				df.Data()[b.link()+6] = 0
				require.Equal(t, 1, run(seg(b, 0, ack, mss), df), "another DF")
			} else {
				p, q := seg(b, 0, ack, mss), seg(b, mss, ack, mss)
				q.Data()[b.link()+3]++ // the flow label
				require.Equal(t, 1, run(p, q), "another flow label")
				p, q = seg(b, 0, ack, mss), seg(b, mss, ack, mss)
				p.Data()[b.link()+6] = 0 // a hop-by-hop header (as the next header says)
				require.Equal(t, 1, run(p, q), "an extension header")
			}
			trail := seg(b, 0, ack, mss)
			trail.Append(4) // Ethernet padding behind the IP packet
			require.Equal(t, 1, run(trail, seg(b, mss, ack, mss)), "bytes behind the IP packet")
		})
	}
}

// TestFindRun_Limits: a run stops at MaxSegs, at the 64 KiB an IP length field counts (the
// whole IPv4 packet, the IPv6 payload), and at the caller's maxLen.
func TestFindRun_Limits(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 256})
			f := newFlow(c.v6, c.eth)
			f.opts = nil
			burst := func(n, mss int) []*dpdkshim.Packet {
				var out []*dpdkshim.Packet
				for i := 0; i < n; i++ {
					out = append(out, f.seg(pool, uint32(i*mss), header.TCPFlagACK, payload(mss, 1)))
				}
				return out
			}
			free := func(pkts []*dpdkshim.Packet) {
				for _, p := range pkts {
					p.Free()
				}
			}
			pkts := burst(70, 1448)
			counted := 0xffff - 40 // IPv4: both headers count
			if c.v6 {
				counted = 0xffff - 20 // IPv6: the TCP header only
			}
			r := FindRun(pkts, f.link(), 1<<20)
			require.Equal(t, counted/1448, r.N)
			require.Equal(t, f.link()+f.ipLen()+20+r.N*1448, r.Len)
			r = FindRun(pkts, f.link(), 16<<10)
			require.Equal(t, (16<<10-f.link()-f.ipLen()-20)/1448, r.N, "maxLen")
			require.LessOrEqual(t, r.Len, 16<<10)
			free(pkts)
			pkts = burst(70, 100)
			require.Equal(t, MaxSegs, FindRun(pkts, f.link(), 1<<20).N)
			free(pkts)
		})
	}
}

// TestPutSuper_AllocatesNothing: finding a run and writing its super-packet allocate
// nothing.
func TestPutSuper_AllocatesNothing(t *testing.T) {
	pool := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 64})
	f := newFlow(true, true)
	var pkts []*dpdkshim.Packet
	for i := 0; i < 16; i++ {
		pkts = append(pkts, f.seg(pool, uint32(i*1000), header.TCPFlagACK, payload(1000, byte(i))))
	}
	buf := make([]byte, HdrLen+0xffff+100)
	var n int
	allocs := testing.AllocsPerRun(100, func() {
		r := FindRun(pkts, header.EthernetLen, len(buf)-HdrLen)
		n = PutSuper(buf, pkts[:r.N], r)
	})
	require.Zero(t, allocs)
	require.Equal(t, HdrLen+header.EthernetLen+40+32+16*1000, n, fmt.Sprint(n))
}

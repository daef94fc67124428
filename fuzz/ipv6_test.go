package fuzz

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// What an IPv6 datagram must end in: delivered (to TCP, ICMPv6 or "no next header") or
// dropped under one of these.
var ip6Outcomes = []stats.ID{stats.Ip6InHdrErrors, stats.Ip6InAddrErrors, stats.Ip6InUnknownProtos,
	stats.Ip6InTruncatedPkts, stats.Ip6InDiscards, stats.Ip6InDelivers, stats.Ip6ReasmFails, stats.Ip6InMcastNotJoined,
	stats.RtInMartianSrc}

// lastHeader walks an IPv6 datagram's extension headers as far as they parse and returns
// the upper-layer protocol and its offset (ok false when a header runs past the end).
func lastHeader(ip header.IPv6) (next uint8, off int, ok bool) {
	next, off = ip.NextHeader(), header.IPv6Len
	for i := 0; i < 64; i++ {
		switch next {
		case header.ProtoHopByHop, header.ProtoDstOpts, header.ProtoRouting:
			if len(ip) < off+8 {
				return next, off, false
			}
			n := (int(ip[off+1]) + 1) * 8
			next, off = ip[off], off+n
		case header.ProtoFragment:
			if len(ip) < off+8 {
				return next, off, false
			}
			next, off = ip[off], off+8
		default:
			return next, off, off <= len(ip)
		}
	}
	return next, off, false
}

// fixup6 aims an IPv6 datagram at the server (unless it is for a group: NDP and
// all-nodes stay as they are) and repairs the TCP or ICMPv6 checksum after its extension
// headers.
func fixup6(b []byte, rebase func(header.TCP)) {
	if len(b) < header.IPv6Len {
		return
	}
	copy(b[8:24], fuzzPeer6.AsSlice())
	if b[24] != 0xff {
		copy(b[24:40], fuzzServer6.Addr().AsSlice())
	}
	ip, err := header.ParseIPv6(b)
	if err != nil {
		return
	}
	next, off, ok := lastHeader(ip)
	if !ok {
		return
	}
	switch next {
	case header.ProtoTCP:
		if t, err := header.ParseTCP(ip[off:]); err == nil {
			if rebase != nil {
				rebase(t)
			}
			t.SetChecksumIPv6(ip.Src(), ip.Dst())
		}
	case header.ProtoICMPv6:
		if len(ip)-off >= header.ICMPv6MinLen {
			header.SetICMPv6Checksum(ip[off:], ip.Src(), ip.Dst())
		}
	}
}

// classify6 is classify for an IPv6 datagram that reached IP.
func classify6(b []byte) expectation {
	ip, err := header.ParseIPv6(b)
	if err != nil {
		return expectation{ip: true, v6: true}
	}
	next, off, ok := lastHeader(ip)
	if !ok {
		return expectation{ip: true, v6: true}
	}
	exp := expectation{v6: true, noNext: next == header.ProtoNoNext}
	if next == header.ProtoTCP {
		t, err := header.ParseTCP(ip[off:])
		exp.tcpBad = err != nil || !t.ChecksumValidIPv6(ip.Src(), ip.Dst())
	}
	return exp
}

// ip6Seeds are IPv6 datagrams (no Ethernet header) that reach every part of IPv6 input:
// TCP SYN, echo request, solicitation and advertisement, Packet Too Big quoting a flow,
// each extension header, routing type 0, a fragment, a jumbo option.
func ip6Seeds() [][]byte {
	srv, peer := fuzzServer6.Addr().As16(), fuzzPeer6.As16()
	dg := func(dst [16]byte, hop, next uint8, payload []byte) []byte {
		b := make([]byte, header.IPv6Len+len(payload))
		header.EncodeIPv6(b, uint16(len(payload)), next, hop, peer, dst)
		copy(b[header.IPv6Len:], payload)
		fixup6(b, nil)
		return b
	}
	o := header.TCPOptions{MSS: 1440, WScale: 7, SACKPermitted: true, TS: true, TSVal: 1}
	syn := make([]byte, 20+o.EncodedLen())
	hl, _ := header.PutTCPHeader(syn, 40000, capturePort, 1000, 0, header.TCPFlagSYN, 64240, &o)
	syn = syn[:hl]
	ns := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
	header.PutNDP(ns, header.ICMPv6NeighSolicit, 0, srv, header.MAC{2, 0, 0, 0, 0, 2})
	na := make([]byte, header.NDPMsgLen+header.NDPLinkAddrLen)
	header.PutNDP(na, header.ICMPv6NeighAdvert, header.NDPFlagSolicited|header.NDPFlagOverride, peer, header.MAC{2, 0, 0, 0, 0, 2})
	quoted := make([]byte, header.IPv6Len+len(syn))
	header.EncodeIPv6(quoted, uint16(len(syn)), header.ProtoTCP, 64, srv, peer)
	copy(quoted[header.IPv6Len:], syn)
	binary.BigEndian.PutUint16(quoted[header.IPv6Len:], capturePort)
	binary.BigEndian.PutUint16(quoted[header.IPv6Len+2:], 40000)
	ptb := append([]byte{header.ICMPv6PacketTooBig, 0, 0, 0, 0, 0, 5, 0}, quoted...)
	ext := func(next uint8, body []byte) []byte { return append([]byte{next, 0}, body...) }
	return [][]byte{
		dg(srv, 64, header.ProtoTCP, syn),
		dg(srv, 64, header.ProtoICMPv6, []byte{header.ICMPv6EchoRequest, 0, 0, 0, 0, 1, 0, 1, 'x'}),
		dg(header.SolicitedNode(srv), 255, header.ProtoICMPv6, ns),
		dg(srv, 255, header.ProtoICMPv6, na),
		dg(srv, 64, header.ProtoICMPv6, ptb),
		dg(srv, 64, header.ProtoHopByHop, append(ext(header.ProtoDstOpts, []byte{5, 2, 0, 0, 1, 0}), append(ext(header.ProtoTCP, []byte{1, 4, 0, 0, 0, 0}), syn...)...)),
		dg(srv, 64, header.ProtoRouting, append([]byte{header.ProtoTCP, 2, 0, 1, 0, 0, 0, 0}, append(make([]byte, 16), syn...)...)),
		dg(srv, 64, header.ProtoFragment, append([]byte{header.ProtoTCP, 0, 0, 0, 0, 0, 0, 1}, syn...)),
		dg(srv, 64, header.ProtoFragment, append([]byte{header.ProtoTCP, 0, 0, 9, 0, 0, 0, 1}, syn...)),
		dg(srv, 64, header.ProtoHopByHop, append(ext(header.ProtoTCP, []byte{0xc2, 4, 0, 1, 0, 0}), syn...)),
		dg(srv, 64, header.ProtoNoNext, nil),
	}
}

// FuzzIPv6 feeds IPv6 datagrams with extension headers, ICMPv6 and neighbour discovery to
// the receive path. Input: a settings byte (as FuzzReceivePath's), then records of [flags,
// clock step, length(2), datagram]; flags 1 aims the datagram at the stack and fixes its
// upper-layer checksum, 2 sends it to the Ethernet group of its destination instead of
// our MAC. Every datagram is accounted for under an Ip6 counter, nothing panics, and the
// invariants of FuzzReceivePath hold.
func FuzzIPv6(f *testing.F) {
	for i, d := range ip6Seeds() {
		f.Add(append([]byte{byte(i * 37)}, record(byte(1+2*(i%2)), byte(i), d)...))
	}
	var all []byte
	for _, d := range ip6Seeds() {
		all = append(all, record(1, 40, d)...)
	}
	f.Add(append([]byte{0x80}, all...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		r := newRig(t, data[0])
		defer r.srv.Close()
		data = data[1:]
		for frames := 0; len(data) >= 4 && frames < 64; frames++ {
			flags, step := data[0], data[1]
			n := min(int(binary.BigEndian.Uint16(data[2:4])), len(data)-4)
			dgram := data[4 : 4+n]
			data = data[4+n:]
			frame := make([]byte, header.EthernetLen+len(dgram))
			dmac := r.smac
			if flags&2 != 0 && len(dgram) >= header.IPv6Len {
				dmac = header.IPv6MulticastMAC([16]byte(dgram[24:40]))
			}
			header.EncodeEthernet(frame, dmac, r.peer.MAC(), header.EtherTypeIPv6)
			copy(frame[header.EthernetLen:], dgram)
			if flags&1 != 0 {
				fixup6(frame[header.EthernetLen:], nil)
			}
			before := r.srv.Counters()
			sent := r.inject(frame, false, false)
			r.srv.Poll()
			r.drain()
			after := r.srv.Counters()
			if sent {
				r.check(t, &before, &after, frame)
				require.Equal(t, uint64(1), delta(&before, &after, stats.Ip6InReceives), "an IPv6 frame for us reaches IPv6")
			}
			r.vc.Advance(time.Duration(step) * time.Duration(step) * 2 * time.Millisecond)
			r.srv.Poll()
			r.drain()
		}
	})
}

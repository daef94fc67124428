package fuzz

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
	"github.com/shardstack/shardstack/pkg/tcp"
)

var fuzzRouter = netip.MustParseAddr("198.18.0.254")

// icmpRig is a server stack with one accepted connection that has a stream in flight to
// the raw peer, fed ICMP messages from a router. Every data segment the stack sends is
// checked against the stream, so a scoreboard cut wrong by a path MTU change shows.
type icmpRig struct {
	vc     *clock.Virtual
	srv    *stack.Stack
	peer   *dpdkshim.MemPort
	smac   header.MAC
	h      tcp.Handle
	iss    uint32
	una    uint32 // the peer's cumulative ACK, relative to iss+1
	stream []byte
	sent   [][]byte // the data frames the stack sent, latest last (what quotes are made of)
	rx     []*dpdkshim.Packet
}

const icmpFuzzSport = 40000

func fuzzStream(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i>>9)
	}
	return b
}

func (r *icmpRig) peerSeg(seq, ack uint32, flags uint8, o *header.TCPOptions) []byte {
	tl := header.TCPMinLen
	if o != nil {
		tl += o.EncodedLen()
	}
	b := make([]byte, header.EthernetLen+header.IPv4MinLen+tl)
	header.EncodeEthernet(b, r.smac, r.peer.MAC(), header.EtherTypeIPv4)
	src, dst := fuzzPeer.As4(), fuzzServer.Addr().As4()
	header.PutIPv4Header(b[header.EthernetLen:], uint16(header.IPv4MinLen+tl), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	t := b[header.EthernetLen+header.IPv4MinLen:]
	hl, sum := header.PutTCPHeader(t, icmpFuzzSport, 80, seq, ack, flags, 65535, o)
	header.FinishTCPChecksumIPv4(header.TCP(t), hl, sum, src, dst)
	return b
}

func (r *icmpRig) send(frame []byte) {
	p := r.peer.Pool(0).Get()
	if p == nil {
		return
	}
	if !p.SetData(frame) || r.peer.TxBurst(0, []*dpdkshim.Packet{p}) == 0 {
		p.Free()
	}
}

func (r *icmpRig) poll() {
	for i := 0; i < 100 && r.srv.Poll() != 0; i++ {
	}
}

// drain takes what the stack sent, checks its data against the stream and keeps the data
// frames for quoting.
func (r *icmpRig) drain(t testing.TB) (synAck header.TCP) {
	for q := 0; q < r.peer.NumQueues(); q++ {
		for n := r.peer.RxBurst(q, r.rx); n > 0; n = r.peer.RxBurst(q, r.rx) {
			for _, p := range r.rx[:n] {
				f := append([]byte(nil), p.Data()...)
				p.Free()
				seg, ok := simnet.TCPOf(f)
				if !ok {
					continue
				}
				if seg.Flags()&(header.TCPFlagSYN|header.TCPFlagACK) == header.TCPFlagSYN|header.TCPFlagACK {
					synAck = seg
					continue
				}
				if pl := seg.Payload(); len(pl) > 0 && r.stream != nil {
					off := seg.Seq() - (r.iss + 1)
					require.LessOrEqual(t, int(off)+len(pl), len(r.stream), "data beyond the stream")
					require.Equal(t, r.stream[off:int(off)+len(pl)], pl, "stream bytes at %d", off)
					r.sent = append(r.sent, f)
					if len(r.sent) > 64 {
						r.sent = r.sent[1:]
					}
				}
			}
		}
	}
	return synAck
}

// newICMPRig: sel bit 0 offers timestamps, bit 1 SACK, bit 7 two shards on a link that
// cannot steer (errors are handed between shards).
func newICMPRig(t testing.TB, sel byte) *icmpRig {
	shards := 1 + int(sel>>7)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: shards, ByTxQueue: shards > 1, RingSize: 256, Pool: dpdkshim.PoolConfig{Size: 64, Max: 512}})
	vc := clock.NewVirtual(1)
	srv, err := stack.New(stack.Config{
		Port: ps, Addr: fuzzServer, Shards: shards, Clock: vc, Manual: true, Seed: 7, Gateway: fuzzRouter,
		StaticNeighbours: map[netip.Addr][6]byte{fuzzPeer: pc.MAC(), fuzzRouter: pc.MAC()},
		ICMP:             stack.ICMPSettings{Ratelimit: -1, Ratemask: -1},
	})
	require.NoError(t, err)
	l, err := srv.Listen(":80", 8)
	require.NoError(t, err)
	r := &icmpRig{vc: vc, srv: srv, peer: pc, smac: ps.MAC(), rx: make([]*dpdkshim.Packet, 64)}
	o := header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: sel&2 != 0, TS: sel&1 != 0, TSVal: 1}
	r.send(r.peerSeg(1000, 0, header.TCPFlagSYN, &o))
	r.poll()
	sa := r.drain(t)
	require.NotNil(t, sa)
	r.iss = sa.Seq()
	var ack *header.TCPOptions
	if o.TS {
		ack = &header.TCPOptions{WScale: -1, TS: true, TSVal: 2, TSEcr: sa.Seq()} // the echo is not checked
	}
	r.send(r.peerSeg(1001, r.iss+1, header.TCPFlagACK, ack))
	r.poll()
	r.h, err = l.TryAcceptHandle()
	require.NoError(t, err)
	r.stream = fuzzStream(12000)
	n, err := r.h.TryWrite(r.stream)
	require.NoError(t, err)
	require.Equal(t, len(r.stream), n)
	r.poll()
	return r
}

// icmpDatagram wraps msg in an IPv4 datagram from the router to the stack.
func (r *icmpRig) icmpDatagram(msg []byte, bcast bool) []byte {
	b := make([]byte, header.EthernetLen+header.IPv4MinLen+len(msg))
	dmac, dst := r.smac, fuzzServer.Addr().As4()
	if bcast {
		dmac, dst = header.Broadcast, [4]byte{198, 18, 0, 255}
	}
	header.EncodeEthernet(b, dmac, r.peer.MAC(), header.EtherTypeIPv4)
	header.EncodeIPv4(b[header.EthernetLen:], &header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinLen + len(msg)), TTL: 64, Protocol: header.ProtoICMP,
		Src: fuzzRouter.As4(), Dst: dst,
	})
	copy(b[header.EthernetLen+header.IPv4MinLen:], msg)
	return b
}

// FuzzICMPv4 feeds ICMP messages to a stack whose one connection has data in flight. Input:
// a settings byte (newICMPRig), then records of [flags, step, length(2), message]; flags 1
// fixes the ICMP checksum, 2 replaces what follows the 8-byte header with the quote (IP
// header and 8 + 4*(flags>>4) bytes) of one of the stack's recent data segments, so that
// errors reach the connection, 4 has the peer acknowledge some data first, 8 sends the
// message to the subnet's broadcast address. Every message must be counted once as
// IcmpInMsgs, nothing may panic, and at the end the peer acknowledging everything must
// receive the stream intact.
func FuzzICMPv4(f *testing.F) {
	hdr := func(typ, code uint8, rest uint32) []byte {
		m := make([]byte, 8)
		m[0], m[1] = typ, code
		binary.BigEndian.PutUint32(m[4:], rest)
		return m
	}
	rec := func(flags, step byte, msg []byte) []byte {
		b := []byte{flags, step, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(len(msg)))
		return append(b, msg...)
	}
	cat := func(sel byte, recs ...[]byte) []byte {
		out := []byte{sel}
		for _, r := range recs {
			out = append(out, r...)
		}
		return out
	}
	echo := append(hdr(header.ICMPv4Echo, 0, 0x00010001), "ping"...)
	frag := hdr(header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1280)
	f.Add(cat(0, rec(1, 0, echo)))
	f.Add(cat(3, rec(3, 0, frag), rec(7, 5, frag), rec(3, 20, hdr(header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 600))))
	f.Add(cat(2, rec(3, 0, hdr(header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 0)), rec(0x33, 30, hdr(header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0))))
	f.Add(cat(0x82, rec(3, 1, frag), rec(3, 40, hdr(header.ICMPv4DestUnreach, header.ICMPv4NetUnreach, 0))))
	f.Add(cat(1, rec(3, 2, hdr(header.ICMPv4ParamProblem, 0, 0)), rec(3, 2, hdr(header.ICMPv4TimeExceeded, 0, 0)),
		rec(3, 2, hdr(header.ICMPv4SourceQuench, 0, 0)), rec(3, 2, hdr(header.ICMPv4Redirect, 1, 0x0a000001))))
	f.Add(cat(0, rec(1, 0, append(frag, 0x45, 0, 0)), rec(1, 0, append(frag, make([]byte, 24)...)), rec(0, 0, echo), rec(9, 0, echo)))
	f.Add(cat(0, rec(1, 0, hdr(200, 0, 0)), rec(1, 0, []byte{8, 0}), rec(3, 0, hdr(header.ICMPv4DestUnreach, 3, 0))))

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		r := newICMPRig(t, data[0])
		defer r.srv.Close()
		data = data[1:]
		for msgs := 0; len(data) >= 4 && msgs < 32; msgs++ {
			flags, step := data[0], data[1]
			n := min(int(binary.BigEndian.Uint16(data[2:4])), len(data)-4, 1400) // one frame
			msg := append([]byte(nil), data[4:4+n]...)
			data = data[4+n:]
			if flags&4 != 0 {
				r.una = min(r.una+uint32(step)*97, uint32(len(r.stream)))
				r.send(r.peerSeg(1001, r.iss+1+r.una, header.TCPFlagACK, nil))
				r.poll()
				r.drain(t)
			}
			if flags&2 != 0 && len(msg) >= 8 && len(r.sent) > 0 {
				fr := r.sent[len(r.sent)-1-int(step)%len(r.sent)]
				ip := fr[header.EthernetLen:]
				q := ip[:min(len(ip), int(ip[0]&0xf)*4+8+4*int(flags>>4))]
				msg = append(msg[:8], q...)
			}
			if flags&1 != 0 && len(msg) >= header.ICMPv4Len {
				header.PutICMPv4(msg, msg[0], msg[1], binary.BigEndian.Uint32(msg[4:]))
			}
			before := r.srv.Counters()
			r.send(r.icmpDatagram(msg, flags&8 != 0))
			r.poll()
			r.drain(t)
			after := r.srv.Counters()
			require.Equal(t, uint64(1), after[stats.IcmpInMsgs]-before[stats.IcmpInMsgs], "each message counted once")
			require.Equal(t, uint64(1), after[stats.IpInDelivers]-before[stats.IpInDelivers])
			r.vc.Advance(time.Duration(step) * time.Duration(step) * time.Millisecond)
			r.poll()
			r.drain(t)
		}
		// The peer now acknowledges everything it gets, in order: the stream must arrive
		// whole (or the connection must have ended with an error).
		for i := 0; i < 2000 && int(r.una) < len(r.stream); i++ {
			r.send(r.peerSeg(1001, r.iss+1+r.una, header.TCPFlagACK, nil))
			r.poll()
			got := r.sent
			r.sent = nil
			r.drain(t)
			for _, fr := range r.sent {
				seg, _ := simnet.TCPOf(fr)
				off := seg.Seq() - (r.iss + 1)
				if end := off + uint32(len(seg.Payload())); off <= r.una && end > r.una {
					r.una = end
				}
			}
			r.sent = append(got, r.sent...)
			if st := r.h.State(); st == tcp.StateClosed {
				require.Error(t, r.h.Err(), "closed without an error")
				return
			}
			if next, ok := r.srv.NextDeadline(); ok {
				r.vc.Set(max(next, r.vc.Now()))
			}
		}
		if r.h.State() != tcp.StateClosed {
			require.Equal(t, len(r.stream), int(r.una), "the stream did not complete")
		}
	})
}

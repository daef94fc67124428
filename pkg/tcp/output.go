package tcp

import (
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// emit builds one segment into a fresh transmit packet and hands it to the stack. Payload,
// when n > 0, is copied straight from a send ring at absolute position pos. It reports
// whether the segment left (a pool exhausted under load loses it, like a failed alloc_skb:
// the stack counts tx_no_buffer and the caller's timer sends it again).
func (s *shard) emit(k *hash.Key, h uint64, seq, ack seqnum.Value, flags uint8,
	wnd uint16, opts *header.TCPOptions, ring *byteRing, pos uint64, n int) bool {
	pkt := s.env.NewPacket()
	if pkt == nil {
		return false
	}
	lport, rport := k.LocalPort, k.RemotePort
	hl := header.TCPMinLen
	if opts != nil {
		hl += opts.EncodedLen()
	}
	b := pkt.Append(hl + n)
	if b == nil {
		pkt.Free()
		return false
	}
	hl, sum := header.PutTCPHeader(b, lport, rport, uint32(seq), uint32(ack), flags, wnd, opts)
	if n > 0 {
		ring.peek(pos, b[hl:hl+n])
	}
	switch {
	case s.eng.txCsum:
		// The link completes the checksum over the segment (Linux CHECKSUM_PARTIAL).
		if k.V6 {
			header.PartialTCPChecksumIPv6(header.TCP(b), k.LocalAddr, k.RemoteAddr)
		} else {
			header.PartialTCPChecksumIPv4(header.TCP(b), [4]byte(k.LocalAddr[:4]), [4]byte(k.RemoteAddr[:4]))
		}
		pkt.SetTxCsum(0, header.TCPChecksumOffset)
	case k.V6:
		header.FinishTCPChecksumIPv6(header.TCP(b), hl, sum, k.LocalAddr, k.RemoteAddr)
	default:
		header.FinishTCPChecksumIPv4(header.TCP(b), hl, sum, [4]byte(k.LocalAddr[:4]), [4]byte(k.RemoteAddr[:4]))
	}
	s.ctr.Inc(stats.TcpOutSegs)
	if flags&header.TCPFlagRST != 0 {
		s.ctr.Inc(stats.TcpOutRsts)
	}
	if s.eng.pmtu.mayFragment(k, s.now) {
		pkt.Flags |= dpdkshim.MayFragment
	}
	s.env.Output(pkt, k)
	return true
}

// checksumValid checks a received segment's checksum with the pseudo-header of its family.
func checksumValid(t header.TCP, k *hash.Key) bool {
	if k.V6 {
		return t.ChecksumValidIPv6(k.RemoteAddr, k.LocalAddr)
	}
	return t.ChecksumValidIPv4([4]byte(k.RemoteAddr[:4]), [4]byte(k.LocalAddr[:4]))
}

// sendRST sends a bare reset for a flow key. With ackIt, it is RST|ACK acknowledging ack.
func (s *shard) sendRST(k *hash.Key, h uint64, seq, ack seqnum.Value, ackIt bool) {
	flags := header.TCPFlagRST
	if ackIt {
		flags |= header.TCPFlagACK
	}
	s.emit(k, h, seq, ack, flags, 0, nil, nil, 0, 0)
}

// sendResetFor answers a segment that has no connection (RFC 9293 §3.10.7.1): never a reset
// for a reset; if it had an ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func (s *shard) sendResetFor(sg *segment) {
	if sg.rst() {
		return
	}
	if sg.ackf() {
		s.sendRST(&sg.key, sg.hash, sg.ack, 0, false)
		return
	}
	s.sendRST(&sg.key, sg.hash, 0, sg.end(), true)
}

// tsOptions fills the shard's option scratch with a timestamp for an established flow.
func (s *shard) tsOptions(tsOff, tsRecent uint32) *header.TCPOptions {
	out := &s.outOpts
	*out = header.TCPOptions{WScale: -1, TS: true, TSVal: tsNow(s.now) + tsOff, TSEcr: tsRecent}
	return out
}

// rcvWindow returns the window field to advertise and records the right edge (RFC 9293
// §3.8.6.2.2: the right edge never moves left).
func (s *shard) rcvWindow(ep *endpoint) uint16 {
	space := uint32(ep.rcv.space())
	if capa := uint32(ep.rcv.capacity()); space < capa/2 && space < uint32(ep.mss) {
		// Receiver silly-window avoidance (RFC 9293 §3.8.6.2.2, Linux __tcp_select_window):
		// no window of less than a segment while the buffer is more than half full.
		space = 0
	}
	if edge := ep.rcvAdv; ep.rcvNxt.LessThan(edge) {
		if held := edge.Sub(ep.rcvNxt); held > space {
			space = held
		}
	}
	w := space >> ep.rcvWscale
	if w > 0xffff {
		w = 0xffff
	}
	adv := w << ep.rcvWscale
	ep.rcvAdv = ep.rcvNxt.Add(adv)
	ep.advWnd.Store(adv)
	return uint16(w)
}

// sendAck sends a pure ACK for an endpoint now.
func (s *shard) sendAck(ep *endpoint) {
	s.sendFlags(ep, ep.sndNxt, header.TCPFlagACK)
}

func (s *shard) sendFlags(ep *endpoint, seq seqnum.Value, flags uint8) {
	var opts *header.TCPOptions
	if ep.tsOK {
		opts = s.tsOptions(ep.tsOff, ep.tsRecent)
	}
	if ep.sackOK && (ep.nOOO > 0 || ep.dsackSet) {
		if opts == nil {
			opts = &s.outOpts
			*opts = header.TCPOptions{WScale: -1}
		}
		ep.sackOptions(opts)
	}
	wnd := s.rcvWindow(ep)
	s.emit(&ep.key, ep.hash, seq, ep.rcvNxt, flags, wnd, opts, nil, 0, 0)
	s.ackSent(ep)
}

// ackSent clears the delayed-ACK state after any segment that carried our ACK.
func (s *shard) ackSent(ep *endpoint) {
	ep.ackNow = false
	ep.delack = 0
	if ep.pushed != 0 {
		ep.pushed = 0
		ep.pushedAck.Store(false)
	}
	if ep.ack.Pending() {
		s.wheel.Cancel(&ep.ack)
	}
}

// synOptions fills the scratch options for a SYN or SYN-ACK in Linux's layout.
func (s *shard) synOptions(mss uint16, wscale int8, sack, ts bool, tsVal, tsEcr uint32) *header.TCPOptions {
	out := &s.outOpts
	*out = header.TCPOptions{MSS: mss, WScale: wscale, SACKPermitted: sack, TS: ts}
	if ts {
		out.TSVal, out.TSEcr = tsVal, tsEcr
	}
	return out
}

// sendSyn sends (or resends) the SYN of an active open.
func (s *shard) sendSyn(ep *endpoint) bool {
	st := &s.eng.settings
	ws := int8(-1)
	if !st.TCPWindowScalingOff {
		ws = int8(s.ourWScale())
	}
	opts := s.synOptions(s.synMSS(&ep.key), ws, !st.TCPSackOff, !st.TCPTimestampsOff, tsNow(s.now)+ep.tsOff, 0)
	return s.emit(&ep.key, ep.hash, ep.iss, 0, header.TCPFlagSYN, s.synWindow(s.eng.mssFor(ep.key.V6), false), opts, nil, 0, 0)
}

// sendSynAck sends the SYN-ACK of a simultaneous open (our original ISN, RFC 9293 §3.5).
func (s *shard) sendSynAckEndpoint(ep *endpoint) {
	ws := int8(-1)
	if ep.sndWscale > 0 || ep.rcvWscale > 0 {
		ws = int8(ep.rcvWscale)
	}
	mss := s.eng.mssFor(ep.key.V6)
	opts := s.synOptions(uint16(mss), ws, ep.sackOK, ep.tsOK, tsNow(s.now)+ep.tsOff, ep.tsRecent)
	s.emit(&ep.key, ep.hash, ep.iss, ep.rcvNxt,
		header.TCPFlagSYN|header.TCPFlagACK, s.synWindow(mss, ep.tsOK), opts, nil, 0, 0)
	s.ackSent(ep)
}

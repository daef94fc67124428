package fuzz

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
)

// patPeer is the byte the peer sends at offset o of its stream, and patApp the byte the
// stack's application writes at offset o of its own: functions of the offset alone, so that
// a retransmission, an overlap or a segment at any fuzzed sequence number carries the bytes
// a real sender would have had there, and whatever a receiver delivers can be checked.
func patPeer(o uint32) byte { return byte(o*31 + o>>8 + 7) }

func patApp(o uint32) byte { return byte(o*17 + o>>9 + 0x5a) }

// span is a half-open range [lo, hi) of offsets in a sequence space.
type span struct{ lo, hi uint32 }

// spans is a sorted set of disjoint, non-adjacent spans: what the peer has put on the wire,
// as offsets from its ISS (0 is the SYN), or from a cookie child's IRS (see peer.rebase).
type spans []span

// add records n offsets from lo, read as signed: what lies before offset 0 (a segment that
// starts before the ISS) or 2^31 or more past it (the wrap-around and far-away segments) is
// not sequence space the peer could have meant, and is left out.
func (s *spans) add(from, n uint32) {
	start := int64(int32(from))
	end := min(start+int64(n), 1<<31)
	start = max(start, 0)
	if end <= start {
		return
	}
	lo, hi := uint32(start), uint32(end)
	out := (*s)[:0:0]
	placed := false
	for _, x := range *s {
		switch {
		case x.hi < lo:
			out = append(out, x)
		case hi < x.lo:
			if !placed {
				out = append(out, span{lo, hi})
				placed = true
			}
			out = append(out, x)
		default:
			lo, hi = min(lo, x.lo), max(hi, x.hi)
		}
	}
	if !placed {
		out = append(out, span{lo, hi})
	}
	*s = out
}

// covers reports whether one span holds all of [lo, lo+n).
func (s spans) covers(lo, n uint32) bool {
	for _, x := range s {
		if x.lo <= lo && uint64(lo)+uint64(n) <= uint64(x.hi) {
			return true
		}
	}
	return false
}

// prefix is the end of the contiguous run from offset 0: the most any receiver could have
// acknowledged.
func (s spans) prefix() uint32 {
	if len(s) == 0 || s[0].lo != 0 {
		return 0
	}
	return s[0].hi
}

// synSent is a SYN (or SYN-ACK) the peer sent: its sequence number and options.
type synSent struct {
	seq  seqnum.Value
	opts header.TCPOptions
}

// peer is the scripted end of FuzzConnection's flow. It does not run TCP: the script says
// what it sends, with sequence and acknowledgment numbers taken from the state below, and
// it keeps that state from what it sent and what the stack sent back. Its view of the
// stack's sequence space is what a receiver learns from the wire.
type peer struct {
	port, sport uint16 // the peer's port and the stack's

	// The peer's own sequence space.
	iss     seqnum.Value // the ISS of the SYN the stack acknowledged (the origin of its stream's bytes)
	base    seqnum.Value // where the offsets of sent and wire start: iss, or a SYN cookie child's IRS
	synced  bool         // the stack has acknowledged one of the peer's SYNs
	syns    []synSent    // SYNs sent, newest last (a few)
	sndNxt  seqnum.Value // the next new sequence number
	sent    spans        // what the peer has sent, as offsets from base
	wire    spans        // the payload bytes the peer has put on the wire, as wireOff offsets
	payload []seqRange   // the payload of each segment the peer sent (the latest maxPayloads)
	finSent bool
	sndUna  seqnum.Value // the highest acknowledgment the stack sent
	ackLo   seqnum.Value // the lowest acknowledgment the stack may send: base+1
	wnd     uint16       // the window field the peer advertises
	opts    synSent      // the SYN whose options are in force
	ws      uint8        // the peer's window shift, when both sides offered scaling
	ts      bool         // timestamps negotiated
	sack    bool         // SACK negotiated
	mss     int          // the largest payload the stack may send (the peer's MSS)
	tsBase  uint32
	ackPt   seqnum.Value // the acknowledgment the peer last sent

	// The stack's sequence space as the peer sees it.
	sISS   seqnum.Value
	sKnown bool
	rcvNxt seqnum.Value // the next in-order byte of the stack's
	sHigh  seqnum.Value // the end of the highest segment the stack sent
	sWS    uint8        // the stack's window shift
	sWnd   uint32       // the stack's last window, scaled
	sTSval uint32
	sOpts  header.TCPOptions     // the options of the stack's last SYN or SYN-ACK
	edge   uint32                // the right edge of the largest window the peer offered, as an offset from sISS
	ackMax uint32                // the largest acknowledgment the peer gave, as an offset from sISS
	acks   map[seqnum.Value]bool // every acknowledgment the peer gave in this sequence space
	// ooo is the stack's data the peer holds above rcvNxt (a receiver's out-of-order
	// queue), the most recently received first: its SACK blocks (RFC 2018 §4).
	ooo []seqRange
	// dsack is a duplicate the peer received, for the first block of its next ACK (RFC
	// 2883 §4; n == 0: none).
	dsack seqRange
	// sackTaken are SACK blocks the stack took on an ACK it cannot have dropped (see
	// noteSACK), the latest last: it marks the segments of its own that a block covers
	// whole, and resends none of them before a retransmission timeout.
	sackTaken []seqRange
	oooNew    bool // the last segment received went to ooo: ACK it at once (RFC 5681 §4.2)
	// edgeUnknown: the stack may scale the peer's windows by a shift the peer cannot know
	// (a SYN cookie decoded from a timestamp echo the script changed), so edge bounds nothing.
	edgeUnknown bool

	reflex bool // answer like an RFC 9293 TCP: ACK what arrives, ACK what cannot be accepted
	coop   bool // the final phase: finish the close
	silent bool // the final phase: ignore everything
	lose   int  // frames of the flow still to lose (never seen by the peer)
}

// newIncarnation starts the peer's side of a new connection on the flow: the stack has
// acknowledged the SYN with sequence number iss, which offered opts.
func (p *peer) newIncarnation(iss seqnum.Value, opts header.TCPOptions) {
	p.iss, p.base, p.synced = iss, iss, true
	p.sndNxt, p.sndUna, p.ackLo, p.finSent = iss.Add(1), iss.Add(1), iss.Add(1), false
	p.sent = spans{{0, 1}}
	p.wire, p.payload = nil, nil
	p.opts = synSent{iss, opts}
}

// wireOff is a sequence number of the peer's as an offset into wire: from 2^31 - 2^20
// before base, so that wire holds the payload of any segment the peer sent from there
// to 2^20 past it (more than a script sends), and sequence numbers far below the stream
// (which a receiver may still report as duplicates) too.
func (p *peer) wireOff(v seqnum.Value) uint32 { return v.Sub(p.base) + (1<<31 - 1<<20) }

// rebase moves the peer's sequence frame to irs, the IRS of a SYN cookie's child that the
// cookie ACK in made: Linux's cookie_v4_check takes the peer's ISN from the ACK's SEG.SEQ-1,
// whatever it is (the cookie is checked against that number, so an ACK whose sequence and
// acknowledgment numbers are both shifted by the same amount passes), and the child's
// stream goes on from there, even 2^31 away from the ISS the peer's SYN had. What the peer
// sent before keeps its place in the sequence space, but the SYN's own number is no byte
// of the child's stream; the ACK (and any payload on it) is the child's first.
func (p *peer) rebase(irs seqnum.Value, in *tseg) {
	old := p.sent
	delta := irs.Sub(p.base)
	p.base, p.ackLo = irs, irs.Add(1)
	p.sent = nil
	p.sent.add(0, 1+in.seqLen())
	for _, x := range old {
		if lo := max(x.lo, 1); lo < x.hi {
			p.sent.add(lo-delta, x.hi-lo)
		}
	}
	p.wire = nil
	for _, r := range p.payload {
		p.wire.add(p.wireOff(r.start), r.n)
	}
	if p.sndNxt.LessThanEq(in.seq) {
		// The child's stream starts at the ACK: a FIN the peer sent below it belonged to
		// an earlier child, and ended nothing of this one.
		p.sndNxt, p.finSent = in.end(), in.fin()
	}
}

// seqRange is n sequence numbers from start.
type seqRange struct {
	start seqnum.Value
	n     uint32
}

// maxPayloads bounds the segments peer.payload remembers: more than a script sends.
const maxPayloads = 4096

// inOneSegment reports whether [lo, hi) lies within the payload of one segment the peer
// sent, wherever in the sequence space (a receiver's duplicate is part of one segment it got).
func (p *peer) inOneSegment(lo, hi seqnum.Value) bool {
	n := hi.Sub(lo)
	if n == 0 || n >= 1<<31 {
		return false
	}
	for _, r := range p.payload {
		if off := lo.Sub(r.start); off < r.n && n <= r.n-off {
			return true
		}
	}
	return false
}

// onWire reports whether the peer sent every byte of [lo, hi) as payload.
func (p *peer) onWire(lo, hi seqnum.Value) bool {
	return lo.LessThan(hi) && p.wire.covers(p.wireOff(lo), hi.Sub(lo))
}

// negotiate records what the stack's SYN or SYN-ACK (options so) agreed to, against the
// peer's offer.
func (p *peer) negotiate(so *header.TCPOptions) {
	o := &p.opts.opts
	p.ts = o.TS && so.TS
	p.sack = o.SACKPermitted && so.SACKPermitted
	p.ws, p.sWS = 0, 0
	if o.WScale >= 0 && so.WScale >= 0 {
		p.ws = uint8(min(o.WScale, 14))
		p.sWS = uint8(min(so.WScale, 14))
	}
	p.mss = peerMSSOf(o)
}

// peerMSSOf is the MSS the stack may use towards a peer that offered o, as pkg/tcp applies
// the RFC default and Linux's floor.
func peerMSSOf(o *header.TCPOptions) int {
	m := int(o.MSS)
	if m == 0 {
		m = header.TCPDefaultMSS
	}
	return min(max(m, 88), 1460)
}

// stackSyn starts the peer's view of a new stack sequence space at a SYN or SYN-ACK.
func (p *peer) stackSyn(seq seqnum.Value) {
	p.sISS, p.sKnown = seq, true
	p.rcvNxt, p.sHigh, p.edge, p.ackMax, p.edgeUnknown = seq.Add(1), seq.Add(1), 0, 1, false
	p.ackPt = p.rcvNxt
	p.acks = map[seqnum.Value]bool{}
	p.ooo, p.dsack, p.sackTaken = nil, seqRange{}, nil
}

// offset is a sequence number of the peer's as an offset from base.
func (p *peer) offset(v seqnum.Value) uint32 { return v.Sub(p.base) }

// rcvWindow is the peer's receive window in bytes.
func (p *peer) rcvWindow() uint32 { return uint32(p.wnd) << p.ws }

// recordSent notes a segment the peer put on the wire: the sequence space it covers, the
// window it offered the stack and the acknowledgment it gave.
func (p *peer) recordSent(s *tseg) {
	if s.syn() && !s.ackf() || s.syn() && s.ackf() && !p.synced {
		p.syns = append(p.syns, synSent{s.seq, s.opts})
		if len(p.syns) > 16 {
			p.syns = p.syns[1:]
		}
	}
	if p.synced && !s.rst() && len(s.payload) > 0 {
		p.wire.add(p.wireOff(s.dataSeq()), uint32(len(s.payload)))
		if len(p.payload) == maxPayloads {
			p.payload = append(p.payload[:0], p.payload[1:]...)
		}
		p.payload = append(p.payload, seqRange{s.dataSeq(), uint32(len(s.payload))})
	}
	if p.synced && !s.syn() {
		p.sent.add(p.offset(s.seq), s.seqLen())
		// The FIN ends the peer's stream: what it sends after it (a hostile script can) is
		// sequence space on the wire, but no part of the stream it retransmits or waits to
		// see acknowledged.
		if s.seq == p.sndNxt && !p.finSent {
			p.sndNxt = s.end()
			if s.fin() {
				p.finSent = true
			}
		}
		if top := p.base.Add(p.sent.prefix()); !p.finSent && p.sndNxt.LessThan(top) {
			// Bytes the peer sent elsewhere now continue its stream (a segment across
			// SND.NXT, or one filling the hole below data it sent ahead): a receiver reads
			// them in order, so the peer's next byte, or its FIN, goes after them.
			p.sndNxt = top
		}
	}
	if s.ackf() && !s.rst() {
		p.ackPt = s.ack
		if p.sKnown {
			p.noteAck(s)
		}
	}
}

// noteAck records the acknowledgment and window of a segment of the peer's in the stack's
// current sequence space.
func (p *peer) noteAck(s *tseg) {
	p.acks[s.ack] = true
	// The stack applies a window from its own SND.UNA; a segment that acknowledges more
	// than the stack sent is dropped by it, window and all. Its SND.UNA is at most the
	// largest acknowledgment it accepted.
	a := s.ack.Sub(p.sISS)
	if high := p.sHigh.Sub(p.sISS); a <= high {
		p.ackMax = max(p.ackMax, a)
		w := uint32(s.wnd)
		if !s.syn() {
			w <<= p.ws
		}
		p.edge = max(p.edge, p.ackMax+w)
	}
}

// acceptable is RFC 9293 §3.10.7.4's test, from the peer's side: does a segment of the
// stack's fall in the window the peer last advertised?
func (p *peer) acceptable(s *tseg) bool {
	n := s.seqLen()
	w := p.rcvWindow()
	switch {
	case n == 0 && w == 0:
		return s.seq == p.ackPt
	case n == 0:
		return s.seq.InWindow(p.ackPt, w)
	case w == 0:
		return false
	default:
		return s.seq.InWindow(p.ackPt, w) || s.seq.Add(n-1).InWindow(p.ackPt, w)
	}
}

// receive takes in a segment of the stack's: in-order data within the peer's window, and a
// FIN after it. It reports whether anything new arrived.
func (p *peer) receive(s *tseg) bool {
	p.oooNew = false
	if !p.sKnown || s.rst() {
		return false
	}
	if end := s.end(); p.sHigh.LessThan(end) && end.Sub(p.sISS) < 1<<31 {
		p.sHigh = end
	}
	start := s.dataSeq()
	end := start.Add(uint32(len(s.payload)))
	limit := p.ackPt.Add(p.rcvWindow())
	to := end
	if limit.LessThan(to) {
		to = limit
	}
	got := false
	switch {
	case len(s.payload) == 0:
	case start.LessThan(p.rcvNxt):
		// Some or all of it arrived before: a D-SACK reports the duplicate part.
		dup := end
		if p.rcvNxt.LessThan(dup) {
			dup = p.rcvNxt
		}
		p.dsack = seqRange{start, dup.Sub(start)}
	case p.rcvNxt.LessThan(start) && start.LessThan(to) && to.Sub(p.sISS) < 1<<31:
		p.holdOOO(start, to)
		p.oooNew = true
	}
	if start.LessThanEq(p.rcvNxt) && p.rcvNxt.LessThan(to) {
		p.rcvNxt, got = to, true
	}
	if s.fin() && end == p.rcvNxt {
		p.rcvNxt, got = p.rcvNxt.Add(1), true
	}
	// What was held above the hole now follows in order.
	for moved := true; moved; {
		moved = false
		for i, q := range p.ooo {
			if q.start.LessThanEq(p.rcvNxt) {
				if qe := q.start.Add(q.n); p.rcvNxt.LessThan(qe) {
					p.rcvNxt, got = qe, true
				}
				p.ooo = append(p.ooo[:i:i], p.ooo[i+1:]...)
				moved = true
				break
			}
		}
	}
	return got
}

// holdOOO queues [start, end) of the stack's data above rcvNxt, merged with what it
// overlaps or touches, as the newest block.
func (p *peer) holdOOO(start, end seqnum.Value) {
	out := []seqRange{{}}
	for _, q := range p.ooo {
		qe := q.start.Add(q.n)
		if qe.LessThan(start) || end.LessThan(q.start) {
			out = append(out, q)
			continue
		}
		if q.start.LessThan(start) {
			start = q.start
		}
		if end.LessThan(qe) {
			end = qe
		}
	}
	out[0] = seqRange{start, end.Sub(start)}
	p.ooo = out
}

// sackBlocks fills the SACK option of the peer's ACK, if SACK was agreed: the duplicate
// first, then the out-of-order blocks, newest first, as many as fit beside timestamps.
func (p *peer) sackBlocks(o *header.TCPOptions) {
	if !p.sack {
		return
	}
	room := 4
	if o.TS {
		room = 3
	}
	if p.dsack.n > 0 {
		o.SACK[o.NumSACK] = header.SACKBlock{Start: uint32(p.dsack.start), End: uint32(p.dsack.start.Add(p.dsack.n))}
		o.NumSACK++
		p.dsack = seqRange{}
	}
	for _, q := range p.ooo {
		if int(o.NumSACK) == room {
			break
		}
		o.SACK[o.NumSACK] = header.SACKBlock{Start: uint32(q.start), End: uint32(q.start.Add(q.n))}
		o.NumSACK++
	}
}

// maxSackTaken bounds peer.sackTaken.
const maxSackTaken = 256

// noteSACK records the SACK blocks of a segment the peer sends (at nowMs) that the stack
// must take as Linux's tcp_sacktag_write_queue does: a bare ACK at the sequence number the
// stack acknowledged last, with everything the peer sent acknowledged (so it is in the
// window), the peer's current timestamp (so PAWS passes), and the highest acknowledgment
// the peer gave (so it is no old ACK); its blocks must start above that acknowledgment
// (tcp_is_sackblock_valid: after SND.UNA) and end within what the stack sent, and a first
// block below the ACK or inside the second is a D-SACK, which marks nothing.
func (p *peer) noteSACK(s *tseg, nowMs uint32) {
	o := &s.opts
	if o.NumSACK == 0 || !p.sack || p.edgeUnknown || !p.synced || !p.sKnown || s.flags != header.TCPFlagACK ||
		len(s.payload) > 0 || s.rawOpts != nil || o.MSS != 0 || o.WScale >= 0 || o.SACKPermitted ||
		s.seq != p.sndNxt || p.sndUna != p.sndNxt || o.TS != p.ts || (p.ts && o.TSVal != p.tsBase+nowMs) {
		return
	}
	a, high := s.ack.Sub(p.sISS), p.sHigh.Sub(p.sISS)
	if a < p.ackMax || a > high {
		return
	}
	for i := 0; i < int(o.NumSACK); i++ {
		lo, hi := seqnum.Value(o.SACK[i].Start), seqnum.Value(o.SACK[i].End)
		if i == 0 && (hi.LessThanEq(s.ack) || o.NumSACK > 1 && seqnum.Value(o.SACK[1].Start).LessThanEq(lo) && hi.LessThanEq(seqnum.Value(o.SACK[1].End))) {
			continue
		}
		if !s.ack.LessThan(lo) || !lo.LessThan(hi) || hi.Sub(p.sISS) > high {
			continue
		}
		if len(p.sackTaken) == maxSackTaken {
			p.sackTaken = append(p.sackTaken[:0], p.sackTaken[1:]...)
		}
		p.sackTaken = append(p.sackTaken, seqRange{lo, hi.Sub(lo)})
	}
}

// sacked reports whether one SACK block the stack took covers all of [seq, seq+n).
func (p *peer) sacked(seq seqnum.Value, n uint32) bool {
	for _, q := range p.sackTaken {
		if off := seq.Sub(q.start); off < q.n && n <= q.n-off {
			return true
		}
	}
	return false
}

// tsOpts fills the timestamp option of a segment the peer sends, if negotiated.
func (p *peer) tsOpts(o *header.TCPOptions, nowMs uint32) {
	if p.ts {
		o.TS, o.TSVal, o.TSEcr = true, p.tsBase+nowMs, p.sTSval
	}
}

// ackSeg is the peer's plain ACK: everything received, at SND.NXT.
func (p *peer) ackSeg(nowMs uint32) *tseg {
	s := &tseg{sport: p.port, dport: p.sport, seq: p.sndNxt, ack: p.rcvNxt,
		flags: header.TCPFlagACK, wnd: p.wnd, opts: header.TCPOptions{WScale: -1}}
	p.tsOpts(&s.opts, nowMs)
	p.sackBlocks(&s.opts)
	return s
}

// dataSeg is n bytes of the peer's stream from seq, with the right content.
func (p *peer) dataSeg(seq seqnum.Value, n int, nowMs uint32) *tseg {
	s := p.ackSeg(nowMs)
	s.seq = seq
	s.flags |= header.TCPFlagPSH
	s.payload = p.bytesAt(seq, n)
	return s
}

// bytesAt is the peer's stream content for n bytes from sequence number seq.
func (p *peer) bytesAt(seq seqnum.Value, n int) []byte {
	b := make([]byte, n)
	o := seq.Sub(p.iss.Add(1))
	for i := range b {
		b[i] = patPeer(o + uint32(i))
	}
	return b
}

// reflexTo is the peer's answer to a segment of the stack's when it acts as a TCP (the
// reflex setting, and the final phase): complete a handshake the stack answered, ACK new
// data at once, and ACK a segment that is not acceptable in the window the peer advertised
// (RFC 9293 §3.10.7.4: "If an incoming segment is not acceptable, an acknowledgment should
// be sent in reply"), with the acknowledgment the peer last gave. A peer that got confused
// about what it received keeps sending that same acknowledgment, as a TCP would.
func (p *peer) reflexTo(s *tseg, got bool, nowMs uint32) *tseg {
	switch {
	case s.rst():
		return nil
	case s.syn() && !s.ackf():
		return nil // the script answers the stack's SYN (opSynAck)
	case s.syn():
		if p.synced && s.ack == p.iss.Add(1) {
			return p.ackSeg(nowMs)
		}
		return nil
	case got, p.oooNew:
		return p.ackSeg(nowMs)
	case !p.acceptable(s):
		a := p.ackSeg(nowMs)
		a.ack = p.ackPt
		return a
	}
	return nil
}

// TestSpans pins down what the peer counts as sent: merged runs, signed offsets clipped at
// the ISS, nothing from the far half of the sequence space.
func TestSpans(t *testing.T) {
	var s spans
	s.add(0, 1)
	s.add(5, 5)
	require.Equal(t, uint32(1), s.prefix())
	s.add(1, 4)
	require.Equal(t, spans{{0, 10}}, s)
	s.add(^uint32(3), 20) // from offset -4: only [0, 16) is the peer's
	require.Equal(t, spans{{0, 16}}, s)
	s.add(1<<31+5, 10) // the far half
	s.add(20, 0)
	require.Equal(t, spans{{0, 16}}, s)
	s.add(30, 10)
	s.add(18, 4)
	require.Equal(t, spans{{0, 16}, {18, 22}, {30, 40}}, s)
	s.add(16, 14)
	require.Equal(t, spans{{0, 40}}, s)
}

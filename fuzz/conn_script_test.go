package fuzz

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
)

// script reads FuzzConnection's second argument: a list of operations, each an opcode
// byte and its argument bytes. Past the end every byte reads as 0, so any input is a
// valid script.
type script struct {
	b []byte
	i int
}

func (s *script) done() bool { return s.i >= len(s.b) }

func (s *script) byte() byte {
	if s.i >= len(s.b) {
		s.i++
		return 0
	}
	v := s.b[s.i]
	s.i++
	return v
}

func (s *script) u32() uint32 {
	var b [4]byte
	for i := range b {
		b[i] = s.byte()
	}
	return binary.BigEndian.Uint32(b[:])
}

// The operations. The peer's segments take their sequence and acknowledgment numbers from
// its state (SND.NXT, what it received of the stack's, the stack's last acknowledgment) plus
// offsets the argument bytes pick.
const (
	opAck    = iota // the peer acknowledges everything it received
	opData          // [len] the peer sends data at SND.NXT
	opFin           // the peer sends FIN at SND.NXT
	opSeg           // [flags seq ack wnd len opts] any segment
	opRst           // [sel] a reset at a picked sequence number
	opSyn           // [iss synopts wnd] a SYN (a new connection, or a SYN in the middle of one)
	opSynAck        // [synopts iss ack] a SYN-ACK to the stack's SYN
	opLose          // [n] the next 1-4 segments of the stack's never reach the peer (0x80: and it reneges)
	opResend        // the peer resends from the stack's last acknowledgment
	opWrite         // [size] the application writes
	opRead          // [size] the application reads
	opClose         // [which] the application closes
	opAbort         // [which] the application aborts (RST)
	opAccept        // [mode] the application accepts
	opWait          // [dur] virtual time passes
	opDial          // [mode] the application dials the peer
	opMisc          // [sel] socket options, getters, deadlines, the listener
	opReflex        // the peer starts or stops answering like a TCP
	numOps
)

var opNames = [numOps]string{"ack", "data", "fin", "seg", "rst", "syn", "synack", "lose", "resend",
	"write", "read", "close", "abort", "accept", "wait", "dial", "misc", "reflex"}

// pickSeq is a sequence number around the peer's SND.NXT: in the window, at its edges, just
// outside them, across the wrap, far away, or anywhere.
func (r *connRig) pickSeq(sel byte, sc *script) seqnum.Value {
	p := &r.p
	base := p.sndNxt
	w := p.sWnd
	k := uint32(sel>>4) + 1
	switch sel & 15 {
	case 0:
		return base
	case 1:
		return base - 1
	case 2:
		return base + 1
	case 3:
		return base.Add(w) // just past the stack's window
	case 4:
		return base.Add(w - 1) // its last byte
	case 5:
		return base - seqnum.Value(w) // a window below
	case 6:
		return base - seqnum.Value(w) - 1
	case 7:
		return base.Add(1 << 31) // the far half of the sequence space
	case 8:
		return base.Add(1<<31 - 1)
	case 9:
		return base.Add(k)
	case 10:
		return base - seqnum.Value(k)
	case 11:
		return base.Add(k * 1000)
	case 12:
		return seqnum.Value(sc.u32())
	case 13:
		return seqnum.Value(^uint32(0) - k) // near the wrap, whatever the state
	case 14:
		return p.iss // the SYN's own number
	default:
		return p.sndUna // a retransmission from what the stack acknowledged
	}
}

// pickAck is an acknowledgment number around what the peer received of the stack's.
func (r *connRig) pickAck(sel byte, sc *script) seqnum.Value {
	p := &r.p
	base := p.rcvNxt
	k := uint32(sel>>4) + 1
	switch sel & 15 {
	case 1:
		return base - 1 // leaves the last byte, or the FIN, unacknowledged
	case 2:
		return base + 1 // one past what the stack sent, when it is all received
	case 3:
		return p.ackPt // the last one again: a duplicate
	case 4:
		return p.ackPt.Add(base.Sub(p.ackPt) / 2) // half of what is outstanding
	case 5:
		return p.sISS // acknowledges not even the SYN
	case 6:
		return p.sISS.Add(1)
	case 7:
		return base.Add(1 << 31)
	case 8:
		return base - 70000 // older than any window (RFC 5961 §5.2)
	case 9:
		return base.Add(k)
	case 10:
		return base - seqnum.Value(k)
	case 11:
		return seqnum.Value(sc.u32())
	case 12:
		return p.sHigh // everything the stack sent, received or not
	default:
		return base
	}
}

var windows = [8]uint16{65535, 0, 1, 100, 1460, 4096, 29200, 0}

// pickWnd sets the window the peer advertises from now on (7: leave it).
func (r *connRig) pickWnd(sel byte) uint16 {
	if i := sel & 7; i != 7 {
		r.p.wnd = windows[i]
	}
	return r.p.wnd
}

// pickLen is a payload length: none, small, around the MSS, or the stack's whole window.
func (r *connRig) pickLen(sel byte, room int) int {
	n := 0
	switch sel & 15 {
	case 1, 15:
		n = 1
	case 2:
		n = 2
	case 3:
		n = 10
	case 4:
		n = 100
	case 5:
		n = 500
	case 6:
		n = 535
	case 7:
		n = 536
	case 8:
		n = 1000
	case 9:
		n = 1448
	case 10:
		n = 1460
	case 11:
		n = int(r.p.sWnd)
	case 12:
		n = int(r.p.sWnd) + 1
	case 13:
		n = 1461
	}
	return max(min(n, room), 0)
}

// malformedOpts are option lists a receiver must reject or survive.
var malformedOpts = [...][]byte{
	{2},                         // a kind with no length
	{2, 4, 5},                   // MSS running past the list (the padding makes it 1280)
	{3, 3, 200, 0},              // an oversized window shift
	{99, 1},                     // a length below 2
	{0, 2, 4, 1},                // EOL, then bytes
	{8, 10, 0, 0, 0, 1, 0, 0},   // timestamps cut short
	{8, 9, 0, 0, 0, 1, 0, 0, 0}, // timestamps of the wrong length
	{5, 3, 0},                   // a SACK option with no block
	{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, // 40 NOPs
	{4, 3, 0},            // SACK-permitted of the wrong length
	{2, 4, 0, 0},         // MSS 0
	{254, 4, 0xf9, 0x89}, // an experimental option (skipped by its length)
	{8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 8, 10, 9, 9, 9, 9, 0, 0, 0, 0}, // timestamps twice
	{30, 2, 1, 1}, // an unknown kind (MPTCP)
	{5, 34, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7, 0, 0, 0, 8}, // four SACK blocks
}

// pickOpts fills a segment's options: timestamps as agreed or not, SACK blocks, SYN options
// where they do not belong, or a malformed list.
func (r *connRig) pickOpts(s *tseg, sel byte, sc *script) {
	p := &r.p
	s.opts = header.TCPOptions{WScale: -1}
	switch sel & 3 {
	case 0:
		p.tsOpts(&s.opts, r.nowMs())
	case 2:
		s.opts.TS, s.opts.TSVal, s.opts.TSEcr = true, p.tsBase+r.nowMs(), 0
	case 3:
		s.opts.TS, s.opts.TSVal, s.opts.TSEcr = true, p.tsBase+r.nowMs()-1_000_000, sc.u32() // an old TSval (PAWS), any echo
	}
	if sel&4 != 0 {
		s.opts.NumSACK = 2
		s.opts.SACK[0] = header.SACKBlock{Start: uint32(p.rcvNxt.Add(1)), End: uint32(p.rcvNxt.Add(101))}
		s.opts.SACK[1] = header.SACKBlock{Start: uint32(p.sISS), End: uint32(p.sHigh)}
	}
	if sel&8 != 0 {
		s.opts.MSS, s.opts.WScale, s.opts.SACKPermitted = 1000, 3, true
	}
	if m := int(sel >> 4); m > 0 {
		s.rawOpts = malformedOpts[(m-1)%len(malformedOpts)]
	}
}

var synMSS = [4]uint16{1460, 536, 88, 65535}
var synWS = [4]int8{7, 0, 14, 15}

// synOpts decodes a SYN's options: MSS, window scale, SACK-permitted and timestamps, each
// present or not.
func (r *connRig) synOpts(sel byte) header.TCPOptions {
	o := header.TCPOptions{WScale: -1}
	if sel&1 != 0 {
		o.MSS = synMSS[sel>>1&3]
	}
	if sel&8 != 0 {
		o.WScale = synWS[sel>>4&3]
	}
	o.SACKPermitted = sel&64 != 0
	if sel&128 != 0 {
		o.TS, o.TSVal, o.TSEcr = true, r.p.tsBase+r.nowMs(), 0
	}
	return o
}

// room is how much payload fits beside the options in one frame.
func room(s *tseg) int {
	ol := len(s.rawOpts)
	if s.rawOpts == nil {
		ol = s.opts.EncodedLen()
	}
	return 1460 - (ol+3)&^3
}

// synISS picks the sequence number of a new SYN relative to the peer's last incarnation.
func (r *connRig) synISS(sel byte, sc *script) seqnum.Value {
	p := &r.p
	switch sel & 7 {
	case 1:
		return p.sndNxt.Add(1 << 16) // after the old connection: TIME-WAIT lets it in
	case 2:
		return p.sndNxt - 1<<16 // before it
	case 3:
		return seqnum.Value(sc.u32())
	case 4:
		return p.sndNxt
	case 5:
		return 0xffffff00 // the connection's sequence numbers wrap soon
	case 6:
		return p.iss.Add(1)
	case 7:
		return p.iss - 1
	}
	return p.iss
}

// peerOp runs one of the peer's operations.
func (r *connRig) peerOp(op int, sc *script) {
	p := &r.p
	switch op {
	case opAck:
		r.send(p.ackSeg(r.nowMs()))
	case opData:
		s := p.dataSeg(p.sndNxt, 0, r.nowMs())
		s.payload = p.bytesAt(p.sndNxt, r.pickLen(sc.byte(), room(s)))
		r.send(s)
	case opFin:
		s := p.ackSeg(r.nowMs())
		s.flags |= header.TCPFlagFIN
		r.send(s)
	case opSeg:
		flags, seqSel, ackSel, wndSel, lenSel, optSel := sc.byte(), sc.byte(), sc.byte(), sc.byte(), sc.byte(), sc.byte()
		s := &tseg{sport: p.port, dport: p.sport, flags: flags}
		s.seq = r.pickSeq(seqSel, sc)
		s.ack = r.pickAck(ackSel, sc)
		s.wnd = r.pickWnd(wndSel)
		r.pickOpts(s, optSel, sc)
		if s.has(header.TCPFlagURG) {
			s.urg = uint16(lenSel) + 1
		}
		s.payload = p.bytesAt(s.dataSeq(), r.pickLen(lenSel, room(s)))
		r.send(s)
	case opRst:
		sel := sc.byte()
		s := &tseg{sport: p.port, dport: p.sport, flags: header.TCPFlagRST, opts: header.TCPOptions{WScale: -1}}
		s.seq = r.pickSeq(sel&0x7f, sc)
		if sel&0x80 != 0 {
			s.flags |= header.TCPFlagACK
			s.ack = p.rcvNxt
		}
		r.send(s)
	case opSyn:
		iss, o, wnd := r.synISS(sc.byte(), sc), r.synOpts(sc.byte()), r.pickWnd(sc.byte())
		if !p.synced {
			p.iss, p.sndNxt = iss, iss.Add(1)
		}
		r.send(&tseg{sport: p.port, dport: p.sport, seq: iss, flags: header.TCPFlagSYN, wnd: wnd, opts: o})
	case opSynAck:
		o := r.synOpts(sc.byte())
		iss := r.synISS(sc.byte(), sc)
		ack := r.pickAck(sc.byte(), sc)
		o.TSEcr = p.sTSval
		if !p.synced {
			p.iss, p.sndNxt = iss, iss.Add(1)
		}
		r.send(&tseg{sport: p.port, dport: p.sport, seq: iss, ack: ack, flags: header.TCPFlagSYN | header.TCPFlagACK, wnd: p.wnd, opts: o})
	case opLose:
		n := sc.byte()
		p.lose += 1 + int(n&3)
		if n&0x80 != 0 {
			// The peer reneges: it throws away the out-of-order data it holds, SACKed or
			// not (RFC 2018 §8).
			p.ooo = nil
		}
	case opResend:
		r.resend()
	case opReflex:
		p.reflex = !p.reflex
	}
}

// resend puts the peer's unacknowledged data (one segment of it) and its FIN back on the
// wire, from the stack's last acknowledgment.
func (r *connRig) resend() {
	p := &r.p
	if !p.synced {
		return
	}
	from := p.sndUna
	data := p.sndNxt.Sub(from)
	if data == 0 || data > 1<<30 {
		return // all acknowledged, or the stack acknowledged beyond SND.NXT
	}
	if p.finSent {
		data-- // the FIN is not a byte of the stream
	}
	s := p.ackSeg(r.nowMs())
	s.seq = from
	s.payload = p.bytesAt(from, min(int(data), room(s), 1000))
	if p.finSent && uint32(len(s.payload)) == data {
		s.flags |= header.TCPFlagFIN
	}
	if len(s.payload) > 0 || s.fin() {
		r.send(s)
	}
}

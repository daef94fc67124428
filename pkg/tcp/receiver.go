package tcp

import (
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// The receiving half of a connection: in-order and out-of-order data into the receive
// buffer, the SACK and D-SACK blocks that describe what arrived (RFC 2018, RFC 2883), and
// when to acknowledge (Linux tcp_data_queue, tcp_ofo_queue, __tcp_ack_snd_check).
//
// Out-of-order data is written straight into the receive buffer at its place beyond head
// (byteRing.writeAt), and a list of the ranges received beyond rcvNxt says where the holes
// are; when the hole at rcvNxt fills, head moves over everything now contiguous without a
// copy. The list is taken from the shard's pool when the first hole opens and goes back
// when the last one closes, so a connection holds it only while out-of-order data waits
// (an in-order connection holds a nil pointer). It is bounded (maxOOO ranges, as many as
// 5% loss makes in a receive window of several megabytes): a segment that would need one
// more range is dropped (TcpExtTCPOFODrop) and the peer sends it again, as Linux prunes
// its out-of-order queue under memory pressure. Nothing here allocates once the pool has
// lists.

// maxOOO bounds the out-of-order ranges a connection keeps (nOOO is a uint8).
const maxOOO = 255

// oooList is a connection's out-of-order ranges while it has any.
type oooList struct {
	r [maxOOO]seqRange
}

// oooPool keeps a shard's spare range lists.
type oooPool struct {
	free []*oooList
}

// oooKeep bounds the spare lists a shard keeps.
const oooKeep = 256

func (p *oooPool) get() *oooList {
	if k := len(p.free); k > 0 {
		l := p.free[k-1]
		p.free = p.free[:k-1]
		return l
	}
	return new(oooList)
}

// clearOOO forgets a connection's out-of-order ranges and gives its list back.
func (s *shard) clearOOO(ep *endpoint) {
	ep.nOOO, ep.oooRecent = 0, 0
	if ep.ooo != nil {
		if len(s.ooo.free) < oooKeep {
			s.ooo.free = append(s.ooo.free, ep.ooo)
		}
		ep.ooo = nil
	}
}

// maxQuickAcks is TCP_MAX_QUICKACKS: the segments acknowledged at once at the start of a
// transfer and after an idle spell, before delayed ACKs take over.
const maxQuickAcks = 16

// seqRange is the sequence numbers [start, end).
type seqRange struct {
	start, end seqnum.Value
}

// receiver is the receiving half's state beyond rcvNxt and rcvAdv (which live with the
// connection).
type receiver struct {
	ooo       *oooList // ranges received beyond rcvNxt (ooo.r[:nOOO]): ascending, disjoint, not adjacent; nil when none
	nOOO      uint8
	oooRecent uint8 // index of the range last changed: the first SACK block (RFC 2018 §4)
	dsack     seqRange
	dsackSet  bool // dsack is a duplicate to report in the next ACK's first block (RFC 2883)
	quick     uint8
	ato       bool         // data has arrived before (Linux icsk_ack.ato != 0)
	pingpong  bool         // interactive: our data answers the peer's within the delayed-ACK time (Linux pingpong mode)
	pushed    uint8        // short segments received since our last ACK, up to 2 (Linux ICSK_ACK_PUSHED, _PUSHED2)
	rcvMSS    uint16       // the peer's segment size, as seen (Linux icsk_ack.rcv_mss)
	lastData  int64        // when data last arrived (quick ACKs again after idle)
	finAt     seqnum.Value // a FIN that arrived out of order counts when rcvNxt reaches it
	finPend   bool

	// Receive-buffer autotuning (bufsize.go, Linux rcvq_space and rcv_rtt_est).
	rcvRTT       int64
	rcvSpace     int64  // bytes the application read in the last measured round trip
	rcvSpaceSeq  uint64 // the ring's tail when the round began
	rcvSpaceTime int64
}

// dataInput takes a segment's payload into the receive buffer (RFC 9293 §3.10.7.4 seventh
// step; Linux tcp_data_queue).
func (s *shard) dataInput(ep *endpoint, sg *segment) {
	p := sg.payload
	seq := sg.seq
	if seq.LessThan(ep.rcvNxt) {
		// What we already have: report it as a duplicate (D-SACK), keep the rest.
		skip := ep.rcvNxt.Sub(seq)
		if skip >= uint32(len(p)) {
			s.noteDuplicate(ep, seq, seq.Add(uint32(len(p))))
			ep.ackNow = true
			return
		}
		s.noteDuplicate(ep, seq, ep.rcvNxt)
		p = p[skip:]
		seq = ep.rcvNxt
	}
	// Keep what fits in the buffer; the rest is over the window we advertised (or the
	// application has not read), and the peer sends it again.
	off := seq.Sub(ep.rcvNxt)
	room := uint32(ep.rcv.space())
	if off >= room {
		s.ctr.Inc(stats.TcpExtTCPRcvQDrop)
		ep.ackNow = true
		return
	}
	if off+uint32(len(p)) > room {
		s.ctr.Inc(stats.TcpExtTCPRcvQDrop)
		p = p[:room-off]
		ep.ackNow = true
	}
	if seq != ep.rcvNxt {
		s.oooInput(ep, seq, p)
		return
	}
	if ep.tsOK && sg.opts.TS {
		s.rcvRTTSample(ep, sg.opts.TSEcr)
	}
	s.rcvSpaceAdjust(ep)
	head := ep.rcv.head.Load()
	ep.rcv.writeAt(head, p)
	end := seq.Add(uint32(len(p)))
	filled := ep.nOOO > 0
	end = s.mergeInOrder(ep, end)
	n := end.Sub(ep.rcvNxt)
	ep.rcv.advance(int(n))
	ep.rcvNxt = end
	s.queueWake(ep, true, false)
	if ep.finPend && ep.finAt == ep.rcvNxt {
		ep.finPend = false
		s.finInput(ep)
	}
	if filled {
		// A segment that fills a hole is acknowledged at once (Linux: the out-of-order
		// queue was not empty), so the sender learns quickly.
		ep.ackNow = true
		return
	}
	s.dataArrived(ep, len(p))
}

// mergeInOrder takes the out-of-order ranges that the in-order data ending at end now
// reaches, and returns the new in-order end.
func (s *shard) mergeInOrder(ep *endpoint, end seqnum.Value) seqnum.Value {
	i := 0
	for ; i < int(ep.nOOO) && ep.ooo.r[i].start.LessThanEq(end); i++ {
		r := ep.ooo.r[i]
		if r.start.LessThan(end) {
			// The in-order data also carried bytes we held already.
			s.noteDuplicate(ep, r.start, minSeq(end, r.end))
		}
		if end.LessThan(r.end) {
			end = r.end
		}
	}
	if i > 0 {
		copy(ep.ooo.r[:], ep.ooo.r[i:ep.nOOO])
		ep.nOOO -= uint8(i)
		ep.oooRecent = 0
		if ep.nOOO == 0 {
			s.clearOOO(ep)
		}
	}
	return end
}

// oooInput keeps data that arrived beyond a hole (Linux tcp_data_queue_ofo), and asks for an
// immediate ACK, whose SACK blocks tell the sender what arrived.
func (s *shard) oooInput(ep *endpoint, seq seqnum.Value, p []byte) {
	end := seq.Add(uint32(len(p)))
	ep.ackNow = true
	// Find where the new range goes, and what it touches.
	if ep.ooo == nil {
		ep.ooo = s.ooo.get()
	}
	o := &ep.ooo.r
	i := 0
	for i < int(ep.nOOO) && o[i].end.LessThan(seq) {
		i++
	}
	j := i
	for j < int(ep.nOOO) && o[j].start.LessThanEq(end) {
		j++
	}
	// o[i:j] overlap or touch [seq, end).
	if j == i+1 && o[i].start.LessThanEq(seq) && end.LessThanEq(o[i].end) {
		s.noteDuplicate(ep, seq, end) // all of it was here already
		ep.oooRecent = uint8(i)
		return
	}
	if j == i && ep.nOOO == maxOOO {
		s.ctr.Inc(stats.TcpExtTCPOFODrop)
		return
	}
	s.ctr.Inc(stats.TcpExtTCPOFOQueue)
	ep.rcv.writeAt(ep.rcv.head.Load()+uint64(seq.Sub(ep.rcvNxt)), p)
	merged := seqRange{seq, end}
	for k := i; k < j; k++ {
		r := o[k]
		if lo, hi := maxSeq(r.start, seq), minSeq(r.end, end); lo.LessThan(hi) {
			s.noteDuplicate(ep, lo, hi)
		}
		merged.start = minSeq(merged.start, r.start)
		merged.end = maxSeq(merged.end, r.end)
	}
	if j > i {
		if j-i > 1 {
			s.ctr.Inc(stats.TcpExtTCPOFOMerge)
		}
		o[i] = merged
		copy(o[i+1:], o[j:ep.nOOO])
		ep.nOOO -= uint8(j - i - 1)
	} else {
		copy(o[i+1:ep.nOOO+1], o[i:ep.nOOO])
		o[i] = merged
		ep.nOOO++
	}
	ep.oooRecent = uint8(i)
}

func minSeq(a, b seqnum.Value) seqnum.Value {
	if a.LessThan(b) {
		return a
	}
	return b
}

func maxSeq(a, b seqnum.Value) seqnum.Value {
	if a.LessThan(b) {
		return b
	}
	return a
}

// noteDuplicate records [start, end) as data received twice, to report in the next ACK's
// first SACK block (RFC 2883 §4: one D-SACK block per ACK, the first duplicate wins).
func (s *shard) noteDuplicate(ep *endpoint, start, end seqnum.Value) {
	if !ep.sackOK || !start.LessThan(end) || ep.dsackSet {
		return
	}
	ep.dsack, ep.dsackSet = seqRange{start, end}, true
	if start.LessThan(ep.rcvNxt) {
		s.ctr.Inc(stats.TcpExtTCPDSACKOldSent)
	} else {
		s.ctr.Inc(stats.TcpExtTCPDSACKOfoSent)
	}
}

// dataArrived decides how in-order data is acknowledged (Linux tcp_event_data_recv and
// __tcp_ack_snd_check): at once while in quick-ACK mode (which the first data and data after
// an idle spell longer than the RTO start, and an interactive connection skips); otherwise
// as soon as more than one of the peer's full segments arrived since our last ACK, and the
// rest within the delayed-ACK time, or when the application has read a short segment
// (ackDrained).
func (s *shard) dataArrived(ep *endpoint, n int) {
	s.measureRcvMSS(ep, n)
	if !ep.ato || s.now-ep.lastData > ep.rto {
		ep.ato = true
		ep.enterQuickAck()
	}
	ep.lastData = s.now
	if ep.quick > 0 && !ep.pingpong {
		ep.quick--
		ep.ackNow = true
		return
	}
	s.scheduleAck(ep, n)
}

// measureRcvMSS is Linux's tcp_measure_rcv_mss: the largest segment the peer sends (a
// super-packet its link coalesced counts as full), up to the MSS we advertised, is its
// full size; a shorter one (the end of a write, a Nagle-held tail) marks the ACK pushed,
// to go as soon as the application has read it.
func (s *shard) measureRcvMSS(ep *endpoint, n int) {
	adv := int(s.eng.mssFor(ep.key.V6))
	if ep.rcvMSS == 0 {
		// tcp_initialize_rcv_mss: no more than TCP_MSS_DEFAULT until segments show more.
		ep.rcvMSS = uint16(max(min(adv, int(ep.mss), 536), 88))
	}
	if n >= int(ep.rcvMSS) {
		ep.rcvMSS = uint16(min(n, adv))
		return
	}
	if ep.pushed < 2 {
		ep.pushed++
		ep.pushedAck.Store(true)
	}
}

// ackDrained runs when the application has emptied the receive buffer (Linux
// tcp_cleanup_rbuf): a delayed ACK waiting for data that included a short segment goes
// now, unless the connection is interactive and has had only one (its answer will carry
// the ACK). This is what keeps a sender whose short tail Nagle holds from waiting out the
// delayed-ACK timer.
func (s *shard) ackDrained(ep *endpoint) {
	if ep.ack.Pending() && ep.rcv.used() == 0 && (ep.pushed >= 2 || (ep.pushed == 1 && !ep.pingpong)) {
		s.sendAck(ep)
	}
}

// trimRcv gives back the receive buffer's memory once the application has read it all and
// no out-of-order data waits beyond head.
func (s *shard) trimRcv(ep *endpoint) {
	if ep.nOOO == 0 {
		ep.rcv.trim()
	}
}

// sackOptions adds the connection's SACK blocks to out (an ACK's options): the pending
// D-SACK first, then the range last changed, then the others from the highest down, as many
// as fit beside the other options (RFC 2018 §4, RFC 2883).
func (ep *endpoint) sackOptions(out *header.TCPOptions) {
	room := header.MaxSACKBlocks
	if out.TS {
		room = 3
	}
	ep.sackOptionsIn(out, room)
}

// sackPending is how many SACK blocks the next segment would carry (at most room).
func (ep *endpoint) sackPending(room int) int {
	if !ep.sackOK {
		return 0
	}
	n := int(ep.nOOO)
	if ep.dsackSet {
		n++
	}
	return min(n, room)
}

// sackOptionsIn puts at most room SACK blocks in out.
func (ep *endpoint) sackOptionsIn(out *header.TCPOptions, room int) {
	if !ep.sackOK || (ep.nOOO == 0 && !ep.dsackSet) || room <= 0 {
		return
	}
	out.NumSACK = 0
	if ep.dsackSet {
		addSACKBlock(out, ep.dsack, room)
		ep.dsackSet = false
	}
	if ep.nOOO > 0 {
		addSACKBlock(out, ep.ooo.r[ep.oooRecent], room)
		for i := int(ep.nOOO) - 1; i >= 0; i-- {
			if i != int(ep.oooRecent) {
				addSACKBlock(out, ep.ooo.r[i], room)
			}
		}
	}
}

// addSACKBlock appends a SACK block to o while it holds fewer than room.
func addSACKBlock(o *header.TCPOptions, r seqRange, room int) {
	if o.NumSACK < room {
		o.SACK[o.NumSACK] = header.SACKBlock{Start: uint32(r.start), End: uint32(r.end)}
		o.NumSACK++
	}
}

// oldDataAgain handles data that arrives again wholly below rcvNxt, answered with a
// duplicate ACK (Linux tcp_send_dupack): our ACK was probably lost, so quick ACKs resume
// (TcpExtDelayedACKLost), and the ACK reports the duplicate with D-SACK.
func (s *shard) oldDataAgain(ep *endpoint, sg *segment) {
	if len(sg.payload) == 0 || !sg.seq.LessThan(ep.rcvNxt) {
		return
	}
	s.ctr.Inc(stats.TcpExtDelayedACKLost)
	ep.enterQuickAck()
	ep.pingpong = false // tcp_enter_quickack_mode
	s.noteDuplicate(ep, sg.seq, minSeq(sg.seq.Add(uint32(len(sg.payload))), ep.rcvNxt))
}

// enterQuickAck starts quick-ACK mode (Linux tcp_incr_quickack): as many immediate ACKs as
// half the receive buffer holds in full segments, at least two, at most 16.
func (ep *endpoint) enterQuickAck() {
	mss := int(max(ep.sendMSS(), 1))
	ep.quick = uint8(max(min(ep.rcv.capacity()/(2*mss), maxQuickAcks), 2))
}

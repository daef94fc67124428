package tcp

import (
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stats"
)

// The sending half of a connection, built for loss recovery as Linux's is:
//
//   - snd_nxt only moves forward: new data goes out at snd_nxt, and what is resent is
//     chosen from the scoreboard (scoreboard.go), one record per segment in flight over
//     [snd_una, snd_max), which the peer's SACK blocks and the sender's loss marks annotate.
//   - ackInput runs as ordered steps, in the order of Linux's tcp_ack: the window update,
//     the SACK blocks (D-SACK among them), the cumulative acknowledgment and its round-trip
//     sample, RACK's loss detection (RFC 8985), then the recovery state machine
//     (tcp_fastretrans_alert: SACK-based recovery per RFC 6675 with proportional rate
//     reduction per RFC 6937, NewReno per RFC 6582 for peers without SACK, undo from
//     timestamps or D-SACK), the window's growth outside recovery (congestion control, cc.go),
//     and finally the timers.
//   - Transmission (sendData) sends the segments marked lost first, then new data, as far as
//     the packets in flight (Linux tcp_packets_in_flight: sent - SACKed - lost + resent)
//     stay under the congestion window and the new data fits the peer's window.
//   - One wheel timer carries whichever of the retransmission timeout, the tail loss probe,
//     RACK's reordering timeout and the zero-window probe is due, as Linux's icsk_pending
//     does: they are mutually exclusive by construction (a probe of a zero window only when
//     nothing is in flight; a loss probe only in the Open state). Keepalive has its own.

// Congestion states, Linux's tcp_ca_state.
const (
	caOpen     uint8 = iota // no loss suspected
	caDisorder              // SACKs or duplicate ACKs seen, nothing marked lost yet
	caCWR                   // the window is being reduced (kept for the order; a repaired tail loss passes through it in one step)
	caRecovery              // fast recovery: PRR sets the window
	caLoss                  // after a retransmission timeout
)

// What the retransmission timer is armed for (Linux's ICSK_TIME_*).
const (
	rtxRetrans   uint8 = iota // the retransmission timeout
	rtxLossProbe              // a tail loss probe (RFC 8985 §7)
	rtxReorder                // RACK's reordering window ends for a segment not yet marked lost
	rtxProbe0                 // a zero-window probe
)

// orphanRetries is what Linux's tcp_orphan_retries of 0 means for an orphan's
// retransmissions and probes.
const orphanRetries = 8

// dupThresh is the duplicate-ACK threshold (RFC 5681; Linux's default tcp_reordering).
const dupThresh = 3

// sender is the state of the sending half beyond snd_una, snd_nxt and the window, which
// live with the connection.
type sender struct {
	sb scoreboard
	cc ccState

	rackXmit int64 // when the most recently sent of the delivered segments was sent
	rackRTT  int64
	lastAck  int64 // when an acceptable ACK last arrived (Linux rcv_tstamp)
	lastSend int64 // when data last went out (slow start after idle)

	sackedOut  uint32 // segments SACKed (without SACK: duplicate ACKs, as Linux's reno_sack)
	lostOut    uint32 // segments marked lost
	retransOut uint32 // segments resent and not yet acknowledged, SACKed or lost again
	rtxQueued  uint32 // segments marked lost and not yet resent

	highSeq          seqnum.Value // the end of the recovery: snd_max when it began
	tlpHigh          seqnum.Value
	highSacked       seqnum.Value // the highest end any SACK block reached
	highSackedBefore seqnum.Value // highSacked before this ACK (reordering detection)
	prrDelivered     uint32
	prrOut           uint32
	priorCwnd        uint32 // the window when the reduction began (PRR's RecoverFS, undo)

	undoMarker    seqnum.Value
	undoRetrans   int32  // retransmissions not yet proved unneeded (-1: none made)
	retransStamp  uint32 // our timestamp of the episode's first retransmission (0: none)
	priorSsthresh uint32

	rackOrder uint32 // the place of rackXmit's segment in the order of transmissions
	rackEnd   seqnum.Value
	xmitCount uint32 // transmissions so far: orders segments sent in one clock tick

	ccAlgo       uint8 // index into ccTable
	caState      uint8
	rtxMode      uint8
	cwndLimited  bool // the last transmission stopped at the congestion window
	reordSeen    bool // reordering observed: RACK keeps a reordering window
	reoSteps     uint8
	tlpRetrans   bool  // the outstanding loss probe resent data (rather than sending new)
	tlpOut       bool  // a loss probe is outstanding, up to tlpHigh
	probes       uint8 // zero-window probes unanswered
	probeBackoff uint8 // zero-window probes since the window last let data out
	undoSet      bool
	rackNew      bool // RACK's state advanced with this ACK
}

// ccTable holds the algorithms by index (sender.ccAlgo), so that a connection refers to its
// algorithm with one byte.
var ccTable = [...]congestionOps{cubicOps{}, renoOps{}}

func ccIndex(name string) (uint8, bool) {
	switch name {
	case "", "cubic":
		return 0, true
	case "reno":
		return 1, true
	}
	return 0, false
}

func (ep *endpoint) ccOps() congestionOps { return ccTable[ep.ccAlgo] }

// initSender prepares the sending half when a connection becomes established.
func (s *shard) initSender(ep *endpoint) {
	ep.sb.pools = &s.segs
	ep.cc = ccState{cwnd: initialCwnd, ssthresh: ^uint32(0) >> 1}
	ep.ccAlgo = s.eng.ccAlgo
	ep.ccOps().init(&ep.cc)
	ep.reoSteps = 1
	ep.lastAck, ep.lastSend = s.now, s.now
	ep.highSeq, ep.highSacked, ep.rackEnd = ep.sndUna, ep.sndUna, ep.sndUna
	s.expandSndBuf(ep)
}

// inflight is Linux's tcp_packets_in_flight: the segments the network holds, by the
// sender's best estimate.
func (ep *endpoint) inflight() uint32 {
	n := int64(ep.sb.len()) - int64(ep.sackedOut) - int64(ep.lostOut) + int64(ep.retransOut)
	return uint32(max(n, 0))
}

// markLost marks a segment lost: it is due for retransmission.
func (s *shard) markLost(ep *endpoint, g *txSeg) {
	switch {
	case g.has(segSacked):
		return
	case g.has(segLost) && !g.has(segRetrans):
		return
	case g.has(segRetrans):
		// Its retransmission is lost too (Linux TCPLostRetransmit).
		g.flags &^= segRetrans
		ep.retransOut--
		s.ctr.Inc(stats.TcpExtTCPLostRetransmit)
		if !g.has(segLost) {
			ep.lostOut++
		}
	default:
		ep.lostOut++
	}
	g.flags |= segLost
	ep.rtxQueued++
	s.newlyLost++
}

// uncount takes a segment's loss and retransmission marks out of the counts.
func (ep *endpoint) uncount(g *txSeg) {
	if g.has(segLost) {
		ep.lostOut--
		if !g.has(segRetrans) {
			ep.rtxQueued--
		}
	}
	if g.has(segRetrans) {
		ep.retransOut--
	}
}

// markResent records that g was just sent again: it is in flight as a retransmission
// (counted once however often it is resent) and no longer waits in the lost queue.
func (ep *endpoint) markResent(g *txSeg, now int64) {
	if !g.has(segRetrans) {
		ep.retransOut++
		if g.has(segLost) {
			ep.rtxQueued--
		}
	}
	g.flags |= segRetrans | segEverRetrans
	g.xmit, g.order = now, ep.nextOrder()
}

// markSacked records a SACK of a segment; it reports whether it was news.
func (ep *endpoint) markSacked(g *txSeg) bool {
	if g.has(segSacked) {
		return false
	}
	ep.uncount(g)
	g.flags = g.flags&^(segLost|segRetrans) | segSacked
	ep.sackedOut++
	return true
}

// dropAcked forgets a segment the cumulative ACK covers.
func (ep *endpoint) dropAcked(g *txSeg) {
	if g.has(segSacked) {
		ep.sackedOut--
	}
	ep.uncount(g)
}

// rackUpdate notes a segment just delivered (cumulatively acknowledged or SACKed) in RACK's
// state (RFC 8985 §6.2 step 2): the most recently sent one delivered sets the clock that
// older segments are judged by.
func (ep *endpoint) rackUpdate(g *txSeg, now int64) {
	rtt := now - g.xmit
	if g.has(segEverRetrans) && ep.cc.minRTT != 0 && rtt < ep.cc.minRTT {
		// An ACK of a resent segment may be for an earlier copy: one that came back faster
		// than the minimum RTT must be (Linux tcp_rack_advance). The timestamp echo cannot
		// tell: a receiver echoes the newest in-order segment's, not that of the
		// out-of-order one it SACKs (RFC 7323 §4.3), so a SACKed loss probe would look like
		// its lost original and RACK would never learn that what was sent before it is lost.
		return
	}
	if ep.sentAfterRack(g) || (g.order == ep.rackOrder && ep.rackEnd.LessThan(g.end)) {
		ep.rackXmit, ep.rackOrder, ep.rackEnd, ep.rackRTT = g.xmit, g.order, g.end, rtt
		ep.rackNew = true
	}
}

// sentAfterRack reports whether g was last sent after the most recently sent delivered
// segment (RFC 8985's RACK_sent_after, by transmission order, which a clock tick does not
// blur).
func (ep *endpoint) sentAfterRack(g *txSeg) bool { return int32(g.order-ep.rackOrder) > 0 }

// nextOrder numbers a transmission.
func (ep *endpoint) nextOrder() uint32 {
	ep.xmitCount++
	return ep.xmitCount
}

// rackReoWnd is RACK's reordering window (RFC 8985 §6.2 step 4, Linux tcp_rack_reo_wnd):
// none until reordering has been seen once recovery is under way or three segments are
// SACKed, else a quarter of the minimum RTT per step, at most SRTT.
func (ep *endpoint) rackReoWnd() int64 {
	if !ep.reordSeen && (ep.caState >= caRecovery || ep.sackedOut >= dupThresh) {
		return 0
	}
	return min(ep.cc.minRTT/4*int64(ep.reoSteps), ep.srtt)
}

// rackDetectLoss marks lost every segment sent before the most recently delivered one and
// not delivered a reordering window after it should have been (RFC 8985 §6.2 step 5). It
// returns how long until the next such segment's time is up (0: none is waiting).
func (s *shard) rackDetectLoss(ep *endpoint) int64 {
	reo := ep.rackReoWnd()
	var wait int64
	for i := 0; i < ep.sb.len(); i++ {
		g := ep.sb.at(i)
		if !g.has(segEverRetrans) && ep.sentAfterRack(g) {
			break // sent after the delivered one, and so is every later original
		}
		if g.has(segSacked) || (g.has(segLost) && !g.has(segRetrans)) {
			continue
		}
		if ep.sentAfterRack(g) || (g.order == ep.rackOrder && !g.start.LessThan(ep.rackEnd)) {
			continue
		}
		left := g.xmit + ep.rackRTT + reo - s.now
		if left <= 0 {
			s.markLost(ep, g)
		} else if left > wait {
			wait = left
		}
	}
	return wait
}

// sackInput takes the SACK blocks of an ACK (Linux tcp_sacktag_write_queue). It returns
// the segments newly SACKed and whether the first block was a D-SACK (RFC 2883).
func (s *shard) sackInput(ep *endpoint, sg *segment) (delivered uint32, dsack bool) {
	o := &sg.opts
	for i := 0; i < o.NumSACK; i++ {
		start, end := seqnum.Value(o.SACK[i].Start), seqnum.Value(o.SACK[i].End)
		if !start.LessThan(end) {
			continue
		}
		if i == 0 {
			// A D-SACK: the first block below the cumulative ACK, or inside the second
			// block (RFC 2883 §4).
			inSecond := o.NumSACK > 1 && !start.LessThan(seqnum.Value(o.SACK[1].Start)) &&
				end.LessThanEq(seqnum.Value(o.SACK[1].End))
			if end.LessThanEq(sg.ack) || inSecond {
				dsack = true
				s.dsackInput(ep, start, end)
				continue
			}
		}
		// Only blocks over data in flight count (Linux tcp_is_sackblock_valid): one that
		// starts at snd_una or before, or ends beyond snd_max, is discarded, and counted
		// unless it is an old block on an ACK that arrived out of order.
		if !ep.sndUna.LessThan(start) || ep.sndMax.LessThan(end) {
			if sg.ack == ep.sndUna || ep.sndUna.LessThan(end) {
				s.ctr.Inc(stats.TcpExtTCPSACKDiscard)
			}
			continue
		}
		if ep.highSacked.LessThan(end) {
			ep.highSacked = end
		}
		for j := ep.sb.search(start); j < ep.sb.len(); j++ {
			g := ep.sb.at(j)
			if end.LessThan(g.end) {
				break
			}
			if g.start.LessThan(start) {
				continue // partly covered: a segment is SACKed whole or not at all
			}
			if ep.markSacked(g) {
				delivered++
				if !g.has(segEverRetrans) && g.end.LessThan(ep.highSackedBefore) {
					s.reorderSeen(ep, stats.TcpExtTCPSACKReorder)
				}
				ep.rackUpdate(g, s.now)
			}
		}
	}
	return delivered, dsack
}

// dsackInput takes a D-SACK: the peer received [start, end) twice. If it is a segment this
// side resent, that retransmission was not needed (undo may follow, Linux undo_retrans),
// and RACK widens its reordering window (RFC 8985 §6.2 step 4).
func (s *shard) dsackInput(ep *endpoint, start, end seqnum.Value) {
	s.ctr.Inc(stats.TcpExtTCPDSACKRecv)
	if ep.undoSet && ep.undoRetrans > 0 && ep.undoMarker.LessThan(end) {
		if end.LessThanEq(ep.sndUna) {
			// Data already forgotten: counted as one of ours, as Linux's tcp_check_dsack does.
			ep.undoRetrans--
		} else {
			// In flight: only a segment this side resent counts (a copy the network made
			// proves nothing about our retransmissions).
			for j := ep.sb.search(start); j < ep.sb.len() && ep.undoRetrans > 0; j++ {
				g := ep.sb.at(j)
				if !g.start.LessThan(end) {
					break
				}
				if g.has(segEverRetrans) {
					ep.undoRetrans--
				}
			}
		}
	}
	if ep.reoSteps < 255 {
		ep.reoSteps++
	}
	if ep.tlpOut && ep.tlpRetrans && end == ep.tlpHigh {
		ep.tlpOut = false // the probe and the original both arrived: nothing was lost
	}
}

// reorderSeen notes that a segment was delivered after a later one (RACK's reordering
// window opens; Linux counts it by how it was seen).
func (s *shard) reorderSeen(ep *endpoint, id stats.ID) {
	if !ep.reordSeen {
		ep.reordSeen = true
		s.ctr.Inc(id)
	}
}

// cleanAcked drops the segments a cumulative ACK covers (Linux tcp_clean_rtx_queue) and
// returns how many were delivered by it (not SACKed before) and the round-trip sample of
// the newest never-resent one (-1: none).
func (s *shard) cleanAcked(ep *endpoint, ack seqnum.Value) (delivered uint32, rtt int64) {
	rtt = -1
	for ep.sb.len() > 0 {
		g := ep.sb.at(0)
		if ack.LessThan(g.end) {
			if g.start.LessThan(ack) {
				g.start = ack // a part of it: the rest stays in flight
			}
			break
		}
		if !g.has(segSacked) {
			delivered++
			if !g.has(segEverRetrans) {
				rtt = s.now - g.xmit
				if g.end.LessThan(ep.highSacked) && int32(g.order-ep.rackOrder) < 0 {
					s.reorderSeen(ep, stats.TcpExtTCPSACKReorder)
				}
			}
			ep.rackUpdate(g, s.now)
		}
		ep.dropAcked(g)
		ep.sb.popFront()
	}
	return delivered, rtt
}

// ackInput processes SEG.ACK (RFC 9293 §3.10.7.4 fifth step, Linux tcp_ack), already
// checked against RFC 5961's range (checkAck); false means drop the segment.
func (s *shard) ackInput(ep *endpoint, sg *segment) bool {
	ack := sg.ack
	priorUna := ep.sndUna
	priorInflight := ep.inflight()
	priorSacked := ep.sackedOut
	ep.lastAck = s.now
	ep.probes = 0
	ep.rackNew = false
	s.newlyLost = 0
	ep.highSackedBefore = ep.highSacked

	// The window (RFC 9293 §3.10.7.4: only from a segment newer than the last one used).
	wndChanged := false
	if ep.sndWl1.LessThan(sg.seq) || (ep.sndWl1 == sg.seq && ep.sndWl2.LessThanEq(ack)) {
		w := uint32(sg.wnd) << ep.sndWscale
		wndChanged = w != ep.sndWnd
		ep.sndWnd = w
		ep.sndWl1, ep.sndWl2 = sg.seq, ack
		ep.noteWindow() // max_window, RFC 5961 §5.2's bound (challenge.go)
	}

	// SACK blocks, before the cumulative ACK moves the scoreboard.
	var delivered uint32
	var dsack bool
	if ep.sackOK && sg.opts.NumSACK > 0 {
		delivered, dsack = s.sackInput(ep, sg)
	}

	advanced := ep.sndUna.LessThan(ack)
	var ackedSegs uint32
	if advanced {
		acked := ack.Sub(ep.sndUna)
		finAcked := ep.finAcked(ack)
		data := acked
		if finAcked {
			data--
		}
		if data > 0 {
			ep.snd.release(int(data))
			s.queueWake(ep, false, true)
		}
		before := uint32(ep.sb.len())
		d, rtt := s.cleanAcked(ep, ack)
		ackedSegs = before - uint32(ep.sb.len())
		delivered += d
		// Round-trip time: timestamps when the peer echoes ours (RFC 7323 §4.1), else the
		// newest segment acknowledged that was sent once (Karn).
		if ep.tsOK && sg.opts.TS && sg.opts.TSEcr != 0 {
			rtt = int64(tsNow(s.now)-(sg.opts.TSEcr-ep.tsOff)) * 1e6
		}
		if rtt >= 0 {
			if ep.cc.minRTT == 0 || rtt < ep.cc.minRTT {
				ep.cc.minRTT = max(rtt, 1)
			}
			s.rttSample(ep, rtt)
			ep.ccOps().sample(&ep.cc, rtt, uint32(ack), uint32(ep.sndMax))
		}
		ep.sndUna = ack
		ep.guard.bytesAcked += uint64(acked) // Linux tcp_snd_una_update (RFC 5961 §5.2 bound)
		if ep.sndNxt.LessThan(ack) {
			ep.sndNxt = ack
		}
		if finAcked {
			ep.finSent = true
		}
		ep.retries = 0
		if !ep.sackOK && ep.sackedOut > 0 {
			// One ACK filled the hole, the rest had been counted as duplicates (Linux
			// tcp_remove_reno_sacks).
			ep.sackedOut -= min(ackedSegs-1, ep.sackedOut)
		}
	} else if !ep.sackOK && ep.sb.len() > 0 && len(sg.payload) == 0 && !sg.fin() && !wndChanged && ack == priorUna {
		// A duplicate ACK from a peer without SACK stands for a segment that left the
		// network (Linux tcp_add_reno_sack).
		if ep.sackedOut+1 < uint32(ep.sb.len()) {
			ep.sackedOut++
			delivered++
		}
	}

	// Loss detection: RACK with SACK, the duplicate-ACK count without.
	var reoWait int64
	if ep.sackOK {
		if ep.rackNew || (ep.caState != caOpen && ep.sb.len() > 0) {
			reoWait = s.rackDetectLoss(ep)
		}
	} else if ep.caState < caRecovery && ep.sackedOut >= dupThresh && ep.sb.len() > 0 {
		s.markLost(ep, ep.sb.at(0)) // fast retransmit (RFC 5681 §3.2)
	}
	if ep.tlpOut {
		s.tlpAck(ep, ack, advanced, dsack, delivered)
	}
	s.recoveryStep(ep, sg, advanced, priorUna, priorInflight, priorSacked, delivered, ackedSegs)

	// The window grows outside reductions, for an ACK of new data while the window was the
	// limit (Linux tcp_may_raise_cwnd, tcp_is_cwnd_limited).
	if advanced && (ep.caState == caOpen || ep.caState == caDisorder || ep.caState == caLoss) && ep.cwndLimited {
		ep.ccOps().congAvoid(&ep.cc, ackedSegs, s.now)
		s.expandSndBuf(ep)
	}

	// Timers.
	switch {
	case ep.sb.len() == 0:
		// Nothing in flight. The timer may be the zero-window probe's, or (from FIN-WAIT-2
		// on) the orphan's tcp_fin_timeout: only the ACK that emptied the scoreboard stops
		// the sender's own.
		if advanced {
			if ep.rtx.Pending() && ep.rtxMode != rtxProbe0 {
				s.wheel.Cancel(&ep.rtx)
			}
			ep.snd.trim() // everything sent is acknowledged: its memory goes back
			ep.sb.release()
		}
	case reoWait > 0:
		s.armTimer(ep, rtxReorder, reoWait)
	case advanced || ep.rtxMode == rtxReorder || !ep.rtx.Pending():
		s.armRtoOrProbe(ep, advanced)
	}
	return true
}

// recoveryStep is the recovery state machine for one ACK (Linux tcp_fastretrans_alert).
func (s *shard) recoveryStep(ep *endpoint, sg *segment, advanced bool, priorUna seqnum.Value,
	priorInflight, priorSacked, delivered, ackedSegs uint32) {
	switch ep.caState {
	case caOpen, caDisorder, caCWR:
		if ep.lostOut > 0 {
			s.enterRecovery(ep, priorInflight)
			s.prr(ep, delivered, advanced)
			return
		}
		if ep.caState == caCWR && !ep.sndUna.LessThan(ep.highSeq) {
			ep.caState = caOpen
		}
		if ep.caState != caCWR {
			if ep.sackedOut > 0 || ep.retransOut > 0 {
				ep.caState = caDisorder
			} else {
				ep.caState = caOpen
			}
		}
		if ep.caState <= caDisorder && ep.undoSet && ep.undoRetrans == 0 {
			// Every retransmission of the last episode was D-SACKed, after it ended
			// (Linux tcp_try_undo_dsack in the Open and Disorder states).
			s.undo(ep, stats.TcpExtTCPDSACKUndo)
			ep.undoSet = false
		}
	case caRecovery:
		if !ep.sndUna.LessThan(ep.highSeq) {
			// Recovery is over (RFC 6675 §5; Linux tcp_try_undo_recovery, tcp_end_cwnd_reduction).
			if s.mayUndo(ep, sg) {
				s.undo(ep, stats.TcpExtTCPFullUndo)
				ep.undoSet = false
			} else {
				ep.cc.cwnd = max(ep.cc.ssthresh, 1)
			}
			ep.caState = caOpen
			return
		}
		if ep.undoSet && ep.undoRetrans == 0 {
			// Every retransmission was D-SACKed: none was needed (Linux tcp_try_undo_dsack).
			s.undo(ep, stats.TcpExtTCPDSACKUndo)
			ep.undoSet = false
		}
		if !ep.sackOK && advanced && ep.sb.len() > 0 {
			// NewReno (RFC 6582 §3.2): a partial ACK means the next segment is lost too.
			s.markLost(ep, ep.sb.at(0))
		}
		s.prr(ep, delivered, advanced)
	case caLoss:
		if advanced && s.mayUndo(ep, sg) && ep.retransStamp != 0 {
			// The timeout was spurious: the original segments are being acknowledged.
			s.undo(ep, stats.TcpExtTCPLossUndo)
			s.unmarkLost(ep)
			ep.caState = caOpen
			ep.undoSet = false
			return
		}
		if !ep.sndUna.LessThan(ep.highSeq) {
			ep.caState = caOpen
		}
	}
}

// enterRecovery starts fast recovery (Linux tcp_enter_recovery, tcp_init_cwnd_reduction).
func (s *shard) enterRecovery(ep *endpoint, priorInflight uint32) {
	if ep.sackOK {
		s.ctr.Inc(stats.TcpExtTCPSackRecovery)
	} else {
		s.ctr.Inc(stats.TcpExtTCPRenoRecovery)
	}
	if ep.caState < caCWR {
		s.initUndo(ep)
		ep.priorSsthresh = ep.currentSsthresh()
		ep.priorCwnd = ep.cc.cwnd
		ep.cc.ssthresh = ep.ccOps().ssthresh(&ep.cc)
	}
	ep.highSeq = ep.sndMax
	ep.prrDelivered, ep.prrOut = 0, 0
	ep.priorCwnd = max(ep.cc.cwnd, 1)
	ep.caState = caRecovery
	ep.tlpOut = false // recovery's reduction covers the probe's episode (tcp_init_cwnd_reduction)
}

// currentSsthresh is Linux tcp_current_ssthresh: what undo goes back to.
func (ep *endpoint) currentSsthresh() uint32 {
	if ep.caState == caCWR || ep.caState == caRecovery {
		return ep.cc.ssthresh
	}
	return max(ep.cc.ssthresh, ep.cc.cwnd/2+ep.cc.cwnd/4)
}

// initUndo starts a new episode that undo may take back (Linux tcp_init_undo).
func (s *shard) initUndo(ep *endpoint) {
	ep.undoSet = true
	ep.undoMarker = ep.sndUna
	ep.undoRetrans = -1
	ep.retransStamp = 0
}

// prr sets the window in recovery by proportional rate reduction (RFC 6937, as Linux's
// tcp_cwnd_reduction has it since 5.19): while more than ssthresh is in flight, send in
// proportion to what is delivered; below it, send what was delivered and not yet sent
// again (at least what this ACK delivered, one more when SND.UNA advanced and nothing was
// newly marked lost), up to ssthresh. An ACK that delivers nothing leaves the window as it
// is.
//
// The catch-up term matters after a burst of losses: the packets in flight fall below
// ssthresh, and the window must let new data follow a retransmission, so that RACK can
// tell from the new data's SACKs if the retransmission is lost too. With only what one
// ACK delivered (RFC 6937's conservative bound, Linux before 5.19) the window stays at the
// one retransmission in flight, and a lost retransmission waits for the RTO.
func (s *shard) prr(ep *endpoint, delivered uint32, advanced bool) {
	if delivered == 0 {
		return
	}
	ep.prrDelivered += delivered
	inflight := int64(ep.inflight())
	delta := int64(ep.cc.ssthresh) - inflight
	var sndcnt int64
	if delta < 0 {
		dividend := int64(ep.cc.ssthresh)*int64(ep.prrDelivered) + int64(ep.priorCwnd) - 1
		sndcnt = dividend/int64(ep.priorCwnd) - int64(ep.prrOut)
	} else {
		sndcnt = max(int64(ep.prrDelivered)-int64(ep.prrOut), int64(delivered))
		if advanced && s.newlyLost == 0 {
			sndcnt++
		}
		sndcnt = min(delta, sndcnt)
	}
	if ep.prrOut == 0 {
		sndcnt = max(sndcnt, 1) // the first retransmission goes at once
	}
	ep.cc.cwnd = uint32(max(inflight+max(sndcnt, 0), 1))
}

// mayUndo is Linux tcp_may_undo: every retransmission of the episode proved unneeded, by
// D-SACK or by the timestamp the ACK echoes (from before the first retransmission, RFC 3522).
func (s *shard) mayUndo(ep *endpoint, sg *segment) bool {
	if !ep.undoSet {
		return false
	}
	if ep.undoRetrans == 0 {
		return true
	}
	return ep.tsOK && sg.opts.TS && sg.opts.TSEcr != 0 && ep.retransStamp != 0 &&
		int32(sg.opts.TSEcr-ep.retransStamp) < 0
}

// undo takes back a window reduction that proved spurious (Linux tcp_undo_cwnd_reduction):
// the loss was reordering.
func (s *shard) undo(ep *endpoint, id stats.ID) {
	s.ctr.Inc(id)
	ep.cc.cwnd = max(ep.cc.cwnd, ep.ccOps().undo(&ep.cc), ep.priorCwnd)
	if ep.priorSsthresh > ep.cc.ssthresh {
		ep.cc.ssthresh = ep.priorSsthresh
	}
	s.reorderSeen(ep, stats.TcpExtTCPTSReorder)
	ep.retransStamp = 0
}

// unmarkLost clears the loss marks of an RTO that proved spurious: the segments are in
// flight after all.
func (s *shard) unmarkLost(ep *endpoint) {
	for i := 0; i < ep.sb.len(); i++ {
		g := ep.sb.at(i)
		if g.has(segLost) {
			g.flags &^= segLost
			ep.lostOut--
			if !g.has(segRetrans) {
				ep.rtxQueued--
			}
		}
	}
}

// tlpAck is what an ACK says about an outstanding tail loss probe (Linux
// tcp_process_tlp_ack): if the probe was a retransmission and the ACK goes past it without
// a D-SACK, the original was lost, and the window is reduced once (TcpExtTCPLossProbeRecovery).
func (s *shard) tlpAck(ep *endpoint, ack seqnum.Value, advanced, dsack bool, delivered uint32) {
	if ack.LessThan(ep.tlpHigh) {
		return
	}
	switch {
	case !ep.tlpRetrans, dsack:
		ep.tlpOut = false
	case ep.tlpHigh.LessThan(ack):
		// The probe repaired a loss of one segment: the window is cut once and at once,
		// and the connection goes back to Open (or Disorder), where it may grow again and
		// probe again (Linux tcp_process_tlp_ack: tcp_init_cwnd_reduction, CWR and
		// tcp_end_cwnd_reduction in one step, then tcp_try_keep_open). Undo is untouched:
		// no retransmission of this episode can be taken back.
		ep.tlpOut = false
		ep.prrDelivered, ep.prrOut = 0, 0
		ep.priorCwnd = ep.cc.cwnd
		ep.cc.cwndCnt = 0
		ep.cc.ssthresh = ep.ccOps().ssthresh(&ep.cc)
		ep.cc.cwnd = max(ep.cc.ssthresh, 1)
		if ep.sackedOut > 0 || ep.lostOut > 0 || ep.retransOut > 0 {
			ep.caState = caDisorder
		} else {
			ep.caState = caOpen
		}
		ep.highSeq = ep.sndMax
		s.ctr.Inc(stats.TcpExtTCPLossProbeRecovery)
	case !advanced && delivered == 0:
		ep.tlpOut = false
	}
}

// armTimer sets the retransmission timer for what, after d.
func (s *shard) armTimer(ep *endpoint, what uint8, d int64) {
	ep.rtxMode = what
	s.wheel.Schedule(&ep.rtx, s.now+d)
}

// armRtx (re)starts the retransmission timer at the current RTO.
func (s *shard) armRtx(ep *endpoint) {
	s.armTimer(ep, rtxRetrans, ep.rto)
}

// armRtoOrProbe arms the timer for segments in flight: a tail loss probe when one may be
// sent (RFC 8985 §7.2, Linux tcp_schedule_loss_probe: SACK, the Open or CWR state, none
// outstanding), else the retransmission timeout. advancing says an ACK just moved
// SND.UNA, so that the RTO would restart now.
//
// As in Linux, the probe never waits longer than the RTO would: if the RTO falls first, the
// probe goes at the RTO's time instead (it resends the tail without collapsing the window;
// the RTO is armed behind it).
func (s *shard) armRtoOrProbe(ep *endpoint, advancing bool) {
	if !s.armProbe(ep, advancing) {
		s.armRtx(ep)
	}
}

// armProbe arms the tail loss probe if one may be sent, and reports whether it did.
func (s *shard) armProbe(ep *endpoint, advancing bool) bool {
	if ep.sackOK && (ep.caState == caOpen || ep.caState == caCWR) && !ep.tlpOut && ep.srtt > 0 && ep.retries == 0 {
		pto := 2 * ep.srtt
		if ep.sb.len() == 1 {
			pto += int64(rtoMin) // room for the peer's delayed ACK
		} else {
			pto += int64(tlpMinTimeout)
		}
		rtoIn := ep.rto
		if !advancing && ep.sb.len() > 0 {
			rtoIn = ep.sb.at(0).xmit + ep.rto - s.now
		}
		if rtoIn > 0 {
			pto = min(pto, rtoIn)
		}
		s.armTimer(ep, rtxLossProbe, pto)
		return true
	}
	return false
}

// tlpMinTimeout is Linux's TCP_TIMEOUT_MIN, the slack a loss probe's timeout allows with
// more than one segment in flight.
const tlpMinTimeout = 2_000_000

// sendData sends what is due: the segments marked lost first (Linux
// tcp_xmit_retransmit_queue), then new data as the windows allow, and the FIN after the
// last byte (tcp_write_xmit).
func (s *shard) sendData(ep *endpoint) {
	s.pmtuCheck(ep) // pmtu.go: what is resent must fit the path too
	if ep.rtxQueued > 0 && !s.retransmitLost(ep) {
		return
	}
	s.sendNew(ep)
}

// retransmitLost resends the segments marked lost while the congestion window allows; it
// reports false if a packet buffer ran out.
func (s *shard) retransmitLost(ep *endpoint) bool {
	wndEnd := ep.sndUna.Add(ep.sndWnd)
	for i := 0; i < ep.sb.len() && ep.rtxQueued > 0; i++ {
		if ep.inflight() >= ep.cc.cwnd {
			ep.cwndLimited = true
			return true
		}
		g := ep.sb.at(i)
		if !g.has(segLost) || g.has(segRetrans) || g.has(segSacked) {
			continue
		}
		if !g.start.LessThan(wndEnd) && g.start != ep.sndUna {
			return true // beyond the peer's window (Linux tcp_retransmit_skb)
		}
		if s.env.TxBacklogged() {
			s.holdTx(ep)
			return false
		}
		if !s.sendSegment(ep, g.start, g.end, g.has(segFin)) {
			s.noBuffer(ep)
			return false
		}
		ep.markResent(g, s.now)
		s.retransmitted(ep)
	}
	return true
}

// retransmitted counts a retransmission that left.
func (s *shard) retransmitted(ep *endpoint) {
	s.ctr.Inc(stats.TcpRetransSegs)
	switch ep.caState {
	case caRecovery:
		s.ctr.Inc(stats.TcpExtTCPFastRetrans)
		ep.prrOut++
	case caLoss:
		s.ctr.Inc(stats.TcpExtTCPSlowStartRetrans)
	}
	if ep.retransStamp == 0 {
		ep.retransStamp = tsNow(s.now) + ep.tsOff
	}
	if ep.undoSet {
		ep.undoRetrans = max(ep.undoRetrans, 0) + 1
	}
}

// sendSegment sends [start, end) of the stream, which has been sent before or is about to
// be; fin says end includes the FIN.
func (s *shard) sendSegment(ep *endpoint, start, end seqnum.Value, fin bool) bool {
	n := end.Sub(start)
	flags := header.TCPFlagACK
	if fin {
		n--
		flags |= header.TCPFlagFIN
	}
	pos := ep.snd.tail.Load() + uint64(start.Sub(ep.sndUna))
	if n > 0 && pos+uint64(n) == ep.snd.head.Load() {
		flags |= header.TCPFlagPSH
	}
	var opts *header.TCPOptions
	if ep.tsOK {
		opts = s.tsOptions(ep.tsOff, ep.tsRecent)
	}
	// SACK blocks ride on data too (Linux tcp_established_options), as many as fit beside
	// the payload within the MSS.
	if k := ep.sackPending(sackRoom(ep, int(n))); k > 0 {
		if opts == nil {
			opts = &s.outOpts
			*opts = header.TCPOptions{WScale: -1}
		}
		ep.sackOptionsIn(opts, k)
	}
	wnd := s.rcvWindow(ep)
	if !s.emit(&ep.key, ep.hash, start, ep.rcvNxt, flags, wnd, opts, &ep.snd, pos, int(n)) {
		return false
	}
	s.ackSent(ep)
	return true
}

// sackRoom is how many SACK blocks fit in a segment of n payload bytes: the options may
// take what the payload leaves of the MSS, up to 40 bytes, less the timestamps.
func sackRoom(ep *endpoint, n int) int {
	budget := min(header.MaxTCPOptionsLen, int(ep.mss)-n)
	if ep.tsOK {
		budget -= 12
	}
	return max((budget-4)/8, 0)
}

// noBuffer arms the timer after a segment found no packet buffer, so that it goes out later.
func (s *shard) noBuffer(ep *endpoint) {
	if !ep.rtx.Pending() {
		s.armRtx(ep)
	}
}

// sendNew sends new data and the FIN, then, if any went, times the tail loss probe from
// this last transmission, as Linux's tcp_write_xmit does (tcp_schedule_loss_probe): the
// probe's timeout follows what is in flight now, 2*SRTT plus the slack for one segment or
// for several, and never falls after the RTO. The RTO itself is not restarted by new data
// (only an ACK that advances SND.UNA restarts it); it is armed if nothing was.
func (s *shard) sendNew(ep *endpoint) {
	if !s.sendNewSegments(ep) {
		return
	}
	if (!ep.rtx.Pending() || ep.rtxMode == rtxLossProbe || ep.rtxMode == rtxRetrans) && s.armProbe(ep, false) {
		return
	}
	if !ep.rtx.Pending() || ep.rtxMode == rtxProbe0 {
		s.armRtx(ep)
	}
}

// sendNewSegments is sendNew's loop; it reports whether a segment left.
func (s *shard) sendNewSegments(ep *endpoint) (sent bool) {
	s.pmtuCheck(ep) // pmtu.go: the path MTU may have moved
	mss := ep.sendMSS()
	if k := ep.sackPending(sackRoom(ep, 0)); k > 0 {
		mss -= uint32(4 + 8*k) // room for the SACK blocks (Linux tcp_current_mss)
	}
	s.restartAfterIdle(ep)
	for !ep.finSent {
		pos := ep.snd.tail.Load() + uint64(ep.inflightData())
		unsent := uint32(ep.snd.head.Load() - pos)
		inflight := ep.sndNxt.Sub(ep.sndUna)
		var usable uint32
		if ep.sndWnd > inflight {
			usable = ep.sndWnd - inflight
		}
		n := min(unsent, usable, mss)
		// The FIN rides on the segment that carries the last byte, or goes alone once every
		// byte is out (a lone FIN is sent even into a closed window, as Linux does).
		fin := ep.finQueued && n == unsent
		if n == 0 && !fin {
			if unsent > 0 && ep.sb.len() == 0 && !ep.rtx.Pending() {
				// The window is too small for what waits: probe it (Linux tcp_check_probe_timer).
				s.armTimer(ep, rtxProbe0, ep.rto)
			}
			ep.cwndLimited = false
			return
		}
		if ep.inflight() >= ep.cc.cwnd {
			ep.cwndLimited = true
			return
		}
		// Nagle (RFC 896) as Linux does it (tcp_nagle_check with Minshall's change): a
		// segment shorter than a full one waits while an earlier short segment is still
		// unacknowledged, unless the connection has TCP_NODELAY or the segment carries FIN.
		if n < mss && !fin && !ep.noDelay.Load() && ep.sndUna.LessThan(ep.sndSml) {
			return
		}
		if s.env.TxBacklogged() {
			s.holdTx(ep)
			return
		}
		end := ep.sndNxt.Add(n)
		if fin {
			end = end.Add(1)
		}
		if !s.sendSegment(ep, ep.sndNxt, end, fin) {
			s.noBuffer(ep)
			return
		}
		if n > 0 {
			s.ctr.Inc(stats.TcpExtTCPOrigDataSent)
			if ep.ato && s.now-ep.lastData < int64(delackMin) {
				// Data that answers the peer's within the delayed-ACK time: interactive
				// (Linux tcp_event_data_sent, tcp_pingpong_thresh 1), so the ACKs for the
				// peer's next data wait to ride on our answer.
				ep.pingpong = true
			}
		}
		var flags uint8
		if fin {
			flags = segFin
		}
		ep.sb.push(ep.sndNxt, end, s.now, ep.nextOrder(), flags)
		ep.probeBackoff = 0
		if ep.caState == caRecovery {
			ep.prrOut++
		}
		ep.lastSend = s.now
		if n < mss {
			ep.sndSml = ep.sndNxt.Add(n) // the end of the last short segment (Minshall)
		}
		ep.sndNxt = end
		if fin {
			ep.finSent, ep.finEver = true, true
		}
		ep.sndMax = ep.sndNxt
		sent = true
		ep.cwndLimited = ep.inflight() >= ep.cc.cwnd
	}
	return sent
}

// restartAfterIdle shrinks the window of a connection that sent nothing for longer than an
// RTO, as Linux does with tcp_slow_start_after_idle (tcp_cwnd_restart): halved per RTO
// idle, down to the initial window.
func (s *shard) restartAfterIdle(ep *endpoint) {
	if ep.sb.len() != 0 || s.eng.settings.TCPSlowStartAfterIdle < 0 || ep.rto <= 0 {
		return
	}
	idle := s.now - ep.lastSend
	if idle <= ep.rto {
		return
	}
	restart := min(uint32(initialCwnd), ep.cc.cwnd)
	ep.cc.ssthresh = ep.currentSsthresh()
	cwnd := ep.cc.cwnd
	for d := idle - ep.rto; d > 0 && cwnd > restart; d -= ep.rto {
		cwnd >>= 1
	}
	ep.cc.cwnd = max(cwnd, restart)
	ep.lastSend = s.now
}

// rtxTimer handles the retransmission timer of a connection: SYN retransmission in
// SYN-SENT, the orphan FIN-WAIT-2 timeout, and in a synchronized state whichever of the
// sender's timers is due.
func (s *shard) rtxTimer(ep *endpoint) {
	switch ep.state {
	case StateSynSent, StateSynRecv:
		s.synTimeout(ep)
		return
	case StateFinWait2:
		s.finWait2Timer(ep)
		return
	case StateClosed, StateTimeWait:
		return
	}
	s.pmtuCheck(ep)
	if ep.sb.len() == 0 {
		s.probeTimer(ep)
		return
	}
	switch ep.rtxMode {
	case rtxLossProbe:
		s.lossProbe(ep)
		return
	case rtxReorder:
		if wait := s.rackDetectLoss(ep); wait > 0 {
			s.armTimer(ep, rtxReorder, wait)
			return
		}
		if ep.lostOut > 0 && ep.caState < caRecovery {
			s.enterRecovery(ep, ep.inflight())
			s.prr(ep, 1, false) // as Linux's tcp_rack_reo_timeout: one delivered, so the first retransmission goes
		}
		s.sendData(ep)
		if !ep.rtx.Pending() || ep.rtxMode == rtxReorder {
			s.armRtx(ep)
		}
		return
	}
	s.retransmitTimeout(ep)
}

// probeTimer runs with nothing in flight: a zero-window probe if data waits behind a closed
// window (Linux tcp_probe_timer), or the data or FIN that found no packet buffer.
func (s *shard) probeTimer(ep *endpoint) {
	waiting := ep.snd.head.Load()-ep.snd.tail.Load() > 0
	if waiting && ep.sndWnd == 0 {
		limit := s.eng.settings.TCPRetries2
		if ep.orphan {
			// Linux tcp_probe_timer for a closed socket: tcp_orphan_retries (0: 8), and
			// once the backoff reaches TCP_RTO_MAX the backoff itself counts, answered or
			// not, so that a peer cannot hold an orphan for ever.
			limit = orphanRetries
			if ep.rto >= int64(rtoMax) && int(ep.probeBackoff) >= limit {
				ep.probes = uint8(limit)
			}
		}
		if int(ep.probes) >= limit {
			// No answer to tcp_retries2 probes (an answer resets the count).
			s.writeErr(ep)
			return
		}
		ep.probes++
		if ep.probeBackoff < 255 {
			ep.probeBackoff++
		}
		s.windowProbe(ep)
		ep.rto = min(ep.rto*2, int64(rtoMax))
		s.armTimer(ep, rtxProbe0, ep.rto)
		return
	}
	if waiting || (ep.finQueued && !ep.finSent) {
		s.sendData(ep)
	}
}

// lossProbe sends a tail loss probe (RFC 8985 §7.3, Linux tcp_send_loss_probe): new data if
// the peer's window takes it, else the last segment again, so that a loss at the tail is
// found by the ACK it draws rather than by the retransmission timeout.
func (s *shard) lossProbe(ep *endpoint) {
	s.ctr.Inc(stats.TcpExtTCPLossProbes)
	before := ep.sndMax
	cwnd := ep.cc.cwnd
	ep.cc.cwnd = ep.inflight() + 1 // one segment beyond the window, new if there is one
	s.sendNew(ep)
	ep.cc.cwnd = cwnd
	if ep.sndMax != before {
		ep.tlpOut, ep.tlpRetrans, ep.tlpHigh = true, false, ep.sndMax
	} else if g := ep.sb.last(); !g.has(segSacked) {
		if s.sendSegment(ep, g.start, g.end, g.has(segFin)) {
			s.ctr.Inc(stats.TcpRetransSegs)
			ep.markResent(g, s.now)
			if ep.retransStamp == 0 {
				ep.retransStamp = tsNow(s.now) + ep.tsOff
			}
			ep.tlpOut, ep.tlpRetrans, ep.tlpHigh = true, true, ep.sndMax
		}
	}
	s.armRtx(ep)
}

// retransmitTimeout is the retransmission timeout with segments in flight (Linux
// tcp_retransmit_timer and tcp_enter_loss): every segment not SACKed is marked lost, the
// window falls to one segment, and the timer backs off.
func (s *shard) retransmitTimeout(ep *endpoint) {
	if ep.sndWnd == 0 && !ep.orphan {
		// The peer shrank its window to zero with data in flight: the retransmissions are
		// its window probes, and the connection lives while the peer answers them.
		rtxDelta, timedOut := s.zeroWindowTimedOut(ep)
		if timedOut {
			s.writeErr(ep)
			return
		}
		s.enterLoss(ep)
		s.retransmitHead(ep)
		ep.rto = min(ep.rto*2, int64(rtoMax))
		s.armRtx(ep)
		if ut := ep.opts.userTimeoutNs(); ut > 0 && s.now-rtxDelta+ut < ep.rtx.When() {
			// Never sleep past TCP_USER_TIMEOUT (Linux tcp_clamp_rto_to_user_timeout).
			s.wheel.Schedule(&ep.rtx, max(s.now-rtxDelta+ut, s.now+1))
		}
		return
	}
	limit := s.eng.settings.TCPRetries2
	if ep.orphan {
		// Linux tcp_write_timeout for a closed socket: tcp_orphan_retries (0: 8 while the
		// RTO is below TCP_RTO_MAX, none once it reaches it) instead of tcp_retries2.
		limit = orphanRetries
		if ep.rto >= int64(rtoMax) {
			limit = 0
		}
	}
	// TCP_USER_TIMEOUT, when set, replaces either bound (keepalive.go, rtxFire).
	if ep.retries >= limit && ep.opts.userTimeout.Load() == 0 {
		s.writeErr(ep)
		return
	}
	s.ctr.Inc(stats.TcpExtTCPTimeouts)
	s.enterLoss(ep)
	ep.retries++
	ep.rto = min(ep.rto*2, int64(rtoMax))
	s.sendData(ep)
	s.armRtx(ep)
}

// writeErr gives a connection up after its retransmissions or probes went unanswered
// (Linux tcp_write_err): ETIMEDOUT, TcpExtTCPAbortOnTimeout, and no reset: the peer did
// not answer, so there is no one to tell.
func (s *shard) writeErr(ep *endpoint) {
	s.ctr.Inc(stats.TcpExtTCPAbortOnTimeout)
	s.closeEndpoint(ep, errTimedOut)
}

// zeroWindowTimedOut is Linux's tcp_rtx_probe0_timed_out for a window shrunk to zero with
// data in flight. It returns how long the retransmissions have gone on (since the oldest
// segment in flight was sent when the first of them fired; zwpStart, kept until an ACK
// opens the window) and whether to give up: once that and the time since the last ACK
// both exceed twice TCP_RTO_MAX, or, with TCP_USER_TIMEOUT, once the retransmissions alone
// exceed it (answers to them do not reset it) or both exceed it.
func (s *shard) zeroWindowTimedOut(ep *endpoint) (rtxDelta int64, timedOut bool) {
	if !ep.zwpOn {
		ep.zwpOn, ep.zwpStart = true, s.now
		if ep.sb.len() > 0 {
			ep.zwpStart = ep.sb.at(0).xmit
		}
	}
	rtxDelta = s.now - ep.zwpStart
	timeout := 2 * int64(rtoMax)
	if ut := ep.opts.userTimeoutNs(); ut > 0 {
		if rtxDelta > ut {
			return rtxDelta, true
		}
		timeout = min(timeout, ut)
	}
	if s.now-ep.lastAck <= timeout {
		return rtxDelta, false
	}
	return rtxDelta, rtxDelta > timeout
}

// retransmitHead resends the first segment in flight whatever the windows say.
func (s *shard) retransmitHead(ep *endpoint) {
	g := ep.sb.at(0)
	if !s.sendSegment(ep, g.start, g.end, g.has(segFin)) {
		return
	}
	ep.markResent(g, s.now)
	s.retransmitted(ep)
}

// enterLoss is Linux tcp_enter_loss: a new loss episode unless one is going on, the window
// at one segment, every segment not SACKed lost.
func (s *shard) enterLoss(ep *endpoint) {
	if ep.caState <= caDisorder || !ep.sndUna.LessThan(ep.highSeq) || (ep.caState == caLoss && ep.retries == 0) {
		ep.priorSsthresh = ep.currentSsthresh()
		ep.priorCwnd = ep.cc.cwnd
		ep.cc.ssthresh = ep.ccOps().ssthresh(&ep.cc)
		ep.ccOps().lossEvent(&ep.cc)
		s.initUndo(ep)
	}
	ep.cc.cwnd = 1
	ep.cc.cwndCnt = 0
	if !ep.sackOK {
		ep.sackedOut = 0 // the duplicate ACKs' count starts again (Linux tcp_reset_reno_sack)
	}
	if ep.sackOK && ep.sb.len() > 0 && ep.sb.at(0).has(segSacked) {
		// The segment at SND.UNA is SACKed, yet not acknowledged: the peer threw away
		// what it SACKed (RFC 2018 §8 lets it). Linux tcp_timeout_mark_lost forgets every
		// SACK mark then, so that all is resent.
		s.ctr.Inc(stats.TcpExtTCPSACKReneging)
		for i := 0; i < ep.sb.len(); i++ {
			ep.sb.at(i).flags &^= segSacked
		}
		ep.sackedOut = 0
	}
	for i := 0; i < ep.sb.len(); i++ {
		g := ep.sb.at(i)
		if g.has(segSacked) {
			continue
		}
		if g.has(segRetrans) {
			g.flags &^= segRetrans
			ep.retransOut--
			if !g.has(segLost) {
				g.flags |= segLost
				ep.lostOut++
			}
			ep.rtxQueued++ // due again
			continue
		}
		if !g.has(segLost) {
			g.flags |= segLost
			ep.lostOut++
			ep.rtxQueued++
		}
	}
	ep.caState = caLoss
	ep.highSeq = ep.sndMax
	ep.tlpOut = false
}

// expandSndBuf grows the send buffer with the congestion window (Linux tcp_sndbuf_expand:
// room for two windows), up to tcp_wmem's maximum, unless the application fixed its size.
func (s *shard) expandSndBuf(ep *endpoint) {
	if s.eng.settings.SndBuf > 0 || ep.bufLocks.Load()&lockSnd != 0 {
		return
	}
	want := int64(2 * max(ep.cc.cwnd, initialCwnd) * ep.sendMSS())
	if want > ep.snd.limit.Load() {
		ep.snd.limit.Store(min(want, int64(s.eng.settings.TCPWmem[2])))
		s.queueWake(ep, false, true)
	}
}

// holdTx stops ep's output while the stack's transmit queue is backlogged: what it would
// send stays in the send ring or marked lost, and resumeHeld sends it once the link takes
// frames again. Nothing is dropped, so the flow loses no segment to its own queue; Linux
// gets the same from its qdisc and TCP Small Queues.
func (s *shard) holdTx(ep *endpoint) {
	if !ep.txHeld {
		ep.txHeld = true
		s.txHeld = append(s.txHeld, ep)
	}
}

// unholdTx takes ep out of the held list (it is being released); its slot is left empty
// for resumeHeld to compact.
func (s *shard) unholdTx(ep *endpoint) {
	ep.txHeld = false
	for i, h := range s.txHeld {
		if h == ep {
			s.txHeld[i] = nil
			return
		}
	}
}

// resumeHeld runs the output of the held endpoints, oldest first, while the transmit
// queue has room; those it could not reach stay held. It returns how many it ran.
func (s *shard) resumeHeld() int {
	n := 0
	for n < len(s.txHeld) && !s.env.TxBacklogged() {
		ep := s.txHeld[n]
		n++
		if ep == nil {
			continue
		}
		ep.txHeld = false
		s.output(ep)
	}
	// Those output held again were appended behind the ones not reached: keep that order.
	rest := copy(s.txHeld, s.txHeld[n:])
	clear(s.txHeld[rest:])
	s.txHeld = s.txHeld[:rest]
	return n
}

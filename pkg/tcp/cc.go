package tcp

import (
	"math"
	"time"
)

// Congestion control behind an interface in the spirit of Linux's tcp_congestion_ops: an
// algorithm is a stateless set of operations (a zero-size value, so the interface holds no
// allocation) over the connection's ccState, which carries the window and the algorithm's
// own fields, as Linux keeps them in icsk_ca_priv. Windows count segments, as Linux's
// snd_cwnd does.
//
// Algorithms: CUBIC (RFC 9438) with HyStart++ (RFC 9406), the default as in Linux, and
// Reno (RFC 5681's NewReno window rules, RFC 6582's recovery is the sender's), selected by
// net.ipv4.tcp_congestion_control. Loss recovery itself (which segments go when, PRR) is the
// sender's; an algorithm only says how the window grows and how far it falls.
type congestionOps interface {
	// init prepares a new connection's state (cwnd and ssthresh are set already).
	init(c *ccState)
	// ssthresh is the slow-start threshold after a loss (Linux ssthresh).
	ssthresh(c *ccState) uint32
	// congAvoid grows the window for acked segments outside recovery (Linux cong_avoid).
	congAvoid(c *ccState, acked uint32, now int64)
	// sample takes a round-trip time and the send sequence for round tracking (Linux
	// pkts_acked; HyStart++ needs it).
	sample(c *ccState, rtt int64, ackSeq, sndNxt uint32)
	// lossEvent marks the start of a recovery or an RTO (CA_EVENT_LOSS-like: epoch resets).
	lossEvent(c *ccState)
	// undo returns the window to go back to when a recovery proves spurious (Linux
	// undo_cwnd).
	undo(c *ccState) uint32
}

// ccState is a connection's congestion window and what its algorithm keeps.
type ccState struct {
	// CUBIC (tcp_cubic.c's bictcp).
	epochStart  int64   // start of the current congestion-avoidance epoch, 0: none
	minRTT      int64   // smallest RTT seen (ns)
	lastMaxCwnd float32 // W_max
	k           float32 // seconds to get back to W_max
	originPoint float32
	west        float32 // the Reno-friendly estimate W_est

	// HyStart++ (RFC 9406).
	hsLastMin    int64 // lastRoundMinRTT (0: none)
	hsCurMin     int64 // currentRoundMinRTT (0: none)
	hsCSSBaseRTT int64

	cwnd     uint32 // segments
	ssthresh uint32 // segments
	cwndCnt  uint32 // linear growth accumulator (Linux snd_cwnd_cnt)
	lossCwnd uint32 // cwnd at the last loss (undo)

	hsWindowEnd uint32 // the round ends when this is acknowledged
	hsRoundSet  bool
	hsSamples   uint8
	hsCSS       bool  // in Conservative Slow Start
	hsCSSRounds uint8 // rounds spent in CSS
	hsDone      bool  // left slow start through HyStart++ (until the next loss)
}

// The algorithms by their Linux names.
var congestionAlgorithms = map[string]congestionOps{
	"cubic": cubicOps{},
	"reno":  renoOps{},
}

// slowStart grows cwnd by acked (at most to ssthresh) and returns what is left of acked.
func (c *ccState) slowStart(acked uint32) uint32 {
	cwnd := min(c.cwnd+acked, c.ssthresh)
	acked -= cwnd - c.cwnd
	c.cwnd = cwnd
	return acked
}

// addAI is Linux tcp_cong_avoid_ai: one segment more for every w acknowledged.
func (c *ccState) addAI(w, acked uint32) {
	w = max(w, 1)
	if c.cwndCnt >= w {
		c.cwndCnt = 0
		c.cwnd++
	}
	c.cwndCnt += acked
	if c.cwndCnt >= w {
		delta := c.cwndCnt / w
		c.cwndCnt -= delta * w
		c.cwnd += delta
	}
}

// renoOps is Linux's reno: slow start, then one segment per window; half the window on loss.
type renoOps struct{}

func (renoOps) init(*ccState) {}

func (renoOps) ssthresh(c *ccState) uint32 {
	c.lossCwnd = c.cwnd
	return max(c.cwnd/2, 2)
}

func (renoOps) congAvoid(c *ccState, acked uint32, _ int64) {
	if c.cwnd < c.ssthresh {
		if acked = c.slowStart(acked); acked == 0 {
			return
		}
	}
	c.addAI(c.cwnd, acked)
}

func (renoOps) sample(*ccState, int64, uint32, uint32) {}
func (renoOps) lossEvent(*ccState)                     {}
func (renoOps) undo(c *ccState) uint32                 { return max(c.cwnd, c.lossCwnd) }

// CUBIC's constants (RFC 9438 §4.6 and Linux's defaults: beta 717/1024, C = 0.4).
const (
	cubicBeta = 0.7
	cubicC    = 0.4
	// cubicAlpha is the Reno-friendly region's additive increase, 3(1-beta)/(1+beta).
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// HyStart++'s constants (RFC 9406 §4.3), without pacing (L = 8).
const (
	hsMinRTTThresh = int64(4 * time.Millisecond)
	hsMaxRTTThresh = int64(16 * time.Millisecond)
	hsMinRTTDiv    = 8
	hsNRTTSample   = 8
	hsCSSGrowthDiv = 4
	hsCSSRounds    = 5
	hsL            = 8
)

// cubicOps is CUBIC with HyStart++ in slow start.
type cubicOps struct{}

func (cubicOps) init(c *ccState) {}

func (cubicOps) ssthresh(c *ccState) uint32 {
	c.epochStart = 0
	w := float64(c.cwnd)
	// Fast convergence (RFC 9438 §4.7): a flow whose window keeps shrinking yields room.
	if w < float64(c.lastMaxCwnd) {
		c.lastMaxCwnd = float32(w * (1 + cubicBeta) / 2)
	} else {
		c.lastMaxCwnd = float32(w)
	}
	c.lossCwnd = c.cwnd
	return max(uint32(w*cubicBeta), 2)
}

func (cubicOps) lossEvent(c *ccState) {
	c.epochStart = 0
	c.hsDone, c.hsCSS, c.hsRoundSet = false, false, false
}

func (cubicOps) undo(c *ccState) uint32 { return max(c.cwnd, c.lossCwnd) }

func (cubicOps) sample(c *ccState, rtt int64, ackSeq, sndNxt uint32) {
	if rtt <= 0 {
		return
	}
	if c.minRTT == 0 || rtt < c.minRTT {
		c.minRTT = rtt
	}
	if c.cwnd >= c.ssthresh || c.hsDone {
		return
	}
	// Rounds: one ends when the data sent at its start is acknowledged.
	if !c.hsRoundSet || int32(ackSeq-c.hsWindowEnd) >= 0 {
		c.hsRoundSet = true
		c.hsWindowEnd = sndNxt
		c.hsLastMin, c.hsCurMin, c.hsSamples = c.hsCurMin, 0, 0
		if c.hsCSS {
			if c.hsCSSRounds++; c.hsCSSRounds >= hsCSSRounds {
				// Five rounds of conservative growth without the RTT easing: leave slow start.
				c.ssthresh = c.cwnd
				c.hsDone, c.hsCSS = true, false
				return
			}
		}
	}
	if c.hsCurMin == 0 || rtt < c.hsCurMin {
		c.hsCurMin = rtt
	}
	c.hsSamples++
	switch {
	case !c.hsCSS && c.hsSamples >= hsNRTTSample && c.hsLastMin != 0:
		thresh := min(max(c.hsLastMin/hsMinRTTDiv, hsMinRTTThresh), hsMaxRTTThresh)
		if c.hsCurMin >= c.hsLastMin+thresh {
			c.hsCSS, c.hsCSSRounds, c.hsCSSBaseRTT = true, 0, c.hsCurMin
		}
	case c.hsCSS && c.hsCurMin < c.hsCSSBaseRTT:
		c.hsCSS = false // the delay increase was spurious: back to slow start
	}
}

func (o cubicOps) congAvoid(c *ccState, acked uint32, now int64) {
	if c.cwnd < c.ssthresh && !c.hsDone {
		grow := min(acked, hsL)
		if c.hsCSS {
			// Conservative Slow Start: a quarter of slow start's growth.
			c.cwndCnt += grow
			grow = c.cwndCnt / hsCSSGrowthDiv
			c.cwndCnt -= grow * hsCSSGrowthDiv
		}
		c.cwnd = min(c.cwnd+grow, c.ssthresh)
		if grow >= acked || c.cwnd < c.ssthresh {
			return
		}
		acked -= grow
	}
	o.cubicGrow(c, acked, now)
}

// cubicGrow is congestion avoidance (RFC 9438 §4.2-4.4): towards W_cubic(t+RTT), no slower
// than the Reno-friendly estimate.
func (cubicOps) cubicGrow(c *ccState, acked uint32, now int64) {
	// The state keeps float32s (a connection's memory); the arithmetic is in float64.
	cwnd := float64(c.cwnd)
	if c.epochStart == 0 {
		c.epochStart = now
		c.cwndCnt = 0
		if wmax := float64(c.lastMaxCwnd); cwnd < wmax {
			c.k = float32(math.Cbrt((wmax - cwnd) / cubicC))
			c.originPoint = c.lastMaxCwnd
		} else {
			c.k = 0
			c.originPoint = float32(cwnd)
		}
		c.west = float32(cwnd)
	}
	t := float64(now-c.epochStart+c.minRTT) / 1e9
	d := t - float64(c.k)
	target := float64(c.originPoint) + cubicC*d*d*d
	// Never more than half again the window in one RTT (RFC 9438 §4.2).
	target = min(target, 1.5*cwnd)
	west := float64(c.west) + cubicAlpha*float64(acked)/cwnd
	c.west = float32(west)
	target = max(target, west)
	if target > cwnd {
		// (target - cwnd) / cwnd segments per acknowledged segment.
		per := max(uint32(cwnd/(target-cwnd)), 1)
		c.addAI(per, acked)
		return
	}
	// At or above the curve: creep, 1 segment per 100 windows (Linux's cnt = 100 * cwnd).
	c.addAI(100*c.cwnd, acked)
}

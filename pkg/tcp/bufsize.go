package tcp

import (
	"math/bits"
	"net"
)

// Buffer sizes. A connection's rings (buffer.go) have a capacity, a number that bounds the
// data they hold; their memory comes in chunks while data waits. The receive ring starts at
// the window tcp_rmem's default gives (half of it, as Linux with tcp_adv_win_scale 1) and
// grows, once per receiver round trip, to what lets the application's read rate be kept up
// with losses (Linux tcp_rcv_space_adjust: twice what it read in the last round trip,
// plus 16 segments, plus room for a sender that is still speeding up). The send ring starts
// at tcp_wmem's default and follows the congestion window (room for two windows, Linux
// tcp_sndbuf_expand). Neither shrinks while the connection lives: what is not used holds
// no memory. SetReadBuffer and SetWriteBuffer, and the stack-wide RcvBuf and SndBuf, fix a
// size and stop the growth, as SO_RCVBUF and SO_SNDBUF lock Linux's.

// Buffer-size locks (endpoint.bufLocks), set by the application.
const (
	lockRcv uint32 = 1 << iota
	lockSnd
)

// winFromSpace is the data a buffer of n bytes holds (Linux tcp_win_from_space with
// tcp_adv_win_scale 1).
func winFromSpace(n int) int { return n / 2 }

// initialBuffers sizes a new connection's rings.
func (s *shard) initialBuffers(ep *endpoint) (rcv, snd int) {
	st := &s.eng.settings
	rcv, snd = st.RcvBuf, st.SndBuf
	if rcv <= 0 {
		rcv = winFromSpace(st.TCPRmem[1])
	}
	if snd <= 0 {
		snd = st.TCPWmem[1]
	}
	return rcv, snd
}

// rcvLocked reports whether the receive buffer has a fixed size.
func (ep *endpoint) rcvLocked() bool {
	return ep.sh.eng.settings.RcvBuf > 0 || ep.bufLocks.Load()&lockRcv != 0
}

// maxRcvWindow is the largest receive window the connection may come to advertise: what
// the window scale is chosen for.
func (s *shard) maxRcvWindow() int {
	st := &s.eng.settings
	if st.RcvBuf > 0 {
		return st.RcvBuf
	}
	return max(winFromSpace(st.TCPRmem[2]), winFromSpace(st.TCPRmem[1]))
}

// ourWScale is the window scale we offer: the smallest shift that lets the largest window
// the connection may reach be advertised (Linux tcp_select_initial_window chooses it from
// the largest buffer, tcp_rmem's max).
func (s *shard) ourWScale() uint8 {
	w := s.maxRcvWindow()
	if s.eng.settings.RcvBuf <= 0 {
		// Linux: ilog2 of the buffer's bytes, less 15.
		ws := bits.Len(uint(max(s.eng.settings.TCPRmem[2], 1))) - 1 - 15
		return uint8(min(max(ws, 0), maxWScale))
	}
	var ws uint8
	for (w>>ws) > 0xffff && ws < maxWScale {
		ws++
	}
	return ws
}

// synWindow is the window of a SYN or SYN-ACK, never scaled (RFC 7323 §2.2): the initial
// receive space in whole segments of the MSS we announce (less the timestamps when they are
// on), as Linux's tcp_select_initial_window rounds it (64240 for a SYN, 65160 for a SYN-ACK
// with timestamps, from tcp_rmem's default).
func (s *shard) synWindow(mss int, ts bool) uint16 {
	space := s.eng.settings.RcvBuf
	if space <= 0 {
		space = winFromSpace(s.eng.settings.TCPRmem[1])
	}
	if ts {
		mss -= 12
	}
	if mss > 0 && space > mss {
		space -= space % mss
	}
	return uint16(min(space, 0xffff))
}

// rcvRTTSample takes the receiver's round-trip estimate from a data segment's timestamp
// echo (Linux tcp_rcv_rtt_measure_ts), what autotuning measures its rounds by.
func (s *shard) rcvRTTSample(ep *endpoint, tsEcr uint32) {
	if tsEcr == 0 {
		return
	}
	r := int64(tsNow(s.now)-(tsEcr-ep.tsOff)) * 1e6
	if r < 0 || r > int64(rtoMax) {
		return
	}
	r = max(r, 1e6) // a millisecond's resolution
	if ep.rcvRTT == 0 {
		ep.rcvRTT = r
	} else {
		ep.rcvRTT += (r - ep.rcvRTT) / 8
	}
}

// rcvSpaceAdjust grows the receive buffer once per receiver round trip from what the
// application read in it (Linux tcp_rcv_space_adjust).
func (s *shard) rcvSpaceAdjust(ep *endpoint) {
	rtt := ep.rcvRTT
	if rtt == 0 {
		rtt = ep.srtt
	}
	if rtt == 0 || s.now-ep.rcvSpaceTime < rtt {
		return
	}
	tail := ep.rcv.tail.Load()
	copied := int64(tail - ep.rcvSpaceSeq)
	ep.rcvSpaceSeq, ep.rcvSpaceTime = tail, s.now
	if ep.rcvSpace == 0 {
		ep.rcvSpace = int64(min(ep.rcv.capacity(), initialCwnd*int(ep.mss)))
	}
	if copied <= ep.rcvSpace {
		return
	}
	if !ep.rcvLocked() {
		win := 2*copied + 16*int64(ep.mss)
		win += 2 * win * (copied - ep.rcvSpace) / ep.rcvSpace
		win = min(win, int64(winFromSpace(s.eng.settings.TCPRmem[2])))
		if win > int64(ep.rcv.capacity()) {
			ep.rcv.setCapacity(int(win))
		}
	}
	ep.rcvSpace = copied
}

// SetReadBuffer fixes the connection's receive buffer at n bytes of data (SO_RCVBUF; the
// window it advertises is bounded by the window scale the handshake chose). It stops the
// buffer's growth.
func (h Handle) SetReadBuffer(n int) error {
	return h.setBuffer(n, lockRcv)
}

// SetWriteBuffer fixes the connection's send buffer at n bytes (SO_SNDBUF). It stops the
// buffer's growth.
func (h Handle) SetWriteBuffer(n int) error {
	return h.setBuffer(n, lockSnd)
}

// sockMinBuf is the least a buffer is set to (Linux SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, about
// one segment and its overhead).
const sockMinBuf = 2304

func (h Handle) setBuffer(n int, which uint32) error {
	if n < 0 {
		return &net.OpError{Op: "set", Net: "tcp", Err: errBufferSize}
	}
	if !h.enter() {
		return net.ErrClosed
	}
	defer h.exit()
	ep := h.ep
	n = max(n, sockMinBuf)
	ep.bufLocks.Or(which)
	if which == lockRcv {
		ep.rcv.setCapacity(n)
		ep.post(pendWindow)
	} else {
		ep.snd.setCapacity(n)
		ep.signalWr()
	}
	return nil
}

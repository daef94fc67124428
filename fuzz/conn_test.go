package fuzz

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// maxOps bounds one input's script.
const maxOps = 300

// FuzzConnection drives one shardstack stack through whole connections against a scripted
// peer on a virtual clock, and checks after every step that the stack keeps its promises.
//
// setup picks the role (the peer connects to a listener, or the stack dials), the profile,
// timestamps, SACK, window scaling, tcp_syncookies (with the SYN queue filled first, so
// cookies are really used), the listener's options, the API (Handle, net.Conn or Events) and
// how the peer behaves; decodeConnConfig says how. prog is a script (see script and the op
// constants): the peer's segments, with sequence and acknowledgment numbers derived from the
// connection's real state plus fuzzed offsets, options (malformed ones too) and payloads;
// the application's writes, reads, closes, aborts and accepts; and time passing, so that
// retransmission, delayed-ACK, FIN-WAIT-2 and TIME-WAIT timers fire. At the end the
// application closes everything and the peer finishes the close (or falls silent); within
// minutes of virtual time every table must be empty.
//
// The invariants, checked after every poll and every operation: no counter goes backwards
// (but gauges); every frame the stack sends parses, with valid checksums; its sequence
// numbers stay between its ISS and what the application wrote, with exactly those bytes;
// it never acknowledges what the peer did not send; it keeps to the peer's MSS, window and
// timestamps; the socket table agrees with TcpCurrEstab, the listener's queues and the
// application's handles; what the application reads is exactly what the peer sent; and no
// input makes the stack send more than burstCap segments without new data in one instant.
// Known bugs of pkg/tcp that the target would otherwise trip over are listed, in one place,
// in knownIssues.
func FuzzConnection(f *testing.F) {
	f.Fuzz(func(t *testing.T, setup uint32, prog []byte) {
		runConnection(t, decodeConnConfig(setup), prog)
	})
}

// runConnection plays one input to the end; the rig is returned for regression tests.
func runConnection(t testing.TB, cfg connConfig, prog []byte) *connRig {
	r := newConnRig(t, cfg)
	defer r.st.Close()
	r.p.reflex = cfg.reflex
	if cfg.fill && !cfg.active {
		r.fillSynQueue()
	}
	r.play(prog)
	r.finish()
	return r
}

// play runs a script's operations (at most maxOps), checking the tables after each.
func (r *connRig) play(prog []byte) {
	sc := &script{b: prog}
	for ops := 0; !sc.done() && ops < maxOps; ops++ {
		op := int(sc.byte()) % numOps
		r.burst, r.muted = 0, false
		r.note("op %s", opNames[op])
		if op <= opResend || op == opReflex {
			r.peerOp(op, sc)
		} else {
			r.appOp(op, sc)
		}
		r.settle()
		r.checkTables()
	}
}

// fillSynQueue has other clients send SYNs that are never completed, until the SYN queue
// takes no more: the peer's SYN then finds it full (a cookie, or a drop).
func (r *connRig) fillSynQueue() {
	for i := 0; i < 40; i++ {
		before := r.l.SynQueueLen()
		r.inject(&tseg{sport: uint16(connFillerPort + i), dport: connServicePort, seq: 1000 * 1000 * 7, flags: header.TCPFlagSYN,
			wnd: 65535, opts: header.TCPOptions{MSS: 1460, WScale: -1}})
		r.settle()
		if r.l.SynQueueLen() == before {
			break
		}
	}
	r.note("SYN queue filled: %d requests", r.l.SynQueueLen())
}

var writeSizes = [16]int{1, 2, 10, 100, 500, 1000, 1460, 1461, 3000, 4096, 8000, 16384, 20000, 0, 7, 64}
var readSizes = [8]int{1, 10, 100, 1000, 4096, 16384, 65536, 3}

// waits are the time steps of opWait: around the delayed ACK, the RTO and its backoffs,
// the SYN-ACK schedule, tcp_fin_timeout and TIME-WAIT.
var waits = [16]time.Duration{0, time.Millisecond, 10 * time.Millisecond, 40 * time.Millisecond,
	200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second,
	7 * time.Second, 15 * time.Second, 31 * time.Second, 61 * time.Second, 121 * time.Second, -1, 5 * time.Minute}

// pickConn is the connection an application operation works on: the newest, or the oldest
// still open.
func (r *connRig) pickConn(sel byte) *appConn {
	if len(r.conns) == 0 {
		return nil
	}
	if sel&1 != 0 {
		for _, c := range r.conns {
			if !c.closed {
				return c
			}
		}
	}
	return r.conns[len(r.conns)-1]
}

// writeSafe reports whether a blocking Write of n bytes returns at once.
func (r *connRig) writeSafe(c *appConn, n int) bool {
	if c.closed {
		return true
	}
	switch c.h.State() {
	case tcp.StateEstablished, tcp.StateCloseWait:
		row, ok := r.row(c)
		return ok && r.sndRing-row.SendQ >= n
	case tcp.StateSynSent, tcp.StateSynRecv:
		return false
	}
	return true
}

// readSafe reports whether a blocking Read returns at once.
func (r *connRig) readSafe(c *appConn) bool {
	if c.closed {
		return true
	}
	switch c.h.State() {
	case tcp.StateCloseWait, tcp.StateLastAck, tcp.StateClosing, tcp.StateTimeWait, tcp.StateClosed:
		return true
	case tcp.StateEstablished, tcp.StateFinWait1, tcp.StateFinWait2:
		row, ok := r.row(c)
		return ok && row.RecvQ > 0
	}
	return false
}

func past() time.Time { return time.Now().Add(-time.Hour) }

// appOp runs one of the application's operations.
func (r *connRig) appOp(op int, sc *script) {
	switch op {
	case opWrite:
		sel := sc.byte()
		if c := r.pickConn(sel >> 6); c != nil {
			r.write(c, writeSizes[sel&15], sel&16 != 0)
		}
	case opRead:
		sel := sc.byte()
		if c := r.pickConn(sel >> 6); c != nil {
			r.read(c, sel&7, sel>>3&3)
		}
	case opClose:
		sel := sc.byte()
		if c := r.pickConn(sel); c != nil {
			r.closeConn(c, sel&2 != 0)
		}
	case opAbort:
		if c := r.pickConn(sc.byte()); c != nil {
			err := c.h.Abort()
			r.note("app: abort (%v)", err)
			if c.closed {
				r.check(errors.Is(err, tcp.ErrClosed), "Abort after Close: %v", err)
			} else {
				r.check(err == nil, "Abort: %v", err)
			}
			c.closed = true
		}
	case opAccept:
		r.accept(sc.byte())
	case opWait:
		d := waits[sc.byte()&15]
		if d < 0 {
			if next, ok := r.st.NextDeadline(); ok && next > r.vc.Now() {
				d = time.Duration(next - r.vc.Now())
			} else {
				d = 0
			}
		}
		r.note("wait %v", d)
		r.advance(d)
	case opDial:
		r.dial(sc.byte())
	case opMisc:
		r.misc(sc.byte())
	}
}

func (r *connRig) write(c *appConn, n int, blocking bool) {
	b := make([]byte, n)
	for i := range b {
		b[i] = patApp(c.written + uint32(i))
	}
	var got int
	var err error
	switch {
	case blocking && r.writeSafe(c, n) && c.c != nil:
		got, err = c.c.Write(b)
	case blocking && r.writeSafe(c, n):
		got, err = c.h.Write(b)
	default:
		got, err = c.h.TryWrite(b)
	}
	r.note("app: write %d: %d %v", n, got, err)
	r.checkNetError(err)
	r.check(got >= 0 && got <= n && (err != nil || got == n), "write of %d: %d, %v", n, got, err)
	if c.closed {
		r.check(got == 0 && errors.Is(err, tcp.ErrClosed), "write after Close: %d, %v", got, err)
	}
	c.written += uint32(got)
}

func (r *connRig) read(c *appConn, n, mode byte) {
	b := make([]byte, readSizes[n&7])
	var got int
	var err error
	switch mode {
	case 0:
		got, err = c.h.TryRead(b)
	case 1:
		if !r.readSafe(c) {
			got, err = c.h.TryRead(b)
		} else if c.c != nil {
			got, err = c.c.Read(b)
		} else {
			got, err = c.h.Read(b)
		}
	case 2:
		// A deadline already past fails the read before it looks (net.Conn semantics).
		derr := c.h.SetReadDeadline(past())
		got, err = c.h.Read(b)
		if c.closed {
			r.check(errors.Is(derr, tcp.ErrClosed) && errors.Is(err, tcp.ErrClosed), "deadline on a closed handle: %v %v", derr, err)
		} else {
			r.check(derr == nil && errors.Is(err, tcp.ErrDeadline) && got == 0, "read past its deadline: %d %v", got, err)
			require.NoError(r.t, c.h.SetReadDeadline(time.Time{}))
		}
	default:
		for {
			var k int
			k, err = c.h.TryRead(b[got:])
			r.checkRead(c, b[got:got+k])
			got += k
			if err != nil || got == len(b) {
				break
			}
		}
		r.note("app: read all %d: %d %v", len(b), got, err)
		return
	}
	r.note("app: read %d (mode %d): %d %v", len(b), mode, got, err)
	r.checkNetError(err)
	r.checkRead(c, b[:got])
	if err == io.EOF {
		r.check(got == 0, "data with io.EOF")
	}
}

// checkNetError holds an error to the net.Error contract: a would-block and a deadline are
// timeouts, a reset is not.
func (r *connRig) checkNetError(err error) {
	var ne net.Error
	switch {
	case err == nil || err == io.EOF:
	case errors.Is(err, tcp.ErrWouldBlock):
		r.check(errors.As(err, &ne) && ne.Timeout() && errors.Is(err, syscall.EAGAIN), "ErrWouldBlock is a timeout: %v", err)
	case errors.Is(err, tcp.ErrDeadline):
		r.check(errors.As(err, &ne) && ne.Timeout(), "ErrDeadline is a timeout: %v", err)
	case errors.Is(err, tcp.ErrConnectionReset):
		r.check(errors.As(err, &ne) && !ne.Timeout() && errors.Is(err, syscall.ECONNRESET), "a reset: %v", err)
	case errors.Is(err, tcp.ErrTimedOut):
		r.check(errors.As(err, &ne) && ne.Timeout() && errors.Is(err, syscall.ETIMEDOUT), "a timeout: %v", err)
	}
}

// checkRead holds what the application read to what the peer sent.
func (r *connRig) checkRead(c *appConn, b []byte) {
	base := uint32(0)
	if c.inc != nil {
		base = c.inc.rcvBase
	}
	for i, v := range b {
		if want := patPeer(base + c.read + uint32(i)); v != want {
			r.failf("the application read %#x at offset %d of the peer's stream, which sent %#x", v, base+c.read+uint32(i), want)
		}
	}
	c.read += uint32(len(b))
}

func (r *connRig) closeConn(c *appConn, twice bool) {
	if r.stepAroundClose(c) {
		return
	}
	var err error
	if c.c != nil {
		err = c.c.Close()
	} else {
		err = c.h.Close()
	}
	r.note("app: close (%v)", err)
	if c.closed {
		r.check(errors.Is(err, tcp.ErrClosed), "Close twice: %v", err)
	} else {
		r.check(err == nil, "Close: %v", err)
	}
	c.closed = true
	if twice {
		r.check(errors.Is(c.h.Close(), tcp.ErrClosed), "a second Close must say ErrClosed")
	}
}

// stepAroundClose aborts, instead of closing, a connection that a Close would take into
// issueCloseInSynRecv, and reports whether it did.
func (r *connRig) stepAroundClose(c *appConn) bool {
	if c.closed || c.h.State() != tcp.StateSynRecv || !knownIssue(r, issueCloseInSynRecv) {
		return false
	}
	require.NoError(r.t, c.h.Abort())
	c.closed = true
	return true
}

// accept takes a child from the listener's queue in one of its four ways.
func (r *connRig) accept(mode byte) {
	if r.l == nil || r.cfg.api == apiEvents {
		return
	}
	if r.cfg.api == apiConn {
		mode |= 1
	}
	var h tcp.Handle
	var c *tcp.Conn
	var err error
	waiting := r.l.AcceptQueueLen() > 0 || r.l.Closed()
	switch mode & 3 {
	case 0:
		h, err = r.l.TryAcceptHandle()
	case 1:
		c, err = r.l.TryAccept()
	case 2:
		if !waiting {
			return
		}
		h, err = r.l.AcceptHandle()
	case 3:
		if !waiting {
			return
		}
		nc, e := r.l.Accept()
		err = e
		if e == nil {
			c = nc.(*tcp.Conn)
		}
	}
	if err != nil {
		r.check(errors.Is(err, tcp.ErrWouldBlock) || errors.Is(err, tcp.ErrClosed), "accept: %v", err)
		return
	}
	if c != nil {
		h = c.Handle
		r.check(c.LocalAddr().String() == netip.AddrPortFrom(fuzzServer.Addr(), connServicePort).String(), "Conn.LocalAddr %v", c.LocalAddr())
	}
	r.check(h.LocalAddrPort() == netip.AddrPortFrom(fuzzServer.Addr(), connServicePort), "accepted a connection on %v", h.LocalAddrPort())
	r.check(h.RemoteAddrPort() == netip.AddrPortFrom(fuzzPeer, connPeerPort), "accepted a connection from %v", h.RemoteAddrPort())
	r.adopt(h, c)
}

// dial opens a connection to the peer (active role only), when none is open.
func (r *connRig) dial(mode byte) {
	peerAP := netip.AddrPortFrom(fuzzPeer, connServicePort)
	if mode&7 == 5 {
		// Off the subnet, with no gateway: refused before any segment.
		_, err := r.st.DialAsyncHandle(netip.MustParseAddrPort("203.0.113.9:80"), tcp.DialOptions{})
		var de *net.OpError
		r.check(errors.As(err, &de) && de.Op == "dial" && errors.Is(err, tcp.ErrNetUnreachable) && errors.Is(err, syscall.ENETUNREACH), "unroutable dial: %v", err)
		_, err = r.st.DialAsyncHandle(netip.AddrPortFrom(fuzzPeer, 0), tcp.DialOptions{})
		r.check(errors.Is(err, tcp.ErrInvalid), "dial to port 0: %v", err)
		return
	}
	if !r.cfg.active {
		return
	}
	if r.dialing != nil && r.dialing.h.State() != tcp.StateSynSent {
		r.dialing = nil // its connect failed before a SYN (a port in use, no buffer)
	}
	if r.dialing != nil {
		return
	}
	for _, row := range r.st.Sockets() {
		if row.State != tcp.StateTimeWait {
			return // one connection at a time: the peer plays one flow
		}
	}
	opts := tcp.DialOptions{}
	ac := &appConn{}
	var err error
	switch mode & 7 {
	case 1:
		var c *tcp.Conn
		c, err = r.st.DialAsync(peerAP, opts)
		if err == nil {
			ac.h, ac.c = c.Handle, c
		}
	case 2:
		opts.LocalPort = connDialPort
		ac.h, err = r.st.DialAsyncHandle(peerAP, opts)
	case 3:
		opts.Events, opts.UserData = r.ev, 42
		ac.h, err = r.st.DialAsyncHandle(peerAP, opts)
		if err == nil {
			r.check(ac.h.UserData() == 42, "UserData %d", ac.h.UserData())
		}
	case 4:
		// A blocking Dial whose context is already done: the SYN goes out, then the
		// connection is closed at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var h tcp.Handle
		h, err = r.st.DialHandle(ctx, peerAP)
		var de *net.OpError
		r.check(!h.Valid() && errors.As(err, &de) && de.Op == "dial" && errors.Is(err, context.Canceled) && de.Error() != "", "dial with a done context: %v", err)
		ac.closed = true
		err = nil
	case 6:
		opts.SynCnt = 1
		ac.h, err = r.st.DialAsyncHandle(peerAP, opts)
	default:
		ac.h, err = r.st.DialAsyncHandle(peerAP, opts)
	}
	r.check(err == nil, "dial: %v", err)
	r.note("app: dial (mode %d)", mode&7)
	r.conns = append(r.conns, ac)
	r.dialing = ac
}

// misc exercises socket options, getters, deadlines and the listener's knobs.
func (r *connRig) misc(sel byte) {
	c := r.pickConn(sel >> 7)
	switch sel & 15 {
	case 0, 1:
		if c != nil {
			err := c.h.SetNoDelay(sel&1 == 0)
			r.check(err == nil || c.closed && errors.Is(err, tcp.ErrClosed), "SetNoDelay: %v", err)
		}
	case 2:
		if c != nil && !c.closed && c.h.Valid() {
			st := c.h.State()
			_, _, _, _ = c.h.Opened(), c.h.Err(), c.h.FlowHash(), c.h.Shard()
			if st == tcp.StateEstablished || st == tcp.StateCloseWait {
				r.check(c.h.Opened(), "an %v connection that never opened", st)
				r.check(c.h.RemoteAddrPort().Addr() == fuzzPeer, "RemoteAddrPort %v", c.h.RemoteAddrPort())
				r.check(c.h.LocalAddrPort().Addr() == fuzzServer.Addr(), "LocalAddrPort %v", c.h.LocalAddrPort())
				r.check(c.h.FlowHash() != 0, "no flow hash")
			}
			if c.c != nil {
				_, _ = c.c.LocalAddr(), c.c.RemoteAddr()
			}
			r.checkNetError(c.h.Err())
		}
		if r.l != nil {
			r.check(r.l.Addr().String() == r.l.AddrPort().String(), "Listener.Addr %v", r.l.Addr())
		}
		eng := r.st.TCP()
		r.check(eng.NumShards() == r.st.NumShards() && eng.Settings().Profile == r.settings.Profile, "the engine's settings")
		for _, name := range tcp.Sysctls() {
			v, err := r.settings.Get(name)
			r.check(err == nil && v != "", "sysctl %s: %q %v", name, v, err)
		}
	case 3:
		if c != nil && !c.closed {
			r.read(c, 0, 2)
		}
	case 4:
		if c != nil && !c.closed {
			require.NoError(r.t, c.h.SetWriteDeadline(past()))
			n, err := c.h.Write([]byte{1})
			r.check(n == 0 && errors.Is(err, tcp.ErrDeadline), "write past its deadline: %d %v", n, err)
			require.NoError(r.t, c.h.SetDeadline(time.Time{}))
		}
	case 5:
		if c != nil && !c.closed {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := c.h.WaitConnected(ctx)
			st := c.h.State()
			if st == tcp.StateSynSent || st == tcp.StateSynRecv {
				r.check(errors.Is(err, context.Canceled), "WaitConnected while %v: %v", st, err)
			}
		}
	case 6:
		if r.l != nil {
			r.l.SetBacklog(int(sel>>4) % 3)
		}
	case 7:
		if r.l != nil {
			r.l.SetDeferAccept(time.Duration(sel>>4&1) * time.Second)
		}
	case 8:
		if r.l != nil {
			r.l.SetSynCnt(int(sel >> 4 & 1))
		}
	case 9:
		if r.l != nil {
			r.maxSeg = int(sel>>4&1) * 536
			r.l.SetMaxSeg(r.maxSeg)
		}
	case 10:
		if r.l != nil && !r.l.Closed() && sel&0x30 == 0x30 {
			r.note("app: listener close")
			require.NoError(r.t, r.l.Close())
		}
	case 11:
		if r.l != nil && r.cfg.api != apiEvents && r.l.AcceptQueueLen() == 0 && !r.l.Closed() {
			require.NoError(r.t, r.l.SetDeadline(past()))
			_, err := r.l.AcceptHandle()
			r.check(errors.Is(err, tcp.ErrDeadline), "accept past its deadline: %v", err)
			require.NoError(r.t, r.l.SetDeadline(time.Time{}))
		}
	case 12:
		if c != nil && !c.closed {
			c.h.SetUserData(uint64(sel))
			r.check(c.h.UserData() == uint64(sel), "UserData")
		}
	}
}

// finish is every input's last step: the application closes everything, the peer finishes
// the close (or falls silent), and after minutes of virtual time the stack must hold
// nothing.
func (r *connRig) finish() {
	r.burst, r.muted = 0, false
	r.note("final phase")
	if r.l != nil && r.cfg.api != apiEvents {
		for {
			h, err := r.l.TryAcceptHandle()
			if err != nil {
				break
			}
			r.adopt(h, nil)
		}
	}
	for _, c := range r.conns {
		if !c.closed && !r.stepAroundClose(c) {
			c.closed = true
			require.NoError(r.t, c.h.Close())
		}
	}
	if r.l != nil && !r.l.Closed() {
		require.NoError(r.t, r.l.Close())
		require.ErrorIs(r.t, r.l.Close(), tcp.ErrClosed)
	}
	r.settle()
	r.finalProbes = r.st.Counters()[stats.TcpExtTCPWinProbe]
	p := &r.p
	if r.cfg.silentEnd {
		p.silent = true
		r.advance(30 * time.Minute)
	} else {
		p.coop, p.reflex, p.lose, p.wnd = true, true, 0, 65535
		for i := 0; i < 600 && !r.empty(); i++ {
			r.burst = 0
			if p.synced && p.sKnown {
				r.resend()
				switch {
				case !p.finSent && p.sndUna == p.sndNxt:
					s := p.ackSeg(r.nowMs())
					s.flags |= header.TCPFlagFIN
					r.send(s)
				case i == 0 || p.sndUna != p.sndNxt:
					// The window update, then an ACK beside each retransmission. A TCP
					// whose FIN is acknowledged sends nothing unprompted (its reflex
					// still answers): every ACK would restart the stack's TIME-WAIT, as
					// it restarts Linux's (tcp_timewait_state_process).
					r.send(p.ackSeg(r.nowMs()))
				}
			}
			r.settle()
			r.advance(time.Second)
		}
	}
	rows := r.st.Sockets()
	if len(rows) > 0 && r.zeroWindowForever(rows) {
		return
	}
	r.check(len(rows) == 0, "%d sockets left minutes after the last close", len(rows))
	ctr := r.st.Counters()
	r.check(ctr.Value(stats.TcpCurrEstab) == 0, "TcpCurrEstab %d with no connections", ctr.Value(stats.TcpCurrEstab))
	if r.l != nil {
		r.check(r.l.SynQueueLen() == 0 && r.l.AcceptQueueLen() == 0, "listener queues %d/%d after Close", r.l.SynQueueLen(), r.l.AcceptQueueLen())
	}
}

func (r *connRig) empty() bool { return len(r.st.Sockets()) == 0 }

// zeroWindowForever reports the known issue of connections that probe a zero window for
// ever (it returns true when that is all that is left): the peer fell silent with its
// window closed, or the connections, orphans all by now, went on probing through the final
// phase although the peer answered, because its answers could not open the window (a
// segment the script sent beyond the peer's SND.NXT had moved the stack's SND.WL1 past
// them, RFC 9293's window-update rule and Linux's tcp_may_update_window alike). Linux
// aborts such an orphan after tcp_orphan_retries backoffs (tcp_probe_timer).
func (r *connRig) zeroWindowForever(rows []tcp.SocketRow) bool {
	for _, row := range rows {
		if row.SendQ == 0 || row.State == tcp.StateTimeWait || row.State == tcp.StateSynRecv {
			return false
		}
	}
	probing := r.st.Counters()[stats.TcpExtTCPWinProbe] > r.finalProbes
	return (r.p.silent && r.p.wnd == 0 || probing) && knownIssue(r, issueZeroWindowForever)
}

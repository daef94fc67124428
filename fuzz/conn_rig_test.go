package fuzz

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/seqnum"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

const (
	connServicePort = 80    // the listener's port (passive) or the peer's (active)
	connPeerPort    = 40001 // the peer's port in the passive role
	connDialPort    = 40002 // the stack's fixed local port when a Dial asks for one
	connFillerPort  = 20000 // the first port of the clients that fill the SYN queue
	connPeerISS     = 0x10000000
	// burstCap bounds the segments without new data the stack may send for one step of
	// the script (one input and whatever the peer answers within the same instant).
	burstCap = 64
)

// incarnation is one connection on the flow as the stack holds it: from its SYN (active)
// or from the ACK that made the child (passive) to its end.
type incarnation struct {
	iss  seqnum.Value
	ts   bool     // timestamps in force: every segment but a reset carries them
	conn *appConn // the application's side (nil until accepted)
	// rcvBase is where the stack's receive stream starts in the peer's: IRS - the peer's
	// ISS. It is 0 but for a SYN cookie's child, whose IRS is the ACK's SEG.SEQ-1: a cookie
	// keeps no state, so Linux (cookie_v4_check) and pkg/tcp trust that sequence number, and
	// one a few bytes off still passes, with a neighbouring MSS.
	rcvBase uint32
	mss     int // the most payload a segment may carry, timestamps included
}

func (i *incarnation) written() uint32 {
	if i.conn == nil {
		return 0
	}
	return i.conn.written
}

func (i *incarnation) closed() bool { return i.conn != nil && i.conn.closed }

// appConn is a connection as the application holds it.
type appConn struct {
	h       tcp.Handle
	c       *tcp.Conn // the net.Conn wrapper, in apiConn mode
	inc     *incarnation
	written uint32 // bytes the stack took
	read    uint32 // bytes the application read
	closed  bool   // Close or Abort was called
}

type traceEntry struct {
	t    int64
	out  bool // the stack sent it
	s    *tseg
	note string
}

// connRig is FuzzConnection's world: one manual stack on a virtual clock, and the peer at
// the other end of an in-memory pair, which the rig plays by hand.
type connRig struct {
	t        testing.TB
	cfg      connConfig
	vc       *clock.Virtual
	st       *stack.Stack
	ps, pp   *dpdkshim.MemPort
	l        *tcp.Listener
	ev       *connEvents
	settings tcp.Settings
	p        peer
	conns    []*appConn

	cur        *incarnation   // the connection the flow's segments belong to
	request    bool           // the stack answered the peer's SYN and made no connection yet
	cands      []seqnum.Value // its SYN-ACKs' sequence numbers
	reqTS      bool           // its SYN-ACK carried timestamps
	unaccepted []*incarnation // children the application has not been given yet
	opened     []tcp.Handle   // handles OnOpen delivered in the last poll
	dialing    *appConn       // a Dial whose SYN has not been seen yet

	ctr     stats.Counters // after the last poll
	prev    stats.Counters // before it
	pending *tseg          // the peer's segment injected for the next poll
	lastIn  *tseg          // the peer's segment the last poll processed
	out     []*tseg        // the peer's answers, sent one per poll
	burst   int
	muted   bool // the peer answers nothing for the rest of this step (a known issue cut in)
	ipID    uint16
	rx      []*dpdkshim.Packet
	sndRing int
	trace   []traceEntry
	known   map[issue]int
	seen    map[tcp.State]bool // the states the flow's connection was seen in
	// finalProbes is TcpExtTCPWinProbe when the final phase began.
	finalProbes uint64
	// backlogHi is the largest backlog the listener had since its accept queue was last
	// empty: a smaller backlog set later (listen() again) drops no child already queued.
	backlogHi int
	// maxSeg is the listener's TCP_MAXSEG now (0: none): the script may change it, and
	// every SYN-ACK, a retransmitted one too, takes the value in force when it is sent.
	maxSeg int
}

func newConnRig(t testing.TB, cfg connConfig) *connRig {
	shards := 1
	if cfg.twoShards {
		shards = 2
	}
	pool := dpdkshim.PoolConfig{Size: 32, Max: 512}
	if cfg.tinyPool {
		pool = dpdkshim.PoolConfig{Size: 4, Max: 8}
	}
	vc := clock.NewVirtual(1_000_000_000)
	ps, pp := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: shards, RingSize: 512, Clock: vc, Pool: pool})
	settings := cfg.settings(t)
	st, err := stack.New(stack.Config{
		Port: ps, Addr: fuzzServer, Shards: shards, Clock: vc, Manual: true, Seed: 7,
		TCP:              settings,
		StaticNeighbours: map[netip.Addr][6]byte{fuzzPeer: pp.MAC()},
	})
	require.NoError(t, err)
	r := &connRig{t: t, cfg: cfg, vc: vc, st: st, ps: ps, pp: pp, rx: make([]*dpdkshim.Packet, 64), settings: settings,
		known: map[issue]int{}, seen: map[tcp.State]bool{}}
	r.sndRing = 1
	for r.sndRing < cfg.bufSize() {
		r.sndRing <<= 1
	}
	r.ev = &connEvents{r: r}
	r.p = peer{port: connPeerPort, sport: connServicePort, iss: connPeerISS, wnd: 65535, tsBase: 0x7000_0000,
		opts: synSent{connPeerISS, header.TCPOptions{WScale: -1}}, mss: 536}
	r.p.sndNxt = r.p.iss.Add(1)
	if cfg.active {
		r.p.port, r.p.sport = connServicePort, 0
	} else {
		var ev tcp.Events
		if cfg.api == apiEvents {
			ev = r.ev
		}
		opts := cfg.listenOptions(ev)
		if ev == nil && !cfg.deferAccept && !cfg.maxSeg {
			r.l, err = st.Listen(fmt.Sprintf(":%d", connServicePort), opts.Backlog)
		} else {
			r.l, err = st.ListenTCP(netip.AddrPortFrom(fuzzServer.Addr(), connServicePort), opts)
		}
		require.NoError(t, err)
		require.Equal(t, uint16(connServicePort), r.l.AddrPort().Port())
	}
	if cfg.maxSeg {
		r.maxSeg = 536
	}
	r.ctr = st.Counters()
	return r
}

// connEvents are the application's callbacks in apiEvents mode.
type connEvents struct{ r *connRig }

func (e *connEvents) OnOpen(h tcp.Handle)     { e.r.opened = append(e.r.opened, h) }
func (e *connEvents) OnData(tcp.Handle)       {}
func (e *connEvents) OnWritable(h tcp.Handle) {}

// ---- failure reports ----

func (r *connRig) note(format string, args ...any) {
	r.addTrace(traceEntry{t: r.vc.Now(), note: fmt.Sprintf(format, args...)})
}

// addTrace keeps the first traceHead entries and the latest ones, up to traceMax in all:
// how a failing input began and how it ended.
func (r *connRig) addTrace(e traceEntry) {
	const traceHead, traceMax = 120, 600
	if len(r.trace) >= traceMax {
		keep := r.trace[len(r.trace)-(traceMax-traceHead)/2:]
		r.trace[traceHead] = traceEntry{t: keep[0].t, note: "..."}
		n := copy(r.trace[traceHead+1:], keep)
		r.trace = r.trace[:traceHead+1+n]
	}
	r.trace = append(r.trace, e)
}

func (r *connRig) traceText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config %+v\nlast steps (virtual seconds):\n", r.cfg)
	for _, e := range r.trace {
		ts := fmt.Sprintf("%10.6f", float64(e.t)/1e9)
		switch {
		case e.s == nil:
			fmt.Fprintf(&b, "%s   %s\n", ts, e.note)
		case e.out:
			fmt.Fprintf(&b, "%s S> %s%s\n", ts, e.s, e.note)
		default:
			fmt.Fprintf(&b, "%s <P %s%s\n", ts, e.s, e.note)
		}
	}
	for _, row := range r.st.Sockets() {
		fmt.Fprintf(&b, "socket %-11v %v -> %v recvq %d sendq %d retrans %d\n", row.State, row.Local, row.Peer, row.RecvQ, row.SendQ, row.Retrans)
	}
	return b.String()
}

// failf reports a broken invariant with the steps that led to it.
func (r *connRig) failf(format string, args ...any) {
	r.t.Helper()
	require.FailNow(r.t, fmt.Sprintf(format, args...), r.traceText())
}

func (r *connRig) check(ok bool, format string, args ...any) {
	r.t.Helper()
	if !ok {
		r.failf(format, args...)
	}
}

// ---- the wire ----

func (r *connRig) nowMs() uint32 { return uint32(r.vc.Now() / 1e6) }

// send puts one of the peer's segments on the wire; the next poll processes it.
func (r *connRig) send(s *tseg) {
	r.inject(s)
	r.p.noteSACK(s, r.nowMs())
	r.p.recordSent(s)
}

// inject puts a segment from the peer's address on the wire without the peer's model
// knowing (other clients).
func (r *connRig) inject(s *tseg) {
	r.ipID++
	frame := encodeFrame(s, r.ps.MAC(), r.pp.MAC(), fuzzPeer.As4(), fuzzServer.Addr().As4(), r.ipID)
	if s.rawOpts != nil {
		// What was offered is what the receiver reads (on an error, it drops the segment):
		// the list as the header carries it, padded with zeros to a multiple of four bytes
		// (encodeFrame), so that an option cut short by the end of the list may be completed
		// by the padding ({2, 4, 5} is an MSS of 1280 on the wire).
		_ = header.ParseTCPOptions(append(append([]byte(nil), s.rawOpts...), make([]byte, -len(s.rawOpts)&3)...), &s.opts)
	}
	r.addTrace(traceEntry{t: r.vc.Now(), s: s})
	p := r.pp.Pool(0).Get()
	require.NotNil(r.t, p, "the peer's pool ran dry")
	require.True(r.t, p.SetData(frame))
	require.Equal(r.t, 1, r.pp.TxBurst(0, []*dpdkshim.Packet{p}))
	r.pending = s
}

// step runs one poll of the stack and takes in what it sent.
func (r *connRig) step() (work, frames int) {
	r.lastIn, r.pending = r.pending, nil
	work = r.st.Poll()
	r.afterPoll()
	for q := 0; q < r.pp.NumQueues(); q++ {
		for {
			n := r.pp.RxBurst(q, r.rx)
			if n == 0 {
				break
			}
			for i := 0; i < n; i++ {
				b := append([]byte(nil), r.rx[i].Data()...)
				r.rx[i].Free()
				r.rx[i] = nil
				r.onFrame(b)
				frames++
			}
		}
	}
	r.lastIn = nil
	return work, frames
}

// settle polls until the stack is idle at the current instant, sending the peer's answers
// one per poll.
func (r *connRig) settle() {
	for i := 0; ; i++ {
		r.check(i < 20000, "the stack never went idle")
		work, frames := r.step()
		if len(r.out) > 0 {
			s := r.out[0]
			r.out = r.out[1:]
			r.send(s)
			continue
		}
		if work == 0 && frames == 0 {
			return
		}
	}
}

// advance runs virtual time forward by d, stopping at every timer that falls due.
func (r *connRig) advance(d time.Duration) {
	end := r.vc.Now() + int64(d)
	for guard := 0; ; guard++ {
		r.check(guard < 100000, "timers keep falling due at %d", r.vc.Now())
		r.settle()
		next, ok := r.st.NextDeadline()
		if !ok || next > end {
			break
		}
		if next > r.vc.Now() {
			r.vc.Set(next)
			r.burst = 0
		}
	}
	if end > r.vc.Now() {
		r.vc.Set(end)
		r.burst = 0
		r.settle()
	}
}

// ---- what the stack did ----

// afterPoll checks the counters and notes the connections the last poll made.
func (r *connRig) afterPoll() {
	c := r.st.Counters()
	for id := stats.ID(0); id < stats.NumIDs; id++ {
		if !id.Gauge() && c[id] < r.ctr[id] {
			r.failf("counter %v went backwards: %d -> %d", id, r.ctr[id], c[id])
		}
	}
	opens := c[stats.TcpPassiveOpens] - r.ctr[stats.TcpPassiveOpens]
	cookie := c[stats.TcpExtSyncookiesRecv] > r.ctr[stats.TcpExtSyncookiesRecv]
	r.prev, r.ctr = r.ctr, c
	if c[stats.TcpExtTCPTimeouts] > r.prev[stats.TcpExtTCPTimeouts] {
		// A retransmission timeout may resend what was SACKed (Linux tcp_timeout_mark_lost
		// clears the marks when the peer reneged).
		r.p.sackTaken = nil
	}
	if opens > 0 {
		r.p.sackTaken = nil // a new connection's scoreboard knows nothing of the old one's
		in := r.lastIn
		r.check(opens == 1 && in != nil && in.ackf(), "%d children made by one poll (input %v)", opens, in)
		inc := &incarnation{iss: in.ack.Add(^uint32(0)), ts: r.reqTS, mss: r.p.mss}
		if cookie {
			// A cookie's child takes its options from the ACK (Linux cookie_v4_check), and
			// its IRS from the ACK's sequence number.
			inc.ts = in.opts.TS
			p := &r.p
			so := &p.sOpts
			p.edgeUnknown = in.opts.TS && (!so.TS || in.opts.TSEcr != so.TSVal)
			irs := in.seq.Add(^uint32(0))
			inc.rcvBase = irs.Sub(p.iss)
			// A cookie carries one of Linux's msstab values, 536 at least (the least any
			// IPv4 host takes, RFC 9293 §3.7.1), and an ACK a few numbers off (in its
			// sequence number, or in the cookie it acknowledges) decodes a neighbouring one.
			inc.mss = max(inc.mss, 536)
			if inc.rcvBase != 0 || !slices.Contains(r.cands, inc.iss) {
				inc.mss = 1460
			}
			if irs != p.base {
				p.rebase(irs, in)
			}
		}
		r.note("child made: iss %d ts %v cookie %v", inc.iss, inc.ts, cookie)
		if r.p.sISS != inc.iss {
			// A cookie's child whose ISS is not the SYN-ACK's (the ACK acknowledged a
			// neighbouring cookie): its sequence space starts here, and its send window is
			// the window of the ACK that made it (Linux tcp_create_openreq_child).
			r.p.stackSyn(inc.iss)
			r.p.noteAck(in)
		}
		r.cur, r.request, r.cands = inc, false, nil
		r.unaccepted = append(r.unaccepted, inc)
	}
	for _, h := range r.opened {
		if r.find(h) == nil {
			r.adopt(h, nil)
		}
	}
	r.opened = r.opened[:0]
}

func (r *connRig) find(h tcp.Handle) *appConn {
	for _, c := range r.conns {
		if c.h == h {
			return c
		}
	}
	return nil
}

// adopt makes an accepted connection the application's: it belongs to the oldest child not
// yet handed out.
func (r *connRig) adopt(h tcp.Handle, c *tcp.Conn) *appConn {
	ac := &appConn{h: h, c: c}
	if len(r.unaccepted) > 0 {
		ac.inc = r.unaccepted[0]
		r.unaccepted = r.unaccepted[1:]
		ac.inc.conn = ac
	} else {
		r.failf("accepted a connection the stack never made")
	}
	r.conns = append(r.conns, ac)
	r.note("accepted child iss %d", ac.inc.iss)
	return ac
}

// onFlow reports whether a segment of the stack's belongs to the peer's flow.
func (r *connRig) onFlow(s *tseg) bool {
	return s.dport == r.p.port && s.sport == r.p.sport && r.p.sport != 0
}

// onFrame checks one frame the stack sent and lets the peer see it.
func (r *connRig) onFrame(b []byte) {
	s, bad := decodeFrame(b, r.pp.MAC(), r.ps.MAC(), fuzzServer.Addr().As4(), fuzzPeer.As4())
	if s != nil {
		r.addTrace(traceEntry{t: r.vc.Now(), out: true, s: s})
	}
	r.check(bad == "", "the stack sent a bad frame: %s", bad)
	r.checkShape(s)
	if r.cfg.active && s.syn() && !s.ackf() && r.dialing != nil {
		r.newActiveFlow(s)
	}
	flow := r.onFlow(s)
	// New data: a SYN with a new ISN, or bytes past the highest the stack sent before, or
	// past what the peer last acknowledged (a retransmission the peer's ACKs clock out, a
	// byte at a time into a one-byte window, makes progress too).
	end := s.dataSeq().Add(uint32(len(s.payload)))
	newData := flow && s.syn() && (!r.p.sKnown || s.seq != r.p.sISS) ||
		flow && len(s.payload) > 0 && r.p.sKnown && (r.p.sHigh.LessThan(end) || r.p.ackPt.LessThan(end))
	if !newData {
		r.burst++
		if r.burst > burstCap {
			r.boundedOutput()
		}
	}
	if !flow {
		return
	}
	r.checkFlow(s)
	if r.p.silent {
		return
	}
	if r.p.lose > 0 {
		r.p.lose--
		r.trace[len(r.trace)-1].note = " (lost)"
		return
	}
	if s.opts.TS {
		r.p.sTSval = s.opts.TSVal
	}
	if !s.syn() && !s.rst() {
		r.p.sWnd = uint32(s.wnd) << r.p.sWS
	}
	if s.ackf() && !s.rst() && r.p.synced && r.p.sndUna.LessThan(s.ack) && r.p.offset(s.ack) <= r.p.sent.prefix() {
		r.p.sndUna = s.ack
	}
	got := r.p.receive(s)
	if (r.p.reflex || r.p.coop) && !r.muted {
		if a := r.p.reflexTo(s, got, r.nowMs()); a != nil {
			r.out = append(r.out, a)
		}
	}
}

// boundedOutput is called when the stack has sent more than burstCap segments without new
// data in one step: an exchange that does not end.
func (r *connRig) boundedOutput() {
	if r.p.sKnown && r.p.sHigh.LessThan(r.p.ackPt) && knownIssue(r, issueAckUnsentLoop) {
		// Stop answering for the rest of the step, so the script can go on.
		r.muted, r.out = true, nil
		return
	}
	r.failf("the stack sent more than %d segments without new data for one input in one instant", burstCap)
}

// newActiveFlow starts the flow of a Dial at its SYN.
func (r *connRig) newActiveFlow(s *tseg) {
	ac := r.dialing
	r.dialing = nil
	inc := &incarnation{iss: s.seq, conn: ac, mss: 1460}
	ac.inc = inc
	r.cur, r.request = inc, false
	p := &r.p
	p.sport, p.synced, p.syns = s.sport, false, nil
	p.stackSyn(s.seq)
	p.sOpts = s.opts
	r.note("dial's SYN: port %d iss %d", s.sport, s.seq)
}

// checkShape holds for every segment the stack sends, on any flow.
func (r *connRig) checkShape(s *tseg) {
	const known = header.TCPFlagFIN | header.TCPFlagSYN | header.TCPFlagRST | header.TCPFlagPSH | header.TCPFlagACK
	r.check(s.flags&^known == 0, "flags %#x: the stack does not do urgent data or ECN", s.flags)
	r.check(!(s.syn() && (s.fin() || s.rst())) && !(s.rst() && s.fin()), "flags %s together", s)
	r.check(s.ackf() || s.syn() || s.rst(), "a segment without ACK that is neither SYN nor RST: %s", s)
	r.check(s.urg == 0, "urgent pointer %d", s.urg)
	if s.rst() {
		r.check(len(s.payload) == 0, "a reset with data")
	}
	if s.syn() {
		r.check(s.opts.MSS != 0 && s.opts.MSS <= 1460, "SYN with MSS %d", s.opts.MSS)
		r.check(len(s.payload) == 0, "SYN with data")
	} else {
		r.check(s.opts.MSS == 0 && s.opts.WScale < 0 && !s.opts.SACKPermitted, "SYN-only options on %s", s)
	}
	r.check(s.opts.NumSACK == 0 || r.onFlow(s), "SACK blocks on a segment of no connection's: %s", s)
}

// checkSACK holds a segment's SACK blocks (RFC 2018, RFC 2883) to what the peer sent. Only
// a synchronized connection that agreed to SACK sends them, on an ACK. The first may be a
// D-SACK: a duplicate below the cumulative ACK, or one inside the block after it (RFC 2883
// §4), and either way part of one segment the peer sent. Every other block describes
// payload the peer put on the wire, held above the ACK with a hole at the ACK before it,
// and no two of them overlap or touch (the receiver merges what is contiguous).
func (r *connRig) checkSACK(s *tseg) {
	o := &s.opts
	if o.NumSACK == 0 {
		return
	}
	p := &r.p
	// A cookie decoded from a timestamp echo the script changed may carry a SACK-permitted
	// bit the peer cannot know (see edgeUnknown).
	r.check(p.synced && (p.sack || p.edgeUnknown) && s.ackf() && !s.syn() && !s.rst(), "SACK blocks on %s (SACK agreed: %v)", s, p.sack)
	block := func(i int) (seqnum.Value, seqnum.Value) {
		return seqnum.Value(o.SACK[i].Start), seqnum.Value(o.SACK[i].End)
	}
	first := 0 // the first block that reports data held above the ACK
	if lo, hi := block(0); lo.LessThan(s.ack) {
		r.check(hi.LessThanEq(s.ack), "a D-SACK %d..%d across the ACK %d: %s", lo, hi, s.ack, s)
		first = 1
	} else if o.NumSACK > 1 {
		if lo1, hi1 := block(1); lo1.LessThanEq(lo) && hi.LessThanEq(hi1) {
			first = 1 // a D-SACK inside the next block, checked as a block next
		}
	}
	for i := 0; i < int(o.NumSACK); i++ {
		lo, hi := block(i)
		if i < first {
			// A duplicate is part of one segment the receiver got (even one 2^31 away,
			// which before(seq, rcv_nxt) takes for old, in Linux too).
			r.check(p.inOneSegment(lo, hi), "a D-SACK %d..%d of no segment the peer sent: %s", lo, hi, s)
			continue
		}
		r.check(p.onWire(lo, hi), "SACK block %d %d..%d of bytes the peer never sent: %s", i, lo, hi, s)
		r.check(s.ack.LessThan(lo), "SACK block %d %d..%d not above the ACK: %s", i, lo, hi, s)
		for j := first; j < i; j++ {
			lj, hj := block(j)
			r.check(hi.LessThan(lj) || hj.LessThan(lo), "SACK blocks %d and %d overlap or touch: %s", j, i, s)
		}
	}
}

// checkFlow checks a segment of the peer's flow against what the two sides have sent:
// the stack's sequence numbers stay within its ISS and what its application wrote (and
// carry exactly those bytes), it acknowledges nothing the peer did not send, it keeps to
// the peer's MSS and window and to the timestamps both agreed on.
func (r *connRig) checkFlow(s *tseg) {
	p := &r.p
	in := r.lastIn
	if in != nil && in.rst() {
		r.check(!s.rst(), "a reset in answer to a reset")
	}
	// The reset RFC 9293 §3.10.7.1 and §3.10.7.3 give a segment that does not belong.
	if s.rst() && in != nil && (!s.ackf() && in.ackf() && s.seq == in.ack || s.ackf() && !in.ackf() && s.seq == 0 && s.ack == in.end()) {
		return
	}

	// First, the acknowledgment number.
	if s.ackf() {
		if s.syn() || !p.synced {
			var o *synSent
			for i := range p.syns {
				if p.syns[i].seq.Add(1) == s.ack {
					o = &p.syns[i]
				}
			}
			if o == nil && p.synced && p.opts.seq.Add(1) == s.ack {
				// The SYN the connection stands on, however many SYNs the peer sent since
				// (p.syns keeps the last few): a simultaneous open's SYN-RECV answers
				// every other SYN with its SYN-ACK for this one.
				o = &p.opts
			}
			r.check(o != nil, "acknowledges a SYN the peer never sent (ack %d)", s.ack)
			// The options in force are those of the SYN that made the request (or the
			// cookie, or the active side's connection): the one just sent, if that is what
			// is answered. A retransmitted SYN-ACK keeps the request's; an active side's
			// connection keeps what it took from the first.
			opts := o.opts
			if in != nil && in.syn() && in.seq == o.seq {
				opts = in.opts
			}
			retrans := r.ctr[stats.TcpExtTCPSynRetrans] > r.prev[stats.TcpExtTCPSynRetrans]
			switch {
			case !p.synced || p.iss != o.seq:
				p.newIncarnation(o.seq, opts)
				r.note("the stack acknowledged the peer's SYN %d", o.seq)
			case s.syn() && !r.cfg.active && !retrans:
				p.opts.opts = opts // a new request, or a cookie, for the same ISN
			}
			if !s.syn() {
				// The active side's handshake ACK: the options are the stack's SYN's.
				p.negotiate(&p.sOpts)
				if r.cur != nil {
					r.cur.ts, r.cur.mss = p.ts, p.mss
				}
			}
		} else {
			hi := p.base.Add(p.sent.prefix())
			r.check(p.ackLo.LessThanEq(s.ack) && s.ack.LessThanEq(hi), "acknowledges %d bytes of the peer's, which sent %d (ack %d, iss %d, base %d)",
				int32(p.offset(s.ack)), p.sent.prefix(), s.ack, p.iss, p.base)
		}
	}

	r.checkSACK(s)

	// Then the sequence number.
	switch {
	case s.syn() && !s.ackf():
		r.check(r.cur != nil && s.seq == r.cur.iss, "a SYN with ISN %d for a connection whose ISN is %v", s.seq, r.cur)
		return
	case s.syn() && r.cfg.active:
		r.check(r.cur != nil && s.seq == r.cur.iss, "a simultaneous open's SYN-ACK must carry the SYN's ISN")
		p.sOpts = s.opts
		p.negotiate(&s.opts)
		r.cur.ts, r.cur.mss = p.ts, p.mss
		return
	case s.syn():
		// A listener answering a SYN: a request's SYN-ACK or a cookie.
		o := p.opts.opts
		r.check(s.opts.TS == (o.TS && !r.cfg.tsOff), "SYN-ACK timestamps %v for a SYN that offered %v", s.opts.TS, o.TS)
		// A cookie without timestamps has nowhere to keep window scale and SACK.
		cookieNoTS := r.cookieSent() && !s.opts.TS
		wantWS := o.WScale >= 0 && !r.cfg.wsOff && !cookieNoTS
		r.check((s.opts.WScale >= 0) == wantWS, "SYN-ACK window scale %d for a SYN that offered %d", s.opts.WScale, o.WScale)
		wantSACK := o.SACKPermitted && !r.cfg.sackOff && !cookieNoTS
		r.check(s.opts.SACKPermitted == wantSACK, "SYN-ACK SACK-permitted %v for a SYN that offered %v", s.opts.SACKPermitted, o.SACKPermitted)
		if r.maxSeg > 0 {
			r.check(int(s.opts.MSS) <= r.maxSeg, "SYN-ACK MSS %d over TCP_MAXSEG %d", s.opts.MSS, r.maxSeg)
		}
		if !r.request || p.sISS != s.seq {
			p.stackSyn(s.seq)
		}
		r.request, r.reqTS = true, s.opts.TS
		r.cands = append(r.cands, s.seq)
		if len(r.cands) > 8 {
			r.cands = r.cands[1:]
		}
		p.sOpts = s.opts
		p.negotiate(&s.opts)
		return
	case r.request && !s.rst():
		ok := false
		for _, c := range r.cands {
			ok = ok || s.seq == c.Add(1)
		}
		r.check(ok && len(s.payload) == 0 && !s.fin(), "a request answers with %s, not its ISN+1", s)
		r.check(s.opts.TS == r.reqTS, "a request's ACK with timestamps %v, its SYN-ACK had %v", s.opts.TS, r.reqTS)
		return
	}
	inc := r.cur
	r.check(inc != nil, "a segment on a flow with no connection: %s", s)
	w := inc.written()
	fin := uint32(0)
	if inc.closed() {
		fin = 1
	}
	off := s.seq.Sub(inc.iss.Add(1))
	n := uint32(len(s.payload))
	if !r.windowProbe(s, w) {
		r.check(off <= w+fin && (n == 0 || off+n <= w), "sequence %d..%d of a stream the application wrote %d bytes of (fin %d)", int32(off), int32(off+n), w, fin)
	}
	if s.fin() {
		r.check(inc.closed() && off+n == w, "a FIN at %d of a stream of %d that the application closed: %v", off+n, w, inc.closed())
	}
	for i, c := range s.payload {
		if c != patApp(off+uint32(i)) {
			r.failf("byte %d of the stream is %#x, the application wrote %#x", off+uint32(i), c, patApp(off+uint32(i)))
		}
	}
	if s.rst() {
		return
	}
	if n > 0 {
		r.check(!p.sacked(s.seq, s.seqLen()), "resends %d..%d, which the peer SACKed, with no retransmission timeout since", int32(off), int32(off+n))
	}
	r.check(s.opts.TS == inc.ts, "timestamps %v on a connection that agreed to %v: %s", s.opts.TS, inc.ts, s)
	if n > 0 {
		room := inc.mss
		if inc.ts {
			room -= 12
		}
		r.check(int(n) <= room, "%d bytes in one segment to a peer whose MSS leaves room for %d", n, room)
		if !p.edgeUnknown {
			end := s.seq.Add(n).Sub(p.sISS)
			r.check(end <= p.edge, "data up to %d beyond the peer's window, which never reached past %d", end, p.edge)
		}
	}
}

// windowProbe reports whether s is a zero-window probe as Linux's tcp_xmit_probe_skb sends
// it (pkg/tcp windowProbe): in a poll that counted one (TcpExtTCPWinProbe), a bare ACK
// with no data whose sequence number is SND.UNA-1, so that the peer can only answer it with
// an ACK that carries its window. It goes out only when everything sent is acknowledged and
// data waits, so SND.UNA is an acknowledgment the peer gave, at or past the end of every
// segment of the stack's the peer saw, and short of what the application wrote (w bytes).
func (r *connRig) windowProbe(s *tseg, w uint32) bool {
	p := &r.p
	if r.ctr[stats.TcpExtTCPWinProbe] == r.prev[stats.TcpExtTCPWinProbe] || s.flags != header.TCPFlagACK || len(s.payload) > 0 {
		return false
	}
	una := s.seq.Add(1)
	return p.acks[una] && p.sHigh.LessThanEq(una) && una.Sub(r.cur.iss.Add(1)) < w
}

// cookieSent reports whether the last poll sent a SYN cookie.
func (r *connRig) cookieSent() bool {
	return r.ctr[stats.TcpExtSyncookiesSent] > r.prev[stats.TcpExtSyncookiesSent]
}

// ---- the socket table ----

// checkTables compares the socket table with the counters, the listener and the
// application's handles.
func (r *connRig) checkTables() {
	rows := r.st.Sockets()
	estab, reqs, flow := 0, 0, 0
	var flowRow *tcp.SocketRow
	for i := range rows {
		row := &rows[i]
		switch row.State {
		case tcp.StateEstablished, tcp.StateCloseWait:
			estab++
		case tcp.StateSynRecv:
			if row.Local.Port() == connServicePort && !r.cfg.active {
				reqs++
			}
		}
		if row.State != tcp.StateListen && row.Peer.Port() == r.p.port && row.Local.Port() == r.p.sport {
			flow++
			flowRow = row
			r.seen[row.State] = true
		}
	}
	ctr := r.st.Counters()
	r.check(ctr.Value(stats.TcpCurrEstab) == int64(estab), "TcpCurrEstab %d, but %d ESTAB and CLOSE-WAIT rows", ctr.Value(stats.TcpCurrEstab), estab)
	r.check(flow <= 1, "%d rows for one 4-tuple", flow)
	if r.l != nil && !r.l.Closed() {
		r.check(r.l.SynQueueLen() == reqs, "SYN queue %d, SYN-RECV rows %d", r.l.SynQueueLen(), reqs)
		if r.l.AcceptQueueLen() == 0 {
			r.backlogHi = r.l.Backlog()
		}
		r.backlogHi = max(r.backlogHi, r.l.Backlog())
		// Linux's sk_acceptq_is_full lets the queue reach one more than the backlog.
		r.check(r.l.AcceptQueueLen() <= r.backlogHi+1, "accept queue %d over backlog %d + 1", r.l.AcceptQueueLen(), r.backlogHi)
		if r.cfg.api == apiEvents {
			r.check(r.l.AcceptQueueLen() == 0, "an event-driven listener queued %d children", r.l.AcceptQueueLen())
		}
	}
	if r.cur != nil && r.cur.conn != nil && !r.cur.conn.closed {
		st := r.cur.conn.h.State()
		switch st {
		case tcp.StateEstablished, tcp.StateCloseWait, tcp.StateFinWait1, tcp.StateFinWait2, tcp.StateClosing, tcp.StateLastAck:
			r.check(flowRow != nil && flowRow.State == st, "the handle says %v, the table %v", st, flowRow)
		case tcp.StateClosed:
			r.check(flowRow == nil || flowRow.State == tcp.StateTimeWait || flowRow.State == tcp.StateSynRecv || flowRow.State == tcp.StateSynSent,
				"the handle says CLOSED, the table %v", flowRow)
		}
	}
}

// row returns the socket-table row of an application's connection, if it has one.
func (r *connRig) row(c *appConn) (tcp.SocketRow, bool) {
	lp := c.h.LocalAddrPort()
	rp := c.h.RemoteAddrPort()
	for _, row := range r.st.Sockets() {
		if row.State != tcp.StateListen && row.State != tcp.StateTimeWait && row.Local == lp && row.Peer == rp {
			return row, true
		}
	}
	return tcp.SocketRow{}, false
}

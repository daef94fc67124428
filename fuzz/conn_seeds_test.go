package fuzz

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/tcp"
)

// prog builds a FuzzConnection script; seeds are written with it so that they read as what
// they do.
type prog []byte

func (p prog) op(op byte, args ...byte) prog { return append(append(p, op), args...) }

func (p prog) ack() prog           { return p.op(opAck) }
func (p prog) data(n byte) prog    { return p.op(opData, n) }
func (p prog) fin() prog           { return p.op(opFin) }
func (p prog) rst(sel byte) prog   { return p.op(opRst, sel) }
func (p prog) lose(n byte) prog    { return p.op(opLose, n) }
func (p prog) resend() prog        { return p.op(opResend) }
func (p prog) reflex() prog        { return p.op(opReflex) }
func (p prog) write(sel byte) prog { return p.op(opWrite, sel) }
func (p prog) read(sel byte) prog  { return p.op(opRead, sel) }
func (p prog) close() prog         { return p.op(opClose, 0) }
func (p prog) abort() prog         { return p.op(opAbort, 0) }
func (p prog) accept(m byte) prog  { return p.op(opAccept, m) }
func (p prog) wait(d byte) prog    { return p.op(opWait, d) }
func (p prog) dial(m byte) prog    { return p.op(opDial, m) }
func (p prog) misc(sel byte) prog  { return p.op(opMisc, sel) }

// seg is any segment: flags, then the pickSeq, pickAck, pickWnd, pickLen and pickOpts
// selectors.
func (p prog) seg(flags, seq, ack, wnd, n, opts byte) prog {
	return p.op(opSeg, flags, seq, ack, wnd, n, opts)
}

// syn is the peer's SYN: synISS selector, synOpts, pickWnd.
func (p prog) syn(iss, opts, wnd byte) prog { return p.op(opSyn, iss, opts, wnd) }

// synack is the peer's SYN-ACK to the stack's SYN: synOpts, synISS, pickAck.
func (p prog) synack(opts, iss, ack byte) prog { return p.op(opSynAck, opts, iss, ack) }

// Selector values the seeds use.
const (
	synAll   = 0xc9 // MSS 1460, window scale 7, SACK-permitted, timestamps
	synNoTS  = 0x49 // the same without timestamps
	synBare  = 0x00 // no options at all
	synMSS88 = 0x05 // MSS 88 alone
	synWS14  = 0xe9 // MSS 1460, window scale 14, SACK-permitted, timestamps

	issSame  = 0 // synISS: the peer's current ISS
	issNewer = 1 // after the last connection's sequence numbers
	issOlder = 2
	issWrap  = 5 // 2^32-256: the connection wraps

	fFIN = 0x01
	fSYN = 0x02
	fRST = 0x04
	fPSH = 0x08
	fACK = 0x10
	fURG = 0x20

	seqNxt   = 0 // pickSeq: SND.NXT
	seqPlus1 = 2 // one past it
	seqPastW = 3 // just past the stack's window
	seqLastW = 4 // its last byte
	seqBelow = 5 // a window below
	seqFar   = 7 // 2^31 away
	seqPlus9 = 0x89
	seqUna   = 15 // the stack's last acknowledgment (a retransmission)

	ackAll    = 0    // pickAck: everything received
	ackMinus1 = 1    // all but the last byte (or the FIN)
	ackPlus1  = 2    // one byte the stack never sent
	ackDup    = 3    // the last acknowledgment again
	ackHalf   = 4    // half of what is outstanding
	ackISS    = 5    // not even the SYN
	ackFar    = 7    // 2^31 away
	ackOld    = 8    // older than any window
	ackPlus5  = 0x49 // five bytes the stack never sent

	wMax  = 0 // pickWnd: 65535
	wZero = 1
	wOne  = 2
	wKeep = 7

	len0    = 0
	len1    = 1
	len100  = 4
	len536  = 7
	len1000 = 8
	len1460 = 10
	lenWnd  = 11 // the stack's whole window
	lenWnd1 = 12 // one byte more

	optTS     = 0 // pickOpts: timestamps as agreed
	optNoTS   = 1
	optSACK   = 4
	optSynish = 8
	optBad1   = 0x10 // the first malformed list, and so on

	wr1     = 0
	wr100   = 3
	wr1000  = 5
	wr1460  = 6
	wr3000  = 8
	wr8000  = 10
	wr16k   = 11
	wr20k   = 12
	wrBlock = 16 // with a size: a blocking Write where it cannot block
	wrOld   = 64 // with a size: to the oldest open connection

	rd1000  = 3
	rd64k   = 6
	rdBlock = 1 << 3
	rdPast  = 2 << 3 // a read past its deadline
	rdAll   = 3 << 3

	wZ    = 0
	w1ms  = 1
	w40ms = 3
	w200  = 4
	w500  = 5
	w1s   = 6
	w2s   = 7
	w3s   = 8
	w7s   = 9
	w15s  = 10
	w31s  = 11
	w61s  = 12
	w121s = 13
	wNext = 14
	w5min = 15

	dialHandle = 0
	dialConn   = 1
	dialFixed  = 2
	dialEvents = 3
	dialDone   = 4 // a blocking Dial whose context is done
	dialBadDst = 5
	dialSynCnt = 6

	miscNoDelay   = 0
	miscNagle     = 1
	miscGetters   = 2
	miscRdPast    = 3
	miscWrPast    = 4
	miscWaitConn  = 5
	miscBacklog0  = 6
	miscDefer1s   = 7 | 1<<4
	miscSynCnt1   = 8 | 1<<4
	miscMaxSeg    = 9 | 1<<4
	miscLClose    = 10 | 3<<4
	miscLDeadline = 11
	miscUserData  = 12
)

// connSeed is one checked-in input of FuzzConnection.
type connSeed struct {
	name string
	cfg  connConfig
	prog prog
}

// passive and active are the configurations most seeds start from.
var (
	passive = connConfig{syncookies: 1, backlog: 1}
	active  = connConfig{active: true, syncookies: 1, backlog: 1}
)

func with(c connConfig, f func(*connConfig)) connConfig { f(&c); return c }

func linux312(c connConfig) connConfig { c.linux312 = true; return c }

// handshake is the peer's side of a passive open, and the application's accept.
func handshake(opts byte) prog { return prog{}.syn(issSame, opts, wMax).ack().accept(0) }

// dialed is an active open: the application dials, the peer answers.
func dialed(opts byte) prog { return prog{}.dial(dialHandle).synack(opts, issSame, ackAll) }

// The closes, each ending in an empty table.
var (
	// We close first: FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT.
	closeFirst = prog{}.close().ack().fin().wait(w61s)
	// The peer closes first: CLOSE-WAIT, LAST-ACK.
	peerFirst = prog{}.fin().read(rdAll | rd64k).write(wr100).close().ack()
	// Both at once: FIN-WAIT-1, CLOSING, TIME-WAIT.
	together = prog{}.close().seg(fACK|fFIN, seqNxt, ackMinus1, wKeep, len0, optTS).ack().wait(w61s)
)

func join(ps ...prog) prog {
	var out prog
	for _, p := range ps {
		out = append(out, p...)
	}
	return out
}

// exchange is data both ways, acknowledged.
var exchange = prog{}.data(len100).read(rd1000).write(wr1000).ack().data(len1460).wait(w40ms).read(rdAll | rd64k)

// connSeeds are FuzzConnection's seed corpus: each one reaches a part of pkg/tcp that
// `go test ./fuzz/` (no -fuzz) must keep exercising.
func connSeeds() []connSeed {
	var seeds []connSeed
	add := func(name string, cfg connConfig, p ...prog) {
		seeds = append(seeds, connSeed{name, cfg, join(p...)})
	}
	for _, c := range []struct {
		name string
		f    func(connConfig) connConfig
	}{{"", func(c connConfig) connConfig { return c }}, {"-3.12", linux312}} {
		// The three ways to close, on both sides, under both profiles.
		add("passive-close-first"+c.name, c.f(passive), handshake(synAll), exchange, closeFirst)
		add("passive-peer-first"+c.name, c.f(passive), handshake(synAll), exchange, peerFirst)
		add("passive-together"+c.name, c.f(passive), handshake(synNoTS), exchange, together)
		add("active-close-first"+c.name, c.f(active), dialed(synAll), exchange, closeFirst)
		add("active-peer-first"+c.name, c.f(active), dialed(synBare), exchange, peerFirst)
		add("active-together"+c.name, c.f(active), dialed(synAll), exchange, together)
		// SYN cookies: always, and when other clients fill the SYN queue.
		add("cookies-always"+c.name, c.f(with(passive, func(c *connConfig) { c.syncookies = 2 })),
			handshake(synAll), exchange, closeFirst)
		add("cookies-overflow"+c.name, c.f(with(passive, func(c *connConfig) { c.fill = true })),
			handshake(synWS14), exchange, peerFirst)
		add("cookies-no-ts"+c.name, c.f(with(passive, func(c *connConfig) { c.fill, c.sackOff = true, true })),
			handshake(synNoTS), exchange, closeFirst)
		add("syn-queue-full-drop"+c.name, c.f(with(passive, func(c *connConfig) { c.fill, c.syncookies = true, 0 })),
			handshake(synAll), prog{}.wait(w1s).syn(issSame, synAll, wMax).wait(w61s).wait(w61s))
	}
	add("cookies-ts-off", with(passive, func(c *connConfig) { c.syncookies, c.tsOff = 2, true }),
		prog{}.syn(issSame, synAll, wMax).seg(fACK, seqNxt, ackAll, wKeep, len0, 2).ack().accept(0), exchange, closeFirst)
	add("cookies-bad-acks", with(passive, func(c *connConfig) { c.syncookies = 2 }),
		prog{}.syn(issSame, synAll, wMax).seg(fACK, seqNxt, ackPlus1, wKeep, len0, optTS).
			seg(fACK, seqNxt, ackFar, wKeep, len0, optTS).seg(fACK, seqPlus1, ackAll, wKeep, len0, optTS).seg(fACK, seqNxt, ackAll, wKeep, len0, 3).
			wait(w121s).wait(w61s).ack().syn(issSame, synAll, wMax).ack().accept(0), exchange, peerFirst)
	add("cookies-accept-queue-full", linux312(with(passive, func(c *connConfig) { c.syncookies, c.backlog = 2, 0 })),
		prog{}.syn(issSame, synAll, wMax).ack().rst(seqNxt).syn(issNewer, synAll, wMax).ack().accept(0).accept(0))
	add("cookies-tiny-pool", linux312(with(passive, func(c *connConfig) { c.fill, c.tinyPool = true, true })),
		prog{}.wait(w1s).syn(issSame, synAll, wMax).wait(w1s).wait(w3s).ack().accept(0), exchange, closeFirst)
	add("cookies-ws-no-ts", with(passive, func(c *connConfig) { c.syncookies, c.wsOff = 2, true }),
		prog{}.syn(issSame, synAll, wMax).seg(fACK, seqNxt, ackAll, wKeep, len0, optNoTS).accept(1), exchange, closeFirst)

	// Requests: SYN-ACK retransmission and expiry, retransmitted SYNs, and the answers to
	// every wrong segment a request can get.
	add("request-expires", passive, prog{}.syn(issSame, synAll, wMax).wait(w1s).syn(issSame, synAll, wMax).
		syn(issSame, synAll, wMax).wait(w3s).wait(w7s).wait(w15s).wait(w31s).wait(w61s).wait(w61s))
	add("request-expires-3.12", linux312(with(passive, func(c *connConfig) { c.fill, c.backlog, c.syncookies = true, 8, 0 })),
		prog{}.wait(w7s).wait(w15s).syn(issSame, synAll, wMax).wait(w31s).wait(w61s))
	add("request-wrong-segments", passive, prog{}.syn(issSame, synAll, wMax).
		seg(fACK, seqNxt, ackPlus1, wKeep, len0, optTS).                            // not our SYN-ACK's ack: reset
		seg(fACK, seqFar, ackAll, wKeep, len0, optTS).                              // out of window: ACK
		seg(fACK, seqFar, ackAll, wKeep, len0, optTS).                              // rate limited
		seg(0, seqNxt, ackAll, wKeep, len100, optTS).                               // no ACK flag
		seg(fRST|fACK, seqFar, ackAll, wKeep, len0, optTS).                         // RST out of window
		seg(fSYN, seqPlus1, ackAll, wKeep, len0, optSynish).                        // SYN in window: reset
		syn(issSame, synAll, wMax).seg(fRST, seqNxt, ackAll, wKeep, len0, optNoTS). // RST: gone
		syn(issSame, synAll, wMax).seg(fACK|fFIN, seqNxt, ackAll, wKeep, len100, optTS).accept(0).
		read(rdAll|rd1000).write(wr100).close().ack().wait(w61s))
	add("request-defer-accept", with(passive, func(c *connConfig) { c.deferAccept = true }),
		prog{}.syn(issSame, synAll, wMax).ack().wait(w1s).ack().data(len100).accept(0), exchange, closeFirst)
	add("request-defer-expires", with(passive, func(c *connConfig) { c.deferAccept, c.shortRetries = true, true }),
		prog{}.syn(issSame, synAll, wMax).ack().wait(w1s).wait(w3s).wait(w7s).wait(w15s).misc(miscSynCnt1).misc(miscMaxSeg).misc(miscDefer1s))
	// A full accept queue: linux drops the SYN, linux-3.12 takes it and drops (or resets)
	// the final ACK.
	add("accept-queue-full", with(passive, func(c *connConfig) { c.backlog = 0 }),
		prog{}.syn(issSame, synAll, wMax).ack().rst(seqNxt).syn(issNewer, synAll, wMax).ack().accept(0).accept(0))
	add("accept-queue-overflow", linux312(with(passive, func(c *connConfig) { c.backlog = 0 })),
		prog{}.syn(issSame, synAll, wMax).ack().rst(seqNxt).syn(issNewer, synAll, wMax).ack().wait(w1s).wait(w3s).
			accept(0).accept(0).ack().accept(2).accept(3), closeFirst)
	add("accept-queue-abort", linux312(with(passive, func(c *connConfig) { c.backlog, c.abortOnOverflow = 0, true })),
		prog{}.syn(issSame, synAll, wMax).ack().rst(seqNxt).syn(issNewer, synAll, wMax).ack().
			syn(issNewer, synBare, wMax).ack().accept(0).accept(0))
	add("listener-closes", passive, handshake(synAll), prog{}.syn(issNewer, synAll, wMax).misc(miscLClose).
		data(len100).misc(miscBacklog0).misc(miscLDeadline).accept(2).syn(issNewer, synAll, wMax))
	add("listener-closes-queued", with(passive, func(c *connConfig) { c.backlog = 2 }),
		prog{}.syn(issSame, synAll, wMax).ack().data(len100).misc(miscLClose).accept(3))
	add("max-seg", with(passive, func(c *connConfig) { c.maxSeg = true }), handshake(synAll), exchange,
		prog{}.write(wr3000).ack().ack(), closeFirst)
	add("small-syn-backlog", with(passive, func(c *connConfig) { c.smallSynBacklog, c.syncookies, c.backlog, c.fill = true, 0, 8, true }),
		prog{}.syn(issSame, synAll, wMax).wait(w1s))

	// TIME-WAIT: a new connection on the same 4-tuple, an old SYN, a retransmitted FIN,
	// a reset, and timestamps deciding.
	add("timewait-reuse", passive, handshake(synAll), closeFirst[:len(closeFirst)-2],
		prog{}.fin().seg(fACK, seqPlus1, ackAll, wKeep, len0, optTS).syn(issOlder, synAll, wMax).
			syn(issNewer, synAll, wMax).ack().accept(0), exchange, closeFirst)
	add("timewait-rst", linux312(passive), handshake(synNoTS), closeFirst[:len(closeFirst)-2],
		prog{}.data(len100).rst(seqNxt).syn(issSame, synNoTS, wMax).ack().accept(0), peerFirst)
	add("timewait-ts-decides", passive, handshake(synAll), closeFirst[:len(closeFirst)-2],
		prog{}.wait(w1s).syn(issSame, synAll, wMax).ack().accept(0), exchange, together)
	add("timewait-overflow", with(active, func(c *connConfig) { c.twBuckets1 = true }), dialed(synAll), closeFirst[:len(closeFirst)-2],
		dialed(synAll), closeFirst)

	// ESTABLISHED: every check of RFC 9293 §3.10.7.4 and RFC 5961.
	add("established-edges", passive, handshake(synAll), prog{}.
		rst(seqPlus1).                                          // RST in window: challenge ACK
		seg(fSYN, seqNxt, ackAll, wKeep, len0, optSynish).      // SYN: challenge ACK
		seg(fACK, seqPastW, ackAll, wKeep, len100, optTS).      // data past the window
		seg(fACK, seqLastW, ackAll, wKeep, len100, optTS).      // data overlapping its end
		seg(fACK, seqBelow, ackAll, wKeep, len100, optTS).      // old data
		seg(fACK, 0x4a, ackAll, wKeep, len100, optTS).          // partly old data
		seg(fACK, 0x4a, ackAll, wKeep, len1, optTS).            // a retransmitted byte
		seg(fACK|fPSH, seqPlus9, ackAll, wKeep, len100, optTS). // out of order
		seg(fACK, seqFar, ackFar, wKeep, len0, optTS).          // far away
		seg(fACK, seqNxt, ackOld, wKeep, len0, optTS).          // an ACK older than any window
		seg(fACK, seqNxt, ackISS, wKeep, len0, optTS).          // an ACK of nothing
		seg(fACK, seqNxt, ackPlus5, wKeep, len0, optTS).        // an ACK of unsent data
		seg(0, seqNxt, ackAll, wKeep, len100, optTS).           // no ACK flag
		seg(fACK|fURG, seqNxt, ackAll, wKeep, len1, optTS|optSACK).
		seg(fACK, seqNxt, ackAll, wKeep, len100, optNoTS). // timestamps missing
		seg(fACK, seqNxt, ackAll, wKeep, len100, 3).       // an old TSval
		seg(fACK, seqNxt, ackAll, wKeep, len100, optBad1). // malformed options
		seg(fACK, seqNxt, ackAll, wKeep, len100, 0x60).    // more of them
		seg(fACK, seqNxt, ackAll, wKeep, len100, 0xc0).
		seg(fACK, seqNxt, ackAll, wKeep, len100, 0xd0).
		seg(fACK, seqNxt, ackAll, wKeep, len100, 0xe0).
		seg(fACK, seqNxt, ackAll, wKeep, lenWnd, optTS). // fills the receive buffer
		seg(fACK, seqNxt, ackAll, wKeep, len100, optTS). // into a closed window
		read(rd1000).read(rdAll|rd64k).ack().rst(seqUna|0x80), prog{}.wait(w1s))
	// The receiver's holes: SACK blocks for what lies beyond them, D-SACK for what came twice.
	add("sack-holes", passive, handshake(synAll), prog{}.
		seg(fACK, seqPlus9, ackAll, wKeep, len100, optTS). // out of order: one block
		seg(fACK, seqPlus9, ackAll, wKeep, len100, optTS). // again: a D-SACK inside it
		seg(fACK, 0x0b, ackAll, wKeep, len100, optTS).     // a second range: two blocks
		seg(fACK, 0x2b, ackAll, wKeep, len100, optTS).     // a third
		seg(fACK, 0x1b, ackAll, wKeep, len100, optTS).     // a fourth: three blocks fit beside timestamps
		data(len100).                                      // fills the first hole: a D-SACK below the ACK
		seg(fACK, 0x4a, ackAll, wKeep, len100, optTS).     // partly old
		seg(fACK, seqBelow, ackAll, wKeep, len100, optTS). // wholly old (tcp_send_dupack)
		resend().read(rdAll|rd64k).ack(), closeFirst)
	add("sack-holes-3.12", linux312(passive), handshake(synAll), prog{}.
		seg(fACK, 0x0b, ackAll, wKeep, len1000, optNoTS).
		seg(fACK, 0x0b, ackAll, wKeep, len100, optNoTS).
		data(len1000).data(len100).resend().read(rdAll|rd64k), peerFirst)
	add("established-wrap", passive, prog{}.syn(issWrap, synAll, wMax).ack().accept(0),
		exchange, exchange, exchange, closeFirst)
	add("close-unread-resets", passive, handshake(synAll), prog{}.data(len100).close().wait(w1s))
	add("orphan-data-resets", passive, handshake(synAll), prog{}.close().data(len100).wait(w1s))
	add("abort", passive, handshake(synAll), exchange, prog{}.abort().abort().close().write(wr100).wait(w1s))
	add("peer-resets", passive, handshake(synAll), exchange, prog{}.rst(seqNxt).read(0).write(wr100).misc(miscGetters))
	add("fin-wait-2-timeout", with(passive, func(c *connConfig) { c.shortRetries = true }), handshake(synAll),
		prog{}.close().ack().wait(w7s).wait(w61s))
	add("fin-wait-1-data", passive, handshake(synAll), prog{}.write(wr3000).close().ack().
		seg(fACK, seqNxt, ackHalf, wKeep, len0, optTS).seg(fACK|fFIN, seqNxt, ackHalf, wKeep, len0, optTS).ack().wait(w61s))
	add("last-ack-rst", linux312(passive), handshake(synAll), prog{}.fin().fin().close().rst(seqPlus1).rst(seqUna))
	add("closing-rst", passive, handshake(synAll), prog{}.close().seg(fACK|fFIN, seqNxt, ackMinus1, wKeep, len0, optTS).
		rst(seqNxt))

	// The sender: retransmission and its backoff, Nagle, the delayed ACK, window probes,
	// giving up, and a pool with no packets left.
	add("retransmit", passive, handshake(synAll), prog{}.write(wr3000).lose(3).wait(w1s).wait(w2s).
		seg(fACK, seqNxt, ackHalf, wKeep, len0, optTS).wait(wNext).resend().ack().
		write(wr100).write(wr1).write(wr1).misc(miscNoDelay).write(wr1).ack().misc(miscNagle).
		data(len100).wait(w40ms).data(len1460).data(len1460).wait(w1s).read(rdAll|rd64k), closeFirst)
	add("zero-window", passive, prog{}.syn(issSame, synAll, wMax).seg(fACK, seqNxt, ackAll, wZero, len0, optTS).accept(0).
		write(wr3000).wait(w1s).wait(w3s).seg(fACK, seqNxt, ackAll, wOne, len0, optTS).wait(wNext).
		seg(fACK, seqNxt, ackAll, wMax, len0, optTS).ack(), closeFirst)
	add("zero-window-silent", with(passive, func(c *connConfig) { c.silentEnd, c.shortRetries = true, true }),
		prog{}.syn(issSame, synAll, wMax).seg(fACK, seqNxt, ackAll, wZero, len0, optTS).accept(0).write(wr1000).wait(w3s))
	add("gives-up", with(active, func(c *connConfig) { c.shortRetries, c.silentEnd = true, true }),
		dialed(synAll), prog{}.write(wr1000).lose(3).wait(w5min))
	add("gives-up-slowly", with(passive, func(c *connConfig) { c.silentEnd = true }), handshake(synAll),
		prog{}.write(wr20k).ack().write(wr1000))
	add("tiny-pool", with(passive, func(c *connConfig) { c.tinyPool, c.reflex = true, true }),
		handshake(synMSS88), prog{}.write(wr16k).wait(w1s).wait(w1s).write(wr16k).wait(w1s), closeFirst)
	add("tiny-pool-dial", with(active, func(c *connConfig) { c.tinyPool = true }),
		dialed(synAll), prog{}.write(wr16k).write(wr16k).wait(w1s).ack().wait(w1s).ack(), closeFirst)
	add("reflex-bulk", with(passive, func(c *connConfig) { c.reflex, c.smallBuf = true, true }),
		handshake(synWS14), prog{}.write(wr20k).write(wr20k|wrBlock).data(len1460).data(len1460).data(len1460).
			data(len1460).wait(w40ms).read(rdAll|rd64k).write(wr8000), closeFirst)
	add("reflex-toggle", passive, handshake(synAll), prog{}.reflex().write(wr20k).data(len1000).wait(w40ms).reflex().
		write(wr3000).wait(w1s).ack().read(rdAll|rd64k), closeFirst)
	add("reflex-ack-unsent", with(passive, func(c *connConfig) { c.reflex = true }), handshake(synAll),
		prog{}.write(wr100).seg(fACK, seqNxt, ackPlus5, wKeep, len0, optTS).write(wr100), closeFirst)

	// Active opens: SYN retransmission and timeout, refusal, simultaneous open, a fixed
	// port in use, and every way to dial.
	add("active-syn-timeout", active, prog{}.dial(dialSynCnt).wait(w1s).wait(w3s).wait(w7s).wait(w15s).wait(w5min).misc(miscGetters))
	add("active-syn-timeout-3.12", with(linux312(active), func(c *connConfig) { c.noLinear = true }),
		prog{}.dial(dialConn).misc(miscWaitConn).wait(w1s).wait(w3s).wait(w7s).wait(w15s).wait(w5min).wait(w5min))
	add("active-refused", active, prog{}.dial(dialHandle).seg(fACK|fRST, seqNxt, ackPlus1, wKeep, len0, optNoTS).
		seg(fRST, seqNxt, ackAll, wKeep, len0, optNoTS).seg(fACK, seqNxt, ackPlus1, wKeep, len0, optNoTS).
		seg(fACK|fRST, seqNxt, ackAll, wKeep, len0, optNoTS).read(0).write(wr1).dial(dialBadDst))
	add("active-simultaneous", active, prog{}.dial(dialHandle).syn(issSame, synAll, wMax).syn(issSame, synAll, wMax).
		seg(fACK|fRST, seqFar, ackAll, wKeep, len0, optNoTS).synack(synAll, issSame, ackAll), exchange, together)
	add("active-simultaneous-ack", active, prog{}.dial(dialHandle).syn(issSame, synNoTS, wMax).seg(fACK, seqNxt, ackPlus1, wKeep, len0, optNoTS).
		ack().wait(w1s).write(wr100).ack(), peerFirst)
	add("active-simultaneous-close", active, prog{}.dial(dialHandle).syn(issSame, synBare, wMax).close().ack().wait(w3s))
	add("active-simultaneous-timeout", with(active, func(c *connConfig) { c.shortRetries = true }),
		prog{}.dial(dialHandle).syn(issSame, synAll, wMax).wait(w1s).wait(w3s).wait(w15s).wait(w61s).close())
	add("active-fixed-port", active, prog{}.dial(dialFixed).synack(synAll, issSame, ackAll), exchange, closeFirst[:len(closeFirst)-2],
		prog{}.dial(dialFixed).wait(w61s).dial(dialFixed).synack(synAll, issNewer, ackAll), peerFirst)
	add("active-dial-done", active, prog{}.dial(dialDone).synack(synAll, issSame, ackAll).wait(w1s).dial(dialConn).
		synack(synNoTS, issSame, ackAll).write(wr100|wrBlock).data(len100).read(rd1000|rdBlock).misc(miscGetters), closeFirst)
	add("active-events", with(active, func(c *connConfig) { c.api = apiEvents }), prog{}.dial(dialEvents).synack(synAll, issSame, ackAll),
		exchange, prog{}.misc(miscUserData), peerFirst)
	add("active-bad-synack", active, prog{}.dial(dialHandle).synack(synAll, issSame, ackPlus1).synack(synAll, issSame, ackISS).
		synack(synAll, issSame, ackAll).synack(synAll, issOlder, ackAll), exchange, closeFirst)
	add("active-options-off", with(active, func(c *connConfig) { c.tsOff, c.sackOff, c.wsOff = true, true, true }),
		dialed(synAll), exchange, closeFirst)

	// The APIs: net.Conn with its blocking calls, Events, and the options and getters.
	add("conn-api", with(passive, func(c *connConfig) { c.api = apiConn }), handshake(synAll),
		prog{}.misc(miscLDeadline).data(len100).read(rd1000|rdBlock).write(wr1000|wrBlock).misc(miscGetters).misc(miscRdPast).
			misc(miscWrPast).misc(miscNoDelay).misc(miscUserData).read(rdPast).ack(), peerFirst,
		prog{}.read(rdBlock).write(wr100|wrBlock).close())
	add("events-api", with(passive, func(c *connConfig) { c.api, c.reflex = apiEvents, true }), handshake(synAll),
		exchange, prog{}.write(wr20k).wait(w1s).misc(miscGetters), closeFirst)
	add("events-api-3.12", linux312(with(passive, func(c *connConfig) { c.api, c.twoShards = apiEvents, true })), handshake(synNoTS),
		exchange, peerFirst)
	add("two-shards", with(passive, func(c *connConfig) { c.twoShards, c.smallBuf = true, true }), handshake(synAll), exchange,
		prog{}.write(wr8000).ack().ack(), closeFirst)
	add("settings-off", with(passive, func(c *connConfig) { c.tsOff, c.sackOff, c.wsOff = true, true, true }),
		handshake(synAll), exchange, together)

	// Loss recovery: the peer loses the head of a flight and SACKs (or, without SACK,
	// duplicates its ACK for) what follows; then a longer loss, and one the RTO repairs.
	recovery := prog{}.lose(0).write(wr8000).wait(w200).wait(w1s).lose(1).write(wr16k).wait(w200).wait(w1s).
		lose(3).write(wr20k).wait(w1s).wait(w3s)
	reflexPeer := func(c *connConfig) { c.reflex = true }
	add("sack-recovery", with(passive, reflexPeer), handshake(synAll), recovery, closeFirst)
	// A peer that SACKs, then throws the data away: the RTO resends it all.
	add("sack-reneging", passive, handshake(synAll), prog{}.lose(0).write(wr8000).lose(0).ack().lose(0x80).wait(w200).
		ack().wait(w1s).wait(w3s).ack().wait(w7s), closeFirst)
	add("newreno-recovery", with(passive, func(c *connConfig) { c.reflex, c.sackOff = true, true }), handshake(synAll), recovery, closeFirst)
	return seeds
}

const seedDir = "testdata/fuzz/FuzzConnection"

// corpusFile is the file `go test` reads for a seed.
func (s connSeed) corpusFile() string {
	return fmt.Sprintf("go test fuzz v1\nuint32(%d)\n[]byte(%q)\n", s.cfg.encode(), string(s.prog))
}

// TestConnectionSeeds keeps testdata/fuzz/FuzzConnection/seed-* equal to connSeeds;
// SHARDSTACK_WRITE_SEEDS=1 rewrites them.
func TestConnectionSeeds(t *testing.T) {
	write := os.Getenv("SHARDSTACK_WRITE_SEEDS") == "1"
	want := map[string]string{}
	for _, s := range connSeeds() {
		require.NotContains(t, want, s.name)
		want["seed-"+s.name] = s.corpusFile()
	}
	if write {
		require.NoError(t, os.MkdirAll(seedDir, 0o755))
		old, _ := filepath.Glob(filepath.Join(seedDir, "seed-*"))
		for _, f := range old {
			require.NoError(t, os.Remove(f))
		}
		for name, body := range want {
			require.NoError(t, os.WriteFile(filepath.Join(seedDir, name), []byte(body), 0o644))
		}
	}
	files, err := filepath.Glob(filepath.Join(seedDir, "seed-*"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Equal(t, want[filepath.Base(f)], string(b), "%s is stale: SHARDSTACK_WRITE_SEEDS=1 go test -run TestConnectionSeeds ./fuzz/", f)
	}
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	sort.Strings(names)
	sort.Strings(wantNames)
	require.Equal(t, wantNames, names, "seed files missing: SHARDSTACK_WRITE_SEEDS=1 go test -run TestConnectionSeeds ./fuzz/")
}

// TestConnectionSeedStates checks that the seeds take connections through every state,
// under both profiles, and that they still reproduce the known issues (so that a fix shows).
func TestConnectionSeedStates(t *testing.T) {
	seen := map[bool]map[tcp.State]bool{false: {}, true: {}}
	known := map[issue]bool{}
	for _, s := range connSeeds() {
		r := runConnection(t, s.cfg, s.prog)
		for st := range r.seen {
			seen[s.cfg.linux312][st] = true
		}
		for id := range r.known {
			known[id] = true
		}
	}
	all := []tcp.State{tcp.StateSynSent, tcp.StateSynRecv, tcp.StateEstablished, tcp.StateFinWait1, tcp.StateFinWait2,
		tcp.StateClosing, tcp.StateCloseWait, tcp.StateLastAck, tcp.StateTimeWait}
	for _, linux312 := range []bool{false, true} {
		for _, st := range all {
			require.True(t, seen[linux312][st], "no seed reaches %v with linux312=%v", st, linux312)
		}
	}
	for id := range knownIssues {
		require.True(t, known[id], "no seed reproduces known issue %d any more: is it fixed? %s", id, knownIssues[id])
	}
}

package tcp_test

import (
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// established returns a connection from the client and the server's side of it.
func established(t *testing.T, n *simnet.Net) (c, s *tcp.Conn) {
	t.Helper()
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	c = dial(t, n)
	n.RunFor(time.Millisecond)
	require.Equal(t, tcp.StateEstablished, c.State())
	s, err = l.TryAccept()
	require.NoError(t, err)
	return c, s
}

func readAll(t *testing.T, n *simnet.Net, c *tcp.Conn, want int) []byte {
	t.Helper()
	out := make([]byte, 0, want)
	buf := make([]byte, 65536)
	for round := 0; len(out) < want; round++ {
		require.Less(t, round, 1000, "only %d of %d bytes arrived", len(out), want)
		k, err := c.TryRead(buf)
		if err != nil {
			require.ErrorIs(t, err, tcp.ErrWouldBlock)
			n.RunFor(10 * time.Millisecond)
			continue
		}
		out = append(out, buf[:k]...)
	}
	return out
}

// Receiver_OutOfOrderKept: with the second of five segments lost, the receiver keeps the
// three that follow it, acknowledges each at once with SACK blocks that describe them, and
// when the hole fills takes everything at once; what the sender sends again beyond the hole
// is reported as a duplicate (D-SACK). Every byte reaches the application, in order.
func TestReceiver_OutOfOrderKept(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	data := make([]byte, 5*1448)
	for i := range data {
		data[i] = byte(i * 13)
	}
	dataSegs := 0
	var lostSeq uint32
	dropTo(n, true, func(th header.TCP) bool {
		if len(th.Payload()) == 0 {
			return false
		}
		dataSegs++
		if dataSegs == 2 {
			lostSeq = th.Seq()
			return true
		}
		return false
	})
	_, err := c.TryWrite(data)
	require.NoError(t, err)
	n.Settle()
	acks := filter(segments(n), false, header.TCPFlagACK)
	require.GreaterOrEqual(t, len(acks), 4, trace(n))
	// The ACKs after the hole all acknowledge up to it and SACK what came beyond.
	var sacked []header.SACKBlock
	for _, a := range acks {
		if a.opts.NumSACK > 0 {
			require.Equal(t, lostSeq, a.ack, "a duplicate ACK at the hole\n%s", trace(n))
			sacked = append(sacked, a.opts.SACK[0])
		}
	}
	require.Len(t, sacked, 3, "one immediate ACK per out-of-order segment\n%s", trace(n))
	require.Equal(t, lostSeq+1448, sacked[0].Start)
	require.Equal(t, lostSeq+2*1448, sacked[0].End)
	require.Equal(t, lostSeq+1448, sacked[2].Start, "the range grows as segments arrive")
	require.Equal(t, lostSeq+4*1448, sacked[2].End)
	sc := counters(n.Server)
	require.Equal(t, uint64(3), sc[stats.TcpExtTCPOFOQueue])
	got := readAll(t, n, s, len(data))
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	// The retransmission filled the hole and nothing else: no duplicate to report.
	require.Zero(t, counters(n.Server)[stats.TcpExtTCPDSACKOldSent])

	// A segment that comes again is acknowledged with a D-SACK block naming it (RFC 2883
	// §4.1.1), first, below the cumulative ACK.
	segs := withPayload(segments(n), true)
	first := segs[0]
	n.PortC.SetHook(nil)
	tp := newTap(n)
	n.ResetFrames()
	tp.inject(t, crafted{sport: first.sport, dport: 80, seq: first.seq, ack: first.ack,
		flags: header.TCPFlagACK, win: 1024, payload: data[:100], opts: &header.TCPOptions{WScale: -1, TS: true, TSVal: first.opts.TSVal, TSEcr: first.opts.TSEcr}})
	acks = filter(segments(n), false, header.TCPFlagACK)
	require.Len(t, acks, 1, trace(n))
	require.Equal(t, 1, acks[0].opts.NumSACK)
	require.Equal(t, header.SACKBlock{Start: first.seq, End: first.seq + 100}, acks[0].opts.SACK[0])
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPDSACKOldSent])
}

// Without SACK the same loss gives duplicate ACKs with no SACK option, and the data still
// arrives whole.
func TestReceiver_OutOfOrderWithoutSACK(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: tcp.Settings{TCPSackOff: true}})
	c, s := established(t, n)
	data := make([]byte, 4*1448)
	for i := range data {
		data[i] = byte(i)
	}
	k := 0
	dropTo(n, true, func(th header.TCP) bool {
		if len(th.Payload()) > 0 {
			k++
			return k == 1
		}
		return false
	})
	_, err := c.TryWrite(data)
	require.NoError(t, err)
	n.Settle()
	for _, a := range filter(segments(n), false, header.TCPFlagACK) {
		require.Zero(t, a.opts.NumSACK)
	}
	require.Equal(t, data, readAll(t, n, s, len(data)))
}

// A FIN that arrives beyond a hole counts once the hole fills: the application reads all the
// data, then EOF.
func TestReceiver_FINBeyondHole(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	data := make([]byte, 3*1448)
	// Every copy of the first segment is lost until the hook is lifted.
	var first uint32
	dropTo(n, true, func(th header.TCP) bool {
		if len(th.Payload()) > 0 && (first == 0 || th.Seq() == first) {
			first = th.Seq()
			return true
		}
		return false
	})
	_, err := c.TryWrite(data)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	n.Settle()
	require.Equal(t, tcp.StateEstablished, s.State(), "the FIN waits behind the hole")
	n.PortC.SetHook(nil)
	require.Equal(t, data, readAll(t, n, s, len(data)))
	buf := make([]byte, 8)
	for round := 0; ; round++ {
		require.Less(t, round, 100)
		_, err = s.TryRead(buf)
		if err != tcp.ErrWouldBlock {
			break
		}
		n.RunFor(10 * time.Millisecond)
	}
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, tcp.StateCloseWait, s.State())
}

// The first data segments are acknowledged at once (Linux's quick-ACK mode), then every
// second full segment, and a lone one within the delayed-ACK time.
func TestReceiver_QuickAcks(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, _ := established(t, n)
	n.ResetFrames()
	for i := 0; i < 8; i++ {
		_, err := c.TryWrite([]byte("x"))
		require.NoError(t, err)
		n.Settle()
	}
	segs := segments(n)
	var immediate int
	for i, sg := range segs {
		if sg.toServer && sg.payload > 0 && i+1 < len(segs) && !segs[i+1].toServer && segs[i+1].t == sg.t {
			immediate++
		}
	}
	// Linux's quick-ACK count is the receive window in full segments, halved, at most 16:
	// 64 KiB (tcp_rmem's default) gives 16, all eight here.
	require.Equal(t, 8, immediate, trace(n))
}

// Receiver_FinDropsOutOfOrder: data held beyond a hole that the peer's FIN then closes the
// stream before lies past the end of the stream. Linux's tcp_fin purges the out-of-order
// queue and resets the SACK state ("we have something out-of-order _after_ FIN ... For
// now drop them"); SACK blocks for it would describe bytes above a FIN, beside an ACK
// that covers the FIN.
func TestReceiver_FinDropsOutOfOrder(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 43008, 7000, []byte{1, 1, 4, 2}) // SACK-permitted
	mark := len(p.got)
	c.inject(fACK, c.seq+1, c.ack, []byte{1}) // beyond a one-byte hole
	out := p.since(mark)
	require.Len(t, out, 1)
	require.Equal(t, 1, out[0].opts.NumSACK, "%v", out[0])
	c.inject(fFINACK, c.seq, c.ack, nil) // the FIN fills the hole: the stream ends there
	n.RunFor(time.Second)                // its ACK is delayed (CLOSE-WAIT's pingpong)
	out = p.since(mark + 1)
	require.NotEmpty(t, out)
	for _, s := range out {
		require.Equal(t, c.seq+1, s.ack, "%v", s)
		require.Zero(t, s.opts.NumSACK, "SACK blocks past the FIN: %v", s)
	}
	require.Equal(t, tcp.StateCloseWait, c.srv.State())
	b := make([]byte, 16)
	_, err := c.srv.TryRead(b)
	require.ErrorIs(t, err, io.EOF, "the byte after the FIN is no part of the stream")
}

// Receiver silly-window avoidance (RFC 9293 §3.8.6.2.2, Linux __tcp_select_window): once the
// application stops reading and the buffer fills, reading a few bytes opens no window of a
// few bytes; the window reopens when a segment's worth is free.
func TestReceiver_NoSillyWindow(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ServerTCP: tcp.Settings{RcvBuf: 8192}})
	c, s := established(t, n)
	_, err := c.TryWrite(pattern(20000))
	require.NoError(t, err)
	n.RunFor(time.Second)
	acks := filter(segments(n), false, header.TCPFlagACK)
	require.Zero(t, acks[len(acks)-1].win, "the buffer is full\n%s", trace(n))
	n.ResetFrames()
	buf := make([]byte, 100)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, 100, k)
	n.RunFor(time.Second)
	for _, a := range filter(segments(n), false, header.TCPFlagACK) {
		require.Zero(t, a.win, "no 100-byte window: %v", a)
	}
	big := make([]byte, 4096)
	_, err = s.TryRead(big)
	require.NoError(t, err)
	n.RunFor(10 * time.Millisecond)
	var opened bool
	for _, a := range filter(segments(n), false, header.TCPFlagACK) {
		opened = opened || a.win > 0
	}
	require.True(t, opened, "half the buffer free: the window reopens\n%s", trace(n))
}

// drainOut reads whatever c holds now.
func drainOut(t *testing.T, c *tcp.Conn) int {
	t.Helper()
	buf := make([]byte, 1<<20)
	total := 0
	for {
		k, err := c.TryRead(buf)
		if err != nil {
			require.ErrorIs(t, err, tcp.ErrWouldBlock)
			return total
		}
		total += k
	}
}

// Linux's tcp_cleanup_rbuf: once quick-ACK mode is over, a short segment's ACK is delayed,
// but goes as soon as the application has read the buffer empty, so a sender whose next
// short segment Nagle holds behind the unacknowledged one does not wait out the 40 ms
// delayed-ACK timer: the second 300-byte write arrives within a millisecond of the first
// one's read.
func TestReceiver_ShortSegmentAckedWhenRead(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	require.NoError(t, c.SetNoDelay(false)) // Nagle, which Go's net turns off
	bulk := pattern(100 << 10)              // past the quick ACKs
	got, _ := transfer(t, n, c, s, bulk, 10*time.Second)
	require.Equal(t, bulk, got)
	n.RunFor(100 * time.Millisecond)
	delayed := counters(n.Server)[stats.TcpExtDelayedACKs]

	_, err := c.TryWrite(pattern(300))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	_, err = c.TryWrite(pattern(300)) // Nagle: held while the first short segment is unacknowledged
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	require.Equal(t, 300, drainOut(t, s), "only the first write crossed")
	n.RunFor(time.Millisecond)
	require.Equal(t, 300, drainOut(t, s), "the read sent the ACK, and the ACK let the second write go")
	require.Equal(t, delayed, counters(n.Server)[stats.TcpExtDelayedACKs], "no delayed-ACK timer ran out")
}

// Request and response on one connection (interactive, Linux's pingpong mode): once the
// server has answered within the delayed-ACK time, the ACK of each further request waits
// for the answer and rides on it, as Linux's does, instead of going alone first.
func TestReceiver_InteractiveAcksRideOnAnswers(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	n.ResetFrames()
	req, resp := pattern(100), pattern(200)
	for i := 0; i < 10; i++ {
		_, err := c.TryWrite(req)
		require.NoError(t, err)
		require.Equal(t, req, readAll(t, n, s, len(req)))
		_, err = s.TryWrite(resp)
		require.NoError(t, err)
		require.Equal(t, resp, readAll(t, n, c, len(resp)))
	}
	pure := filter(segments(n), false, header.TCPFlagACK)
	require.LessOrEqual(t, len(pure), 1, "only the first request's ACK goes alone (quick-ACK mode, not yet interactive)\n%s", trace(n))
	require.Len(t, withPayload(segments(n), false), 10, "ten answers, each carrying its ACK")
}

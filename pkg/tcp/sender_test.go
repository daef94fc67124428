package tcp_test

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// pattern is n bytes that differ along the stream.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}

// delayBoth delays every frame by d each way (a 2d round trip), dropping the client's data
// segments drop says to.
func delayBoth(n *simnet.Net, d time.Duration, drop func(th header.TCP) bool) {
	n.PortC.SetHook(func(_ int, f []byte) dpdkshim.Action {
		if th, ok := simnet.TCPOf(f); ok && drop != nil && len(th.Payload()) > 0 && drop(th) {
			return dpdkshim.Action{Kind: dpdkshim.Drop}
		}
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: d}
	})
	n.PortS.SetHook(func(_ int, f []byte) dpdkshim.Action {
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: d}
	})
}

// establishedOver is established with d of delay each way from the handshake on, so that
// the connection's SRTT is 2d when the test begins.
func establishedOver(t *testing.T, n *simnet.Net, d time.Duration) (c, s *tcp.Conn) {
	t.Helper()
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	delayBoth(n, d, nil)
	c = dial(t, n)
	n.RunFor(4 * d)
	s, err = l.TryAccept()
	require.NoError(t, err)
	return c, s
}

// transfer writes data from c and reads it at s until all arrived or limit passes on the
// virtual clock; it returns what arrived and the virtual time taken.
func transfer(t *testing.T, n *simnet.Net, c, s *tcp.Conn, data []byte, limit time.Duration) ([]byte, time.Duration) {
	t.Helper()
	start := n.Clock.Now()
	got := make([]byte, 0, len(data))
	buf := make([]byte, 1<<20)
	sent := 0
	for len(got) < len(data) {
		require.Less(t, n.Clock.Now()-start, int64(limit), "%d of %d bytes after %v", len(got), len(data), limit)
		for sent < len(data) {
			k, err := c.TryWrite(data[sent:])
			sent += k // a partial write returns ErrWouldBlock with what it took
			if err != nil {
				require.ErrorIs(t, err, tcp.ErrWouldBlock)
				break
			}
		}
		for {
			k, err := s.TryRead(buf)
			if err != nil {
				require.ErrorIs(t, err, tcp.ErrWouldBlock)
				break
			}
			got = append(got, buf[:k]...)
		}
		n.RunFor(time.Millisecond)
	}
	return got, time.Duration(n.Clock.Now() - start)
}

// One segment lost in the middle of a window is repaired by SACK-based fast recovery within
// a round trip or two: no retransmission timeout, one retransmission, and the data whole.
func TestSender_SackFastRecovery(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	var lost uint32
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		if k == 3 {
			lost = th.Seq()
		}
		return k == 3
	})
	data := pattern(20 * 1448)
	got, took := transfer(t, n, c, s, data, 2*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	cc := counters(n.Client)
	require.Zero(t, cc[stats.TcpExtTCPTimeouts], "no retransmission timeout")
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPSackRecovery])
	require.Equal(t, uint64(1), cc[stats.TcpRetransSegs], "only the lost segment is resent")
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPFastRetrans])
	require.Less(t, took, 100*time.Millisecond, "repaired in round trips of 10 ms, not an RTO")
	var resent int
	for _, sg := range withPayload(segments(n), true) {
		if sg.seq == lost {
			resent++
		}
	}
	require.Equal(t, 1, resent, "the capture holds what crossed: the one retransmission")
}

// Without SACK, three duplicate ACKs start a fast retransmit and NewReno recovery (RFC 6582):
// two segments lost in one window are both repaired without a timeout, the second on the
// partial ACK.
func TestSender_NewRenoWithoutSACK(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: tcp.Settings{TCPSackOff: true}})
	c, s := established(t, n)
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k == 2 || k == 5
	})
	data := pattern(20 * 1448)
	got, took := transfer(t, n, c, s, data, 2*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	cc := counters(n.Client)
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPRenoRecovery])
	require.Equal(t, uint64(2), cc[stats.TcpRetransSegs])
	require.Less(t, took, 150*time.Millisecond)
}

// A lost last segment has no later segment to reveal it: the tail loss probe (RFC 8985 §7)
// resends it about two round trips later, long before the retransmission timeout.
func TestSender_TailLossProbe(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	// Warm the RTT estimate up with one exchange.
	delayBoth(n, 5*time.Millisecond, nil)
	got, _ := transfer(t, n, c, s, pattern(1448), time.Second)
	require.Len(t, got, 1448)
	n.ResetFrames()
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k == 4 // the last of four
	})
	data := pattern(4 * 1448)
	start := n.Clock.Now()
	got, _ = transfer(t, n, c, s, data, 2*time.Second)
	require.Equal(t, data, got)
	cc := counters(n.Client)
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPLossProbes])
	// The capture holds what crossed: three segments, then the probe, which resends the
	// lost fourth.
	segs := withPayload(segments(n), true)
	require.Len(t, segs, 4, trace(n))
	probe := segs[3]
	require.Equal(t, segs[2].seq+1448, probe.seq, "the probe resends the last segment")
	// PTO = 2*SRTT + 2 ms with more than one segment in flight: well under the RTO.
	require.Less(t, probe.t-start, int64(100*time.Millisecond), trace(n))
}

// When everything in flight is lost, the retransmission timeout fires at the RTO (with
// Linux's 200 ms floor), resends from snd_una with a window of one segment, and backs off
// exponentially: 200, 400, 800 ms.
func TestSender_RTOBackoff(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: tcp.Settings{TCPSackOff: true}})
	c, s := established(t, n)
	blackhole := true
	type sent struct {
		seq uint32
		at  int64
	}
	var out []sent
	delayBoth(n, 0, func(th header.TCP) bool {
		out = append(out, sent{th.Seq(), n.Now()})
		return blackhole
	})
	_, err := c.TryWrite(pattern(3 * 1448))
	require.NoError(t, err)
	start := n.Clock.Now()
	n.RunFor(1500 * time.Millisecond)
	require.Len(t, out, 3+3)
	var at []int64
	for _, o := range out[3:] {
		require.Equal(t, out[0].seq, o.seq, "each timeout resends the first unacknowledged segment")
		at = append(at, (o.at-start)/int64(time.Millisecond))
	}
	require.Equal(t, []int64{200, 600, 1400}, at, "RTO 200 ms (Linux's floor), doubling")
	require.Equal(t, uint64(3), counters(n.Client)[stats.TcpExtTCPTimeouts])
	blackhole = false
	require.Equal(t, pattern(3*1448), readAll(t, n, s, 3*1448))
}

// Reordering that makes the sender resend needlessly is found by the D-SACK the receiver
// sends for the second copy, and the window reduction is undone (Linux TCPDSACKUndo or
// TCPFullUndo), so a reordering path does not halve the window.
func TestSender_SpuriousRetransmissionUndone(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	k := 0
	n.PortC.SetHook(func(_ int, f []byte) dpdkshim.Action {
		if th, ok := simnet.TCPOf(f); ok && len(th.Payload()) > 0 {
			k++
			if k == 3 {
				return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 8 * time.Millisecond}
			}
		}
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 2 * time.Millisecond}
	})
	n.PortS.SetHook(func(_ int, f []byte) dpdkshim.Action {
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 2 * time.Millisecond}
	})
	data := pattern(30 * 1448)
	got, _ := transfer(t, n, c, s, data, 2*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	cc := counters(n.Client)
	require.GreaterOrEqual(t, cc[stats.TcpRetransSegs], uint64(1), "the delayed segment looked lost")
	require.GreaterOrEqual(t, cc[stats.TcpExtTCPDSACKRecv], uint64(1), "the receiver reported the duplicate")
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPDSACKUndo]+cc[stats.TcpExtTCPFullUndo], "and the reduction was undone")
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
}

// A peer that shrinks its window to zero with data in flight is probed by the
// retransmissions, and the connection lives as long as the peer answers (Linux
// tcp_retransmit_timer: not timed out while ACKs come; RFC 9293 §3.8.6.2.1), far beyond
// tcp_retries2 timeouts; a peer that falls silent is given up on TCP_RTO_MAX after its last
// ACK. Once the window opens the data arrives whole.
func TestSender_ZeroWindowWithDataInFlight(t *testing.T) {
	for _, silent := range []bool{false, true} {
		n := newNet(t, simnet.Options{StaticARP: true, ServerTCP: tcp.Settings{TCPRetries2: 3}})
		l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
		require.NoError(t, err)
		p := newRawPeer(t, n)
		c := p.connect(l, 40001, 1000, nil)
		mark := len(p.got)
		data := pattern(2 * 536) // the raw peer announced no MSS: 536
		_, err = c.srv.TryWrite(data)
		require.NoError(t, err)
		n.Settle()
		require.Len(t, p.since(mark), 2, "two segments in flight")
		// The peer acknowledges nothing and shrinks its window to zero.
		zero := crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 0}
		p.send(zero, nil)
		start := n.Now()
		seen, probes := len(p.got), 0
		for n.Now()-start < int64(10*time.Minute) && c.srv.State() == tcp.StateEstablished {
			n.RunFor(100 * time.Millisecond)
			if len(p.got) > seen {
				probes += len(p.got) - seen
				seen = len(p.got)
				if !silent || n.Now()-start < int64(time.Minute) {
					p.send(zero, nil) // still closed
				}
			}
		}
		cc := counters(n.Server)
		if silent {
			require.Equal(t, tcp.StateClosed, c.srv.State(), "given up on after the peer fell silent")
			require.Equal(t, uint64(1), cc[stats.TcpExtTCPAbortOnTimeout])
			continue
		}
		require.Equal(t, tcp.StateEstablished, c.srv.State(), "alive after %d probes, tcp_retries2=3", probes)
		t.Logf("%d probes answered in %v", probes, time.Duration(n.Now()-start))
		require.Greater(t, probes, 3)
		require.Zero(t, cc[stats.TcpExtTCPAbortOnTimeout])
		// The window opens; the peer acknowledges what it receives from now on.
		open := zero
		open.win = 65535
		p.send(open, nil)
		var got []byte
		for i := 0; i < 600 && len(got) < len(data); i++ {
			n.RunFor(time.Second)
			for _, sg := range p.since(seen) {
				if sg.payload > 0 && sg.seq == c.ack {
					got = append(got, data[len(got):len(got)+sg.payload]...)
					c.ack += uint32(sg.payload)
				}
			}
			seen = len(p.got)
			open.ack = c.ack
			p.send(open, nil)
		}
		require.Equal(t, len(data), len(got), "everything arrived once the window opened")
	}
}

// With default settings, one flow over a 20 ms round trip reaches at least 50 MB/s
// in-process: the receive buffer grows with what the application reads (tcp_rmem's 64 KiB
// window would give 3 MB/s) and the send buffer with the congestion window.
func TestSender_BufferAutotuningFillsA20msPath(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true,
		Pool: dpdkshim.PoolConfig{Size: 8192, Max: 32768, BufSize: 2048}})
	c, s := established(t, n)
	delayBoth(n, 10*time.Millisecond, nil)
	data := pattern(64 << 20)
	got, took := transfer(t, n, c, s, data, 20*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	// Measure the steady state: the second half of the transfer.
	rate := float64(len(data)) / took.Seconds() / 1e6
	t.Logf("64 MiB in %v of virtual time: %.1f MB/s overall", took, rate)
	require.GreaterOrEqual(t, rate, 50.0)
	require.Zero(t, counters(n.Client)[stats.TcpRetransSegs], "no loss on this path")
}

// Reno can be chosen (tcp_congestion_control), and an unknown algorithm is refused.
func TestSender_CongestionControlSetting(t *testing.T) {
	var st tcp.Settings
	require.NoError(t, st.Set("net.ipv4.tcp_congestion_control", "reno"))
	require.Equal(t, "reno", st.TCPCongestionControl)
	require.Error(t, st.Set("net.ipv4.tcp_congestion_control", "bbr"))
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: st, ServerTCP: st})
	c, s := established(t, n)
	delayBoth(n, 5*time.Millisecond, nil)
	data := pattern(1 << 20)
	got, _ := transfer(t, n, c, s, data, 5*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
}

// An orphan whose data and FIN are never acknowledged gives up after tcp_orphan_retries
// (0: 8) retransmission timeouts, as Linux's tcp_write_timeout does for a closed socket
// (8 backoffs from a 200 ms RTO: 102.2 s), and not after tcp_retries2 (15: some 15
// minutes); a connection the application still holds keeps to tcp_retries2.
func TestSender_OrphanRetransmitsGiveUp(t *testing.T) {
	for _, orphan := range []bool{true, false} {
		t.Run(fmt.Sprintf("orphan=%v", orphan), func(t *testing.T) {
			n := newNet(t, simnet.Options{StaticARP: true})
			_, s := established(t, n)
			dropTo(n, false, func(header.TCP) bool { return true }) // the client hears nothing more
			_, err := s.TryWrite(pattern(1000))
			require.NoError(t, err)
			if orphan {
				require.NoError(t, s.Close())
			}
			n.RunFor(100 * time.Second)
			rows := n.Server.Sockets()
			require.Len(t, rows, 2, "the listener and the connection, 100 s on: %v", rows)
			n.RunFor(30 * time.Second)
			cc := counters(n.Server)
			if !orphan {
				require.Equal(t, tcp.StateEstablished, s.State(), "tcp_retries2 timeouts take minutes")
				require.Zero(t, cc[stats.TcpExtTCPAbortOnTimeout])
				return
			}
			rows = n.Server.Sockets()
			require.Len(t, rows, 1, "only the listener is left 130 s on: %v", rows)
			require.Equal(t, uint64(1), cc[stats.TcpExtTCPAbortOnTimeout])
			require.Equal(t, uint64(8), cc[stats.TcpExtTCPTimeouts], "eight timeouts, the ninth gives up")
		})
	}
}

// SACK blocks ride on data segments too (Linux tcp_established_options): a server that
// answers while a hole is open tells the sender what arrived in its data segments, whose
// payload shrinks to leave the blocks room within the MSS.
func TestSender_SackBlocksOnData(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	// Every copy of the client's first data segment is lost, so the hole stays open.
	var first uint32
	dropTo(n, true, func(th header.TCP) bool {
		if len(th.Payload()) > 0 && (first == 0 || th.Seq() == first) {
			first = th.Seq()
			return true
		}
		return false
	})
	_, err := c.TryWrite(pattern(3 * 1448))
	require.NoError(t, err)
	n.Settle()
	n.ResetFrames()
	_, err = s.TryWrite(pattern(4 * 1448))
	require.NoError(t, err)
	n.Settle()
	data := withPayload(segments(n), false)
	require.NotEmpty(t, data, trace(n))
	for _, sg := range data {
		require.Equal(t, 1, sg.opts.NumSACK, "each data segment carries the block: %v", sg)
		require.Equal(t, first+1448, sg.opts.SACK[0].Start)
		require.Equal(t, first+3*1448, sg.opts.SACK[0].End)
		require.LessOrEqual(t, sg.payload, 1448-12, "the payload leaves room for the block")
	}
	n.PortC.SetHook(nil)
}

// A retransmission timeout that was spurious (the ACKs were only late) is undone from the
// timestamps they echo, older than the retransmission (RFC 3522's Eifel detection, Linux
// tcp_try_undo_loss): TcpExtTCPLossUndo, and the window comes back.
func TestSender_SpuriousTimeoutUndone(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := established(t, n)
	delayBoth(n, 2*time.Millisecond, nil)
	got, _ := transfer(t, n, c, s, pattern(64*1448), 2*time.Second)
	require.Len(t, got, 64*1448)
	// Now the server's ACKs are held for 600 ms: longer than the client's RTO.
	late := true
	n.PortS.SetHook(func(_ int, f []byte) dpdkshim.Action {
		if late {
			return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 600 * time.Millisecond}
		}
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 2 * time.Millisecond}
	})
	_, err := c.TryWrite(pattern(4 * 1448))
	require.NoError(t, err)
	n.RunFor(400 * time.Millisecond)
	late = false
	require.Equal(t, pattern(4*1448), readAll(t, n, s, 4*1448))
	n.RunFor(time.Second)
	cc := counters(n.Client)
	require.GreaterOrEqual(t, cc[stats.TcpExtTCPTimeouts], uint64(1), "the ACKs came after the RTO")
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPLossUndo], "and said the originals had arrived")
}

// A peer that SACKs data and then discards it (reneging, which RFC 2018 §8 permits) leaves
// the segment at SND.UNA marked SACKed. The retransmission timeout then forgets the SACK
// marks (Linux tcp_timeout_mark_lost: TcpExtTCPSACKReneging) and resends from SND.UNA, so
// the data still arrives; without that, the head would never be resent.
func TestSender_SackRenegingRepairedByRTO(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
	require.NoError(t, err)
	p := newRawPeer(t, n)
	c := p.connect(l, 40001, 1000, []byte{2, 4, 0x02, 0x18, 4, 2, 1, 1}) // MSS 536, SACK-permitted
	mark := len(p.got)
	_, err = c.srv.TryWrite(pattern(3 * 536))
	require.NoError(t, err)
	n.Settle()
	require.Len(t, p.since(mark), 3, "three segments in flight")
	// The first is lost; the peer SACKs the other two, then gets the first again and
	// acknowledges it, having thrown the other two away.
	sack := &header.TCPOptions{WScale: -1, NumSACK: 1}
	sack.SACK[0] = header.SACKBlock{Start: c.ack + 536, End: c.ack + 3*536}
	p.send(crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 65535, opts: sack}, nil)
	p.send(crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack + 536, flags: fACK, win: 65535}, nil)
	mark = len(p.got)
	n.RunFor(10 * time.Second)
	var resent bool
	for _, sg := range p.since(mark) {
		resent = resent || sg.seq == c.ack+536 && sg.payload > 0
	}
	require.True(t, resent, "the reneged data is resent from SND.UNA: %v", p.since(mark))
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPSACKReneging])
}

// SACK recovery as a timeline on the virtual clock (5 ms each way, SRTT 10 ms from the
// handshake, the third of ten segments lost): at T the ten go out; at T+5 ms the receiver answers each, those after the
// hole with SACK blocks; at T+10 ms, when the third SACK arrives (RFC 8985's reordering
// window is zero once three segments are SACKed), the lost segment is resent, at once and
// only once; at T+20 ms its ACK covers everything.
func TestSender_SackRecoveryTimeline(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := establishedOver(t, n, 5*time.Millisecond)
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k == 3
	})
	n.ResetFrames()
	start := n.Now()
	_, err := c.TryWrite(pattern(10 * 1448))
	require.NoError(t, err)
	require.Equal(t, pattern(10*1448), readAll(t, n, s, 10*1448))
	ms := func(at int64) int64 { return (at - start) / int64(time.Millisecond) }
	data := withPayload(segments(n), true)
	require.Len(t, data, 10, "nine originals cross, then one retransmission\n%s", trace(n))
	for _, d := range data[:9] {
		require.Equal(t, int64(0), ms(d.t), "the window goes out at once: %v", d)
	}
	rtx := data[9]
	require.Equal(t, data[1].seq+1448, rtx.seq, "the third segment is the one resent")
	var sacks []seg
	var last seg
	for _, a := range filter(segments(n), false, header.TCPFlagACK) {
		if a.opts.NumSACK > 0 {
			sacks = append(sacks, a)
		}
		last = a
	}
	require.Len(t, sacks, 7, "a SACK for each segment beyond the hole")
	for _, a := range sacks {
		require.Equal(t, int64(5), ms(a.t), "sent when the segments arrive")
	}
	require.Equal(t, int64(10), ms(rtx.t), "resent when the third SACK arrives, a round trip after T")
	require.Equal(t, int64(15), ms(last.t), "the cumulative ACK for everything leaves the receiver at T+15 ms")
	require.Equal(t, rtx.seq+1448*8, last.ack)
	cc := counters(n.Client)
	require.Equal(t, uint64(1), cc[stats.TcpRetransSegs])
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPSackRecovery])
	require.Zero(t, cc[stats.TcpExtTCPTimeouts]+cc[stats.TcpExtTCPLossProbes])
}

// A link that takes frames more slowly than the sender makes them fills the stack's transmit
// queue. The sender then holds its data until the queue drains, as Linux's qdisc makes a
// socket wait, instead of building segments the stack must drop and TCP must later find
// lost: the link refuses frames again and again, and still nothing is dropped, nothing is
// retransmitted, and every byte arrives in order.
func TestSender_FullTransmitQueueHoldsData(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true, RingSize: 16})
	c, s := established(t, n)
	data := pattern(8 << 20)
	got, _ := transfer(t, n, c, s, data, 10*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	_, refused, _ := n.PortC.Stats()
	require.Positive(t, refused, "the 16-frame ring was full at times")
	cc := counters(n.Client)
	require.Zero(t, cc[stats.TxDropped], "no frame dropped by the stack's own queue")
	require.Zero(t, cc[stats.TcpRetransSegs], "nothing lost, nothing resent")
}

// A SACK block that starts at SND.UNA claims data the cumulative ACK says has not arrived:
// Linux's tcp_is_sackblock_valid refuses it (only blocks after SND.UNA count), and so does
// this side. Three such blocks do not start a recovery or mark anything delivered; they
// are counted as TcpExtTCPSACKDiscard, and nothing is resent but the tail loss probe, the
// last segment, when its timeout (2*SRTT + 2 ms) ends.
func TestSender_SackBlockAtSndUnaDiscarded(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
	require.NoError(t, err)
	p := newRawPeer(t, n)
	c := p.connect(l, 40002, 1000, []byte{2, 4, 0x02, 0x18, 4, 2, 1, 1}) // MSS 536, SACK-permitted
	mark := len(p.got)
	_, err = c.srv.TryWrite(pattern(4 * 536))
	require.NoError(t, err)
	n.Settle()
	require.Len(t, p.since(mark), 4, "four segments in flight")
	for i := 1; i <= 3; i++ {
		sack := &header.TCPOptions{WScale: -1, NumSACK: 1}
		sack.SACK[0] = header.SACKBlock{Start: c.ack, End: c.ack + uint32(i)*536}
		p.send(crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 65535, opts: sack}, nil)
	}
	mark = len(p.got)
	n.RunFor(10 * time.Millisecond)
	sc := counters(n.Server)
	require.Equal(t, uint64(3), sc[stats.TcpExtTCPSACKDiscard])
	require.Zero(t, sc[stats.TcpExtTCPSackRecovery], "no recovery from blocks that are not valid")
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPLossProbes])
	require.Equal(t, uint64(1), sc[stats.TcpRetransSegs], "the probe only")
	resent := p.since(mark)
	require.Len(t, resent, 1, "only the probe within 10 ms")
	require.Equal(t, c.ack+3*536, resent[0].seq, "the probe resends the last segment")
}

// With TCP_USER_TIMEOUT, a window shrunk to zero with data in flight no longer keeps the
// connection for as long as the peer answers: the retransmissions alone bound it (Linux
// tcp_rtx_probe0_timed_out: the application "does not want win 0 packets to reset the
// timer"). The peer here answers every probe with a zero window; the connection ends with
// ETIMEDOUT once the oldest data has waited 5 s, within one backed-off interval of it, and,
// as Linux's tcp_write_err, without a reset.
func TestSender_ZeroWindowUserTimeout(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
	require.NoError(t, err)
	p := newRawPeer(t, n)
	c := p.connect(l, 40003, 1000, nil)
	require.NoError(t, c.srv.SetUserTimeout(5*time.Second))
	mark := len(p.got)
	_, err = c.srv.TryWrite(pattern(2 * 536))
	require.NoError(t, err)
	sent := n.Now()
	n.Settle()
	require.Len(t, p.since(mark), 2, "two segments in flight")
	zero := crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 0}
	p.send(zero, nil)
	seen := len(p.got)
	for n.Now()-sent < int64(time.Minute) && c.srv.State() == tcp.StateEstablished {
		n.RunFor(10 * time.Millisecond)
		if len(p.got) > seen {
			seen = len(p.got)
			p.send(zero, nil) // every probe answered, the window still closed
		}
	}
	require.Equal(t, tcp.StateClosed, c.srv.State())
	require.ErrorIs(t, c.srv.Err(), tcp.ErrTimedOut)
	took := time.Duration(n.Now() - sent)
	require.GreaterOrEqual(t, took, 5*time.Second)
	require.Less(t, took, 5*time.Second+50*time.Millisecond, "the timer is clamped to the user timeout")
	for _, sg := range p.since(mark) {
		require.Zero(t, sg.flags&fRST, "no reset when giving up: %v", sg)
	}
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPAbortOnTimeout])
}

// A connection whose retransmissions go unanswered is given up after tcp_retries2 with
// ETIMEDOUT and, as in Linux (tcp_write_err), no reset: the peer is not there to hear it.
func TestSender_Retries2GivesUpWithoutReset(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ServerTCP: tcp.Settings{TCPRetries2: 3}})
	l, err := n.Server.Listen(fmt.Sprintf(":%d", seedPort), 8)
	require.NoError(t, err)
	p := newRawPeer(t, n)
	c := p.connect(l, 40004, 1000, nil)
	mark := len(p.got)
	_, err = c.srv.TryWrite(pattern(536))
	require.NoError(t, err)
	n.RunUntil(n.Now()+int64(10*time.Minute), func() bool { return c.srv.State() == tcp.StateClosed })
	require.Equal(t, tcp.StateClosed, c.srv.State())
	require.ErrorIs(t, c.srv.Err(), tcp.ErrTimedOut)
	got := p.since(mark)
	require.Len(t, got, 4, "the segment and its three retransmissions: %v", got)
	for _, sg := range got {
		require.Zero(t, sg.flags&fRST, "no reset: %v", sg)
	}
	require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPAbortOnTimeout])
}

// msSince returns when each segment was sent, in whole milliseconds after start.
func msSince(segs []seg, start int64) []int64 {
	var ms []int64
	for _, s := range segs {
		ms = append(ms, (s.t-start)/int64(time.Millisecond))
	}
	return ms
}

// A tail loss probe as a timeline on the virtual clock (5 ms each way, SRTT 10 ms from the
// handshake; the last two of four segments lost): at T the four go out; at T+10 ms the ACKs
// of the first two arrive and arm the probe timeout, 2*SRTT + 2 ms with two segments still
// in flight (Linux tcp_schedule_loss_probe); at T+32 ms the probe resends the last segment;
// at T+42 ms its SACK arrives, RACK finds the third segment lost (sent before a delivered
// one, more than an RTT ago) and it is resent at once; at T+52 ms everything is
// acknowledged, with no retransmission timeout.
func TestSender_TailLossProbeTimeline(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := establishedOver(t, n, 5*time.Millisecond)
	n.ResetFrames()
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k == 3 || k == 4
	})
	start := n.Now()
	data := pattern(4 * 1448)
	_, err := c.TryWrite(data)
	require.NoError(t, err)
	require.Equal(t, data, readAll(t, n, s, len(data)))
	n.RunFor(100 * time.Millisecond)
	sent := withPayload(segments(n), true)
	require.Len(t, sent, 4, "two originals cross, then the probe and one retransmission\n%s", trace(n))
	require.Equal(t, []int64{0, 0, 32, 42}, msSince(sent, start), trace(n))
	first := sent[0].seq
	require.Equal(t, first+3*1448, sent[2].seq, "the probe resends the last segment")
	require.Equal(t, first+2*1448, sent[3].seq, "then RACK resends the third")
	acks := filter(segments(n), false, header.TCPFlagACK)
	last := acks[len(acks)-1]
	require.Equal(t, first+4*1448, last.ack)
	require.Equal(t, int64(47), (last.t-start)/int64(time.Millisecond), "sent at T+47, everything acknowledged at T+52")
	require.Equal(t, 1, acks[len(acks)-2].opts.NumSACK, "the probe's ACK SACKs it")
	cc := counters(n.Client)
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPLossProbes])
	require.Equal(t, uint64(2), cc[stats.TcpRetransSegs])
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
}

// The loss probe is timed from the last transmission, as Linux's tcp_write_xmit reschedules
// it (5 ms each way, SRTT 10 ms from the handshake, every original lost): at T one segment
// goes out alone, whose probe would wait 2*SRTT plus the 200 ms room for a delayed ACK
// (capped at the RTO); at T+1 ms two more follow, and with three in flight the probe waits
// 2*SRTT + 2 ms from then, so it resends the last segment at T+23 ms, not at the RTO. Its
// SACK arrives at T+33 ms: RACK marks the other two lost, and proportional rate reduction
// lets one go at once (one segment delivered, none in flight) and the other on its ACK at
// T+43 ms. No timeout. (The capture holds what crossed: the three originals were dropped.)
func TestSender_LossProbeTimedFromLastSend(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := establishedOver(t, n, 5*time.Millisecond)
	n.ResetFrames()
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k <= 3
	})
	start := n.Now()
	data := pattern(3 * 1448)
	_, err := c.TryWrite(data[:1448])
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	_, err = c.TryWrite(data[1448:])
	require.NoError(t, err)
	require.Equal(t, data, readAll(t, n, s, len(data)))
	n.RunFor(100 * time.Millisecond)
	sent := withPayload(segments(n), true)
	require.Equal(t, []int64{23, 33, 43}, msSince(sent, start), trace(n))
	require.Equal(t, []uint32{sent[1].seq + 2*1448, sent[1].seq, sent[1].seq + 1448},
		[]uint32{sent[0].seq, sent[1].seq, sent[2].seq}, "the probe resends the last segment, then RACK the first and the second")
	cc := counters(n.Client)
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPLossProbes])
	require.Equal(t, uint64(3), cc[stats.TcpRetransSegs])
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
}

// NewReno fast recovery without SACK as a timeline (5 ms each way; the third and sixth of
// eight segments lost): at T the eight go out; at T+10 ms the ACKs of the first two arrive,
// then duplicates, and the third duplicate starts fast retransmit of the third segment at
// once; at T+20 ms its ACK is partial (it stops at the sixth segment), and NewReno resends
// that one on it (RFC 6582 §3.2 step 3); at T+30 ms everything is acknowledged. Two
// retransmissions, one recovery, no timeout.
func TestSender_NewRenoTimeline(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, ClientTCP: tcp.Settings{TCPSackOff: true}})
	c, s := established(t, n)
	k := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		return k == 3 || k == 6
	})
	n.ResetFrames()
	start := n.Now()
	data := pattern(8 * 1448)
	_, err := c.TryWrite(data)
	require.NoError(t, err)
	require.Equal(t, data, readAll(t, n, s, len(data)))
	n.RunFor(100 * time.Millisecond)
	sent := withPayload(segments(n), true)
	require.Len(t, sent, 8, "six originals cross, then two retransmissions\n%s", trace(n))
	require.Equal(t, []int64{0, 0, 0, 0, 0, 0, 10, 20}, msSince(sent, start), trace(n))
	first := sent[0].seq
	require.Equal(t, first+2*1448, sent[6].seq, "fast retransmit of the third segment")
	require.Equal(t, first+5*1448, sent[7].seq, "the partial ACK's retransmission of the sixth")
	acks := filter(segments(n), false, header.TCPFlagACK)
	require.Len(t, acks, 8, trace(n))
	for i, a := range acks[2:6] {
		require.Equal(t, first+2*1448, a.ack, "duplicate ACK %d", i+1)
	}
	require.Equal(t, first+5*1448, acks[6].ack, "the partial ACK")
	require.Equal(t, first+8*1448, acks[7].ack)
	require.Equal(t, int64(25), (acks[7].t-start)/int64(time.Millisecond))
	cc := counters(n.Client)
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPRenoRecovery])
	require.Equal(t, uint64(2), cc[stats.TcpRetransSegs])
	require.Zero(t, cc[stats.TcpExtTCPTimeouts])
}

// Half a window lost, then the first retransmission lost too. Below ssthresh PRR lets new
// data follow the retransmissions; the new data's SACKs show RACK that the retransmission
// is lost as well (TcpExtTCPLostRetransmit), and it is resent within round trips instead
// of waiting for the retransmission timeout.
func TestSender_LostRetransmissionFoundByNewData(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	c, s := establishedOver(t, n, 5*time.Millisecond)
	k := 0
	var first uint32
	seen := 0
	delayBoth(n, 5*time.Millisecond, func(th header.TCP) bool {
		k++
		if k == 2 {
			first = th.Seq()
		}
		if th.Seq() == first && k > 1 {
			seen++
			return seen <= 2 // the original and its first retransmission
		}
		return k >= 3 && k <= 6
	})
	data := pattern(40 * 1448)
	got, took := transfer(t, n, c, s, data, 2*time.Second)
	require.Equal(t, sha256.Sum256(data), sha256.Sum256(got))
	cc := counters(n.Client)
	require.Equal(t, 3, seen, "the first lost segment: the original and its first retransmission lost, the second arrived")
	require.Equal(t, uint64(1), cc[stats.TcpExtTCPLostRetransmit], "RACK found the lost retransmission\n%s", trace(n))
	require.Zero(t, cc[stats.TcpExtTCPTimeouts], "no retransmission timeout\n%s", trace(n))
	require.Less(t, took, 150*time.Millisecond, "repaired in round trips of 10 ms")
}

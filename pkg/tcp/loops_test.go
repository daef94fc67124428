package tcp_test

// The two ACK loops the hostile-peer probes found between two shardstack stacks: before,
// each ran without end in one virtual instant (the simulator gave up after 200,000
// segments). Each test plays the loop's setup on the virtual clock and checks the exact
// segments that follow, and that nothing more does.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// after returns the segments of the capture sent at or after t.
func after(segs []seg, t int64) []seg {
	var out []seg
	for _, s := range segs {
		if s.t >= t {
			out = append(out, s)
		}
	}
	return out
}

// Loop (a): 1000 bytes forged as the server's reach the client, which acknowledges them,
// so the client's ACK acknowledges data the server never sent. The server used to answer
// with an ACK that the client, its rcv_nxt now past the server's snd_nxt, found out of
// window and answered in turn, forever. Linux answers the first with a challenge ACK
// (tcp_ack: SEG.ACK > SND.NXT), the client answers that once (an out-of-window ACK), and
// the second is rate-limited: three segments, then silence.
func TestLoop_AckOfUnsentData(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	c := dialAndRun(t, n)
	s, err := l.TryAccept()
	require.NoError(t, err)
	hs := segments(n)
	require.Len(t, hs, 3)
	cSeq, sSeq := hs[2].seq, hs[2].ack // the client's and the server's next sequence numbers
	tp := newTap(n)

	forged := n.Now()
	injectRaw(t, tp, false, crafted{sport: seedPort, dport: port(t, c), seq: sSeq, ack: cSeq,
		flags: fACK | header.TCPFlagPSH, win: 65535, payload: make([]byte, 1000)}, nil)
	n.RunFor(10 * time.Second)

	got, err := c.TryRead(make([]byte, 2000))
	require.NoError(t, err)
	require.Equal(t, 1000, got, "the client took the forged bytes")
	out := after(segments(n), forged)
	require.Len(t, out, 1+3, trace(n))
	// The client acknowledges the forged bytes at once (quick ACK) or after its delayed-ACK
	// timer; the other two segments follow in the same instant.
	when := out[1].t
	require.LessOrEqual(t, when-forged, int64(40*time.Millisecond))
	want := []struct {
		toServer bool
		seq, ack uint32
		what     string
	}{
		{true, cSeq, sSeq + 1000, "the client's delayed ACK of the forged bytes"},
		{false, sSeq, cSeq, "the server's challenge ACK: SEG.ACK > SND.NXT"},
		{true, cSeq, sSeq + 1000, "the client's ACK of an out-of-window segment"},
	}
	for i, w := range want {
		o := out[1+i]
		require.Equal(t, w.toServer, o.toServer, w.what)
		require.Equal(t, fACK, o.flags, w.what)
		require.Equal(t, w.seq, o.seq, w.what)
		require.Equal(t, w.ack, o.ack, w.what)
		require.Equal(t, when, o.t, w.what)
	}
	sc, cc := counters(n.Server), counters(n.Client)
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPChallengeACK])
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPACKSkippedChallenge], "the second challenge is rate-limited")
	require.Zero(t, cc[stats.TcpExtTCPACKSkippedSeq])
	require.Equal(t, tcp.StateEstablished, s.State())
	require.Equal(t, tcp.StateEstablished, c.State())
}

// Loop (b): the server's window fills (its application is not reading), the application
// then reads everything, and the window update that says so is lost. The client, still
// seeing a zero window, probes. Its probe used to be one new byte at snd_nxt, not counted
// as sent: the server, its window open again, took the byte and acknowledged it, the
// client found that ACK beyond anything it had sent and answered, the server found that
// answer behind its rcv_nxt and answered, and so on (200,022 segments in one instant in
// the probe that found it). Linux probes with a segment that carries no data and the
// sequence number snd_una-1 (tcp_write_wakeup, tcp_xmit_probe_skb): it can only draw an
// ACK, which carries the open window, and the client sends its last 100 bytes.
func TestLoop_LostWindowUpdate(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{RcvBuf: 4096}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	c := dialAndRun(t, n)
	s, err := l.TryAccept()
	require.NoError(t, err)
	_, err = c.TryWrite(make([]byte, 4096+100))
	require.NoError(t, err)
	n.RunFor(time.Second) // the window fills; 100 bytes wait
	require.Equal(t, 4096, serverTable(t, n).byPort[port(t, c)].RecvQ)

	tp := newTap(n)
	lost := 0
	tp.toClient = func(th header.TCP, _ []byte) dpdkshim.Action {
		if lost == 0 && th.Window() > 0 {
			lost++
			return drop // the window update
		}
		return pass
	}
	k, err := s.TryRead(make([]byte, 8192))
	require.NoError(t, err)
	require.Equal(t, 4096, k)
	readAt := n.Now()
	n.RunFor(10 * time.Second)
	require.Equal(t, 1, lost)

	segs := segments(n)
	data := withPayload(segs, true)
	una := data[0].seq + 4096 // snd_una once the 4096 bytes are acknowledged
	var probes []seg
	for _, sg := range dir(segs, true) {
		if sg.seq == una-1 {
			probes = append(probes, sg)
		}
	}
	require.Len(t, probes, 3, trace(n))
	for _, pr := range probes {
		require.Equal(t, fACK, pr.flags)
		require.Zero(t, pr.payload, "a probe carries no data")
	}
	rto := probes[1].t - probes[0].t
	require.Equal(t, 2*rto, probes[2].t-probes[1].t, "the probe timer backs off")
	require.Less(t, probes[1].t, readAt)
	require.Greater(t, probes[2].t, readAt)

	out := after(segs, probes[0].t)
	require.Len(t, out, 7, trace(n))
	srvSeq := out[1].seq
	want := []struct {
		toServer bool
		seq, ack uint32
		win      uint16
		payload  int
		at       int64
		what     string
	}{
		{true, una - 1, srvSeq, 0, 0, probes[0].t, "the first probe"},
		{false, srvSeq, una, 0, 0, probes[0].t, "its answer: the window is still closed"},
		{true, una - 1, srvSeq, 0, 0, probes[1].t, "the second probe, unanswered (within 500 ms of the last)"},
		{true, una - 1, srvSeq, 0, 0, probes[2].t, "the third probe, after the lost update"},
		{false, srvSeq, una, 4096, 0, probes[2].t, "its answer carries the open window"},
		{true, una, srvSeq, 0, 100, probes[2].t, "the 100 bytes that waited"},
		{false, srvSeq, una + 100, 0, 0, probes[2].t, "their ACK (quick or delayed: see below)"},
	}
	for i, w := range want {
		o := out[i]
		require.Equal(t, w.toServer, o.toServer, w.what)
		require.Equal(t, w.seq, o.seq, w.what)
		require.Equal(t, w.ack, o.ack, w.what)
		require.Equal(t, w.payload, o.payload, w.what)
		if i == len(want)-1 {
			require.LessOrEqual(t, o.t-w.at, int64(40*time.Millisecond), w.what)
		} else {
			require.Equal(t, w.at, o.t, w.what)
		}
		if !w.toServer && i != len(want)-1 {
			require.Equal(t, w.win, o.win, w.what)
		}
	}
	k, err = s.TryRead(make([]byte, 8192))
	require.NoError(t, err)
	require.Equal(t, 100, k, "every byte arrived")
	cc, sc := counters(n.Client), counters(n.Server)
	require.Equal(t, uint64(3), cc[stats.TcpExtTCPWinProbe])
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPACKSkippedSeq], "the second probe's answer")
	require.Zero(t, cc[stats.TcpExtTCPChallengeACK])
	require.Zero(t, sc[stats.TcpExtTCPChallengeACK])
}

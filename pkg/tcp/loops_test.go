package tcp_test

// The two ACK loops the hostile-peer probes found between two shardstack stacks: before,
// each ran without end in one virtual instant (the simulator gave up after 200,000
// segments). Each test plays the loop's setup on the virtual clock and checks the exact
// segments that follow, and that nothing more does.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
	delack := forged + int64(40*time.Millisecond)
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
		require.Equal(t, delack, o.t, w.what)
	}
	sc, cc := counters(n.Server), counters(n.Client)
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPChallengeACK])
	require.Equal(t, uint64(1), sc[stats.TcpExtTCPACKSkippedChallenge], "the second challenge is rate-limited")
	require.Zero(t, cc[stats.TcpExtTCPACKSkippedSeq])
	require.Equal(t, tcp.StateEstablished, s.State())
	require.Equal(t, tcp.StateEstablished, c.State())
}

package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// TCP_DEFER_ACCEPT (spec §4): a bare final ACK only marks the request acked; data makes the
// child, which Accept then returns with the data already in it.
func TestDeferAccept_DataMakesTheChild(t *testing.T) {
	for _, p := range []tcp.Profile{tcp.ProfileLinux, tcp.ProfileLinux312} {
		t.Run(p.String(), func(t *testing.T) {
			n := scenarioNet(t, 1, tcp.Settings{Profile: p}, tcp.Settings{Profile: p})
			l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: 8, DeferAccept: 5 * time.Second})
			require.NoError(t, err)
			c := dialSeed(t, n)
			n.RunFor(500 * time.Millisecond)
			require.Equal(t, tcp.StateEstablished, c.State(), "the client is connected")
			_, err = l.TryAccept()
			require.ErrorIs(t, err, tcp.ErrWouldBlock, "nothing to accept before data")
			rows := serverTable(t, n)
			require.Equal(t, tcp.StateSynRecv, rows.byPort[port(t, c)].State)
			require.Equal(t, uint64(1), counters(n.Server)[stats.TcpExtTCPDeferAcceptDrop])
			require.Zero(t, counters(n.Server)[stats.TcpPassiveOpens])

			_, err = c.TryWrite([]byte("GET /"))
			require.NoError(t, err)
			n.RunFor(time.Millisecond)
			s, err := l.TryAccept()
			require.NoError(t, err)
			buf := make([]byte, 16)
			k, err := s.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "GET /", string(buf[:k]))
			require.Equal(t, uint64(1), counters(n.Server)[stats.TcpPassiveOpens])
		})
	}
}

// With TCP_DEFER_ACCEPT of 5 s (3 retransmissions, Linux secs_to_retrans) and an acked
// request, SYN-ACKs are not resent until retry d-1: the next one goes out at 7 s, and the
// client's answer to it then makes the child even without data.
func TestDeferAccept_SynAckSchedule(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: 8, DeferAccept: 5 * time.Second})
	require.NoError(t, err)
	c := dialSeed(t, n)
	n.RunUntil(at(6.9), nil)
	f := flowOf(segments(n), port(t, c))
	require.Len(t, filter(f, false, fSYNACK), 1, trace(n))
	_, err = l.TryAccept()
	require.ErrorIs(t, err, tcp.ErrWouldBlock)
	n.RunUntil(at(7.1), nil)
	f = flowOf(segments(n), port(t, c))
	synacks := filter(f, false, fSYNACK)
	require.Len(t, synacks, 2, trace(n))
	require.Equal(t, at(7), synacks[1].t)
	s, err := l.TryAccept()
	require.NoError(t, err, "the deferral is over: the re-ACK makes the child")
	require.Equal(t, tcp.StateEstablished, s.State())
}

// TCP_SYNCNT on a listener replaces tcp_synack_retries: with 2 the SYN-ACKs go at 0, 1, 3 s
// and the request is gone at 7 s.
func TestSynCnt_Listener(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: 8, SynCnt: 2})
	require.NoError(t, err)
	// The client's ACKs never arrive.
	n.PortC.SetHook(func(_ int, frame []byte) dpdkshim.Action {
		if th, ok := simnet.TCPOf(frame); ok && th.Flags()&header.TCPFlagSYN == 0 {
			return dpdkshim.Action{Kind: dpdkshim.Drop}
		}
		return dpdkshim.Action{}
	})
	c := dialSeed(t, n)
	n.RunUntil(at(6.999), nil)
	require.Equal(t, 1, l.SynQueueLen())
	n.RunUntil(at(7), nil)
	require.Zero(t, l.SynQueueLen())
	synacks := filter(flowOf(segments(n), port(t, c)), false, fSYNACK)
	var ts []int64
	for _, s := range synacks {
		ts = append(ts, s.t)
	}
	require.Equal(t, []int64{0, at(1), at(3)}, ts)
}

// TCP_SYNCNT on a connect: with 2 the attempt ends when the first SYN is 7 s old
// (tcp_model_timeout), after SYNs at 0..5 s (linux) or 0, 1, 3 s (linux-3.12).
func TestSynCnt_Dial(t *testing.T) {
	for _, c := range []struct {
		p    tcp.Profile
		syns []int64
	}{
		{tcp.ProfileLinux, []int64{0, at(1), at(2), at(3), at(4), at(5)}},
		{tcp.ProfileLinux312, []int64{0, at(1), at(3)}},
	} {
		t.Run(c.p.String(), func(t *testing.T) {
			n := scenarioNet(t, 1, tcp.Settings{Profile: c.p}, tcp.Settings{Profile: c.p})
			var sent []int64
			n.PortC.SetHook(func(_ int, frame []byte) dpdkshim.Action {
				if _, ok := simnet.TCPOf(frame); ok {
					sent = append(sent, n.Now())
				}
				return dpdkshim.Action{Kind: dpdkshim.Drop}
			})
			conn, err := n.Client.DialAsync(seedAP, tcp.DialOptions{SynCnt: 2})
			require.NoError(t, err)
			n.RunUntil(at(6.999), nil)
			require.Equal(t, tcp.StateSynSent, conn.State())
			n.RunUntil(at(7), nil)
			require.Equal(t, tcp.StateClosed, conn.State())
			require.ErrorIs(t, conn.Err(), tcp.ErrTimedOut)
			require.Equal(t, c.syns, sent)
		})
	}
}

// TCP_MAXSEG on a listener caps the MSS it advertises and the segments its children send.
func TestMaxSeg_Listener(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: 8, MaxSeg: 1000})
	require.NoError(t, err)
	c := dialSeed(t, n)
	n.RunFor(time.Millisecond)
	s, err := l.TryAccept()
	require.NoError(t, err)
	_, err = s.TryWrite(make([]byte, 5000))
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	f := flowOf(segments(n), port(t, c))
	synack := filter(f, false, fSYNACK)
	require.Equal(t, uint16(1000), synack[0].opts.MSS)
	for _, d := range withPayload(f, false) {
		require.LessOrEqual(t, d.payload, 1000-12, "MSS less the timestamp option")
	}
	require.NotEmpty(t, withPayload(f, false))
}

// Nagle (Linux's default on a Handle): a second short write waits while the first short
// segment is unacknowledged and goes with the ACK; TCP_NODELAY sends both at once.
func TestNagle(t *testing.T) {
	for _, noDelay := range []bool{false, true} {
		t.Run(map[bool]string{false: "nagle", true: "nodelay"}[noDelay], func(t *testing.T) {
			for seed := uint64(1); seed <= 8; seed++ { // ISNs anywhere in sequence space
				n := newNet(t, simnet.Options{StaticARP: true, Seed: seed})
				// 5 ms each way: the ACK of "one" is on its way when "two" is written.
				oneWay := func(int, []byte) dpdkshim.Action {
					return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 5 * time.Millisecond}
				}
				n.PortC.SetHook(oneWay)
				n.PortS.SetHook(oneWay)
				l, err := n.Server.Listen(":80", 8)
				require.NoError(t, err)
				h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{})
				require.NoError(t, err)
				n.RunFor(20 * time.Millisecond)
				s, err := l.TryAcceptHandle()
				require.NoError(t, err)
				require.NoError(t, h.SetNoDelay(noDelay))
				_, err = h.TryWrite([]byte("one"))
				require.NoError(t, err)
				n.Settle()
				_, err = h.TryWrite([]byte("two"))
				require.NoError(t, err)
				n.RunFor(9 * time.Millisecond) // the ACK of "one" is not back yet
				data := withPayload(segments(n), true)
				if noDelay {
					require.Len(t, data, 2, trace(n))
				} else {
					require.Len(t, data, 1, "the second short write waits for the ACK\n%s", trace(n))
					n.RunFor(5 * time.Millisecond) // the ACK comes (at once: quick-ACK mode), "two" goes
					require.Len(t, withPayload(segments(n), true), 2, trace(n))
				}
				n.RunFor(20 * time.Millisecond)
				buf := make([]byte, 16)
				k, err := s.TryRead(buf)
				require.NoError(t, err)
				require.Equal(t, "onetwo", string(buf[:k]))
			}
		})
	}
}

// A short segment that is lost is retransmitted even with Nagle on (the check holds only new
// data), and what Nagle held goes once it is acknowledged.
func TestNagle_LostShortSegmentIsRetransmitted(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true})
	l, err := n.Server.Listen(":80", 8)
	require.NoError(t, err)
	h, err := n.Client.DialAsyncHandle(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	n.RunFor(time.Millisecond)
	s, err := l.TryAcceptHandle()
	require.NoError(t, err)
	lost := false
	dropTo(n, true, func(th header.TCP) bool {
		if len(th.Payload()) > 0 && !lost {
			lost = true
			return true
		}
		return false
	})
	_, err = h.TryWrite([]byte("one"))
	require.NoError(t, err)
	n.Settle()
	_, err = h.TryWrite([]byte("two")) // held by Nagle behind the lost "one"
	require.NoError(t, err)
	n.RunFor(2 * time.Second)
	buf := make([]byte, 16)
	k, err := s.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "onetwo", string(buf[:k]))
	require.NotZero(t, n.Client.Counters()[stats.TcpRetransSegs])
}

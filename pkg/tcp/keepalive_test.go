package tcp_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// requireProbes checks that the client's keepalive probes went out at exactly the given
// virtual times, each a bare ACK with SEQ = SND.UNA-1 (Linux tcp_xmit_probe_skb) and the
// current RCV.NXT.
func requireProbes(t *testing.T, p *pairNet, una, rcvNxt uint32, want ...int64) {
	t.Helper()
	var probes []wseg
	for _, s := range p.w.sent(true, fACK, 0) {
		if s.seq == una-1 {
			probes = append(probes, s)
		}
	}
	require.Equal(t, want, times(probes), p.w.trace())
	for _, s := range probes {
		require.Zero(t, s.payload)
		require.Equal(t, rcvNxt, s.ack)
	}
}

// unaOf returns the client's SND.UNA and RCV.NXT as the last ACK it sent shows them (the
// pair is idle: SND.NXT is SND.UNA).
func unaOf(t *testing.T, p *pairNet) (una, rcvNxt uint32) {
	t.Helper()
	acks := p.w.sent(true, fACK, 0)
	require.NotEmpty(t, acks, p.w.trace())
	last := acks[len(acks)-1]
	return last.seq, last.ack
}

// Keepalive on an idle connection whose peer answers: a probe one idle time after the peer
// was last heard from, the peer's ACK, and so on, each probe answered; TcpExtTCPKeepAlive
// counts them and the connection lives on.
func TestKeepalive_ProbesAnswered(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}))
	una, rcv := unaOf(t, p)
	p.n.RunUntil(at(35), nil)
	requireProbes(t, p, una, rcv, at(10), at(20), at(30))
	// Each was answered at once by the server's ACK of what it already has.
	answers := p.w.sent(false, fACK, at(1))
	require.Equal(t, []int64{at(10), at(20), at(30)}, times(answers), p.w.trace())
	for _, a := range answers {
		require.Equal(t, una, a.ack)
	}
	require.Equal(t, tcp.StateEstablished, p.c.State())
	require.Equal(t, uint64(3), p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
	require.Zero(t, p.n.Server.Counters()[stats.TcpExtTCPKeepAlive])
}

// Unanswered probes: Count of them, Interval apart, then a reset and ETIMEDOUT (Linux
// tcp_keepalive_timer: tcp_send_active_reset, tcp_write_err).
func TestKeepalive_AbortAfterCount(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}))
	una, rcv := unaOf(t, p)
	p.w.cutToS = true
	p.n.RunUntil(at(15.999), nil)
	require.Equal(t, tcp.StateEstablished, p.c.State())
	p.n.RunUntil(at(30), nil)
	requireProbes(t, p, una, rcv, at(10), at(12), at(14))
	rst := p.w.sent(true, fRSTACK, 0)
	require.Equal(t, []int64{at(16)}, times(rst), p.w.trace())
	require.Equal(t, una, rst[0].seq)
	require.Equal(t, tcp.StateClosed, p.c.State())
	require.ErrorIs(t, p.c.Err(), tcp.ErrTimedOut)
	_, err := p.c.Read(make([]byte, 1))
	require.ErrorIs(t, err, tcp.ErrTimedOut)
	c := p.n.Client.Counters()
	require.Equal(t, uint64(3), c[stats.TcpExtTCPKeepAlive])
	require.Equal(t, uint64(1), c[stats.TcpExtTCPAbortOnTimeout])
	require.Equal(t, uint64(1), c[stats.TcpEstabResets])
	require.Equal(t, uint64(1), c[stats.TcpOutRsts])
	_, ok := p.clientRow(t)
	require.False(t, ok, "the connection is gone")
}

// Traffic from the peer moves the idle time on: data at 5 s makes the first probe due at
// 15 s, not 10 s; the peer going silent at 6 s then costs probes at 15, 17, 19 s and the
// reset at 21 s.
func TestKeepalive_TrafficResetsTheTimer(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}))
	p.n.RunUntil(at(5), nil)
	_, err := p.s.Write([]byte("hello"))
	require.NoError(t, err)
	p.n.RunUntil(at(6), nil)
	buf := make([]byte, 16)
	k, err := p.c.TryRead(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf[:k]))
	una, rcv := unaOf(t, p)
	p.w.cutToS = true
	p.n.RunUntil(at(30), nil)
	requireProbes(t, p, una, rcv, at(15), at(17), at(19))
	require.Equal(t, []int64{at(21)}, times(p.w.sent(true, fRSTACK, 0)), p.w.trace())
	require.ErrorIs(t, p.c.Err(), tcp.ErrTimedOut)
}

// SetKeepAlive alone uses the stack's sysctls: tcp_keepalive_time, _intvl and _probes
// (Linux's 7200 s, 75 s and 9), here set through their sysctl names. SetKeepAlivePeriod
// then changes only the idle time, and turning keepalive off stops the probes.
func TestKeepalive_Sysctls(t *testing.T) {
	var st tcp.Settings
	require.NoError(t, st.Set("net.ipv4.tcp_keepalive_time", "100"))
	require.NoError(t, st.Set("net.ipv4.tcp_keepalive_intvl", "7"))
	require.NoError(t, st.Set("net.ipv4.tcp_keepalive_probes", "2"))
	p := newPair(t, st, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAlive(true))
	una, rcv := unaOf(t, p)
	p.w.cutToS = true
	p.n.RunUntil(at(200), nil)
	requireProbes(t, p, una, rcv, at(100), at(107))
	require.Equal(t, []int64{at(114)}, times(p.w.sent(true, fRSTACK, 0)), p.w.trace())

	// Linux's own defaults when nothing is set: the first probe after two hours.
	p = newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAlive(true))
	p.n.RunUntil(at(7199), nil)
	require.Zero(t, p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
	p.n.RunUntil(at(7200), nil)
	require.Equal(t, uint64(1), p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
	// A new idle time counts from when the peer was last heard (the probe's answer).
	require.NoError(t, p.c.SetKeepAlivePeriod(30*time.Second))
	p.n.RunUntil(at(7230), nil)
	require.Equal(t, uint64(2), p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
	require.NoError(t, p.c.SetKeepAlive(false))
	p.n.RunUntil(at(8000), nil)
	require.Equal(t, uint64(2), p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
}

// Keepalive set on the listener is inherited by its children; set on a Dial it starts with
// the connection.
func TestKeepalive_ListenAndDialOptions(t *testing.T) {
	n := newNet(t, simnetOpts())
	ka := net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second, Interval: 5 * time.Second, Count: 1}
	l, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 8, KeepAlive: ka})
	require.NoError(t, err)
	ka.Idle = 30 * time.Second
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{KeepAlive: ka})
	require.NoError(t, err)
	n.Settle()
	_, err = l.TryAccept()
	require.NoError(t, err)
	n.RunUntil(at(25), nil)
	require.Equal(t, uint64(1), n.Server.Counters()[stats.TcpExtTCPKeepAlive], "the child probes at 20 s")
	require.Zero(t, n.Client.Counters()[stats.TcpExtTCPKeepAlive])
	n.RunUntil(at(35), nil)
	require.Equal(t, uint64(1), n.Client.Counters()[stats.TcpExtTCPKeepAlive], "the dial probes at 30 s")
	require.Equal(t, tcp.StateEstablished, c.State())

	_, err = n.Server.ListenTCP(serverAP, tcp.ListenOptions{KeepAlive: net.KeepAliveConfig{Enable: true, Count: 128}})
	require.ErrorIs(t, err, tcp.ErrInvalid)
	_, err = n.Client.DialAsync(serverAP, tcp.DialOptions{UserTimeout: -1})
	require.ErrorIs(t, err, tcp.ErrInvalid)
}

// TCP_USER_TIMEOUT bounds keepalive: with it set the probe count no longer matters; the
// connection is given up once probes have gone unanswered for that long since the peer was
// last heard (Linux tcp_keepalive_timer).
func TestKeepalive_BoundedByUserTimeout(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 100}))
	require.NoError(t, p.c.SetUserTimeout(15*time.Second))
	una, rcv := unaOf(t, p)
	p.w.cutToS = true
	p.n.RunUntil(at(30), nil)
	requireProbes(t, p, una, rcv, at(10), at(12), at(14))
	require.Equal(t, []int64{at(16)}, times(p.w.sent(true, fRSTACK, 0)), p.w.trace())
	require.ErrorIs(t, p.c.Err(), tcp.ErrTimedOut)
}

// TCP_USER_TIMEOUT on data: sent at 1 s and never acknowledged, it is resent by a loss
// probe at the RTO's time (1.2 s, as Linux caps the probe timeout at the RTO), then
// retransmitted with backoff (RTO 200 ms here) until 6 s, where the connection is given up with ETIMEDOUT
// without a reset (Linux tcp_write_err), the last backoff cut short to end there; without
// the option the same connection is still retrying.
func TestUserTimeout_Data(t *testing.T) {
	for _, ut := range []time.Duration{0, 5 * time.Second} {
		p := newPair(t, tcp.Settings{}, tcp.Settings{})
		require.NoError(t, p.c.SetUserTimeout(ut))
		p.n.RunUntil(at(1), nil)
		p.w.cutToS = true
		_, err := p.c.Write([]byte("data"))
		require.NoError(t, err)
		p.n.RunUntil(at(5.999), nil)
		require.Equal(t, tcp.StateEstablished, p.c.State())
		p.n.RunUntil(at(6), nil)
		data := p.w.data(true)
		if ut == 0 {
			require.Equal(t, tcp.StateEstablished, p.c.State(), p.w.trace())
			continue
		}
		require.Equal(t, tcp.StateClosed, p.c.State(), p.w.trace())
		require.ErrorIs(t, p.c.Err(), tcp.ErrTimedOut)
		var ms []int64
		for _, at := range times(data) {
			ms = append(ms, at/int64(time.Millisecond))
		}
		require.Equal(t, []int64{1000, 1200, 1400, 1800, 2600, 4200}, ms,
			"the original, the loss probe and four retransmissions\n%s", p.w.trace())
		require.Empty(t, p.w.sent(true, fRSTACK, 0), "no reset on a user timeout")
		require.Equal(t, uint64(1), p.n.Client.Counters()[stats.TcpExtTCPAbortOnTimeout])
		_, err = p.c.Write([]byte("more"))
		require.ErrorIs(t, err, tcp.ErrTimedOut)
	}
}

// TCP_USER_TIMEOUT on a Dial bounds its SYN retransmissions: SYNs at 0, 1 and 2 s (the
// linux profile's linear timeouts), given up at 2.5 s; Dial says ETIMEDOUT, a timeout.
func TestUserTimeout_Dial(t *testing.T) {
	n := newNet(t, simnetOpts())
	w := newWire(n)
	w.cutToS = true
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{UserTimeout: 2500 * time.Millisecond})
	require.NoError(t, err)
	n.RunUntil(at(2.499), nil)
	require.Equal(t, tcp.StateSynSent, c.State())
	n.RunUntil(at(10), nil)
	require.Equal(t, []int64{0, at(1), at(2)}, times(w.sent(true, fSYN, 0)))
	require.Equal(t, tcp.StateClosed, c.State())
	err = c.WaitConnected(context.Background())
	require.ErrorIs(t, err, tcp.ErrTimedOut)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout())
}

// TCP_USER_TIMEOUT on a zero window: the peer keeps answering the window probes, so
// without the option the sender probes for ever (RFC 1122 §4.2.2.17), but with it the
// connection is given up once the window has stayed shut that long from the first probe
// (Linux tcp_probe_timer).
func TestUserTimeout_ZeroWindow(t *testing.T) {
	for _, ut := range []time.Duration{0, 10 * time.Second} {
		p := newPair(t, tcp.Settings{}, tcp.Settings{})
		require.NoError(t, p.c.SetUserTimeout(ut))
		chunk := make([]byte, 4096)
		for range 20 { // 80 KiB: the server's receive buffer and our send buffer fill
			p.c.TryWrite(chunk)
			p.n.RunFor(time.Millisecond)
		}
		p.n.RunUntil(at(100), func() bool { return p.c.State() == tcp.StateClosed })
		end := p.n.Now()
		// The probes carry no data and SND.UNA-1 (Linux tcp_xmit_probe_skb).
		data := p.w.data(true)
		last := data[len(data)-1]
		probes := p.w.sent(true, fACK, 0)
		probes = slices.DeleteFunc(probes, func(s wseg) bool { return s.seq != last.seq+uint32(last.payload)-1 })
		require.GreaterOrEqual(t, len(probes), 3, p.w.trace())
		require.Equal(t, tcp.StateEstablished, p.s.State(), "the server never knew")
		if ut == 0 {
			require.Equal(t, at(100), end)
			require.Equal(t, tcp.StateEstablished, p.c.State())
			continue
		}
		require.Equal(t, probes[0].t+int64(ut), end, p.w.trace())
		require.ErrorIs(t, p.c.Err(), tcp.ErrTimedOut)
	}
}

// Keepalive has a timer of its own: while data waits for its acknowledgement the connection
// is "alive without keepalive" (Linux tcp_keepalive_timer: packets_out), so only the
// retransmission timer runs, with its backoff; once the peer acknowledges again, the probes
// start one idle time after it was last heard from.
func TestKeepalive_NotWhileDataInFlight(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}))
	p.n.RunUntil(at(1), nil)
	p.w.cutToS = true
	_, err := p.c.Write([]byte("data"))
	require.NoError(t, err)
	p.n.RunUntil(at(30), nil)
	require.Zero(t, p.n.Client.Counters()[stats.TcpExtTCPKeepAlive], p.w.trace())
	require.Greater(t, len(p.w.data(true)), 5, "retransmissions on their own timer\n%s", p.w.trace())
	require.Equal(t, tcp.StateEstablished, p.c.State())

	// The peer comes back: the next retransmission is acknowledged, and from then on the
	// connection is idle and probed.
	p.w.cutToS = false
	p.n.RunUntil(at(100), func() bool { return p.c.Err() == nil && len(p.w.sent(false, fACK, at(30))) > 0 })
	ack := p.w.sent(false, fACK, at(30))[0]
	p.n.RunUntil(ack.t+at(10.5), nil)
	requireProbes(t, p, ack.ack, ack.seq, ack.t+at(10))
	require.Equal(t, uint64(1), p.n.Client.Counters()[stats.TcpExtTCPKeepAlive])
}

// Keepalive allocates nothing once warm: a probe and its answer, and turning keepalive off
// and on again, which gives the connection's keepalive timer back to its shard's pool and
// lends it out again.
func TestKeepalive_AllocatesNothing(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true})
	l, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 8})
	require.NoError(t, err)
	c := dial(t, n)
	n.Settle()
	s, err := l.TryAccept()
	require.NoError(t, err)
	require.NoError(t, c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}))
	require.NoError(t, s.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}))
	round := func() {
		if err := c.SetKeepAlive(false); err != nil {
			panic(err)
		}
		n.Settle()
		if err := c.SetKeepAlive(true); err != nil {
			panic(err)
		}
		n.RunFor(1500 * time.Millisecond)
	}
	for range 10 {
		round()
	}
	before := n.Client.Counters()[stats.TcpExtTCPKeepAlive]
	require.Zero(t, testing.AllocsPerRun(100, round))
	require.Equal(t, uint64(101), n.Client.Counters()[stats.TcpExtTCPKeepAlive]-before, "one probe a round")
	require.Equal(t, tcp.StateEstablished, c.State())
	require.Equal(t, tcp.StateEstablished, s.State())
}

// SetKeepAlive(true) on a connection that is probing already changes nothing (Linux
// tcp_set_keepalive re-arms the timer only when keepalive was off): the probes keep their
// interval and the count runs on.
func TestKeepalive_SetAgainWhileProbing(t *testing.T) {
	p := newPair(t, tcp.Settings{}, tcp.Settings{})
	require.NoError(t, p.c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 2 * time.Second, Count: 3}))
	una, rcv := unaOf(t, p)
	p.w.cutToS = true
	p.n.RunUntil(at(11), nil)
	require.NoError(t, p.c.SetKeepAlive(true))
	p.n.RunUntil(at(30), nil)
	requireProbes(t, p, una, rcv, at(10), at(12), at(14))
	require.Equal(t, []int64{at(16)}, times(p.w.sent(true, fRSTACK, 0)), p.w.trace())
}

package tcp_test

// Fixtures for the tests of the connection API (socket options, half-closes, linger,
// keepalive, user timeout, ReadFrom/WriteTo, Handle safety): an established pair on a
// simnet, a wire that records every segment in both directions (dropped ones too, which the
// capture never sees) and can cut either direction, and a pump that runs virtual time while
// other goroutines block in the API.

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// pairNet is a simnet with a listener on serverAP and one established connection, set up
// at virtual time 0 without moving the clock.
type pairNet struct {
	n     *simnet.Net
	l     *tcp.Listener
	c, s  *tcp.Conn // client and server ends
	cport uint16    // the client's port
	w     *wire
}

func newPair(t *testing.T, client, server tcp.Settings) *pairNet {
	t.Helper()
	o := simnetOpts()
	o.ClientTCP, o.ServerTCP = client, server
	n := newNet(t, o)
	l, err := n.Server.ListenTCP(serverAP, tcp.ListenOptions{Backlog: 8})
	require.NoError(t, err)
	p := &pairNet{n: n, l: l, w: newWire(n)}
	p.c = dial(t, n)
	n.Settle()
	p.s, err = l.TryAccept()
	require.NoError(t, err)
	require.Equal(t, tcp.StateEstablished, p.c.State())
	require.Zero(t, n.Now())
	p.cport = p.c.LocalAddrPort().Port()
	return p
}

// wseg is one segment the wire saw, delivered or dropped.
type wseg struct {
	seg
	dropped bool
}

// wire records what each port transmits and drops what a direction is cut for.
type wire struct {
	n              *simnet.Net
	cutToS, cutToC bool
	segs           []wseg
	dropFn         func(toServer bool, t header.TCP) bool // extra drops (nil: none)
}

func newWire(n *simnet.Net) *wire {
	w := &wire{n: n}
	n.PortC.SetHook(func(_ int, frame []byte) dpdkshim.Action { return w.judge(true, frame) })
	n.PortS.SetHook(func(_ int, frame []byte) dpdkshim.Action { return w.judge(false, frame) })
	return w
}

func (w *wire) judge(toServer bool, frame []byte) dpdkshim.Action {
	t, ok := simnet.TCPOf(frame)
	if !ok {
		return pass
	}
	d := (toServer && w.cutToS) || (!toServer && w.cutToC) || (w.dropFn != nil && w.dropFn(toServer, t))
	s := seg{t: w.n.Now(), toServer: toServer, sport: t.SrcPort(), dport: t.DstPort(), flags: t.Flags(),
		seq: t.Seq(), ack: t.Ack(), win: t.Window(), payload: len(t.Payload())}
	w.segs = append(w.segs, wseg{s, d})
	if d {
		return drop
	}
	return pass
}

// sent returns the segments one side transmitted with exactly the flags f, from time from on.
func (w *wire) sent(toServer bool, f uint8, from int64) []wseg {
	var out []wseg
	for _, s := range w.segs {
		if s.toServer == toServer && s.flags == f && s.t >= from {
			out = append(out, s)
		}
	}
	return out
}

// withFlag returns the segments one side transmitted with the flag f among their flags.
func (w *wire) withFlag(toServer bool, f uint8) []wseg {
	var out []wseg
	for _, s := range w.segs {
		if s.toServer == toServer && s.flags&f != 0 {
			out = append(out, s)
		}
	}
	return out
}

// data returns the segments with payload one side transmitted.
func (w *wire) data(toServer bool) []wseg {
	var out []wseg
	for _, s := range w.segs {
		if s.toServer == toServer && s.payload > 0 {
			out = append(out, s)
		}
	}
	return out
}

// simnetOpts are the options of a plain test net: static neighbours, so no ARP on the wire.
func simnetOpts() simnet.Options { return simnet.Options{StaticARP: true} }

// times returns the send times of segments.
func times(segs []wseg) []int64 {
	out := make([]int64, len(segs))
	for i, s := range segs {
		out[i] = s.t
	}
	return out
}

// trace renders the wire's record for failure messages.
func (w *wire) trace() string {
	b := ""
	for _, s := range w.segs {
		b += s.String()
		if s.dropped {
			b += " (dropped)"
		}
		b += "\n"
	}
	return b
}

// pump runs the simnet a virtual millisecond at a time until done is closed (some other
// goroutine's call returned), giving that goroutine the processor between steps. It fails
// the test after limit of virtual time.
func pump(t *testing.T, n *simnet.Net, done <-chan struct{}, limit time.Duration) {
	t.Helper()
	end := n.Now() + int64(limit)
	for {
		select {
		case <-done:
			return
		default:
		}
		require.Less(t, n.Now(), end, "still not done after %v of virtual time", limit)
		n.RunFor(time.Millisecond)
		runtime.Gosched()
	}
}

// settleUntil polls the stacks at the current virtual time until cond holds (another
// goroutine is about to do what cond waits for), without moving the clock.
func settleUntil(t *testing.T, n *simnet.Net, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		require.Less(t, i, 1_000_000, "the condition never held")
		n.Settle()
		runtime.Gosched()
	}
}

// clientRow returns the client's socket-table row for the pair's connection.
func (p *pairNet) clientRow(t *testing.T) (tcp.SocketRow, bool) {
	t.Helper()
	r, ok := clientTable(t, p.n).byPort[p.cport]
	return r, ok
}

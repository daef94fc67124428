package tcp_test

// Fixtures for the acceptance scenarios of spec §9 (scenarios_test.go): a tap on the
// in-memory pair that drops, delays, records or rewrites frames and lets the test inject
// crafted segments; the seed's experiment (seed 002 §1.4-1.6) as internal/seedexp drives
// it; and small readers for the capture and the socket tables.

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/seedexp"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// seedPort is the port the seed's server listens on.
const seedPort = seedexp.Port

var (
	seedAP  = netip.AddrPortFrom(simnet.ServerAddr.Addr(), seedPort)
	seedMsg = []byte(seedexp.Message) // what the seed's client sends: 13 bytes
)

// profileCase names a profile for table-driven tests.
type profileCase struct {
	name    string
	profile tcp.Profile
}

var bothProfiles = []profileCase{{"linux", tcp.ProfileLinux}, {"linux-3.12", tcp.ProfileLinux312}}

// at converts seconds of virtual time to nanoseconds.
func at(s float64) int64 { return int64(s * float64(time.Second)) }

// ats converts a schedule in seconds to nanoseconds, offset by base.
func ats(base int64, s ...float64) []int64 {
	out := make([]int64, len(s))
	for i, v := range s {
		out[i] = base + at(v)
	}
	return out
}

// nanos returns the exact send times of segments.
func nanos(segs []seg) []int64 {
	out := make([]int64, len(segs))
	for i, s := range segs {
		out[i] = s.t
	}
	return out
}

// scenarioNet is a Net with static neighbours (no ARP in the capture) and the profile on
// both stacks unless the settings say otherwise.
func scenarioNet(t *testing.T, shards int, server, client tcp.Settings) *simnet.Net {
	t.Helper()
	return newNet(t, simnet.Options{StaticARP: true, Shards: shards, ServerTCP: server, ClientTCP: client})
}

// listenSeed listens on the seed's port with a backlog.
func listenSeed(t *testing.T, n *simnet.Net, backlog int) *tcp.Listener {
	t.Helper()
	l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: backlog})
	require.NoError(t, err)
	return l
}

// dialSeed starts a non-blocking connect to the seed's server.
func dialSeed(t *testing.T, n *simnet.Net) *tcp.Conn {
	t.Helper()
	c, err := n.Client.DialAsync(seedAP, tcp.DialOptions{})
	require.NoError(t, err)
	return c
}

// flowOf returns the segments of the flow whose client side uses port p, both directions.
func flowOf(segs []seg, p uint16) []seg {
	var out []seg
	for _, s := range segs {
		if (s.toServer && s.sport == p) || (!s.toServer && s.dport == p) {
			out = append(out, s)
		}
	}
	return out
}

// withPayload returns the segments in one direction that carry data.
func withPayload(segs []seg, toServer bool) []seg {
	var out []seg
	for _, s := range segs {
		if s.toServer == toServer && s.payload > 0 {
			out = append(out, s)
		}
	}
	return out
}

// dir returns the segments in one direction.
func dir(segs []seg, toServer bool) []seg {
	var out []seg
	for _, s := range segs {
		if s.toServer == toServer {
			out = append(out, s)
		}
	}
	return out
}

// port returns the local port a connection picked (known once its shard has run).
func port(t *testing.T, c *tcp.Conn) uint16 {
	t.Helper()
	p := c.LocalAddrPort().Port()
	require.NotZero(t, p, "the connection has not picked its port yet")
	return p
}

// tables is a stack's socket table split the way the scenarios look at it.
type tables struct {
	listeners []tcp.SocketRow
	byPort    map[uint16]tcp.SocketRow // flows by the client-side port
	all       []tcp.SocketRow
}

// serverTable reads the server's table; flows are keyed by the peer's (the client's) port.
func serverTable(t *testing.T, n *simnet.Net) tables {
	t.Helper()
	return splitRows(t, n.Server.Sockets(), func(r tcp.SocketRow) uint16 { return r.Peer.Port() })
}

// clientTable reads the client's table; flows are keyed by their local port.
func clientTable(t *testing.T, n *simnet.Net) tables {
	t.Helper()
	return splitRows(t, n.Client.Sockets(), func(r tcp.SocketRow) uint16 { return r.Local.Port() })
}

func splitRows(t *testing.T, rows []tcp.SocketRow, key func(tcp.SocketRow) uint16) tables {
	t.Helper()
	tb := tables{byPort: map[uint16]tcp.SocketRow{}, all: rows}
	for _, r := range rows {
		if r.State == tcp.StateListen {
			tb.listeners = append(tb.listeners, r)
			continue
		}
		_, dup := tb.byPort[key(r)]
		require.False(t, dup, "two rows for port %d: %+v", key(r), rows)
		tb.byPort[key(r)] = r
	}
	return tb
}

// requireRow checks a flow's state and queues in a socket table.
func requireRow(t *testing.T, tb tables, p uint16, st tcp.State, recvQ, sendQ int) {
	t.Helper()
	r, ok := tb.byPort[p]
	require.True(t, ok, "no row for port %d in %+v", p, tb.all)
	require.Equal(t, st, r.State, "port %d: %+v", p, r)
	require.Equal(t, recvQ, r.RecvQ, "Recv-Q of port %d: %+v", p, r)
	require.Equal(t, sendQ, r.SendQ, "Send-Q of port %d: %+v", p, r)
}

// ---- the tap: what the pair does with each frame ----

// verdict decides the fate of one TCP frame crossing the pair.
type verdict func(t header.TCP, frame []byte) dpdkshim.Action

var (
	pass = dpdkshim.Action{}
	drop = dpdkshim.Action{Kind: dpdkshim.Drop}
)

// tap owns both ports' hooks. A frame toward the server goes through toServer, one toward
// the client through toClient (nil: pass). Frames the test injects are never touched.
// Hooks run on the transmitting goroutine, which in a simnet is the test's own.
type tap struct {
	n                  *simnet.Net
	toServer, toClient verdict
	injecting          bool
}

func newTap(n *simnet.Net) *tap {
	tp := &tap{n: n}
	n.PortC.SetHook(func(_ int, frame []byte) dpdkshim.Action { return tp.judge(tp.toServer, frame) })
	n.PortS.SetHook(func(_ int, frame []byte) dpdkshim.Action { return tp.judge(tp.toClient, frame) })
	return tp
}

func (tp *tap) judge(v verdict, frame []byte) dpdkshim.Action {
	if v == nil || tp.injecting {
		return pass
	}
	t, ok := simnet.TCPOf(frame)
	if !ok {
		return pass
	}
	return v(t, frame)
}

// nonSYN is true for every segment but a bare SYN: the part of a handshake a "silent"
// client never lets through once its SYN has gone.
func nonSYN(t header.TCP) bool { return t.Flags() != header.TCPFlagSYN }

// recorder keeps, with its send time, every segment a silencing verdict swallowed (the
// capture only sees delivered frames).
type recorder struct {
	n    *simnet.Net
	segs []seg
}

// swallow returns a verdict that records and drops every frame.
func (r *recorder) swallow() verdict {
	return func(t header.TCP, _ []byte) dpdkshim.Action {
		s := seg{t: r.n.Now(), toServer: true, sport: t.SrcPort(), dport: t.DstPort(), flags: t.Flags(),
			seq: t.Seq(), ack: t.Ack(), win: t.Window(), payload: len(t.Payload())}
		_ = header.ParseTCPOptions(t.Options(), &s.opts)
		r.segs = append(r.segs, s)
		return drop
	}
}

// clampMSS rewrites the MSS option of a SYN in place, as an MSS-clamping middlebox does,
// and fixes the checksum. It reports whether the frame had an MSS option.
func clampMSS(frame []byte, mss uint16) bool {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		return false
	}
	ip, err := header.ParseIPv4(eth.Payload())
	if err != nil {
		return false
	}
	t, err := header.ParseTCP(ip.Payload())
	if err != nil {
		return false
	}
	o := t.Options()
	for i := 0; i < len(o); {
		switch kind := o[i]; {
		case kind == 0:
			return false
		case kind == 1:
			i++
			continue
		case i+1 >= len(o) || o[i+1] < 2:
			return false
		case kind == 2 && o[i+1] == 4 && i+4 <= len(o):
			binary.BigEndian.PutUint16(o[i+2:], mss)
			t.SetChecksumIPv4(ip.Src(), ip.Dst())
			return true
		}
		i += int(o[i+1])
	}
	return false
}

// crafted is a segment the test sends as if from the client's address.
type crafted struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	win          uint16
	opts         *header.TCPOptions
	payload      []byte
}

// inject sends a crafted segment from the client's port to the server (Ethernet from
// PortC's MAC to PortS's, IPv4 198.18.0.2 -> 198.18.0.1, a valid TCP checksum) and lets
// the stacks process it at the current virtual time.
func (tp *tap) inject(t *testing.T, c crafted) {
	t.Helper()
	n := tp.n
	var ob [header.MaxTCPOptionsLen]byte
	ol := 0
	if c.opts != nil {
		ol = header.EncodeTCPOptions(ob[:], c.opts)
	}
	seg := make([]byte, header.TCPMinLen+ol+len(c.payload))
	hl := header.EncodeTCP(seg, &header.TCPFields{SrcPort: c.sport, DstPort: c.dport, Seq: c.seq, Ack: c.ack,
		Flags: c.flags, Window: c.win}, ob[:ol])
	copy(seg[hl:], c.payload)
	src, dst := simnet.ClientAddr.Addr().As4(), simnet.ServerAddr.Addr().As4()
	header.TCP(seg).SetChecksumIPv4(src, dst)
	frame := make([]byte, header.EthernetLen+header.IPv4MinLen+len(seg))
	header.EncodeEthernet(frame, n.PortS.MAC(), n.PortC.MAC(), header.EtherTypeIPv4)
	header.EncodeIPv4(frame[header.EthernetLen:], &header.IPv4Fields{TotalLen: uint16(header.IPv4MinLen + len(seg)),
		Flags: header.IPv4FlagDontFragment, TTL: 64, Protocol: header.ProtoTCP, Src: src, Dst: dst})
	copy(frame[header.EthernetLen+header.IPv4MinLen:], seg)
	pkt := n.PortC.Pool(0).Get()
	require.NotNil(t, pkt)
	require.True(t, pkt.SetData(frame))
	tp.injecting = true
	sent := n.PortC.TxBurst(0, []*dpdkshim.Packet{pkt})
	tp.injecting = false
	require.Equal(t, 1, sent)
	n.Settle()
}

// ---- the seed's client and server ----

// seedRun is seed 002's experiment (§1.4-1.6, appendices 1 and 2) as internal/seedexp
// drives it, on the same code path as the backlog lab: clients that connect, sleep 2 s,
// send 13 bytes and wait for the reply, and a server that either never accepts or accepts
// and replies 1 s after each message.
type seedRun struct {
	t *testing.T
	n *simnet.Net
	d *seedexp.Driver
}

// newSeedRun makes clients that start at the given times (seconds) against a server that
// never accepts or, with accept, accepts and replies.
func newSeedRun(t *testing.T, n *simnet.Net, l *tcp.Listener, accept bool, starts ...float64) *seedRun {
	cfg := seedexp.Config{Accept: accept}
	for _, s := range starts {
		cfg.Starts = append(cfg.Starts, time.Duration(at(s)))
	}
	return &seedRun{t: t, n: n, d: seedexp.OnStacks(cfg, n, n.Client, l)}
}

// run plays the scenario up to the absolute virtual time end.
func (r *seedRun) run(end int64) { r.d.RunUntil(time.Duration(end)) }

// client returns client i's record (0-based).
func (r *seedRun) client(i int) seedexp.ClientResult { return r.d.Clients()[i] }

// start returns when client i starts, in virtual nanoseconds.
func (r *seedRun) start(i int) int64 { return int64(r.client(i).Start) }

// conn returns client i's connection.
func (r *seedRun) conn(i int) *tcp.Conn {
	c, ok := r.d.Conn(i).(*seedexp.TCPConn)
	require.True(r.t, ok, "client %d has no connection", i+1)
	return c.Conn
}

// size is the number of clients.
func (r *seedRun) size() int { return len(r.d.Clients()) }

// ports returns the clients' local ports in start order.
func (r *seedRun) ports() []uint16 {
	out := make([]uint16, r.size())
	for i, c := range r.d.Clients() {
		require.NotZero(r.t, c.LocalPort, "client %d has not picked its port yet", i+1)
		out[i] = c.LocalPort
	}
	return out
}

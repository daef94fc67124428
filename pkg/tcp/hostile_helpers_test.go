package tcp_test

// Fixtures for the hostile-peer regression tests (hostile_test.go, options_test.go): a
// peer the test writes by hand, segment by segment, with raw option bytes when it wants
// malformed ones, in either direction; and a recorder of what a stack sends it.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// rawPeer is a hand-written client of the server stack: the test injects its segments
// from the client's address, and the tap records and swallows everything the server sends
// to it, so the client stack (which has no socket for it) never answers in its place.
type rawPeer struct {
	t   *testing.T
	n   *simnet.Net
	tp  *tap
	got []seg // what the server sent, in order, with the virtual send time
}

// newRawPeer installs the swallowing tap toward the client.
func newRawPeer(t *testing.T, n *simnet.Net) *rawPeer {
	p := &rawPeer{t: t, n: n, tp: newTap(n)}
	p.tp.toClient = func(th header.TCP, _ []byte) dpdkshim.Action {
		p.got = append(p.got, decodeSeg(n.Now(), false, th))
		return drop
	}
	return p
}

// decodeSeg decodes a TCP segment as the stack would read it (options tolerantly).
func decodeSeg(at int64, toServer bool, th header.TCP) seg {
	s := seg{t: at, toServer: toServer, sport: th.SrcPort(), dport: th.DstPort(), flags: th.Flags(),
		seq: th.Seq(), ack: th.Ack(), win: th.Window(), payload: len(th.Payload())}
	_ = header.ParseTCPOptionsTolerant(th.Options(), &s.opts)
	return s
}

// sent returns what the server sent since mark (an earlier len(p.got)).
func (p *rawPeer) since(mark int) []seg { return append([]seg(nil), p.got[mark:]...) }

// send injects c toward the server with raw option bytes (nil: c.opts encoded) and lets
// the stacks run at the current virtual time.
func (p *rawPeer) send(c crafted, raw []byte) { injectRaw(p.t, p.tp, true, c, raw) }

// injectRaw sends a crafted segment toward the server (toServer) or toward the client,
// from the other side's address, with the option bytes raw (padded to a word with EOL) or,
// when raw is nil, c.opts encoded. The tap never sees injected frames.
func injectRaw(t *testing.T, tp *tap, toServer bool, c crafted, raw []byte) {
	t.Helper()
	n := tp.n
	var ob [header.MaxTCPOptionsLen]byte
	opts := raw
	if raw == nil && c.opts != nil {
		opts = ob[:header.EncodeTCPOptions(ob[:], c.opts)]
	}
	require.LessOrEqual(t, len(opts), header.MaxTCPOptionsLen)
	b := make([]byte, header.TCPMinLen+header.MaxTCPOptionsLen+len(c.payload))
	hl := header.EncodeTCP(b, &header.TCPFields{SrcPort: c.sport, DstPort: c.dport, Seq: c.seq, Ack: c.ack,
		Flags: c.flags, Window: c.win}, opts)
	seg := b[:hl+copy(b[hl:], c.payload)]
	src, dst := simnet.ClientAddr.Addr().As4(), simnet.ServerAddr.Addr().As4()
	from, dstMAC, srcMAC := n.PortC, n.PortS.MAC(), n.PortC.MAC()
	if !toServer {
		src, dst = dst, src
		from, dstMAC, srcMAC = n.PortS, n.PortC.MAC(), n.PortS.MAC()
	}
	header.TCP(seg).SetChecksumIPv4(src, dst)
	frame := make([]byte, header.EthernetLen+header.IPv4MinLen+len(seg))
	header.EncodeEthernet(frame, dstMAC, srcMAC, header.EtherTypeIPv4)
	header.EncodeIPv4(frame[header.EthernetLen:], &header.IPv4Fields{TotalLen: uint16(header.IPv4MinLen + len(seg)),
		Flags: header.IPv4FlagDontFragment, TTL: 64, Protocol: header.ProtoTCP, Src: src, Dst: dst})
	copy(frame[header.EthernetLen+header.IPv4MinLen:], seg)
	pkt := from.Pool(0).Get()
	require.NotNil(t, pkt)
	require.True(t, pkt.SetData(frame))
	tp.injecting = true
	sent := from.TxBurst(0, []*dpdkshim.Packet{pkt})
	tp.injecting = false
	require.Equal(t, 1, sent)
	n.Settle()
}

// peerConn is the peer's side of a connection it opened by hand.
type peerConn struct {
	p      *rawPeer
	sport  uint16
	seq    uint32 // the peer's next sequence number (the server's rcv_nxt)
	ack    uint32 // the server's next sequence number as the peer acknowledges it
	srv    *tcp.Conn
	synack seg // the server's SYN-ACK
}

// connect opens a connection to the seed listener from sport: SYN (with raw options, nil
// for none), the server's SYN-ACK, the final ACK; it returns the peer's view and the
// accepted child.
func (p *rawPeer) connect(l *tcp.Listener, sport uint16, iss uint32, synOpts []byte) *peerConn {
	t := p.t
	t.Helper()
	mark := len(p.got)
	p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, synOpts)
	require.Len(t, p.got, mark+1, "SYN-ACK")
	sa := p.got[mark]
	require.Equal(t, fSYNACK, sa.flags)
	c := &peerConn{p: p, sport: sport, seq: iss + 1, ack: sa.seq + 1, synack: sa}
	p.send(crafted{sport: sport, dport: seedPort, seq: c.seq, ack: c.ack, flags: fACK, win: 65535}, nil)
	s, err := l.TryAccept()
	require.NoError(t, err)
	c.srv = s
	return c
}

// inject sends one segment on the connection with the given flags, numbers and payload.
func (c *peerConn) inject(flags uint8, seq, ack uint32, payload []byte) {
	c.p.send(crafted{sport: c.sport, dport: seedPort, seq: seq, ack: ack, flags: flags, win: 65535, payload: payload}, nil)
}

// flood is how many bogus segments a flooding test sends.
const flood = 1000

// requireAck checks that s is a pure ACK carrying the server's numbers.
func requireAck(t *testing.T, s seg, seq, ack uint32, msg string) {
	t.Helper()
	require.Equal(t, fACK, s.flags, "%s: %v", msg, s)
	require.Equal(t, seq, s.seq, "%s: %v", msg, s)
	require.Equal(t, ack, s.ack, "%s: %v", msg, s)
	require.Zero(t, s.payload, "%s: %v", msg, s)
}

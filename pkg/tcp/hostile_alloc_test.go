package tcp_test

// The answers to hostile segments stay off the heap, like the rest of the packet path.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// frameToServer builds the frame of a crafted segment from the client's address.
func frameToServer(n *simnet.Net, c crafted) []byte {
	b := make([]byte, header.TCPMinLen+len(c.payload))
	hl := header.EncodeTCP(b, &header.TCPFields{SrcPort: c.sport, DstPort: c.dport, Seq: c.seq, Ack: c.ack,
		Flags: c.flags, Window: c.win}, nil)
	copy(b[hl:], c.payload)
	src, dst := simnet.ClientAddr.Addr().As4(), simnet.ServerAddr.Addr().As4()
	header.TCP(b).SetChecksumIPv4(src, dst)
	frame := make([]byte, header.EthernetLen+header.IPv4MinLen+len(b))
	header.EncodeEthernet(frame, n.PortS.MAC(), n.PortC.MAC(), header.EtherTypeIPv4)
	header.EncodeIPv4(frame[header.EthernetLen:], &header.IPv4Fields{TotalLen: uint16(header.IPv4MinLen + len(b)),
		Flags: header.IPv4FlagDontFragment, TTL: 64, Protocol: header.ProtoTCP, Src: src, Dst: dst})
	copy(frame[header.EthernetLen+header.IPv4MinLen:], b)
	return frame
}

// Answering hostile segments allocates nothing: the duplicate ACK for an out-of-window
// segment, the challenge ACKs for a SYN, an in-window RST and a bad SEG.ACK (through the
// stack-wide budget), and the ACKs of a request and of a TIME-WAIT entry. The per-socket
// limit is off so that every one of them is answered each round.
func TestHostileSegments_AllocateNothing(t *testing.T) {
	n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true,
		ServerTCP: tcp.Settings{TCPInvalidRatelimit: -1, TCPChallengeAckLimit: 1 << 30}})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	c := p.connect(l, 45000, 7000, nil)
	tw := p.enterTimeWait(l, 45001)
	p.send(crafted{sport: 45002, dport: seedPort, seq: 9000, flags: fSYN, win: 65535}, nil)
	req := p.got[len(p.got)-1]
	p.tp.toClient = func(header.TCP, []byte) dpdkshim.Action { return drop }
	frames := [][]byte{
		frameToServer(n, crafted{sport: c.sport, dport: seedPort, seq: c.seq + 100000, ack: c.ack, flags: fACK, win: 65535}),
		frameToServer(n, crafted{sport: c.sport, dport: seedPort, seq: c.seq, flags: fSYN, win: 65535}),
		frameToServer(n, crafted{sport: c.sport, dport: seedPort, seq: c.seq + 10, flags: fRST, win: 65535}),
		frameToServer(n, crafted{sport: c.sport, dport: seedPort, seq: c.seq, ack: c.ack + 5, flags: fACK, win: 65535, payload: []byte("x")}),
		frameToServer(n, crafted{sport: tw.sport, dport: seedPort, seq: tw.seq + 1000, ack: tw.ack, flags: fACK, win: 65535}),
		frameToServer(n, crafted{sport: 45002, dport: seedPort, seq: 9000 + 1 + 100000, ack: req.seq + 1, flags: fACK, win: 65535}),
	}
	pkts := make([]*dpdkshim.Packet, 1)
	rounds := 0
	round := func() {
		for _, f := range frames {
			pkt := n.PortC.Pool(0).Get()
			if pkt == nil || !pkt.SetData(f) {
				panic("no packet for the frame")
			}
			pkts[0] = pkt
			n.PortC.TxBurst(0, pkts)
			n.Settle()
		}
		rounds++
	}
	for range 100 {
		round()
	}
	before, rounds := counters(n.Server), 0
	require.Zero(t, testing.AllocsPerRun(200, round))
	after := counters(n.Server)
	require.Equal(t, uint64(rounds*len(frames)), after[stats.TcpOutSegs]-before[stats.TcpOutSegs],
		"every hostile segment was answered")
	require.Equal(t, tcp.StateEstablished, c.srv.State())
}

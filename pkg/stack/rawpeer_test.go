package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
)

// rawPeer is a manual server stack on a virtual clock and the raw other end of its pair:
// tests write frames into it byte by byte and read back every frame the stack sends.
type rawPeer struct {
	t     *testing.T
	vc    *clock.Virtual
	s     *stack.Stack
	port  *dpdkshim.MemPort // the peer's end
	sport *dpdkshim.MemPort // the stack's end
	mac   header.MAC        // the peer's MAC
	smac  header.MAC        // the stack's MAC
	rx    []*dpdkshim.Packet
}

var (
	peerAddr = simnet.ClientAddr.Addr() // 198.18.0.2
	gwAddr   = netip.MustParseAddr("198.18.0.254")
)

func newRawPeer(t *testing.T, tweak func(c *stack.Config)) *rawPeer {
	return newRawPeerPool(t, dpdkshim.PoolConfig{Size: 1024}, tweak)
}

func newRawPeerPool(t *testing.T, pool dpdkshim.PoolConfig, tweak func(c *stack.Config)) *rawPeer {
	t.Helper()
	vc := clock.NewVirtual(0)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, Pool: pool})
	cfg := stack.Config{Port: ps, Addr: simnet.ServerAddr, Clock: vc, Manual: true, Seed: 1, Shards: 1}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := stack.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return &rawPeer{t: t, vc: vc, s: s, port: pc, sport: ps, mac: pc.MAC(), smac: ps.MAC(), rx: make([]*dpdkshim.Packet, 64)}
}

func (r *rawPeer) serverPool() *dpdkshim.Pool { return r.sport.Pool(0) }

// sendNoSettle transmits a frame to the stack without running it.
func (r *rawPeer) sendNoSettle(frame []byte) {
	r.t.Helper()
	p := r.port.Pool(0).Get()
	require.NotNil(r.t, p, "peer pool empty")
	require.True(r.t, p.SetData(frame))
	if r.port.TxBurst(0, []*dpdkshim.Packet{p}) != 1 {
		p.Free()
	}
}

// send transmits a frame to the stack and lets it process it.
func (r *rawPeer) send(frame []byte) {
	r.t.Helper()
	p := r.port.Pool(0).Get()
	require.NotNil(r.t, p, "peer pool empty")
	require.True(r.t, p.SetData(frame))
	require.Equal(r.t, 1, r.port.TxBurst(0, []*dpdkshim.Packet{p}))
	r.settle()
}

func (r *rawPeer) settle() {
	for i := 0; i < 1000 && r.s.Poll() != 0; i++ {
	}
}

// runFor advances the clock to each of the stack's timers in turn, up to d from now.
func (r *rawPeer) runFor(d time.Duration) {
	end := r.vc.Now() + int64(d)
	r.settle()
	for {
		t, ok := r.s.NextDeadline()
		if !ok || t > end {
			break
		}
		if t > r.vc.Now() {
			r.vc.Set(t)
		}
		r.settle()
	}
	r.vc.Set(end)
	r.settle()
}

// recv returns copies of the frames the stack has sent since the last call.
func (r *rawPeer) recv() [][]byte {
	var out [][]byte
	for {
		n := r.port.RxBurst(0, r.rx)
		if n == 0 {
			return out
		}
		for _, p := range r.rx[:n] {
			out = append(out, append([]byte(nil), p.Data()...))
			p.Free()
		}
	}
}

var synOpts = header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true}

// tcpFrame builds an Ethernet/IPv4/TCP frame; ipOpts (a multiple of 4 bytes) go into the
// IPv4 header.
func tcpFrame(dmac, smac header.MAC, src, dst netip.Addr, sport uint16, flags uint8, ipOpts []byte) []byte {
	return tcpSegFrame(dmac, smac, src, dst, sport, 1000, 0, flags, ipOpts)
}

func tcpSegFrame(dmac, smac header.MAC, src, dst netip.Addr, sport uint16, seq, ack uint32, flags uint8, ipOpts []byte) []byte {
	o := &synOpts
	if flags&header.TCPFlagSYN == 0 {
		o = nil
	}
	tl := header.TCPMinLen
	if o != nil {
		tl += o.EncodedLen()
	}
	ihl := header.IPv4MinLen + len(ipOpts)
	b := make([]byte, header.EthernetLen+ihl+tl)
	header.EncodeEthernet(b, dmac, smac, header.EtherTypeIPv4)
	ipb := b[header.EthernetLen:]
	header.PutIPv4Header(ipb, uint16(ihl+tl), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src.As4(), dst.As4())
	if len(ipOpts) > 0 {
		ipb[0] = 4<<4 | byte(ihl/4)
		copy(ipb[header.IPv4MinLen:], ipOpts)
		header.IPv4(ipb).SetChecksum()
	}
	t := ipb[ihl:]
	hl, sum := header.PutTCPHeader(t, sport, 80, seq, ack, flags, 64240, o)
	header.FinishTCPChecksumIPv4(header.TCP(t), hl, sum, src.As4(), dst.As4())
	return b
}

func arpFrame(dmac, smac header.MAC, op uint16, sha header.MAC, spa netip.Addr, tha header.MAC, tpa netip.Addr) []byte {
	b := make([]byte, header.EthernetLen+header.ARPLen)
	header.EncodeEthernet(b, dmac, smac, header.EtherTypeARP)
	header.EncodeARP(b[header.EthernetLen:], op, sha, spa.As4(), tha, tpa.As4())
	return b
}

// synAcks counts the SYN-ACKs among frames.
func synAcks(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		if seg, ok := simnet.TCPOf(f); ok && seg.Flags()&(header.TCPFlagSYN|header.TCPFlagACK) == header.TCPFlagSYN|header.TCPFlagACK {
			n++
		}
	}
	return n
}

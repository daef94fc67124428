package stack_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// peerSeg builds a TCP segment from the raw peer to the stack.
func peerSeg(r *rawPeer, sport, dport uint16, seq, ack uint32, flags uint8, wnd uint16, o *header.TCPOptions, payload []byte) []byte {
	src, dst := peerAddr.As4(), simnet.ServerAddr.Addr().As4()
	tl := header.TCPMinLen + len(payload)
	if o != nil {
		tl += o.EncodedLen()
	}
	b := make([]byte, header.EthernetLen+header.IPv4MinLen+tl)
	header.EncodeEthernet(b, r.smac, r.mac, header.EtherTypeIPv4)
	header.PutIPv4Header(b[header.EthernetLen:], uint16(header.IPv4MinLen+tl), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	t := b[header.EthernetLen+header.IPv4MinLen:]
	hl, sum := header.PutTCPHeader(t, sport, dport, seq, ack, flags, wnd, o)
	copy(t[hl:], payload)
	header.FinishTCPChecksumIPv4(header.TCP(t), hl, sum, src, dst)
	return b
}

// quoteOf is what a router quotes of a frame the stack sent: its IP header and the first
// n bytes after it.
func quoteOf(frame []byte, n int) []byte {
	ip := frame[header.EthernetLen:]
	hl := int(ip[0]&0xf) * 4
	return append([]byte(nil), ip[:min(len(ip), hl+n)]...)
}

// routerErr is an ICMP error about a frame the stack sent, from a router (the gateway's address).
func routerErr(r *rawPeer, typ, code uint8, rest uint32, frame []byte) []byte {
	return icmpFrame(r.smac, r.mac, gwAddr, simnet.ServerAddr.Addr(), typ, code, rest, quoteOf(frame, 8), false)
}

// tcpSegs returns the TCP segments among frames, with the frames.
func tcpSegs(frames [][]byte) (segs []header.TCP, raw [][]byte) {
	for _, f := range frames {
		if t, ok := simnet.TCPOf(f); ok {
			segs = append(segs, t)
			raw = append(raw, f)
		}
	}
	return
}

// ipOf is a frame's IPv4 header.
func ipOf(t *testing.T, frame []byte) header.IPv4 {
	t.Helper()
	ip, err := header.ParseIPv4(frame[header.EthernetLen:])
	require.NoError(t, err)
	return ip
}

type flow struct {
	r       *rawPeer
	h       tcp.Handle
	sport   uint16
	peerSeq uint32 // the peer's next sequence number
	iss     uint32 // the stack's ISN
}

var peerSynOpts = header.TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true}

// establish opens a connection from the raw peer to the stack's listener on :80 and
// accepts it (no timestamps: the send MSS is the MSS).
func establish(t *testing.T, r *rawPeer, l *tcp.Listener, sport uint16) *flow {
	t.Helper()
	r.send(peerSeg(r, sport, 80, 1000, 0, header.TCPFlagSYN, 65535, &peerSynOpts, nil))
	segs, _ := tcpSegs(r.recv())
	require.Len(t, segs, 1)
	sa := segs[0]
	require.Equal(t, header.TCPFlagSYN|header.TCPFlagACK, sa.Flags())
	r.send(peerSeg(r, sport, 80, 1001, sa.Seq()+1, header.TCPFlagACK, 65535, nil, nil))
	h, err := l.TryAcceptHandle()
	require.NoError(t, err)
	return &flow{r: r, h: h, sport: sport, peerSeq: 1001, iss: sa.Seq()}
}

// ack acknowledges up to seq from the peer.
func (f *flow) ack(seq uint32) {
	f.r.send(peerSeg(f.r, f.sport, 80, f.peerSeq, seq, header.TCPFlagACK, 65535, nil, nil))
}

func listenPeer(t *testing.T, tweak func(c *stack.Config)) (*rawPeer, *tcp.Listener) {
	r := icmpPeer(t, tweak)
	l, err := r.s.Listen(":80", 64)
	require.NoError(t, err)
	return r, l
}

func counter(r *rawPeer, id stats.ID) uint64 { c := r.s.Counters(); return c[id] }

// In SYN-SENT every ICMP error that names the SYN is hard, as Linux's tcp_v4_err makes it:
// the Dial fails with the errno of icmp_err_convert inside a *net.OpError, as Go's net.Dial
// would report it.
func TestICMPError_SynSentIsHard(t *testing.T) {
	cases := []struct {
		typ, code uint8
		errno     syscall.Errno
	}{
		{header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, syscall.EHOSTUNREACH},
		{header.ICMPv4DestUnreach, header.ICMPv4NetUnreach, syscall.ENETUNREACH},
		{header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, syscall.ECONNREFUSED},
		{header.ICMPv4DestUnreach, header.ICMPv4ProtoUnreach, syscall.ENOPROTOOPT},
		{header.ICMPv4DestUnreach, 13, syscall.EHOSTUNREACH}, // administratively prohibited
		{header.ICMPv4TimeExceeded, 0, syscall.EHOSTUNREACH},
		{header.ICMPv4ParamProblem, 0, syscall.EPROTO},
	}
	for _, tc := range cases {
		r := icmpPeer(t, nil)
		errc := make(chan error, 1)
		go func() {
			_, err := r.s.Dial(context.Background(), "198.18.0.2:443")
			errc <- err
		}()
		var syn []byte
		for i := 0; i < 10000 && syn == nil; i++ {
			r.settle()
			if _, raw := tcpSegs(r.recv()); len(raw) > 0 {
				syn = raw[0]
			}
			time.Sleep(time.Millisecond) // the dialing goroutine posts its work
		}
		require.NotNil(t, syn)
		r.send(routerErr(r, tc.typ, tc.code, 0, syn))
		err := <-errc
		var op *net.OpError
		require.ErrorAs(t, err, &op, "%d/%d", tc.typ, tc.code)
		require.Equal(t, "dial", op.Op)
		require.ErrorIs(t, err, tc.errno, "%d/%d", tc.typ, tc.code)
		require.Equal(t, uint64(1), counter(r, stats.TcpAttemptFails))
		require.Empty(t, r.s.Sockets())
	}
}

// A quote whose sequence number is not in [snd_una, snd_nxt] is TcpExtOutOfWindowIcmps and
// does nothing; source quench is checked and ignored.
func TestICMPError_SynSentOutOfWindowAndQuench(t *testing.T) {
	r := icmpPeer(t, nil)
	h, err := r.s.DialAsyncHandle(netip.MustParseAddrPort("198.18.0.2:443"), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	require.Len(t, raw, 1)
	bad := append([]byte(nil), raw[0]...)
	tcpb := bad[header.EthernetLen+header.IPv4MinLen:]
	tcpb[4]++ // the quoted sequence number, off by 2^24
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, bad))
	r.send(routerErr(r, header.ICMPv4SourceQuench, 0, 0, raw[0]))
	require.Equal(t, uint64(1), counter(r, stats.TcpExtOutOfWindowIcmps))
	require.Equal(t, tcp.StateSynSent, h.State())
	require.NoError(t, h.Err())
}

// Once established, every error is soft (no IP_RECVERR), in ESTABLISHED as in CLOSE-WAIT:
// the connection goes on, and if it later times out the error it reports is the ICMP
// one, not ETIMEDOUT (tcp_write_err).
func TestICMPError_EstablishedIsSoft(t *testing.T) {
	cases := []struct {
		typ, code uint8
		errno     syscall.Errno
	}{
		{header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, syscall.EHOSTUNREACH},
		{header.ICMPv4DestUnreach, header.ICMPv4NetUnreach, syscall.ENETUNREACH},
		{header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, syscall.ECONNREFUSED},
		{header.ICMPv4DestUnreach, header.ICMPv4ProtoUnreach, syscall.ENOPROTOOPT},
		{header.ICMPv4DestUnreach, 10, syscall.EHOSTUNREACH}, // host administratively prohibited
		{header.ICMPv4TimeExceeded, 0, syscall.EHOSTUNREACH},
		{header.ICMPv4ParamProblem, 0, syscall.EPROTO},
	}
	for _, closeWait := range []bool{false, true} {
		for _, tc := range cases {
			r, l := listenPeer(t, func(c *stack.Config) { c.TCP.TCPRetries2 = 3 })
			f := establish(t, r, l, 40000)
			state := tcp.StateEstablished
			if closeWait {
				r.send(peerSeg(r, 40000, 80, 1001, f.iss+1, header.TCPFlagACK|header.TCPFlagFIN, 65535, nil, nil))
				state = tcp.StateCloseWait
			}
			_, err := f.h.TryWrite(make([]byte, 1000))
			require.NoError(t, err)
			r.settle()
			_, raw := tcpSegs(r.recv())
			require.NotEmpty(t, raw)
			r.send(routerErr(r, tc.typ, tc.code, 0, raw[len(raw)-1]))
			require.Equal(t, state, f.h.State(), "%d/%d", tc.typ, tc.code)
			require.NoError(t, f.h.Err())
			r.runFor(200 * time.Second)
			require.Equal(t, tcp.StateClosed, f.h.State())
			require.ErrorIs(t, f.h.Err(), tc.errno, "%d/%d close-wait=%v", tc.typ, tc.code, closeWait)
		}
	}
}

// An established connection's quote out of its window changes nothing.
func TestICMPError_EstablishedOutOfWindow(t *testing.T) {
	r, l := listenPeer(t, func(c *stack.Config) { c.TCP.TCPRetries2 = 3 })
	f := establish(t, r, l, 40000)
	_, err := f.h.TryWrite(make([]byte, 100))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	f.ack(f.iss + 101) // snd_una moves past the segment
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0, raw[0]))
	require.Equal(t, uint64(1), counter(r, stats.TcpExtOutOfWindowIcmps))
	_, err = f.h.TryWrite(make([]byte, 100))
	require.NoError(t, err)
	r.runFor(200 * time.Second)
	require.ErrorIs(t, f.h.Err(), syscall.ETIMEDOUT)
}

// A request (SYN-RECV) is dropped silently by the errors that abort it (tcp_req_err),
// when the quote is its SYN-ACK; any other sequence number is out of window; other
// errors leave it.
func TestICMPError_Request(t *testing.T) {
	cases := []struct {
		name      string
		typ, code uint8
		seqDelta  uint32
		dropped   bool
		oow       uint64
	}{
		{"host unreachable", header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, true, 0},
		{"time exceeded", header.ICMPv4TimeExceeded, 0, 0, true, 0},
		{"parameter problem", header.ICMPv4ParamProblem, 0, 0, true, 0},
		{"port unreachable", header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0, false, 0},
		{"frag needed", header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 0, false, 0},
		{"wrong seq", header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 1, false, 1},
	}
	for _, tc := range cases {
		r, _ := listenPeer(t, nil)
		r.send(peerSeg(r, 40000, 80, 1000, 0, header.TCPFlagSYN, 65535, &peerSynOpts, nil))
		_, raw := tcpSegs(r.recv())
		require.Len(t, raw, 1)
		q := append([]byte(nil), raw[0]...)
		seq := q[header.EthernetLen+header.IPv4MinLen+4:]
		v := uint32(seq[0])<<24 | uint32(seq[1])<<16 | uint32(seq[2])<<8 | uint32(seq[3]) + tc.seqDelta
		seq[0], seq[1], seq[2], seq[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		r.send(routerErr(r, tc.typ, tc.code, 1280, q))
		rows := len(r.s.Sockets())
		if tc.dropped {
			require.Equal(t, 1, rows, tc.name) // the listener alone
			require.Equal(t, uint64(1), counter(r, stats.TcpExtListenDrops), tc.name)
		} else {
			require.Equal(t, 2, rows, tc.name)
		}
		require.Equal(t, tc.oow, counter(r, stats.TcpExtOutOfWindowIcmps), tc.name)
		require.Zero(t, counter(r, stats.IcmpInErrors), tc.name)
	}
}

// A quote naming no flow of ours (a listener's port with no request, or nothing at all) is
// IcmpInErrors (tcp_v4_err's failed lookup); so is a quote of UDP; a quote of ICMP is dropped.
func TestICMPError_NotOurs(t *testing.T) {
	r, _ := listenPeer(t, nil)
	srv := simnet.ServerAddr.Addr()
	q := ipFrame(r.smac, r.mac, srv, peerAddr, header.ProtoTCP, make([]byte, 20))
	q[header.EthernetLen+header.IPv4MinLen+0], q[header.EthernetLen+header.IPv4MinLen+1] = 0, 80 // from our listening port
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, q))
	require.Equal(t, uint64(1), counter(r, stats.IcmpInErrors))
	u := ipFrame(r.smac, r.mac, srv, peerAddr, header.ProtoUDP, make([]byte, 8))
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0, u))
	require.Equal(t, uint64(2), counter(r, stats.IcmpInErrors))
	i := ipFrame(r.smac, r.mac, srv, peerAddr, header.ProtoICMP, icmpMsg(header.ICMPv4Echo, 0, 1, nil, false))
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, i))
	require.Equal(t, uint64(2), counter(r, stats.IcmpInErrors))
	require.Equal(t, uint64(3), counter(r, stats.IcmpInDestUnreachs))
	require.Empty(t, r.recv())
}

// nextTx runs the stack's timers until it sends TCP segments and returns them.
func nextTx(t *testing.T, r *rawPeer) [][]byte {
	t.Helper()
	for i := 0; i < 100; i++ {
		next, ok := r.s.NextDeadline()
		require.True(t, ok)
		r.vc.Set(max(next, r.vc.Now()))
		r.settle()
		if _, raw := tcpSegs(r.recv()); len(raw) > 0 {
			return raw
		}
	}
	t.Fatal("nothing sent")
	return nil
}

// RFC 6069: a host unreachable for the segment at snd_una while it is being retransmitted
// takes one RTO doubling back (tcp_ld_RTO_revert), and retransmits at once if that time
// has already passed.
func TestICMPError_RTORevert(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	_, err := f.h.TryWrite(make([]byte, 100))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	require.Len(t, raw, 1)
	var times []int64
	for counter(r, stats.TcpExtTCPTimeouts) < 3 {
		raw = nextTx(t, r)
		times = append(times, r.vc.Now())
	}
	k := len(times)
	interval := times[k-1] - times[k-2] // the last RTO; the next one is twice it
	sent := times[k-1]
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, raw[0]))
	r.vc.Set(sent + interval - 1)
	r.settle()
	require.Empty(t, r.recv(), "reverted to the last RTO, not yet due")
	r.vc.Set(sent + interval)
	r.settle()
	_, raw = tcpSegs(r.recv())
	require.Len(t, raw, 1, "retransmitted one RTO doubling early")
	require.Equal(t, uint64(4), counter(r, stats.TcpExtTCPTimeouts))

	// A second revert when the reverted time has already passed retransmits at once.
	r.vc.Set(r.vc.Now() + interval + 1)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4NetUnreach, 0, raw[0]))
	_, raw = tcpSegs(r.recv())
	require.Len(t, raw, 1)
	require.Equal(t, uint64(5), counter(r, stats.TcpExtTCPTimeouts))
	require.Equal(t, tcp.StateEstablished, f.h.State())
}

func TestICMPError_ErrorsIsNetError(t *testing.T) {
	var ne net.Error
	require.True(t, errors.As(error(tcp.ErrHostUnreachable), &ne))
	require.ErrorIs(t, tcp.ErrProtocol, syscall.EPROTO)
}

// pattern is n bytes that say where they are in the stream.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// drain acknowledges whatever the stack sends, in order, until it has sent all of want
// (the stream after the ISN), and checks every byte against it; it returns the largest
// payload seen, and fails on any segment larger than maxSeg.
func (f *flow) drain(t *testing.T, want []byte, maxSeg int) (largest int) {
	t.Helper()
	r := f.r
	base := f.iss + 1
	una := uint32(0)
	for i := 0; i < 10000 && int(una) < len(want); i++ {
		segs, _ := tcpSegs(r.recv())
		if len(segs) == 0 {
			next, ok := r.s.NextDeadline()
			require.True(t, ok)
			r.vc.Set(max(next, r.vc.Now()))
			r.settle()
			continue
		}
		for _, sg := range segs {
			p := sg.Payload()
			if len(p) == 0 || sg.DstPort() != f.sport {
				continue
			}
			require.LessOrEqual(t, len(p), maxSeg, "segment at %d", sg.Seq()-base)
			largest = max(largest, len(p))
			off := sg.Seq() - base
			require.Equal(t, want[off:int(off)+len(p)], p, "bytes at %d", off)
			if off <= una && off+uint32(len(p)) > una {
				una = off + uint32(len(p))
			}
		}
		f.ack(base + una)
	}
	require.Equal(t, len(want), int(una))
	return largest
}

func rowOf(r *rawPeer, sport uint16) tcp.SocketRow {
	for _, row := range r.s.Sockets() {
		if row.Peer.Port() == sport {
			return row
		}
	}
	return tcp.SocketRow{}
}

// Fragmentation needed (RFC 1191) for a segment in flight: the path MTU to the peer falls
// to the reported MTU, the connection's MSS with it, and every segment in flight larger
// than the new MSS is resent at once, cut to it: the scoreboard's segments of the old size
// are split so that the retransmissions and everything after fit the path. A new
// connection to the destination starts with the smaller MSS; after mtu_expires the path
// MTU and the MSS go back up.
func TestPMTU_FragNeededSplitsAndResends(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	require.Equal(t, 1460, rowOf(r, 40000).MSS)
	data := pattern(16 << 10)
	n, err := f.h.TryWrite(data)
	require.NoError(t, err)
	require.Equal(t, len(data), n)
	r.settle()
	segs, raw := tcpSegs(r.recv())
	require.Len(t, segs, 10, "the initial window")
	for _, sg := range segs {
		require.Len(t, sg.Payload(), 1460)
	}
	retrans := counter(r, stats.TcpRetransSegs)

	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1280, raw[3]))
	require.Equal(t, uint64(1), counter(r, stats.RtPMTUUpdates))
	require.Equal(t, uint64(1), counter(r, stats.TcpPMTUReductions))
	mtu, ok := r.s.TCP().PathMTU(peerAddr)
	require.True(t, ok)
	require.Equal(t, 1280, mtu)
	require.Equal(t, 1240, rowOf(r, 40000).MSS)
	// Resent at once, smaller: each 1460-byte segment was cut, as Linux's tcp_fragment
	// cuts it at the MSS, into 1240 and 220 bytes; a congestion window's worth go.
	segs, _ = tcpSegs(r.recv())
	require.Len(t, segs, 10)
	off := 0
	for i, sg := range segs {
		want := 1240
		if i%2 == 1 {
			want = 220
		}
		require.Len(t, sg.Payload(), want, "piece %d", i)
		require.Equal(t, f.iss+1+uint32(off), sg.Seq(), "piece %d", i)
		require.Equal(t, data[off:off+want], sg.Payload())
		off += want
	}
	require.Equal(t, retrans+10, counter(r, stats.TcpRetransSegs))
	// A second report of the same MTU changes nothing.
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1280, raw[3]))
	require.Equal(t, uint64(1), counter(r, stats.TcpPMTUReductions))
	require.Empty(t, r.recv())

	// The rest of the stream (the split pieces of the old segments and new data) arrives
	// whole, never in a segment above the new MSS.
	require.Equal(t, 1240, f.drain(t, data, 1240))

	// A new connection to the destination starts at the path's MSS.
	establish(t, r, l, 40001)
	require.Equal(t, 1240, rowOf(r, 40001).MSS)
	// A Dial advertises it in its SYN.
	_, err = r.s.DialAsyncHandle(netip.MustParseAddrPort("198.18.0.2:443"), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	segs, _ = tcpSegs(r.recv())
	require.Len(t, segs, 1)
	var o header.TCPOptions
	require.NoError(t, header.ParseTCPOptions(segs[0].Options(), &o))
	require.Equal(t, uint16(1240), o.MSS)

	// mtu_expires later the path is the link's again, and so is the MSS.
	r.vc.Set(r.vc.Now() + int64(601*time.Second))
	_, ok = r.s.TCP().PathMTU(peerAddr)
	require.False(t, ok)
	more := pattern(4 << 10)
	_, err = f.h.TryWrite(more)
	require.NoError(t, err)
	r.settle()
	segs, _ = tcpSegs(r.recv())
	require.NotEmpty(t, segs)
	require.Len(t, segs[0].Payload(), 1460)
	require.Equal(t, 1460, rowOf(r, 40000).MSS)
}

// A report below min_pmtu (552) lowers the path only to 552 and locks it: a later report
// cannot lower it further, and the segments to the locked path go without DF, each with an
// identification of its own, so that a router may fragment them (ip_dont_fragment); a
// report above the current path MTU never raises it.
func TestPMTU_MinPMTUAndNoRaise(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	_, err := f.h.TryWrite(pattern(16 << 10))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	require.NotEmpty(t, raw)
	require.True(t, ipOf(t, raw[0]).DontFragment(), "DF while the path is not locked")
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1400, raw[0]))
	require.Equal(t, 1360, rowOf(r, 40000).MSS)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1450, raw[0]))
	mtu, _ := r.s.TCP().PathMTU(peerAddr)
	require.Equal(t, 1400, mtu, "never raised by a report")
	r.recv()                                                                           // what the 1400 report resent, with DF
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 0, raw[0])) // an RFC 792 router
	mtu, _ = r.s.TCP().PathMTU(peerAddr)
	require.Equal(t, 552, mtu)
	require.Equal(t, 512, rowOf(r, 40000).MSS)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 300, raw[0]))
	mtu, _ = r.s.TCP().PathMTU(peerAddr)
	require.Equal(t, 552, mtu, "locked")
	_, after := tcpSegs(r.recv())
	require.NotEmpty(t, after)
	ids := map[uint16]bool{}
	for _, fr := range after {
		ip := ipOf(t, fr)
		require.False(t, ip.DontFragment(), "no DF to a locked path")
		require.Zero(t, checksum.Checksum(ip[:ip.HeaderLen()], 0), "header checksum")
		ids[ip.ID()] = true
	}
	require.Len(t, ids, len(after), "one identification per datagram")
	// Everything still arrives, in segments of at most 512 bytes from now on.
	f.drain(t, pattern(16<<10), 512)
}

// A report quoting a segment outside the window lowers nothing.
func TestPMTU_OutOfWindowIgnored(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	_, err := f.h.TryWrite(pattern(4000))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	f.ack(f.iss + 1 + 4000)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1280, raw[0]))
	require.Equal(t, uint64(1), counter(r, stats.TcpExtOutOfWindowIcmps))
	_, ok := r.s.TCP().PathMTU(peerAddr)
	require.False(t, ok)
	require.Equal(t, 1460, rowOf(r, 40000).MSS)
}

// On a stack of two shards whose link cannot steer (ByTxQueue), an ICMP error that
// arrives on one shard for a flow the other owns is handed over and delivered there,
// counted once.
func TestICMPError_HandedToOwnerShard(t *testing.T) {
	vc := clock.NewVirtual(0)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc, Queues: 2, ByTxQueue: true, Pool: dpdkshim.PoolConfig{Size: 1024}})
	cfg := stack.Config{Port: ps, Addr: simnet.ServerAddr, Clock: vc, Manual: true, Seed: 1, Shards: 2, Gateway: gwAddr}
	cfg.StaticNeighbours = map[netip.Addr][6]byte{peerAddr: pc.MAC(), gwAddr: pc.MAC()}
	s, err := stack.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	r := &rawPeer{t: t, vc: vc, s: s, port: pc, sport: ps, mac: pc.MAC(), smac: ps.MAC(), rx: make([]*dpdkshim.Packet, 64)}
	l, err := s.Listen(":80", 64)
	require.NoError(t, err)
	recvAll := func() [][]byte {
		var out [][]byte
		for q := 0; q < 2; q++ {
			for {
				n := pc.RxBurst(q, r.rx)
				if n == 0 {
					break
				}
				for _, p := range r.rx[:n] {
					out = append(out, append([]byte(nil), p.Data()...))
					p.Free()
				}
			}
		}
		return out
	}
	// Open flows until one lives on shard 1.
	var f *flow
	for sport := uint16(41000); f == nil; sport++ {
		r.send(peerSeg(r, sport, 80, 1000, 0, header.TCPFlagSYN, 65535, &peerSynOpts, nil))
		segs, _ := tcpSegs(recvAll())
		require.Len(t, segs, 1)
		r.send(peerSeg(r, sport, 80, 1001, segs[0].Seq()+1, header.TCPFlagACK, 65535, nil, nil))
		h, err := l.TryAcceptHandle()
		require.NoError(t, err)
		if h.Shard() == 1 {
			f = &flow{r: r, h: h, sport: sport, peerSeq: 1001, iss: segs[0].Seq()}
		}
	}
	_, err = f.h.TryWrite(pattern(8000))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(recvAll())
	require.NotEmpty(t, raw)
	before := s.ShardLoads()[0].Handoffs
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1000, raw[0])) // arrives on queue 0
	require.Greater(t, s.ShardLoads()[0].Handoffs, before)
	require.Equal(t, 960, rowOf(r, f.sport).MSS)
	c := s.Counters()
	require.Equal(t, uint64(1), c[stats.IcmpInMsgs])
	require.Equal(t, uint64(1), c[stats.IcmpInDestUnreachs])
	require.Zero(t, c[stats.IcmpInErrors])
	segs, _ := tcpSegs(recvAll())
	require.NotEmpty(t, segs)
	for _, sg := range segs {
		require.LessOrEqual(t, len(sg.Payload()), 960)
	}
}

// The path MTU knobs go by Linux's names; a smaller mtu_expires ends the path MTU sooner.
func TestPMTU_Sysctls(t *testing.T) {
	var st tcp.Settings
	v, err := st.Get("net.ipv4.route.min_pmtu")
	require.NoError(t, err)
	require.Equal(t, "552", v)
	v, err = st.Get("net.ipv4.route.mtu_expires")
	require.NoError(t, err)
	require.Equal(t, "600", v)
	require.Error(t, st.Set("net.ipv4.route.min_pmtu", "67"))
	require.NoError(t, st.Set("net.ipv4.route.mtu_expires", "30"))
	require.NoError(t, st.Set("net.ipv4.route.min_pmtu", "1000"))

	r, l := listenPeer(t, func(c *stack.Config) { c.TCP = st })
	f := establish(t, r, l, 40000)
	_, err = f.h.TryWrite(pattern(6000))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 800, raw[0]))
	mtu, ok := r.s.TCP().PathMTU(peerAddr)
	require.True(t, ok)
	require.Equal(t, 1000, mtu, "min_pmtu")
	r.vc.Set(r.vc.Now() + int64(31*time.Second))
	_, ok = r.s.TCP().PathMTU(peerAddr)
	require.False(t, ok, "mtu_expires")
}

// A fragmentation-needed report for the SYN of an active open lowers the path MTU, and
// the connection takes the path's MSS when the handshake completes.
func TestPMTU_SynSent(t *testing.T) {
	r := icmpPeer(t, nil)
	h, err := r.s.DialAsyncHandle(netip.MustParseAddrPort("198.18.0.2:443"), tcp.DialOptions{})
	require.NoError(t, err)
	r.settle()
	segs, raw := tcpSegs(r.recv())
	require.Len(t, raw, 1)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1100, raw[0]))
	require.Equal(t, tcp.StateSynSent, h.State())
	syn := segs[0]
	o := peerSynOpts
	r.send(peerSeg(r, 443, syn.SrcPort(), 5000, syn.Seq()+1, header.TCPFlagSYN|header.TCPFlagACK, 65535, &o, nil))
	require.Equal(t, tcp.StateEstablished, h.State())
	row := rowOf(r, 443)
	require.Equal(t, 1060, row.MSS)
}

// Another connection to the same destination takes the lower MSS at its next
// transmission, cutting what it has in flight to it, without a report of its own.
func TestPMTU_OtherConnectionFollows(t *testing.T) {
	r, l := listenPeer(t, nil)
	a := establish(t, r, l, 40000)
	b := establish(t, r, l, 40001)
	_, err := a.h.TryWrite(pattern(6000))
	require.NoError(t, err)
	_, err = b.h.TryWrite(pattern(6000))
	require.NoError(t, err)
	r.settle()
	var rawA [][]byte
	_, raw := tcpSegs(r.recv())
	for _, fr := range raw {
		if sg, _ := simnet.TCPOf(fr); sg.DstPort() == 40000 {
			rawA = append(rawA, fr)
		}
	}
	require.NotEmpty(t, rawA)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4FragNeeded, 1000, rawA[0]))
	require.Equal(t, 960, rowOf(r, 40000).MSS)
	require.Equal(t, 1460, rowOf(r, 40001).MSS, "not until it sends")
	r.recv()
	// b's retransmission timeout resends its segments cut to the path.
	more := pattern(6000)
	b.drain(t, more[:6000], 960)
	require.Equal(t, 960, rowOf(r, 40001).MSS)
}

// A TIME-WAIT entry takes every error without effect (and it is not IcmpInErrors).
func TestICMPError_TimeWaitIgnores(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	require.NoError(t, f.h.Close())
	r.settle()
	segs, raw := tcpSegs(r.recv())
	require.Len(t, segs, 1)
	require.NotZero(t, segs[0].Flags()&header.TCPFlagFIN)
	// The peer acknowledges the FIN and sends its own: TIME-WAIT.
	r.send(peerSeg(r, 40000, 80, 1001, segs[0].Seq()+1, header.TCPFlagACK|header.TCPFlagFIN, 65535, nil, nil))
	rows := r.s.Sockets()
	require.Len(t, rows, 2)
	require.Equal(t, tcp.StateTimeWait, rowOf(r, 40000).State)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0, raw[0]))
	require.Zero(t, counter(r, stats.IcmpInErrors))
	require.Equal(t, tcp.StateTimeWait, rowOf(r, 40000).State)
}

// With IP_RECVERR an established connection's ICMP error is reported once, by the next
// Read that finds nothing (or the next Write), and the connection goes on.
func TestICMPError_RecvErr(t *testing.T) {
	r, l := listenPeer(t, nil)
	f := establish(t, r, l, 40000)
	require.NoError(t, f.h.SetRecvErr(true))
	_, err := f.h.TryWrite(make([]byte, 100))
	require.NoError(t, err)
	r.settle()
	_, raw := tcpSegs(r.recv())
	require.Len(t, raw, 1)
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4PortUnreach, 0, raw[0]))
	buf := make([]byte, 10)
	_, err = f.h.TryRead(buf)
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	_, err = f.h.TryRead(buf)
	require.ErrorIs(t, err, tcp.ErrWouldBlock, "reported once")
	r.send(routerErr(r, header.ICMPv4DestUnreach, header.ICMPv4HostUnreach, 0, raw[0]))
	_, err = f.h.TryWrite([]byte("x"))
	require.ErrorIs(t, err, syscall.EHOSTUNREACH)
	_, err = f.h.TryWrite([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, tcp.StateEstablished, f.h.State())
	f.ack(f.iss + 1 + 101)
	require.Equal(t, tcp.StateEstablished, f.h.State())
}

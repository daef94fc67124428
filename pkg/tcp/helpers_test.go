package tcp_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

var serverAP = netip.AddrPortFrom(simnet.ServerAddr.Addr(), 80)

func newNet(t *testing.T, opts simnet.Options) *simnet.Net {
	t.Helper()
	n, err := simnet.New(opts)
	require.NoError(t, err)
	t.Cleanup(n.Close)
	return n
}

// seg is a recorded TCP segment, decoded.
type seg struct {
	t        int64
	toServer bool
	sport    uint16
	dport    uint16
	flags    uint8
	seq, ack uint32
	win      uint16
	payload  int
	opts     header.TCPOptions
}

func (s seg) String() string {
	dir := "C->S"
	if !s.toServer {
		dir = "S->C"
	}
	return fmt.Sprintf("%.3fs %s %d>%d [%s] seq %d ack %d len %d", float64(s.t)/1e9, dir, s.sport, s.dport,
		simnet.FlagString(s.flags), s.seq, s.ack, s.payload)
}

func segments(n *simnet.Net) []seg {
	var out []seg
	for _, f := range n.Frames() {
		t, ok := simnet.TCPOf(f.Data)
		if !ok {
			continue
		}
		s := seg{t: f.Time, toServer: f.ToServer, sport: t.SrcPort(), dport: t.DstPort(), flags: t.Flags(),
			seq: t.Seq(), ack: t.Ack(), win: t.Window(), payload: len(t.Payload())}
		_ = header.ParseTCPOptions(t.Options(), &s.opts)
		out = append(out, s)
	}
	return out
}

func trace(n *simnet.Net) string {
	var b strings.Builder
	for _, s := range segments(n) {
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// filter returns the segments in one direction whose flags are exactly f.
func filter(segs []seg, toServer bool, f uint8) []seg {
	var out []seg
	for _, s := range segs {
		if s.toServer == toServer && s.flags == f {
			out = append(out, s)
		}
	}
	return out
}

const (
	fSYN    = header.TCPFlagSYN
	fSYNACK = header.TCPFlagSYN | header.TCPFlagACK
	fACK    = header.TCPFlagACK
	fRST    = header.TCPFlagRST
	fRSTACK = header.TCPFlagRST | header.TCPFlagACK
	fFINACK = header.TCPFlagFIN | header.TCPFlagACK
)

// dropTo makes the pair lose frames travelling toward the server (toServer) or the client
// while drop returns true.
func dropTo(n *simnet.Net, toServer bool, drop func(t header.TCP) bool) {
	port := n.PortC // frames toward the server leave the client's port
	if !toServer {
		port = n.PortS
	}
	port.SetHook(func(_ int, frame []byte) dpdkshim.Action {
		if t, ok := simnet.TCPOf(frame); ok && drop(t) {
			return dpdkshim.Action{Kind: dpdkshim.Drop}
		}
		return dpdkshim.Action{}
	})
}

func counters(s interface{ Counters() stats.Counters }) stats.Counters { return s.Counters() }

func dial(t *testing.T, n *simnet.Net) *tcp.Conn {
	t.Helper()
	c, err := n.Client.DialAsync(serverAP, tcp.DialOptions{})
	require.NoError(t, err)
	return c
}

package tcp_test

// Malformed TCP options (a hostile or broken peer): Linux's tcp_parse_options skips what it
// cannot parse and processes the segment, so a SYN with one bad option is still answered
// with a SYN-ACK that echoes the options that could be read, and data with a bad option is
// still delivered. Before, the whole segment was dropped as an error.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Option bytes the cases are made of.
var (
	optMSS1460 = []byte{2, 4, 0x05, 0xb4}
	optWS7     = []byte{1, 3, 3, 7}
	optSACKP   = []byte{4, 2}
	optTS100   = []byte{8, 10, 0, 0, 0, 100, 0, 0, 0, 0} // TSval 100, TSecr 0
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// synackWant is what the SYN-ACK to a SYN must carry: our own MSS always, window scale,
// SACK-permitted and timestamps only when they were read from the SYN (Linux
// tcp_openreq_init / tcp_synack_options).
type synackWant struct {
	ws, sack, ts bool
	childMSS     int // the MSS the child uses: the SYN's, or 536 when none could be read
}

var malformedSYNs = []struct {
	name string
	opts []byte
	want synackWant
}{
	{"MSS length 3", cat([]byte{2, 3, 5}, optWS7, optSACKP, optTS100),
		synackWant{ws: true, sack: true, ts: true, childMSS: 536}},
	{"MSS length 5", cat([]byte{2, 5, 5, 0xb4, 0}, optWS7, optSACKP),
		synackWant{ws: true, sack: true, childMSS: 536}},
	{"timestamps length 9", cat(optMSS1460, optSACKP, []byte{8, 9, 0, 0, 0, 100, 0, 0, 0}, optWS7),
		synackWant{ws: true, sack: true, childMSS: 1460}},
	{"unknown kind length 0", cat([]byte{2, 4, 0x05, 0x78}, []byte{30, 0}, optSACKP, optWS7, optTS100),
		synackWant{childMSS: 1400}},
	{"unknown kind length 1", cat(optMSS1460, optSACKP, []byte{253, 1}, optWS7, optTS100),
		synackWant{sack: true, childMSS: 1460}},
	{"MSS length 0", cat(optWS7, []byte{2, 0}, optSACKP, optMSS1460),
		synackWant{ws: true, childMSS: 536}},
	{"window scale length 4", cat(optMSS1460, []byte{3, 4, 7, 0}, optSACKP, optTS100),
		synackWant{sack: true, ts: true, childMSS: 1460}},
	{"SACK-permitted length 3", cat([]byte{4, 3, 0}, optMSS1460, optWS7),
		synackWant{ws: true, childMSS: 1460}},
	{"option running past the end", cat(optMSS1460, optWS7, []byte{8, 10, 0, 0}),
		synackWant{ws: true, childMSS: 1460}},
	{"kind without a length byte", cat(optSACKP, optWS7, []byte{1, 8}),
		synackWant{ws: true, sack: true, childMSS: 536}},
}

// A SYN with one malformed option gets the SYN-ACK Linux sends for it, and the handshake
// completes with data riding on the final ACK (which carries the same bad bytes); the child
// uses the MSS that could be read, or 536.
func TestMalformedOptions_SYNAnsweredDataDelivered(t *testing.T) {
	for i, c := range malformedSYNs {
		t.Run(c.name, func(t *testing.T) {
			n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
			l := listenSeed(t, n, 8)
			p := newRawPeer(t, n)
			sport := uint16(41000 + i)
			const iss = 1000
			p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, c.opts)
			require.Len(t, p.got, 1, "the SYN is answered")
			sa := p.got[0]
			require.Equal(t, fSYNACK, sa.flags)
			require.Equal(t, uint32(iss+1), sa.ack)
			require.Equal(t, uint16(1460), sa.opts.MSS, "our own MSS, always")
			require.Equal(t, c.want.sack, sa.opts.SACKPermitted, "SACK-permitted echoed only if read")
			require.Equal(t, c.want.ts, sa.opts.TS, "timestamps only if read")
			if c.want.ts {
				require.Equal(t, uint32(100), sa.opts.TSEcr)
			}
			if c.want.ws {
				require.Equal(t, int8(7), sa.opts.WScale, "our shift, from tcp_rmem's 6 MiB maximum as Linux chooses it")
			} else {
				require.Equal(t, int8(-1), sa.opts.WScale)
			}
			require.Equal(t, 1, l.SynQueueLen())

			p.send(crafted{sport: sport, dport: seedPort, seq: iss + 1, ack: sa.seq + 1,
				flags: fACK | header.TCPFlagPSH, win: 65535, payload: []byte("hello")}, c.opts)
			s, err := l.TryAccept()
			require.NoError(t, err)
			buf := make([]byte, 16)
			k, err := s.TryRead(buf)
			require.NoError(t, err)
			require.Equal(t, "hello", string(buf[:k]))

			mark := len(p.got)
			_, err = s.TryWrite(make([]byte, 3000))
			require.NoError(t, err)
			n.RunFor(1e6)
			out := p.since(mark)
			require.NotEmpty(t, out)
			want := c.want.childMSS
			if c.want.ts {
				want -= 12 // the timestamps every segment carries (tcp_current_mss)
			}
			require.Equal(t, want, out[0].payload, "the child's MSS")
			require.Equal(t, uint32(iss+1+5), out[0].ack, "the data was acknowledged")
			cnt := counters(n.Server)
			require.Zero(t, cnt[stats.TcpInErrs], "a malformed option is not an error")
			require.Equal(t, uint64(1), cnt[stats.TcpPassiveOpens])
		})
	}
}

// On an established connection a data segment with a malformed option is delivered and
// acknowledged like any other.
func TestMalformedOptions_EstablishedDataDelivered(t *testing.T) {
	n := scenarioNet(t, 1, tcp.Settings{}, tcp.Settings{})
	l := listenSeed(t, n, 8)
	p := newRawPeer(t, n)
	const sport, iss = 42000, 5000
	p.send(crafted{sport: sport, dport: seedPort, seq: iss, flags: fSYN, win: 65535}, cat(optMSS1460, optSACKP, optTS100))
	sa := p.got[0]
	p.send(crafted{sport: sport, dport: seedPort, seq: iss + 1, ack: sa.seq + 1, flags: fACK, win: 65535}, nil)
	s, err := l.TryAccept()
	require.NoError(t, err)

	seq := uint32(iss + 1)
	buf := make([]byte, 64)
	for _, c := range malformedSYNs {
		msg := []byte(c.name)
		p.send(crafted{sport: sport, dport: seedPort, seq: seq, ack: sa.seq + 1,
			flags: fACK | header.TCPFlagPSH, win: 65535, payload: msg}, c.opts)
		seq += uint32(len(msg))
		k, err := s.TryRead(buf)
		require.NoError(t, err, c.name)
		require.Equal(t, c.name, string(buf[:k]))
	}
	n.RunFor(50e6) // the delayed ACK
	require.NotEmpty(t, p.got)
	last := p.got[len(p.got)-1]
	require.Equal(t, fACK, last.flags)
	require.Equal(t, seq, last.ack, "every byte acknowledged")
	require.Zero(t, counters(n.Server)[stats.TcpInErrs])
}

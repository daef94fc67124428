package stack_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
)

// FuzzL3Input feeds arbitrary frames to a stack on an L3 link (a TUN device's packets)
// with a listener, the virtual clock moving between them: nothing panics, every frame is
// received once and either dropped by a link counter (no version, not IPv4, empty) or
// taken by IP and delivered or dropped under an IP counter, and no ARP is ever sent.
// Input: records of [clock step, length(2), frame].
func FuzzL3Input(f *testing.F) {
	syn := l3SYN(peerAddr, simnet.ServerAddr.Addr(), 40000)
	rec := func(step byte, frame []byte) []byte {
		b := []byte{step, 0, 0}
		binary.BigEndian.PutUint16(b[1:], uint16(len(frame)))
		return append(b, frame...)
	}
	f.Add(rec(1, syn))
	f.Add(append(rec(0, syn), rec(200, syn[:30])...))
	f.Add(rec(3, []byte{0x60, 0, 0, 0}))
	f.Add(rec(0, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newL3Peer(t)
		_, err := r.s.Listen(":80", 8)
		require.NoError(t, err)
		for frames := 0; len(data) >= 3 && frames < 32; frames++ {
			step, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
			data = data[3:]
			n = min(n, len(data))
			frame := append([]byte(nil), data[:n]...)
			data = data[n:]
			before := r.s.Counters()
			r.send(frame)
			after := r.s.Counters()
			d := func(ids ...stats.ID) uint64 {
				var s uint64
				for _, id := range ids {
					s += after[id] - before[id]
				}
				return s
			}
			require.Equal(t, uint64(1), d(stats.RxPackets))
			ipIn, ip6In := d(stats.IpInReceives), d(stats.Ip6InReceives)
			require.Equal(t, uint64(1), ipIn+ip6In+d(stats.RxLengthErrors, stats.RxNoHandler, stats.RxDropped), "% x", frame)
			if ip6In == 1 {
				require.Equal(t, uint64(1), d(stats.Ip6InDiscards, stats.Ip6InTruncatedPkts, stats.Ip6InHdrErrors,
					stats.Ip6InMcastNotJoined, stats.Ip6InAddrErrors, stats.RtInMartianSrc, stats.Ip6InDelivers,
					stats.Ip6ReasmFails, stats.Ip6InUnknownProtos), "% x", frame)
			}
			if ipIn == 1 {
				require.Equal(t, uint64(1), d(stats.IpInHdrErrors, stats.IpInAddrErrors, stats.IpInUnknownProtos,
					stats.IpInDelivers, stats.IpExtInTruncatedPkts, stats.IpReasmReqds, stats.RtInMartianSrc,
					stats.RtInMartianDst, stats.IpInSourceRouteDrops), "% x", frame)
			}
			for _, out := range r.recv() {
				var err error
				if len(out) > 0 && out[0]>>4 == 6 {
					_, err = header.ParseIPv6(out)
				} else {
					_, err = header.ParseIPv4(out)
				}
				require.NoError(t, err, "the stack sends only bare IP packets on an L3 link: % x", out)
			}
			r.runFor(time.Duration(step) * time.Duration(step) * time.Millisecond)
			r.recv()
		}
		require.Zero(t, r.s.Counters()[stats.ArpRequestsSent])
	})
}

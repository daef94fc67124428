package tcp_test

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// flowByte is byte pos of flow f's stream: every flow's bytes differ, and a byte out of
// place shows in the hash.
func flowByte(f int, pos int64) byte { return byte(pos*7 + int64(f)*13 + pos>>11) }

// seededImpairment drops dropPM per mille of the data segments, duplicates 1% and delays 1%
// of all frames by 3 ms past the others' 1 ms, from a seeded generator (the pair's hooks run
// on the polling goroutine, one at a time).
func seededImpairment(seed uint64, dropPM int) dpdkshim.Hook {
	rng := rand.New(rand.NewPCG(seed, 7))
	return func(_ int, f []byte) dpdkshim.Action {
		if th, ok := simnet.TCPOf(f); ok && len(th.Payload()) > 0 && rng.IntN(1000) < dropPM {
			return dpdkshim.Action{Kind: dpdkshim.Drop}
		}
		switch r := rng.IntN(100); {
		case r == 0:
			return dpdkshim.Action{Kind: dpdkshim.Duplicate}
		case r == 1:
			return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: 3 * time.Millisecond}
		}
		return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: time.Millisecond}
	}
}

// 100 flows at 1, 5 and 10% data loss, with 1% of frames duplicated and 1% reordered:
// every byte of every flow arrives in order (SHA-256 of what each side wrote and read), and
// once both ends close and TIME-WAIT has run out, both stacks hold nothing but the listener
// and no goroutine is left. 8 MiB per flow; 256 KiB under the race detector, which is 20
// times slower.
func TestLossyFlows_EveryByteInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	perFlow := int64(8 << 20)
	if raceEnabled {
		perFlow = 256 << 10
	}
	const flows = 100
	for _, dropPM := range []int{10, 50, 100} {
		t.Run(fmt.Sprintf("loss=%d%%", dropPM/10), func(t *testing.T) {
			n := newNet(t, simnet.Options{StaticARP: true, NoCapture: true, Shards: 2,
				Pool: dpdkshim.PoolConfig{Size: 8192, Max: 65536, BufSize: 2048}})
			defer n.Close()
			l, err := n.Server.Listen(":80", flows)
			require.NoError(t, err)
			cs := make([]*tcp.Conn, flows)
			ss := make([]*tcp.Conn, flows)
			for i := range cs {
				cs[i] = dial(t, n)
			}
			n.RunFor(time.Millisecond)
			for i := range ss {
				ss[i], err = l.TryAccept()
				require.NoError(t, err, "accept %d", i)
			}
			n.PortC.SetHook(seededImpairment(uint64(dropPM), dropPM))
			n.PortS.SetHook(seededImpairment(uint64(dropPM)+1, dropPM))

			type side struct {
				pos int64
				h   hash.Hash
			}
			wr, rd := make([]side, flows), make([]side, flows)
			for i := range wr {
				wr[i].h, rd[i].h = sha256.New(), sha256.New()
			}
			// Each accepted connection is paired with its dialer by the ports.
			byPort := map[uint16]int{}
			for i, c := range cs {
				byPort[c.LocalAddrPort().Port()] = i
			}
			order := make([]int, flows) // order[j]: the client flow server conn j belongs to
			for j, s := range ss {
				order[j] = byPort[s.RemoteAddrPort().Port()]
			}
			chunk := make([]byte, 64<<10)
			buf := make([]byte, 256<<10)
			start := n.Now()
			done := 0
			for done < flows {
				require.Less(t, n.Now()-start, int64(10*time.Minute), "%d of %d flows done", done, flows)
				done = 0
				for i, c := range cs {
					w := &wr[i]
					for w.pos < perFlow {
						k := int(min(int64(len(chunk)), perFlow-w.pos))
						for j := range chunk[:k] {
							chunk[j] = flowByte(i, w.pos+int64(j))
						}
						m, err := c.TryWrite(chunk[:k])
						w.h.Write(chunk[:m])
						w.pos += int64(m)
						if err != nil {
							require.ErrorIs(t, err, tcp.ErrWouldBlock)
							break
						}
					}
				}
				for j, s := range ss {
					r := &rd[order[j]]
					for {
						m, err := s.TryRead(buf)
						if m > 0 {
							r.h.Write(buf[:m])
							r.pos += int64(m)
						}
						if err != nil {
							require.ErrorIs(t, err, tcp.ErrWouldBlock)
							break
						}
					}
					if r.pos == perFlow {
						done++
					}
				}
				n.RunFor(time.Millisecond)
			}
			for i := range wr {
				require.Equal(t, wr[i].h.Sum(nil), rd[i].h.Sum(nil), "flow %d", i)
			}
			cc := counters(n.Client)
			require.NotZero(t, cc[stats.TcpRetransSegs])
			t.Logf("%d x %d bytes in %v of virtual time, %d retransmissions, %d timeouts",
				flows, perFlow, time.Duration(n.Now()-start), cc[stats.TcpRetransSegs], cc[stats.TcpExtTCPTimeouts])
			for i := range cs {
				require.NoError(t, cs[i].Close())
				require.NoError(t, ss[i].Close())
			}
			n.RunFor(3 * time.Minute) // FINs through the loss, then TIME-WAIT's 60 s
			for _, st := range []interface{ Sockets() []tcp.SocketRow }{n.Server, n.Client} {
				for _, row := range st.Sockets() {
					require.Equal(t, tcp.StateListen, row.State, "left over: %+v", row)
				}
			}
			require.Zero(t, counters(n.Server)[stats.TcpCurrEstab])
			require.Zero(t, counters(n.Client)[stats.TcpCurrEstab])
			require.NoError(t, l.Close())
		})
	}
}

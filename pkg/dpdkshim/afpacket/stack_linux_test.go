package afpacket

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
)

// watchPort counts what the stack receives through the port.
type watchPort struct {
	*Port
	frames, tcp, super, verified, maxLen atomic.Int64
}

func (w *watchPort) RxBurst(q int, pkts []*dpdkshim.Packet) int {
	n := w.Port.RxBurst(q, pkts)
	for _, p := range pkts[:n] {
		w.frames.Add(1)
		if d := p.Data(); len(d) > 34 && d[12] == 0x08 && d[13] == 0 && d[23] == 6 {
			w.tcp.Add(1)
			if p.Flags&dpdkshim.CsumVerified != 0 {
				w.verified.Add(1)
			}
		}
		if p.GSOSize > 0 {
			w.super.Add(1)
		}
		if l := int64(p.Len()); l > w.maxLen.Load() {
			w.maxLen.Store(l)
		}
	}
	return n
}

// TestStack_LinuxClientUploads: shardstack over the port serves a Linux TCP client in the
// peer namespace: the handshake (ARP included) completes, a 1 MB upload arrives intact and
// in order, and the reply goes back. Linux sends with TSO over the veth, so the stack receives GSO
// super-packets whole (GSOSize set, longer than the MTU), every segment with a partial
// checksum the port reports as verified; the stack's own segments leave with partial
// checksums the kernel completes.
func TestStack_LinuxClientUploads(t *testing.T) {
	for _, m := range []mode{{"mmsg", Config{}}, {"rings", Config{RxRing: true, TxRing: true}}} {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			cfg := m.cfg
			cfg.Queues = 2
			w := &watchPort{Port: openIn(t, v, cfg)}
			s, err := stack.New(stack.Config{Port: w, Addr: netip.PrefixFrom(v.AddrA, 24), Shards: 2})
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			l, err := s.Listen(":8080", 16)
			require.NoError(t, err)
			const size = 1 << 20
			srvErr := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					srvErr <- err
					return
				}
				defer c.Close()
				got := make([]byte, size)
				if _, err := io.ReadFull(c, got); err != nil {
					srvErr <- err
					return
				}
				for i, b := range got {
					if b != byte(i%251) {
						srvErr <- fmt.Errorf("byte %d is %d, want %d", i, b, i%251)
						return
					}
				}
				_, err = c.Write([]byte("got it"))
				srvErr <- err
			}()
			var c net.Conn
			require.NoError(t, v.b.Do(func() (err error) {
				c, err = net.DialTimeout("tcp4", net.JoinHostPort(v.AddrA.String(), "8080"), 5*time.Second)
				return err
			}))
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(30*time.Second)))
			buf := make([]byte, size)
			for i := range buf {
				buf[i] = byte(i % 251)
			}
			start := time.Now()
			_, err = c.Write(buf)
			require.NoError(t, err)
			reply := make([]byte, 6)
			_, err = io.ReadFull(c, reply)
			require.NoError(t, err)
			require.Equal(t, "got it", string(reply))
			require.NoError(t, <-srvErr)
			t.Logf("1 MB in %v", time.Since(start))
			t.Logf("%d frames (%d TCP), %d super-packets, %d verified, longest %d B", w.frames.Load(), w.tcp.Load(), w.super.Load(), w.verified.Load(), w.maxLen.Load())
			require.Positive(t, w.super.Load(), "Linux sent GSO super-packets")
			require.Greater(t, w.maxLen.Load(), int64(w.MTU()+14))
			require.Equal(t, w.tcp.Load(), w.verified.Load(), "every TCP segment is verified")
			t.Log(FormatStats(w.Stats()))
		})
	}
}

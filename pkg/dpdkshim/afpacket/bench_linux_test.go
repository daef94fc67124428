package afpacket

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

var benchModes = []mode{
	{"mmsg", Config{}},
	{"ring", Config{RxRing: true, TxRing: true}},
	{"ring-bypass", Config{RxRing: true, TxRing: true, QdiscBypass: true}},
}

// BenchmarkRxBurst measures receiving over a veth, one op per frame: the peer queues a
// batch of 1024 frames with the timer stopped (more would overflow a ring whose blocks the
// 1 ms timer retires partly filled), then RxBurst drains them in bursts of 64 and
// the packets are freed in batches, as a shard frees them. It reports frames per receive
// system call (recvmmsg; the ring makes none) and ns per frame.
func BenchmarkRxBurst(b *testing.B) {
	for _, m := range benchModes {
		if m.cfg.QdiscBypass {
			continue // a transmit setting
		}
		for _, size := range []int{60, 1514} {
			b.Run(fmt.Sprintf("%s/%dB", m.name, size), func(b *testing.B) {
				v := newVethPair(b)
				p := openIn(b, v, m.cfg)
				pr := openPeer(b, v, false, false)
				f := rawFrame(rand.New(rand.NewPCG(1, 2)), v.MACA, v.MACB, size-14)
				pkts := make([]*dpdkshim.Packet, 64)
				var fb dpdkshim.FreeBatch
				seen := uint64(0)
				b.ReportAllocs()
				b.ResetTimer()
				for got := 0; got < b.N; {
					b.StopTimer()
					batch := min(1024, b.N-got)
					for i := 0; i < batch; i++ {
						_, _ = unix.Write(pr.fd, f)
					}
					seen += uint64(batch)
					waitKernel(b, p, seen)
					if m.cfg.RxRing {
						// Let the last, partly filled block retire.
						time.Sleep(3 * m.cfg.RxRetireTimeout)
						time.Sleep(10 * time.Millisecond)
					}
					b.StartTimer()
					for left := batch; left > 0; {
						n := p.RxBurst(0, pkts)
						if n == 0 {
							break
						}
						for _, pk := range pkts[:n] {
							fb.Free(pk)
						}
						fb.Flush()
						left -= n
						got += n
					}
					if st := p.Stats()[0]; st.RxKernelDrops > 0 {
						b.Fatalf("the kernel dropped %d frames", st.RxKernelDrops)
					}
				}
				b.StopTimer()
				st := p.Stats()[0]
				if st.RxSyscalls > 0 {
					b.ReportMetric(st.RxPerSyscall(), "pkts/syscall")
				}
			})
		}
	}
}

// BenchmarkTxBurst measures transmitting over a veth, one op per frame: 64 frames are
// written into pool packets and handed to TxBurst. The peer's kernel receives each frame
// in the sender's context (veth), discarding it (an EtherType nobody handles), so the
// figure includes that. It reports frames per transmit system call.
func BenchmarkTxBurst(b *testing.B) {
	for _, m := range benchModes {
		for _, size := range []int{60, 1514} {
			b.Run(fmt.Sprintf("%s/%dB", m.name, size), func(b *testing.B) {
				v := newVethPair(b)
				p := openIn(b, v, m.cfg)
				f := rawFrame(rand.New(rand.NewPCG(3, 4)), v.MACB, v.MACA, size-14)
				pkts := make([]*dpdkshim.Packet, 64)
				pool := p.Pool(0)
				b.ReportAllocs()
				b.ResetTimer()
				for sent := 0; sent < b.N; {
					k := min(len(pkts), b.N-sent)
					for i := range pkts[:k] {
						pkts[i] = pool.Get()
						pkts[i].SetData(f)
					}
					for done := 0; done < k; {
						done += p.TxBurst(0, pkts[done:k])
					}
					sent += k
				}
				b.StopTimer()
				st := p.Stats()[0]
				b.ReportMetric(st.TxPerSyscall(), "pkts/syscall")
				if st.TxDropped > 0 {
					b.Fatalf("%d frames dropped", st.TxDropped)
				}
			})
		}
	}
}

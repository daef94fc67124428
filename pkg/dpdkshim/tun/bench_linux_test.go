package tun

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// BenchmarkRxBurst measures receiving from the device, one op per packet: a Linux UDP
// socket in the namespace sends a batch of 256 datagrams with the timer stopped (fewer
// than the device's 500-packet queue), then RxBurst drains them in bursts of 64 and the
// packets are freed in batches, as a shard frees them. It reports packets per read(2):
// a TUN descriptor gives one packet per call, and each burst ends with a call that finds
// nothing unless it fills up.
func BenchmarkRxBurst(b *testing.B) {
	for _, vnet := range []bool{false, true} {
		for _, size := range []int{60, 1500} {
			b.Run(fmt.Sprintf("vnet=%v/%dB", vnet, size), func(b *testing.B) {
				n := newTunNet(b, Config{Queues: 1, VnetHdr: vnet})
				fd := n.udpSocket(b, 9000, 7)
				msg := make([]byte, size-28)
				pkts := make([]*dpdkshim.Packet, 64)
				var fb dpdkshim.FreeBatch
				b.ReportAllocs()
				b.ResetTimer()
				for got := 0; got < b.N; {
					b.StopTimer()
					batch := min(256, b.N-got)
					for i := 0; i < batch; i++ {
						if _, err := unix.Write(fd, msg); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					for left := batch; left > 0; {
						k := n.port.RxBurst(0, pkts)
						if k == 0 {
							b.Fatalf("%d packets never came", left)
						}
						for _, pk := range pkts[:k] {
							fb.Free(pk)
						}
						fb.Flush()
						left -= k
						got += k
					}
				}
				b.StopTimer()
				st := n.port.Stats()[0]
				b.ReportMetric(float64(st.RxPackets)/float64(max(st.RxSyscalls, 1)), "pkts/syscall")
			})
		}
	}
}

// BenchmarkTxBurst measures writing to the device, one op per packet: bursts of 64 UDP
// packets to a Linux socket that is never read. The kernel runs its receive path for each
// packet inside the write (IP input, the UDP lookup, the full socket's drop), so the
// figure includes that work.
func BenchmarkTxBurst(b *testing.B) {
	for _, vnet := range []bool{false, true} {
		for _, size := range []int{60, 1500} {
			b.Run(fmt.Sprintf("vnet=%v/%dB", vnet, size), func(b *testing.B) {
				n := newTunNet(b, Config{Queues: 1, VnetHdr: vnet})
				n.udpSocket(b, 9000, 0)
				msg := make([]byte, size-28)
				pkts := make([]*dpdkshim.Packet, 64)
				pool := n.port.Pool(0)
				b.ReportAllocs()
				b.ResetTimer()
				for sent := 0; sent < b.N; {
					k := min(len(pkts), b.N-sent)
					for i := range pkts[:k] {
						p := pool.Get()
						d := udpPacket(p.Buffer()[p.Headroom():], portAddr, linuxAddr, 7, 9000, msg, vnet)
						p.SetLen(len(d))
						if vnet {
							p.SetTxCsum(20, 26)
						}
						pkts[i] = p
					}
					for done := 0; done < k; {
						done += n.port.TxBurst(0, pkts[done:k])
					}
					sent += k
				}
				b.StopTimer()
				st := n.port.Stats()[0]
				if st.TxDropped > 0 {
					b.Fatalf("%d packets dropped", st.TxDropped)
				}
			})
		}
	}
}

package afpacket

import (
	"bytes"
	"encoding/binary"
	"errors"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// mode is one way of running the port; the root tests run in each.
type mode struct {
	name string
	cfg  Config
}

var (
	rxModes = []mode{
		{"recvmmsg", Config{}},
		{"recvmmsg-novnet", Config{NoVnetHdr: true}},
		{"rxring", Config{RxRing: true}},
		{"rxring-novnet", Config{RxRing: true, NoVnetHdr: true}},
		{"rings", Config{RxRing: true, TxRing: true}},
	}
	txModes = []mode{
		{"sendmmsg", Config{}},
		{"sendmmsg-novnet", Config{NoVnetHdr: true}},
		{"txring", Config{TxRing: true}},
		{"txring-novnet", Config{TxRing: true, NoVnetHdr: true}},
		{"txring-bypass", Config{TxRing: true, QdiscBypass: true}},
	}
)

// got is one received frame, copied out of its packet.
type got struct {
	queue int
	frame []byte
	flags dpdkshim.Flags
	gso   uint16
	owned bool
}

// collect receives until want frames have arrived over all queues or d has passed, freeing
// the packets as the stack would (in batches).
func collect(t testing.TB, p *Port, want int, d time.Duration) []got {
	t.Helper()
	var out []got
	pkts := make([]*dpdkshim.Packet, 64)
	var fb dpdkshim.FreeBatch
	deadline := time.Now().Add(d)
	for first := true; len(out) < want && (first || time.Now().Before(deadline)); first = false {
		idle := true
		for q := 0; q < p.NumQueues(); q++ {
			n := p.RxBurst(q, pkts)
			for _, pk := range pkts[:n] {
				require.Equal(t, q, int(pk.Queue))
				out = append(out, got{q, bytes.Clone(pk.Data()), pk.Flags, pk.GSOSize, pk.Owned()})
				fb.Free(pk)
			}
			fb.Flush()
			idle = idle && n == 0
		}
		if idle {
			if d == 0 {
				break
			}
			waitReadable(p, 5*time.Millisecond)
		}
	}
	return out
}

// waitReadable sleeps until a queue's socket is readable, at most d.
func waitReadable(p *Port, d time.Duration) {
	fds := make([]unix.PollFd, p.NumQueues())
	for q := range fds {
		fds[q] = unix.PollFd{Fd: int32(p.RxWait(q).FD), Events: unix.POLLIN}
	}
	_, _ = unix.Poll(fds, int(d/time.Millisecond))
}

// sendAndCollect sends frames from the peer in bursts of 64 and drains the port after each,
// so that a slow sender (the race detector) does not fill a ring whose blocks retire one
// frame at a time, then collects the rest.
func sendAndCollect(t testing.TB, p *Port, pr *peer, frames [][]byte) []got {
	t.Helper()
	var out []got
	for i := 0; i < len(frames); i += 64 {
		for _, f := range frames[i:min(i+64, len(frames))] {
			require.NoError(t, pr.send(f))
		}
		out = append(out, collect(t, p, 1<<30, 0)...)
	}
	return append(out, collect(t, p, len(frames)-len(out), 10*time.Second)...)
}

// kernelFrames are steerFrames as a peer can send them: addressed to the port, at least an
// Ethernet header long, and without VLAN tags (the kernel strips those before the fanout).
func kernelFrames(v *vethPair, r *rand.Rand) [][]byte {
	var out [][]byte
	for _, f := range steerFrames(r) {
		if len(f) < 14 {
			continue
		}
		switch binary.BigEndian.Uint16(f[12:]) {
		case 0x8100, 0x88a8:
			continue
		}
		copy(f[0:6], v.MACA)
		copy(f[6:12], v.MACB)
		out = append(out, f)
	}
	return out
}

// TestPort_FanoutSteersAsFrameQueue: frames of every shape a peer sends (IPv4 and IPv6
// TCP/UDP, fragments, options, ICMP, ARP, truncated headers) arrive on the queue that
// Symmetric.FrameQueue predicts for the port's two queues, so a stack would hand none of
// them to another shard; every frame arrives exactly once.
func TestPort_FanoutSteersAsFrameQueue(t *testing.T) {
	for _, m := range rxModes {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			cfg := m.cfg
			cfg.Queues, cfg.SteerSeed = 2, 0x5eed
			p := openIn(t, v, cfg)
			pr := openPeer(t, v, false, false)
			frames := kernelFrames(v, rand.New(rand.NewPCG(5, 6)))
			sent := map[string]int{}
			for _, f := range frames {
				sent[string(f)]++
			}
			rx := sendAndCollect(t, p, pr, frames)
			require.Len(t, rx, len(frames))
			require.Zero(t, p.Stats()[0].RxKernelDrops+p.Stats()[1].RxKernelDrops)
			steer := p.Steering()
			require.Equal(t, dpdkshim.Symmetric{Seed: 0x5eed}, steer)
			perQueue := [2]int{}
			for _, g := range rx {
				require.Equal(t, dpdkshim.Symmetric{Seed: 0x5eed}.FrameQueue(g.frame, 2), g.queue, "% x", g.frame)
				require.Positive(t, sent[string(g.frame)], "a frame nobody sent, or twice: % x", g.frame)
				sent[string(g.frame)]--
				perQueue[g.queue]++
				require.Equal(t, m.cfg.RxRing, g.owned, "ring frames are lent, recvmmsg frames are the pool's")
			}
			require.Positive(t, perQueue[0])
			require.Positive(t, perQueue[1])
			t.Logf("%d frames: %v per queue", len(rx), perQueue)
		})
	}
}

// dialSYNs makes the B side's Linux send TCP SYNs to the port's address from n source ports:
// non-blocking connects on the thread that is in B (a socket takes the namespace of the
// thread that creates it). The connections never complete; the sockets close at cleanup.
func dialSYNs(t testing.TB, v *vethPair, n int, port int) {
	t.Helper()
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	require.NoError(t, v.b.Do(func() error {
		for i := 0; i < n; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			fds = append(fds, fd)
			err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: v.AddrA.As4()})
			if err != unix.EINPROGRESS {
				return err
			}
		}
		return nil
	}))
}

// TestPort_KernelSYNsVerifiedAndSteered: TCP SYNs that the peer's Linux sends over the veth
// carry a partial checksum (CHECKSUM_PARTIAL); the port says so with CsumVerified (from the
// virtio-net header, PACKET_AUXDATA or the ring's status bits), and each SYN arrives on the
// queue FrameQueue predicts.
func TestPort_KernelSYNsVerifiedAndSteered(t *testing.T) {
	for _, m := range rxModes {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			cfg := m.cfg
			cfg.Queues = 2
			p := openIn(t, v, cfg)
			require.True(t, p.Offloads().RxCsum)
			require.Equal(t, !m.cfg.NoVnetHdr, p.Offloads().TxCsum)
			const conns = 64
			dialSYNs(t, v, conns, 8080)
			rx := collect(t, p, conns, 10*time.Second)
			require.Len(t, rx, conns)
			ports := map[uint16]bool{}
			for _, g := range rx {
				eth, err := header.ParseEthernet(g.frame)
				require.NoError(t, err)
				require.Equal(t, uint16(header.EtherTypeIPv4), eth.Type())
				ip, err := header.ParseIPv4(eth.Payload())
				require.NoError(t, err)
				tcp, err := header.ParseTCP(ip.Payload())
				require.NoError(t, err)
				require.Equal(t, uint8(header.TCPFlagSYN), tcp.Flags())
				require.Equal(t, dpdkshim.CsumVerified, g.flags&dpdkshim.CsumVerified, "SYN from port %d", tcp.SrcPort())
				// The checksum really is partial: finishing it over the segment gives
				// something else than what the segment carries.
				sum := checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoTCP, uint16(len(ip.Payload())))
				require.NotEqual(t, uint16(0), ^checksum.Fold(checksum.Partial(ip.Payload(), sum)), "a finished checksum")
				require.Equal(t, dpdkshim.Symmetric{}.FrameQueue(g.frame, 2), g.queue)
				ports[tcp.SrcPort()] = true
			}
			require.Len(t, ports, conns, "one SYN per connection (retransmissions come after 1 s)")
		})
	}
}

// rawFrame builds an Ethernet frame of an experimental EtherType that neither kernel
// handles, with n random payload bytes.
func rawFrame(r *rand.Rand, dst, src net.HardwareAddr, n int) []byte {
	f := make([]byte, 14+n)
	copy(f, dst)
	copy(f[6:], src)
	binary.BigEndian.PutUint16(f[12:], 0x88b5)
	for i := 14; i < len(f); i++ {
		f[i] = byte(r.Uint32())
	}
	return f
}

// packetOf copies frame into a packet of the queue's transmit pool.
func packetOf(t testing.TB, p *Port, q int, frame []byte) *dpdkshim.Packet {
	t.Helper()
	pk := p.Pool(q).Get()
	require.NotNil(t, pk)
	require.True(t, pk.SetData(frame))
	return pk
}

// txAll transmits pkts on queue q, retrying what the port leaves to the caller, within d.
func txAll(t testing.TB, p *Port, q int, pkts []*dpdkshim.Packet, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(pkts) > 0 {
		require.True(t, time.Now().Before(deadline), "%d frames not taken", len(pkts))
		n := p.TxBurst(q, pkts)
		pkts = pkts[n:]
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPort_TransmitArrivesIntact: frames the port sends from both queues, from minimum
// size to the MTU, arrive byte for byte at the peer, once each; the port does not receive
// its own frames (PACKET_IGNORE_OUTGOING on the fanout group).
func TestPort_TransmitArrivesIntact(t *testing.T) {
	for _, m := range txModes {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			cfg := m.cfg
			cfg.Queues = 2
			p := openIn(t, v, cfg)
			pr := openPeer(t, v, false, true)
			r := rand.New(rand.NewPCG(7, 8))
			want := map[string]int{}
			total := 0
			for q := 0; q < 2; q++ {
				var pkts []*dpdkshim.Packet
				for i := 0; i < 300; i++ {
					n := 46 + r.IntN(p.MTU()-46+1)
					if i < 2 {
						n = []int{46, p.MTU()}[i]
					}
					f := rawFrame(r, v.MACB, v.MACA, n)
					want[string(f)]++
					pkts = append(pkts, packetOf(t, p, q, f))
				}
				txAll(t, p, q, pkts, 5*time.Second)
				total += len(pkts)
			}
			for i := 0; i < total; i++ {
				f, _, err := pr.recv(5 * time.Second)
				if err != nil {
					logLoss(t, v, p)
				}
				require.NoError(t, err, "frame %d of %d", i, total)
				require.Positive(t, want[string(f)], "a frame not sent, or twice (%d bytes)", len(f))
				want[string(f)]--
			}
			_, _, err := pr.recv(50 * time.Millisecond)
			require.Error(t, err, "nothing more")
			require.Empty(t, collect(t, p, 1, 50*time.Millisecond), "the port's own frames do not come back")
			st := p.Stats()
			require.Equal(t, uint64(300), st[0].TxPackets)
			require.Equal(t, uint64(300), st[1].TxPackets)
			require.Zero(t, st[0].TxDropped+st[1].TxDropped)
			for q := 0; q < 2; q++ {
				require.Equal(t, p.Pool(q).Total(), p.Pool(q).Available(), "queue %d: every packet back in its pool", q)
			}
		})
	}
}

// tcpPacket builds a TCP segment from the port's side to the peer with n payload bytes; with
// partial, its checksum is left for the link (SetTxCsum), as the stack leaves it when the
// port offloads checksums.
func tcpPacket(t testing.TB, p *Port, v *vethPair, n int, partial bool) *dpdkshim.Packet {
	t.Helper()
	pk := p.Pool(0).Get()
	require.NotNil(t, pk)
	src, dst := v.AddrA.As4(), v.AddrB.As4()
	b := pk.Append(header.TCPMinLen + n)
	hl, sum := header.PutTCPHeader(b, 40000, 9, 1, 0, header.TCPFlagSYN, 65535, nil)
	for i := hl; i < len(b); i++ {
		b[i] = byte(i)
	}
	if partial {
		header.PartialTCPChecksumIPv4(header.TCP(b), src, dst)
		pk.SetTxCsum(0, header.TCPChecksumOffset)
	} else {
		header.FinishTCPChecksumIPv4(header.TCP(b), hl, sum, src, dst)
	}
	header.PutIPv4Header(pk.Prepend(header.IPv4MinLen), uint16(pk.Len()), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	var macA, macB header.MAC
	copy(macA[:], v.MACA)
	copy(macB[:], v.MACB)
	header.EncodeEthernet(pk.Prepend(header.EthernetLen), macB, macA, header.EtherTypeIPv4)
	return pk
}

// tcpChecksumOK reports whether an IPv4 TCP frame's checksum is finished and right.
func tcpChecksumOK(t testing.TB, frame []byte) bool {
	t.Helper()
	ip, err := header.ParseIPv4(frame[header.EthernetLen:])
	require.NoError(t, err)
	seg := ip.Payload()
	s := checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoTCP, uint16(len(seg)))
	return checksum.Fold(checksum.Partial(seg, s)) == 0xffff
}

// TestPort_TxCsumOffload: a segment the stack leaves with a partial checksum goes out behind
// a virtio-net header that asks the kernel to finish it: a peer reading with its own header
// sees NEEDS_CSUM at the right offsets, and finishing the sum there gives the right checksum;
// with the veth's transmit checksumming off, the kernel finishes it in software and the
// peer receives the finished frame. Every frame, in every mode, still fits the MTU.
func TestPort_TxCsumOffload(t *testing.T) {
	for _, m := range txModes {
		if m.cfg.NoVnetHdr {
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			p := openIn(t, v, m.cfg)
			require.True(t, p.Offloads().TxCsum)
			pr := openPeer(t, v, true, true)
			for _, n := range []int{0, 1, 100, p.MTU() - 40} {
				txAll(t, p, 0, []*dpdkshim.Packet{tcpPacket(t, p, v, n, true)}, time.Second)
				f, h, err := pr.recv(5 * time.Second)
				require.NoError(t, err)
				require.Len(t, f, header.EthernetLen+header.IPv4MinLen+header.TCPMinLen+n)
				require.Equal(t, byte(virtio.FlagNeedsCsum), h[0]&virtio.FlagNeedsCsum, "the kernel kept it partial")
				start := int(binary.NativeEndian.Uint16(h[6:]))
				off := int(binary.NativeEndian.Uint16(h[8:]))
				require.Equal(t, header.EthernetLen+header.IPv4MinLen, start)
				require.Equal(t, header.TCPChecksumOffset, off)
				require.False(t, tcpChecksumOK(t, f))
				binary.BigEndian.PutUint16(f[start+off:], ^checksum.Fold(checksum.Partial(f[start:], 0)))
				require.True(t, tcpChecksumOK(t, f), "finished where the header says")
			}
			// Without transmit checksumming on the veth, the kernel finishes the sum.
			v.a.Run(t, "ethtool", "-K", v.IfA, "tx", "off")
			plain := openPeer(t, v, false, true)
			txAll(t, p, 0, []*dpdkshim.Packet{tcpPacket(t, p, v, 333, true)}, time.Second)
			f, _, err := plain.recv(5 * time.Second)
			require.NoError(t, err)
			require.True(t, tcpChecksumOK(t, f), "the kernel finished the checksum")
			require.Zero(t, p.Stats()[0].TxDropped)
		})
	}
}

// superPacket is a TCP super-packet of n payload bytes from the peer to the port's side, as
// a Linux sender with TSO hands it to the veth: one IPv4 header for the whole, a partial
// checksum, and a virtio-net header saying how to segment it.
func superPacket(v *vethPair, n int, mss uint16) (vnet, frame []byte) {
	frame = make([]byte, header.EthernetLen+header.IPv4MinLen+header.TCPMinLen+n)
	var macA, macB header.MAC
	copy(macA[:], v.MACA)
	copy(macB[:], v.MACB)
	header.EncodeEthernet(frame, macA, macB, header.EtherTypeIPv4)
	src, dst := v.AddrB.As4(), v.AddrA.As4()
	header.PutIPv4Header(frame[14:], uint16(len(frame)-14), header.IPv4FlagDontFragment, 64, header.ProtoTCP, src, dst)
	seg := frame[34:]
	header.PutTCPHeader(seg, 5001, 80, 1000, 1, header.TCPFlagACK|header.TCPFlagPSH, 512, nil)
	for i := header.TCPMinLen; i < len(seg); i++ {
		seg[i] = byte(i * 7)
	}
	header.PartialTCPChecksumIPv4(header.TCP(seg), src, dst)
	vnet = make([]byte, virtio.HdrLen)
	vnet[0], vnet[1] = virtio.FlagNeedsCsum, 1 // VIRTIO_NET_HDR_GSO_TCPV4
	binary.NativeEndian.PutUint16(vnet[2:], 54)
	binary.NativeEndian.PutUint16(vnet[4:], mss)
	binary.NativeEndian.PutUint16(vnet[6:], 34)
	binary.NativeEndian.PutUint16(vnet[8:], 16)
	return vnet, frame
}

// TestPort_SuperPacketArrivesWhole: a 64 KB GSO super-packet (what a Linux peer with TSO
// sends over a veth) arrives as one frame, whole, with GSOSize set from the virtio-net header
// (without the header it still arrives whole, with GSOSize 0) and its partial checksum
// reported as verified; one that does not fit the receive buffer or ring block is dropped
// and counted, and the next frame still arrives.
func TestPort_SuperPacketArrivesWhole(t *testing.T) {
	for _, m := range rxModes {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			p := openIn(t, v, m.cfg)
			pr := openPeer(t, v, true, false)
			h, f := superPacket(v, 64000, 1448)
			require.NoError(t, pr.sendVnet(h, f))
			rx := collect(t, p, 1, 5*time.Second)
			require.Len(t, rx, 1)
			require.Equal(t, f, rx[0].frame, "whole, byte for byte")
			require.Equal(t, dpdkshim.CsumVerified, rx[0].flags)
			if m.cfg.NoVnetHdr {
				require.Zero(t, rx[0].gso)
			} else {
				require.Equal(t, uint16(1448), rx[0].gso)
			}
			require.Zero(t, p.Stats()[0].RxTruncated)
		})
		t.Run(m.name+"-too-long", func(t *testing.T) {
			v := newVethPair(t)
			cfg := m.cfg
			cfg.RxBufSize, cfg.RxBlockSize = 8192, 16384
			p := openIn(t, v, cfg)
			pr := openPeer(t, v, true, false)
			h, f := superPacket(v, 30000, 1448)
			require.NoError(t, pr.sendVnet(h, f))
			small := rawFrame(rand.New(rand.NewPCG(1, 1)), v.MACA, v.MACB, 100)
			require.NoError(t, pr.send(small))
			rx := collect(t, p, 1, 5*time.Second)
			require.Len(t, rx, 1)
			require.Equal(t, small, rx[0].frame)
			require.Equal(t, uint64(1), p.Stats()[0].RxTruncated)
		})
	}
}

// waitKernel waits (bounded) until the kernel has steered n frames to the port's sockets,
// queued or dropped.
func waitKernel(t testing.TB, p *Port, n uint64) []QueueStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var seen uint64
	for time.Now().Before(deadline) {
		seen = 0
		st := p.Stats()
		for _, s := range st {
			seen += s.RxKernelPackets
		}
		if seen >= n {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the kernel steered %d frames of %d", seen, n)
	return nil
}

// TestPort_BurstsAllocateNothing: in steady state a receive burst (the peer's frames into
// posted buffers, or attached ring frames, freed in a batch) and a transmit burst allocate
// nothing, in every combination of receive and transmit path.
func TestPort_BurstsAllocateNothing(t *testing.T) {
	for _, rm := range rxModes {
		for _, tm := range txModes {
			if rm.cfg.NoVnetHdr != tm.cfg.NoVnetHdr {
				continue
			}
			t.Run(rm.name+"+"+tm.name, func(t *testing.T) {
				v := newVethPair(t)
				cfg := rm.cfg
				cfg.TxRing, cfg.QdiscBypass = tm.cfg.TxRing, tm.cfg.QdiscBypass
				p := openIn(t, v, cfg)
				pr := openPeer(t, v, false, false)
				r := rand.New(rand.NewPCG(9, 9))
				in := make([][]byte, 64)
				for i := range in {
					in[i] = rawFrame(r, v.MACA, v.MACB, 60+r.IntN(1400))
				}
				out := rawFrame(r, v.MACB, v.MACA, 1000)
				pkts := make([]*dpdkshim.Packet, 64)
				tx := make([]*dpdkshim.Packet, 64)
				fds := []unix.PollFd{{Fd: int32(p.RxWait(0).FD), Events: unix.POLLIN}}
				var fb dpdkshim.FreeBatch
				short := 0
				cycle := func() {
					for _, f := range in {
						_, _ = unix.Write(pr.fd, f)
					}
					got := 0
					for tries := 0; got < len(in) && tries < 2000; tries++ {
						n := p.RxBurst(0, pkts)
						for _, pk := range pkts[:n] {
							fb.Free(pk)
						}
						fb.Flush()
						got += n
						if n == 0 {
							_, _ = unix.Poll(fds, 2)
						}
					}
					if got != len(in) {
						short++
					}
					for i := range tx {
						tx[i] = p.Pool(0).Get()
						tx[i].SetData(out)
					}
					for sent, tries := 0, 0; sent < len(tx) && tries < 2000; tries++ {
						sent += p.TxBurst(0, tx[sent:])
					}
				}
				for i := 0; i < 50; i++ {
					cycle()
				}
				allocs := testing.AllocsPerRun(100, cycle)
				require.Zero(t, allocs)
				require.Zero(t, short, "every burst of the peer's frames arrived")
				st := p.Stats()[0]
				require.Equal(t, uint64(151*64), st.RxPackets, "50 warm-up cycles, AllocsPerRun's own and its 100")
				require.Equal(t, uint64(151*64), st.TxPackets)
				require.Zero(t, st.RxNoBuffer)
				require.Zero(t, p.Pool(0).Grows())
			})
		}
	}
}

// TestPort_StatsPerSyscall: frames waiting in the socket come out 64 per recvmmsg, a
// 640-frame transmit burst takes ten sendmmsg calls or one ring kick, and the counters say
// so; with the ring, receiving makes no system call at all.
func TestPort_StatsPerSyscall(t *testing.T) {
	for _, m := range []mode{{"mmsg", Config{}}, {"rings", Config{RxRing: true, TxRing: true}}} {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			p := openIn(t, v, m.cfg)
			pr := openPeer(t, v, false, true)
			r := rand.New(rand.NewPCG(10, 10))
			const n = 640
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = rawFrame(r, v.MACA, v.MACB, 200)
			}
			var rx []got
			if m.cfg.RxRing {
				rx = sendAndCollect(t, p, pr, frames)
			} else {
				// Every frame waits in the socket buffer before the first recvmmsg.
				for _, f := range frames {
					require.NoError(t, pr.send(f))
				}
				waitKernel(t, p, n)
				rx = collect(t, p, n, 5*time.Second)
			}
			require.Len(t, rx, n)
			require.Zero(t, p.Stats()[0].RxKernelDrops)
			st := p.Stats()[0]
			require.Equal(t, uint64(n), st.RxPackets)
			require.Equal(t, uint64(n*214), st.RxBytes)
			if m.cfg.RxRing {
				require.Zero(t, st.RxSyscalls)
			} else {
				require.Equal(t, 64.0, st.RxPerBusySyscall(), "full bursts of waiting frames")
				require.Equal(t, uint64(n/64), st.RxSyscalls-st.RxEmpty)
			}
			pkts := make([]*dpdkshim.Packet, n)
			for i := range pkts {
				pkts[i] = packetOf(t, p, 0, rawFrame(r, v.MACB, v.MACA, 100))
			}
			require.Equal(t, n, p.TxBurst(0, pkts))
			st = p.Stats()[0]
			require.Equal(t, uint64(n), st.TxPackets)
			if m.cfg.TxRing {
				require.Equal(t, uint64(1), st.TxSyscalls)
			} else {
				require.Equal(t, uint64(n/64), st.TxSyscalls)
			}
			require.Equal(t, 64.0, QueueStats{TxPackets: n, TxSyscalls: n / 64}.TxPerSyscall())
			for i := 0; i < n; i++ {
				_, _, err := pr.recv(5 * time.Second)
				if err != nil {
					logLoss(t, v, p)
				}
				require.NoError(t, err, "frame %d", i)
			}
			out := FormatStats(p.Stats())
			require.Contains(t, out, "q0 rx 640 pkts")
			t.Log(out)
		})
	}
}

// TestPort_KernelDropsCounted: a peer floods a port that does not read, through a small
// socket buffer (or a two-block ring); the kernel drops what does not fit, PACKET_STATISTICS
// says how many, and every frame the veth delivered is accounted for: received or dropped.
func TestPort_KernelDropsCounted(t *testing.T) {
	for _, m := range []mode{
		{"mmsg", Config{RcvBuf: 1}},
		{"rxring", Config{RxRing: true, RxBlockSize: 4096, RxBlockCount: 2}},
	} {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			p := openIn(t, v, m.cfg)
			pr := openPeer(t, v, false, false)
			r := rand.New(rand.NewPCG(11, 11))
			before := v.a.LinkStats(t, v.IfA).RxPackets
			const n = 2000
			for i := 0; i < n; i++ {
				_ = pr.send(rawFrame(r, v.MACA, v.MACB, 1000))
			}
			after := v.a.LinkStats(t, v.IfA).RxPackets
			delivered := after - before
			require.Positive(t, delivered)
			waitKernel(t, p, delivered)
			rx := collect(t, p, n, 200*time.Millisecond)
			st := p.Stats()[0]
			require.Equal(t, delivered, st.RxKernelPackets, "the kernel saw every delivered frame")
			require.Positive(t, st.RxKernelDrops)
			require.Equal(t, delivered, uint64(len(rx))+st.RxKernelDrops, "received or dropped")
			if m.cfg.RxRing {
				require.Positive(t, st.RxFreezes)
			}
			t.Logf("delivered %d, received %d, dropped %d, freezes %d", delivered, len(rx), st.RxKernelDrops, st.RxFreezes)
		})
	}
}

// receiveHeld receives until want frames have arrived or d has passed, and keeps the packets.
func receiveHeld(t testing.TB, p *Port, want int, d time.Duration) []*dpdkshim.Packet {
	t.Helper()
	var held []*dpdkshim.Packet
	pkts := make([]*dpdkshim.Packet, 64)
	deadline := time.Now().Add(d)
	for len(held) < want && time.Now().Before(deadline) {
		n := p.RxBurst(0, pkts)
		held = append(held, pkts[:n]...)
		if n == 0 {
			waitReadable(p, 5*time.Millisecond)
		}
	}
	return held
}

// TestRxRing_BlockReturnsWhenLastPacketReleased: ring blocks whose packets the stack still
// holds stay the user's (the kernel freezes and drops rather than overwrite them) and are
// not walked again; when another goroutine frees the packets, in a batch, the blocks go
// back to the kernel and new frames flow.
func TestRxRing_BlockReturnsWhenLastPacketReleased(t *testing.T) {
	v := newVethPair(t)
	// Blocks retire only when full (a minute's timeout), however slowly frames come.
	p := openIn(t, v, Config{RxRing: true, RxBlockSize: 4096, RxBlockCount: 4, RxRetireTimeout: time.Minute})
	pr := openPeer(t, v, false, false)
	r := rand.New(rand.NewPCG(12, 12))
	ring := p.queues[0].rx
	sent := map[string]bool{}
	send := func(n int) {
		for i := 0; i < n; i++ {
			f := rawFrame(r, v.MACA, v.MACB, 1000)
			sent[string(f)] = true
			require.NoError(t, pr.send(f))
		}
	}
	// Three frames a block: with the TPACKET header, sockaddr_ll and virtio-net header in
	// front, a 1014-byte frame takes 1112 bytes, and four of them do not fit 4096. The
	// 13th frame retires the fourth block and finds the first one still the user's: the
	// kernel freezes the ring and drops it.
	send(13)
	waitKernel(t, p, 13)
	held := receiveHeld(t, p, 12, 5*time.Second)
	require.Len(t, held, 12)
	for b := 0; b < 4; b++ {
		require.NotZero(t, atomic.LoadUint32(ring.status(b))&tpStatusUser, "block %d is held", b)
		require.Equal(t, int32(3), ring.refs[b].n.Load(), "block %d: three packets out", b)
	}
	// More frames find no free block: dropped, and the held blocks are not walked again.
	send(5)
	waitKernel(t, p, 18)
	require.Empty(t, receiveHeld(t, p, 1, 100*time.Millisecond))
	for _, pk := range held {
		require.True(t, sent[string(pk.Data())], "a held packet's bytes are intact")
	}
	// Another goroutine frees them, as a shard frees a packet handed to it.
	for _, pk := range held {
		pk.MarkAlien()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var fb dpdkshim.FreeBatch
		for _, pk := range held {
			fb.Free(pk)
		}
		fb.Flush()
	}()
	<-done
	for b := 0; b < 4; b++ {
		require.Zero(t, ring.refs[b].n.Load())
		require.Equal(t, uint32(tpStatusKernel), atomic.LoadUint32(ring.status(b)), "block %d went back", b)
	}
	// Seven frames fill two blocks again (the seventh retires the second).
	send(7)
	rx := collect(t, p, 6, 5*time.Second)
	require.Len(t, rx, 6)
	for _, g := range rx {
		require.True(t, sent[string(g.frame)])
	}
	st := p.Stats()[0]
	require.Equal(t, uint64(18), st.RxPackets)
	require.Equal(t, uint64(6), st.RxKernelDrops)
	require.Positive(t, st.RxFreezes)
	bare := ring.bare
	require.Equal(t, bare.Total(), countPool(bare), "every bare descriptor came home")
}

// countPool takes every packet out of a pool and puts them back, counting them.
func countPool(pool *dpdkshim.Pool) int {
	var all []*dpdkshim.Packet
	for pk := pool.Get(); pk != nil && len(all) < pool.Total(); pk = pool.Get() {
		all = append(all, pk)
	}
	for _, pk := range all {
		pk.Free()
	}
	return len(all)
}

func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// mapped reports whether a mapping starts at the address of b.
func mapped(t testing.TB, b []byte) bool {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	require.NoError(t, err)
	start := strconv.FormatUint(uint64(uintptr(unsafe.Pointer(&b[0]))), 16) + "-"
	for _, line := range strings.Split(string(maps), "\n") {
		if strings.HasPrefix(line, start) {
			return true
		}
	}
	return false
}

// TestPort_CloseReleasesEverything: Close closes every socket and unmaps every ring (no file
// descriptor or mapping outlives the port), a second Close does nothing, and bursts after
// Close return nothing rather than touch a closed socket.
func TestPort_CloseReleasesEverything(t *testing.T) {
	for _, m := range []mode{{"mmsg", Config{}}, {"rings", Config{RxRing: true, TxRing: true}}} {
		t.Run(m.name, func(t *testing.T) {
			v := newVethPair(t)
			pr := openPeer(t, v, false, true)
			fds := countFDs(t)
			cfg := m.cfg
			cfg.Queues = 2
			p := openIn(t, v, cfg)
			require.Equal(t, fds+2, countFDs(t), "one socket per queue")
			var rings [][]byte
			for _, q := range p.queues {
				if q.ring != nil {
					rings = append(rings, q.ring)
					require.True(t, mapped(t, q.ring))
				}
			}
			require.Equal(t, m.cfg.RxRing, len(rings) == 2)
			r := rand.New(rand.NewPCG(13, 13))
			require.Len(t, sendAndCollect(t, p, pr, kernelFrames(v, r)[:100]), 100)
			txAll(t, p, 1, []*dpdkshim.Packet{packetOf(t, p, 1, rawFrame(r, v.MACB, v.MACA, 64))}, time.Second)

			require.NoError(t, p.Close())
			require.NoError(t, p.Close(), "idempotent")
			require.Equal(t, fds, countFDs(t), "no socket left open")
			for _, b := range rings {
				require.False(t, mapped(t, b), "ring unmapped")
			}
			pkts := make([]*dpdkshim.Packet, 8)
			require.Zero(t, p.RxBurst(0, pkts))
			pk := p.Pool(0).Get()
			require.Zero(t, p.TxBurst(0, []*dpdkshim.Packet{pk}))
			pk.Free()
			require.Len(t, p.Stats(), 2)
		})
	}
}

// TestRxRing_CloseWithHeldPacket: closing a port while the stack still holds a ring packet
// closes the socket but leaves the ring mapped, says so, and the packet's bytes stay valid
// until it is freed.
func TestRxRing_CloseWithHeldPacket(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{RxRing: true, RxBlockSize: 4096, RxBlockCount: 2})
	pr := openPeer(t, v, false, false)
	f := rawFrame(rand.New(rand.NewPCG(14, 14)), v.MACA, v.MACB, 300)
	require.NoError(t, pr.send(f))
	held := receiveHeld(t, p, 1, 5*time.Second)
	require.Len(t, held, 1)
	ring := p.queues[0].ring
	err := p.Close()
	require.ErrorContains(t, err, "1 ring packets still held")
	require.True(t, mapped(t, ring))
	require.Equal(t, f, held[0].Data())
	held[0].Free()
}

// checkSteering sends every kind of frame from the peer and checks that each arrives, on
// FrameQueue's queue among the first n.
func checkSteering(t *testing.T, v *vethPair, p *Port, pr *peer, n int, seed uint32) {
	t.Helper()
	frames := kernelFrames(v, rand.New(rand.NewPCG(uint64(n), 15)))[:600]
	rx := sendAndCollect(t, p, pr, frames)
	require.Len(t, rx, len(frames))
	per := make([]int, p.NumQueues())
	for _, g := range rx {
		require.Equal(t, dpdkshim.Symmetric{Seed: seed}.FrameQueue(g.frame, n), g.queue)
		per[g.queue]++
	}
	for q := range per {
		require.Equal(t, q < n, per[q] > 0, "queue %d got %d frames", q, per[q])
	}
}

// TestPort_UseQueuesConfinesSteering: a stack with fewer shards than the port has queues
// confines it (dpdkshim.QueueLimiter): the group's program then spreads frames over the
// first n queues by FrameQueue(frame, n), and the rest get nothing; n = 0 restores all.
func TestPort_UseQueuesConfinesSteering(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{Queues: 3, SteerSeed: 3})
	pr := openPeer(t, v, false, false)
	var ql dpdkshim.QueueLimiter = p
	ql.UseQueues(2)
	require.NoError(t, p.UseQueuesErr())
	checkSteering(t, v, p, pr, 2, 3)
	ql.UseQueues(0)
	require.NoError(t, p.UseQueuesErr())
	checkSteering(t, v, p, pr, 3, 3)
}

// TestPort_SteeringSurvivesLinkFlap: when the interface goes down and up, the kernel takes
// the sockets out of the fanout group and puts them back in the order they were created,
// which is queue order: steering still matches FrameQueue.
func TestPort_SteeringSurvivesLinkFlap(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{Queues: 3, SteerSeed: 4})
	pr := openPeer(t, v, false, false)
	checkSteering(t, v, p, pr, 3, 4)
	v.a.SetUp(t, v.IfA, false)
	v.a.SetUp(t, v.IfA, true)
	waitUp(t, v)
	checkSteering(t, v, p, pr, 3, 4)
}

// waitUp waits (bounded) until both veth ends report carrier again.
func waitUp(t testing.TB, v *vethPair) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		a := v.a.Run(t, "ip", "-br", "link", "show", "dev", v.IfA)
		b := v.b.Run(t, "ip", "-br", "link", "show", "dev", v.IfB)
		if strings.Contains(a, " UP ") && strings.Contains(b, " UP ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the veth did not come back up")
}

// TestTxRing_FullRingReturnsFewer: while the interface is down the kernel sends nothing, so
// the ring fills: TxBurst takes as many frames as there are slots and the caller keeps the
// rest; once the link is back, the queued frames go out (the next burst asks the kernel
// again) and then the rest, in order.
func TestTxRing_FullRingReturnsFewer(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{TxRing: true, TxFrames: 64})
	require.Equal(t, 64, p.queues[0].tx.frames)
	pr := openPeer(t, v, false, true)
	v.a.SetUp(t, v.IfA, false)
	r := rand.New(rand.NewPCG(16, 16))
	var frames [][]byte
	var pkts []*dpdkshim.Packet
	for i := 0; i < 100; i++ {
		f := rawFrame(r, v.MACB, v.MACA, 100+i)
		frames = append(frames, f)
		pkts = append(pkts, packetOf(t, p, 0, f))
	}
	require.Equal(t, 64, p.TxBurst(0, pkts), "one frame per slot")
	require.Zero(t, p.TxBurst(0, pkts[64:]), "the ring is full")
	st := p.Stats()[0]
	require.Equal(t, uint64(2), st.TxFull)
	require.Positive(t, st.TxErrors, "send(2) failed: the link is down")
	require.True(t, p.TxPending(0), "frames wait in the ring: the stack must not sleep unbounded")
	v.a.SetUp(t, v.IfA, true)
	waitUp(t, v)
	txAll(t, p, 0, pkts[64:], 5*time.Second)
	for i, want := range frames {
		f, _, err := pr.recv(5 * time.Second)
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, want, f, "frame %d, in order", i)
	}
	require.Equal(t, uint64(100), p.Stats()[0].TxPackets)
	require.False(t, p.TxPending(0), "the kernel took every frame")
}

// TestPort_TransmitWhileDownDrops: sendmmsg to a down interface fails frame by frame; each
// is dropped and counted, the burst is taken whole (no retry loop), the packets go home.
func TestPort_TransmitWhileDownDrops(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{})
	v.a.SetUp(t, v.IfA, false)
	r := rand.New(rand.NewPCG(17, 17))
	var pkts []*dpdkshim.Packet
	for i := 0; i < 10; i++ {
		pkts = append(pkts, packetOf(t, p, 0, rawFrame(r, v.MACB, v.MACA, 100)))
	}
	require.Equal(t, 10, p.TxBurst(0, pkts))
	st := p.Stats()[0]
	require.Equal(t, uint64(10), st.TxDropped)
	require.Equal(t, uint64(10), st.TxErrors)
	require.Zero(t, st.TxPackets)
	require.Equal(t, p.Pool(0).Total(), p.Pool(0).Available())
}

// TestOpen_Errors: a missing or down interface and impossible ring geometry are refused
// with a clear error, and leave no socket behind.
func TestOpen_Errors(t *testing.T) {
	v := newVethPair(t)
	fds := countFDs(t)
	try := func(cfg Config) (err error) {
		require.NoError(t, v.a.Do(func() error {
			var p *Port
			p, err = Open(cfg)
			if p != nil {
				p.Close()
			}
			return nil
		}))
		return err
	}
	require.ErrorIs(t, try(Config{Interface: "nope0"}), ErrNoInterface)
	require.ErrorIs(t, try(Config{Interface: v.IfA, RxRing: true, RxBlockSize: 5000}), ErrConfig)
	require.ErrorIs(t, try(Config{Interface: v.IfA, TxRing: true, TxFrameSize: 3000}), ErrConfig)
	// Frames per block times blocks overflows: the kernel refuses before it allocates.
	require.ErrorContains(t, try(Config{Interface: v.IfA, Queues: 2, FanoutID: 7, RxRing: true, RxFrameSize: 80, RxBlockCount: 1 << 21}), "PACKET_RX_RING")
	v.a.SetUp(t, v.IfA, false)
	require.ErrorContains(t, try(Config{Interface: v.IfA}), "is down")
	require.Equal(t, fds, countFDs(t))
}

// TestOpen_ConfigErrors: Open says what is wrong with its configuration before it touches
// a socket (no privileges needed).
func TestOpen_ConfigErrors(t *testing.T) {
	_, err := Open(Config{})
	require.ErrorIs(t, err, ErrConfig)
	_, err = Open(Config{Interface: "no-such-if0"})
	require.Error(t, err)
}

// TestPort_RxNoBufferCounted: when the stack holds every receive buffer the pool may own,
// RxBurst cannot post one: it returns nothing and counts the burst (no silent stall), and
// the frames wait in the socket until buffers come back.
func TestPort_RxNoBufferCounted(t *testing.T) {
	v := newVethPair(t)
	p := openIn(t, v, Config{Burst: 1, RxPoolSize: 1}) // the pool may own 16 buffers
	pr := openPeer(t, v, false, false)
	r := rand.New(rand.NewPCG(18, 18))
	for i := 0; i < 20; i++ {
		require.NoError(t, pr.send(rawFrame(r, v.MACA, v.MACB, 100)))
	}
	waitKernel(t, p, 20)
	held := receiveHeld(t, p, 16, 5*time.Second)
	require.Len(t, held, 16)
	pkts := make([]*dpdkshim.Packet, 1)
	require.Zero(t, p.RxBurst(0, pkts))
	require.Equal(t, uint64(1), p.Stats()[0].RxNoBuffer)
	for _, pk := range held {
		pk.Free()
	}
	require.Len(t, collect(t, p, 4, 5*time.Second), 4)
	require.Zero(t, p.Stats()[0].RxKernelDrops)
}

// TestPort_TwoPortsOneInterface: two ports on one interface get fanout groups of their own
// (derived IDs do not collide) and each sees every frame; an explicit ID already taken is
// refused.
func TestPort_TwoPortsOneInterface(t *testing.T) {
	v := newVethPair(t)
	a := openIn(t, v, Config{Queues: 2})
	b := openIn(t, v, Config{Queues: 2})
	require.NotEqual(t, a.FanoutID(), b.FanoutID())
	pr := openPeer(t, v, false, false)
	frames := kernelFrames(v, rand.New(rand.NewPCG(19, 19)))[:200]
	for _, f := range frames {
		require.NoError(t, pr.send(f))
	}
	require.Len(t, collect(t, a, len(frames), 5*time.Second), len(frames))
	require.Len(t, collect(t, b, len(frames), 5*time.Second), len(frames))
	require.NoError(t, v.a.Do(func() error {
		_, err := Open(Config{Interface: v.IfA, FanoutID: a.FanoutID()})
		if err == nil {
			return errors.New("joined another port's fanout group")
		}
		return nil
	}))
}

// logLoss logs, when frames the port sent did not reach the peer, where they may have
// gone: both veth ends' counters (a noop qdisc or a dropping veth shows on A's side), the
// port's counters, the CPUs' backlog drops (/proc/net/softnet_stat, second column), and
// for the transmit ring how many slots are in each state (requested and never sent, or
// still sending).
func logLoss(t *testing.T, v *vethPair, p *Port) {
	t.Helper()
	t.Logf("port side %s: %+v", v.IfA, v.a.LinkStats(t, v.IfA))
	t.Logf("peer side %s: %+v", v.IfB, v.b.LinkStats(t, v.IfB))
	t.Logf("port counters: %+v", p.Stats())
	if sn, err := os.ReadFile("/proc/net/softnet_stat"); err == nil {
		t.Logf("softnet_stat:\n%s", sn)
	}
	for _, q := range p.queues {
		if q.tx == nil {
			continue
		}
		states := map[uint32]int{}
		for i := 0; i < q.tx.frames; i++ {
			states[atomic.LoadUint32(u32(q.tx.mem, q.tx.slot(i)+pktStatus))]++
		}
		t.Logf("queue %d transmit ring: slots by status %v, pending %v", q.id, states, q.tx.pending)
	}
}

package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// The tests' wire: a network namespace from internal/netns with the TUN device in it; the
// port is shardstack's side (198.18.0.1), the kernel of the namespace the Linux side
// (198.18.0.2, point-to-point to 198.18.0.1), reached through UDP sockets made inside it.

var (
	portAddr  = [4]byte{198, 18, 0, 1}
	linuxAddr = [4]byte{198, 18, 0, 2}
)

const devName = "sstun0"

// tunNet is the namespace and the port opened in it.
type tunNet struct {
	ns   *netns.NS
	port *Port
}

// openIn opens a port in ns (on a thread inside it).
func openIn(ns *netns.NS, cfg Config) (*Port, error) {
	var p *Port
	err := ns.Do(func() error {
		var err error
		p, err = Open(cfg)
		return err
	})
	return p, err
}

// newTunNet makes the namespace, opens the port in it with cfg (Name defaults to
// devName), and addresses the Linux side.
func newTunNet(t testing.TB, cfg Config) *tunNet {
	t.Helper()
	n := &tunNet{ns: netns.New(t, "tun")}
	if cfg.Name == "" {
		cfg.Name = devName
	}
	p, err := openIn(n.ns, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	n.port = p
	n.ns.Run(t, "ip", "addr", "add", "198.18.0.2", "peer", "198.18.0.1/32", "dev", cfg.Name)
	return n
}

// udpSocket makes a UDP socket inside the namespace bound to 198.18.0.2:lport and, if
// rport is not 0, connected to 198.18.0.1:rport.
func (n *tunNet) udpSocket(t testing.TB, lport, rport int) int {
	t.Helper()
	var fd int
	require.NoError(t, n.ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: linuxAddr, Port: lport}); err != nil {
			return err
		}
		if rport != 0 {
			return unix.Connect(fd, &unix.SockaddrInet4{Addr: portAddr, Port: rport})
		}
		return nil
	}))
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5}))
	return fd
}

// receive reads packets from every queue until want have arrived or 5 s passed, and
// returns copies of them with the queue each came from.
func receive(t *testing.T, p *Port, want int) (pkts [][]byte, queues []int, flags []dpdkshim.Flags) {
	t.Helper()
	buf := make([]*dpdkshim.Packet, 32)
	deadline := time.Now().Add(5 * time.Second)
	for len(pkts) < want && time.Now().Before(deadline) {
		got := 0
		for q := 0; q < p.NumQueues(); q++ {
			k := p.RxBurst(q, buf)
			for _, pk := range buf[:k] {
				require.Equal(t, q, int(pk.Queue))
				pkts = append(pkts, append([]byte(nil), pk.Data()...))
				queues = append(queues, q)
				flags = append(flags, pk.Flags)
				pk.Free()
			}
			got += k
		}
		if got == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	require.Len(t, pkts, want, "packets that came through the device")
	return pkts, queues, flags
}

// udpPacket builds a UDP/IPv4 packet into b (which it returns resliced); with partial the
// UDP checksum holds only the pseudo-header sum, for the device to complete.
func udpPacket(b []byte, src, dst [4]byte, sport, dport uint16, payload []byte, partial bool) []byte {
	ulen := 8 + len(payload)
	b = b[:20+ulen]
	header.PutIPv4Header(b, uint16(len(b)), header.IPv4FlagDontFragment, 64, header.ProtoUDP, src, dst)
	u := b[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(ulen))
	binary.BigEndian.PutUint16(u[6:], 0)
	copy(u[8:], payload)
	ph := checksum.PseudoHeaderIPv4(src, dst, header.ProtoUDP, uint16(ulen))
	if partial {
		binary.BigEndian.PutUint16(u[6:], checksum.Fold(ph))
	} else {
		binary.BigEndian.PutUint16(u[6:], checksum.Checksum(u, ph))
	}
	return b
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// TestOpen_CreatesAndRemovesDevice: Open creates a multi-queue TUN device in the thread's
// namespace, sets its MTU and brings it up; the device goes away when the port closes.
func TestOpen_CreatesAndRemovesDevice(t *testing.T) {
	ns := netns.New(t, "tun")
	p, err := openIn(ns, Config{Name: devName, Queues: 2, MTU: 1400, QueueLen: 2000})
	require.NoError(t, err)
	require.True(t, p.Created())
	require.Equal(t, "tun:"+devName, p.Name())
	require.Equal(t, 2, p.NumQueues())
	require.Equal(t, 1400, p.MTU())
	require.Equal(t, dpdkshim.LinkIP, dpdkshim.LinkTypeOf(p))
	require.Equal(t, header.MAC{}, p.MAC())
	ifi, err := ns.Interface(devName)
	require.NoError(t, err)
	require.Equal(t, 1400, ifi.MTU)
	require.Contains(t, ns.Run(t, "ip", "link", "show", devName), "qlen 2000")
	require.NotZero(t, ifi.Flags&net.FlagUp, "the device is up")
	for q := 0; q < 2; q++ {
		require.GreaterOrEqual(t, p.RxWait(q).FD, 0)
		require.NotNil(t, p.Pool(q))
	}
	require.Equal(t, dpdkshim.NoWait, p.RxWait(2))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "closing again is a no-op")
	_, err = ns.Interface(devName)
	require.Error(t, err, "the device went with its last descriptor")

	// Without QueueLen the kernel's 500 is raised to DefaultQueueLen, for a device Open
	// makes and for one `ip tuntap add` made; a length someone set is kept.
	p, err = openIn(ns, Config{Name: devName})
	require.NoError(t, err)
	require.Contains(t, ns.Run(t, "ip", "link", "show", devName), fmt.Sprintf("qlen %d", DefaultQueueLen))
	require.NoError(t, p.Close())
	ns.Run(t, "ip", "tuntap", "add", "dev", "sstunq", "mode", "tun", "multi_queue")
	p, err = openIn(ns, Config{Name: "sstunq"})
	require.NoError(t, err)
	require.Contains(t, ns.Run(t, "ip", "link", "show", "sstunq"), fmt.Sprintf("qlen %d", DefaultQueueLen))
	require.NoError(t, p.Close())
	ns.Run(t, "ip", "link", "set", "sstunq", "txqueuelen", "800")
	p, err = openIn(ns, Config{Name: "sstunq"})
	require.NoError(t, err)
	require.Contains(t, ns.Run(t, "ip", "link", "show", "sstunq"), "qlen 800")
	require.NoError(t, p.Close())
}

// TestOpen_AttachesToPersistentDevice: an existing persistent multi-queue device is
// attached to and stays when the port closes; a single-queue one, or an interface that
// is no TUN device, is refused with ErrNotTUN.
func TestOpen_AttachesToPersistentDevice(t *testing.T) {
	ns := netns.New(t, "tun")
	ns.Run(t, "ip", "tuntap", "add", "dev", "sstunp", "mode", "tun", "multi_queue")
	ns.Run(t, "ip", "tuntap", "add", "dev", "sstun1", "mode", "tun")
	p, err := openIn(ns, Config{Name: "sstunp", Queues: 2})
	require.NoError(t, err)
	require.False(t, p.Created())
	require.NoError(t, p.Close())
	_, err = ns.Interface("sstunp")
	require.NoError(t, err, "a persistent device stays")
	p, err = openIn(ns, Config{Name: "sstunp", Queues: 3})
	require.NoError(t, err, "and can be attached again")
	require.NoError(t, p.Close())

	before := openFDs(t)
	for _, name := range []string{"sstun1", "lo"} {
		_, err = openIn(ns, Config{Name: name, Queues: 2})
		require.ErrorIs(t, err, ErrNotTUN, name)
	}
	require.Equal(t, before, openFDs(t), "no descriptor is left behind")
	for _, bad := range []Config{{}, {Name: strings.Repeat("x", 16)}, {Name: "a", MTU: 20}, {Name: "a", GSO: true}, {Name: "a", QueueLen: -1}} {
		_, err = openIn(ns, bad)
		require.ErrorIs(t, err, ErrConfig, "%+v", bad)
	}
}

// TestOpen_AttachResetsOffloads: a persistent device keeps the offloads of its last user;
// a port opened without the vnet header turns them off, so Linux completes its checksums
// again instead of leaving them partial with nothing to say so.
func TestOpen_AttachResetsOffloads(t *testing.T) {
	ns := netns.New(t, "tun")
	ns.Run(t, "ip", "tuntap", "add", "dev", devName, "mode", "tun", "multi_queue")
	ns.Run(t, "ip", "addr", "add", "198.18.0.2", "peer", "198.18.0.1/32", "dev", devName)
	for i, cfg := range []Config{{VnetHdr: true, GSO: true}, {}} {
		cfg.Name, cfg.Queues = devName, 2
		p, err := openIn(ns, cfg)
		require.NoError(t, err)
		n := &tunNet{ns: ns, port: p}
		fd := n.udpSocket(t, 9000+i, 7)
		_, err = unix.Write(fd, []byte("checksum"))
		require.NoError(t, err)
		pkts, _, flags := receive(t, p, 1)
		ip, err := header.ParseIPv4(pkts[0])
		require.NoError(t, err)
		u := ip.Payload()
		full := checksum.Fold(checksum.Partial(u, checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoUDP, uint16(len(u))))) == 0xffff
		require.Equal(t, !cfg.VnetHdr, full, "vnet %v: the checksum is complete unless the header says it is partial", cfg.VnetHdr)
		require.Equal(t, cfg.VnetHdr, flags[0] == dpdkshim.CsumVerified)
		require.NoError(t, p.Close())
	}
}

// TestOpen_FailureCleansUp: when Open fails after the queues are attached, it closes
// every descriptor and the device it created goes away.
func TestOpen_FailureCleansUp(t *testing.T) {
	ns := netns.New(t, "tun")
	before := openFDs(t)
	failAt = func(stage string) error {
		if stage == "attached" {
			return errors.New("injected")
		}
		return nil
	}
	t.Cleanup(func() { failAt = nil })
	_, err := openIn(ns, Config{Name: devName, Queues: 4})
	require.ErrorContains(t, err, "injected")
	require.Equal(t, before, openFDs(t))
	_, err = ns.Interface(devName)
	require.Error(t, err, "the device Open created is gone")
}

// TestOpen_SteeringFallback: when the steering program cannot be attached the port says
// so in a log line, reports no steering (the stack then hands packets over), and works.
func TestOpen_SteeringFallback(t *testing.T) {
	failAt = func(stage string) error {
		if stage == "steer" {
			return unix.EPERM
		}
		return nil
	}
	t.Cleanup(func() { failAt = nil })
	var mu sync.Mutex
	var logged []string
	n := newTunNet(t, Config{Queues: 2, Logf: func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	require.Nil(t, n.port.Steering())
	require.Contains(t, n.port.SteeredBy(), "automatic")
	require.Len(t, logged, 1)
	require.Contains(t, logged[0], "automatic steering")
	require.Contains(t, logged[0], "operation not permitted")
	fd := n.udpSocket(t, 9000, 7)
	_, err := unix.Write(fd, []byte("hello"))
	require.NoError(t, err)
	pkts, _, _ := receive(t, n.port, 1)
	require.Equal(t, "hello", string(pkts[0][28:]))

	// NoSteer says the same without a log line.
	failAt = nil
	n2 := newTunNet(t, Config{Name: "sstun9", Queues: 2, NoSteer: true, Logf: func(string, ...any) { t.Error("no log expected") }})
	require.Nil(t, n2.port.Steering())
}

// TestPort_UDPBothWays: packets Linux sends to 198.18.0.1 come out of the port whole; a
// packet the port transmits reaches a Linux socket. With the virtio-net header, packets
// arrive with their checksum partial and marked verified, and a packet sent with its
// checksum left to the device (SetTxCsum) is completed by the kernel, which delivers it.
func TestPort_UDPBothWays(t *testing.T) {
	for _, vnet := range []bool{false, true} {
		t.Run(fmt.Sprintf("vnet=%v", vnet), func(t *testing.T) {
			n := newTunNet(t, Config{Queues: 2, VnetHdr: vnet})
			require.Equal(t, vnet, n.port.Offloads().RxCsum)
			require.Equal(t, vnet, n.port.Offloads().TxCsum)
			fd := n.udpSocket(t, 9000, 7)
			for i := 0; i < 10; i++ {
				_, err := unix.Write(fd, []byte(fmt.Sprintf("packet %d", i)))
				require.NoError(t, err)
			}
			pkts, _, flags := receive(t, n.port, 10)
			for i, pk := range pkts {
				ip, err := header.ParseIPv4(pk)
				require.NoError(t, err)
				require.Equal(t, linuxAddr, ip.Src())
				require.Equal(t, portAddr, ip.Dst())
				require.Equal(t, header.ProtoUDP, ip.Protocol())
				require.Equal(t, fmt.Sprintf("packet %d", i), string(ip.Payload()[8:]))
				if vnet {
					require.Equal(t, dpdkshim.CsumVerified, flags[i])
				} else {
					require.Zero(t, flags[i])
					u := ip.Payload()
					require.Zero(t, checksum.Fold(checksum.Partial(u, checksum.PseudoHeaderIPv4(ip.Src(), ip.Dst(), header.ProtoUDP, uint16(len(u)))))^0xffff,
						"a complete checksum without offload")
				}
			}
			for q := 0; q < 2; q++ {
				pk := n.port.Pool(q).Get()
				buf := pk.Buffer()[pk.Headroom():]
				b := udpPacket(buf, portAddr, linuxAddr, 7, 9000, []byte(fmt.Sprintf("reply %d", q)), vnet)
				pk.SetLen(len(b))
				if vnet {
					pk.SetTxCsum(20, 26)
				}
				require.Equal(t, 1, n.port.TxBurst(q, []*dpdkshim.Packet{pk}))
				got := make([]byte, 64)
				k, err := unix.Read(fd, got)
				require.NoError(t, err, "the kernel delivered what the port wrote")
				require.Equal(t, fmt.Sprintf("reply %d", q), string(got[:k]))
			}
			st := n.port.Stats()
			var rx, tx, calls uint64
			for _, s := range st {
				rx += s.RxPackets
				tx += s.TxPackets
				calls += s.RxSyscalls
				require.Zero(t, s.RxErrors+s.RxTruncated+s.TxDropped+s.TxErrors)
			}
			require.Equal(t, uint64(10), rx)
			require.Equal(t, uint64(2), tx)
			require.GreaterOrEqual(t, calls, rx)
			ds, err := n.port.DeviceStats()
			require.NoError(t, err)
			require.GreaterOrEqual(t, ds.TxPackets, uint64(10), "the device queued what the port read")
			require.Equal(t, uint64(2), ds.RxPackets, "and took what it wrote")
			require.Zero(t, ds.TxDropped+ds.RxDropped)
		})
	}
}

// TestPort_SteeringOnRealPackets: with the steering program attached, every packet of 256
// flows that Linux sends through a 4-queue device arrives on the queue that
// Symmetric.IPQueue, and so the stack's Steering, names for it.
func TestPort_SteeringOnRealPackets(t *testing.T) {
	const queues = 4
	n := newTunNet(t, Config{Queues: queues, SteerSeed: 0x5eed})
	s, ok := n.port.Steering().(dpdkshim.Symmetric)
	require.True(t, ok, "steered by %s", n.port.SteeredBy())
	require.Equal(t, uint32(0x5eed), s.Seed)
	fd := n.udpSocket(t, 0, 0)
	const flows = 256
	for i := 0; i < flows; i++ {
		sa := &unix.SockaddrInet4{Addr: portAddr, Port: 1000 + i}
		for k := 0; k < 2; k++ {
			require.NoError(t, unix.Sendto(fd, []byte("x"), 0, sa))
		}
	}
	pkts, qs, _ := receive(t, n.port, 2*flows)
	spread := make([]int, queues)
	for i, pk := range pkts {
		require.Equal(t, s.IPQueue(pk, queues), qs[i], "packet % x", pk)
		spread[qs[i]]++
	}
	for q, c := range spread {
		require.Greater(t, c, flows/8, "queue %d took its share: %v", q, spread)
	}
}

// TestPort_RxTxAllocatesNothing: receiving a burst from the device and writing packets to
// it allocates nothing.
func TestPort_RxTxAllocatesNothing(t *testing.T) {
	for _, vnet := range []bool{false, true} {
		t.Run(fmt.Sprintf("vnet=%v", vnet), func(t *testing.T) {
			n := newTunNet(t, Config{Queues: 1, VnetHdr: vnet})
			fd := n.udpSocket(t, 9000, 7)
			msg, got := []byte("ping"), make([]byte, 64)
			rx, tx := make([]*dpdkshim.Packet, 8), make([]*dpdkshim.Packet, 1)
			cycle := func() {
				for i := 0; i < 4; i++ {
					if _, err := unix.Write(fd, msg); err != nil {
						panic(err)
					}
				}
				for got := 0; got < 4; {
					k := n.port.RxBurst(0, rx)
					for _, p := range rx[:k] {
						p.Free()
					}
					got += k
				}
				pk := n.port.Pool(0).Get()
				b := udpPacket(pk.Buffer()[pk.Headroom():], portAddr, linuxAddr, 7, 9000, msg, vnet)
				pk.SetLen(len(b))
				if vnet {
					pk.SetTxCsum(20, 26)
				}
				tx[0] = pk
				if n.port.TxBurst(0, tx) != 1 {
					panic("not sent")
				}
				if _, err := unix.Read(fd, got); err != nil {
					panic(err)
				}
			}
			for i := 0; i < 50; i++ {
				cycle()
			}
			require.Zero(t, testing.AllocsPerRun(200, cycle))
			st := n.port.Stats()[0]
			require.GreaterOrEqual(t, st.RxPackets, uint64(4*250))
			require.GreaterOrEqual(t, st.TxPackets, uint64(250))
		})
	}
}

// TestPort_KernelDropsCounted: packets the kernel cannot queue because the port does not
// read them are counted by the device, and DeviceStats reports them.
func TestPort_KernelDropsCounted(t *testing.T) {
	n := newTunNet(t, Config{Queues: 1, QueueLen: 500})
	fd := n.udpSocket(t, 9000, 7)
	for i := 0; i < 1000; i++ { // the device queues 500 (its txqueuelen)
		_, err := unix.Write(fd, []byte("x"))
		require.NoError(t, err)
	}
	read := 0
	buf := make([]*dpdkshim.Packet, 64)
	for k := n.port.RxBurst(0, buf); k > 0; k = n.port.RxBurst(0, buf) {
		for _, p := range buf[:k] {
			p.Free()
		}
		read += k
	}
	ds, err := n.port.DeviceStats()
	require.NoError(t, err)
	require.Positive(t, ds.TxDropped, "%+v", ds)
	require.Equal(t, uint64(read), ds.TxPackets, "the device counts what was read")
	require.Equal(t, uint64(1000), ds.TxPackets+ds.TxDropped, "%+v", ds)
	require.NoError(t, n.port.Close())
	_, err = n.port.DeviceStats()
	require.Error(t, err)
}

// TestPort_GSOTxAllocatesNothing: with GSO, coalescing a run of segments into one
// super-packet and writing it allocates nothing, and it is one write.
func TestPort_GSOTxAllocatesNothing(t *testing.T) {
	n := newTunNet(t, Config{Queues: 1, VnetHdr: true, GSO: true})
	pool := n.port.Pool(0)
	pkts := make([]*dpdkshim.Packet, 8)
	rx := make([]*dpdkshim.Packet, 8)
	body := payload(1000, 3)
	seq := uint32(1)
	cycle := func() {
		for i := range pkts {
			pkts[i] = seg(pool, 4000, seq, header.TCPFlagACK, nil, body)
			seq += 1000
		}
		if n.port.TxBurst(0, pkts) != len(pkts) {
			panic("not taken")
		}
		for k := n.port.RxBurst(0, rx); k > 0; k = n.port.RxBurst(0, rx) { // Linux's resets
			for _, p := range rx[:k] {
				p.Free()
			}
		}
	}
	for i := 0; i < 20; i++ {
		cycle()
	}
	before := n.port.Stats()[0]
	require.Zero(t, testing.AllocsPerRun(100, cycle))
	after := n.port.Stats()[0]
	require.Equal(t, after.TxSuper-before.TxSuper, after.TxSyscalls-before.TxSyscalls, "one write per run")
	require.Equal(t, 8*(after.TxSuper-before.TxSuper), after.TxPackets-before.TxPackets)
	require.Zero(t, after.TxDropped)
}

// TestPort_IPv6SteeringOnRealPackets: the device carries IPv6 as it does IPv4, and the
// steering program sends every UDP/IPv6 packet of 128 flows Linux sends (fd00::2 to
// fd00::1, inside the namespace) to the queue Symmetric.IPQueue names.
func TestPort_IPv6SteeringOnRealPackets(t *testing.T) {
	const queues = 4
	ns := netns.New(t, "tun6")
	ns.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "0")
	ns.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "0")
	p, err := openIn(ns, Config{Name: devName, Queues: queues, SteerSeed: 77})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	ns.Sysctl(t, "net.ipv6.conf."+devName+".disable_ipv6", "0")
	ns.Run(t, "ip", "-6", "addr", "add", "fd00::2", "peer", "fd00::1/128", "dev", devName, "nodad")
	local, peer := [16]byte{0xfd, 15: 2}, [16]byte{0xfd, 15: 1}
	var fd int
	require.NoError(t, ns.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrInet6{Addr: local})
	}))
	t.Cleanup(func() { unix.Close(fd) })
	const flows = 128
	for i := 0; i < flows; i++ {
		sa := &unix.SockaddrInet6{Addr: peer, Port: 2000 + i}
		err := unix.Sendto(fd, []byte("six"), 0, sa)
		// The kernel installs the peer's route a moment after ip returns.
		for deadline := time.Now().Add(5 * time.Second); err == unix.ENETUNREACH && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
			err = unix.Sendto(fd, []byte("six"), 0, sa)
		}
		require.NoError(t, err)
	}
	s := p.Steering().(dpdkshim.Symmetric)
	spread := make([]int, queues)
	buf := make([]*dpdkshim.Packet, 32)
	got := 0
	for deadline := time.Now().Add(5 * time.Second); got < flows && time.Now().Before(deadline); {
		k := 0
		for q := 0; q < queues; q++ {
			n := p.RxBurst(q, buf)
			for _, pk := range buf[:n] {
				d := pk.Data()
				if len(d) >= 48 && d[0]>>4 == 6 && d[6] == header.ProtoUDP { // not the kernel's ICMPv6
					require.Equal(t, s.IPQueue(d, queues), q, "packet % x", d)
					spread[q]++
					got++
				}
				pk.Free()
			}
			k += n
		}
		if k == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	require.Equal(t, flows, got)
	for q, c := range spread {
		require.Positive(t, c, "queue %d: %v", q, spread)
	}
}

// TestPort_DeviceDeleted: when the device is deleted under the port (ip link del), each
// queue stops at its next burst with one log line, its descriptor leaves the epoll set
// (which would otherwise report it ready with an error forever and make the shard spin),
// and what the stack still transmits is dropped and counted.
func TestPort_DeviceDeleted(t *testing.T) {
	var mu sync.Mutex
	var logged []string
	n := newTunNet(t, Config{Queues: 2, Logf: func(f string, a ...any) {
		mu.Lock()
		logged = append(logged, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(ep)
	for q := 0; q < 2; q++ {
		fd := n.port.RxWait(q).FD
		require.NoError(t, unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}))
	}
	events := make([]unix.EpollEvent, 4)
	k, err := unix.EpollWait(ep, events, 0)
	require.NoError(t, err)
	require.Zero(t, k, "an idle device is not ready")
	n.ns.Run(t, "ip", "link", "del", devName)
	k, err = unix.EpollWait(ep, events, 1000)
	require.NoError(t, err)
	require.Positive(t, k, "a deleted device's descriptors are ready with an error")
	buf := make([]*dpdkshim.Packet, 8)
	for q := 0; q < 2; q++ {
		require.Zero(t, n.port.RxBurst(q, buf))
	}
	k, err = unix.EpollWait(ep, events, 0)
	require.NoError(t, err)
	require.Zero(t, k, "the stopped queues left the epoll set")
	require.Len(t, logged, 2)
	require.Contains(t, logged[0], "the device is gone")
	pk := n.port.Pool(0).Get()
	pk.SetData([]byte{0x45})
	require.Equal(t, 1, n.port.TxBurst(0, []*dpdkshim.Packet{pk}))
	require.Equal(t, uint64(1), n.port.Stats()[0].TxDropped)
	require.NoError(t, n.port.Close())
}

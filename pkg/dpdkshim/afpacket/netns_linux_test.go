package afpacket

// The tests' wire: two network namespaces from internal/netns joined by a veth pair, the
// port opened in one of them, and a raw packet socket on the peer side.

import (
	"fmt"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/internal/netns"
)

// vethPair is namespace A (the port's side: its veth end has no address, the kernel stays
// out of the way) and namespace B (a Linux peer at 198.18.0.2/24 that reaches 198.18.0.1,
// the port's side, through a permanent neighbour entry).
type vethPair struct {
	a, b         *netns.NS
	IfA, IfB     string
	MACA, MACB   net.HardwareAddr
	AddrA, AddrB netip.Addr
}

// newVethPair makes the two namespaces and the veth pair; their cleanups remove them even
// when the test fails. It skips the test unless the process can make namespaces
// (netns.Require) and packet sockets.
func newVethPair(t testing.TB) *vethPair {
	t.Helper()
	netns.Require(t)
	requirePacketSockets(t)
	v := &vethPair{
		a: netns.New(t, "port"), b: netns.New(t, "peer"),
		IfA: "afpa0", IfB: "afpb0",
		AddrA: netip.MustParseAddr("198.18.0.1"),
		AddrB: netip.MustParseAddr("198.18.0.2"),
	}
	netns.Veth(t, v.a, v.IfA, v.b, v.IfB)
	var err error
	v.MACA, err = v.a.MAC(v.IfA)
	require.NoError(t, err)
	v.MACB, err = v.b.MAC(v.IfB)
	require.NoError(t, err)
	v.b.AddAddr(t, v.IfB, netip.PrefixFrom(v.AddrB, 24).String())
	v.b.AddNeighbor(t, v.IfB, v.AddrA.String(), v.MACA)
	v.waitRunning(t)
	return v
}

// waitRunning waits (bounded) until both veth ends are operationally up (IFF_RUNNING).
// The end brought up first gets carrier only when the second comes up, and the kernel
// activates its transmit queue later, from the link-watch work (which needs the RTNL
// lock, so a loaded machine can delay it): until then the device's qdisc is noop, which
// drops every frame while af_packet reports it sent. The link-watch work sets the
// operational state just before it activates the queue.
func (v *vethPair) waitRunning(t testing.TB) {
	t.Helper()
	running := func(ns *netns.NS, dev string) bool {
		ifi, err := ns.Interface(dev)
		require.NoError(t, err)
		return ifi.Flags&net.FlagRunning != 0
	}
	deadline := time.Now().Add(10 * time.Second)
	for !running(v.a, v.IfA) || !running(v.b, v.IfB) {
		require.True(t, time.Now().Before(deadline), "the veth ends are not both running")
		time.Sleep(5 * time.Millisecond)
	}
}

// requirePacketSockets skips the test unless the process may open packet sockets
// (CAP_NET_RAW).
func requirePacketSockets(t testing.TB) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("needs CAP_NET_RAW (run as root) for packet sockets: %v", err)
	}
	unix.Close(fd)
}

// openIn opens a port on the A side of v.
func openIn(t testing.TB, v *vethPair, cfg Config) *Port {
	t.Helper()
	cfg.Interface = v.IfA
	var p *Port
	require.NoError(t, v.a.Do(func() (err error) {
		p, err = Open(cfg)
		return err
	}))
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// peer is a raw packet socket on the B side: it sends frames as a Linux application would
// (optionally behind a virtio-net header of its own) and receives what reaches B.
type peer struct {
	fd   int
	vnet bool
}

func openPeer(t testing.TB, v *vethPair, vnet, receive bool) *peer {
	t.Helper()
	pr := &peer{vnet: vnet}
	require.NoError(t, v.b.Do(func() error {
		ifi, err := net.InterfaceByName(v.IfB)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		pr.fd = fd
		if vnet {
			if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
				return err
			}
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
			return err
		}
		proto := uint16(0) // send only
		if receive {
			proto = unix.ETH_P_ALL
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifi.Index})
	}))
	t.Cleanup(func() { unix.Close(pr.fd) })
	return pr
}

// send transmits frame (with a zero virtio-net header if the socket has them).
func (pr *peer) send(frame []byte) error {
	if pr.vnet {
		return pr.sendVnet(make([]byte, virtio.HdrLen), frame)
	}
	_, err := unix.Write(pr.fd, frame)
	return err
}

// sendVnet transmits frame behind virtio-net header h.
func (pr *peer) sendVnet(h, frame []byte) error {
	iov := []unix.Iovec{{Base: &h[0]}, {Base: &frame[0]}}
	iov[0].SetLen(len(h))
	iov[1].SetLen(len(frame))
	var msg unix.Msghdr
	msg.Iov = &iov[0]
	msg.SetIovlen(2)
	_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(pr.fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// recv waits up to d for a frame; with a virtio-net header socket it returns the header too.
func (pr *peer) recv(d time.Duration) (frame, vnetHdr []byte, err error) {
	fds := []unix.PollFd{{Fd: int32(pr.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d/time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("no frame within %v", d)
	}
	buf := make([]byte, 70000)
	m, err := unix.Read(pr.fd, buf)
	if err != nil {
		return nil, nil, err
	}
	if pr.vnet {
		return buf[virtio.HdrLen:m], buf[:virtio.HdrLen], nil
	}
	return buf[:m], nil, nil
}

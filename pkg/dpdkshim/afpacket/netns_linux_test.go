package afpacket

// A small local harness until the shared internal/netns lands: two network namespaces
// joined by a veth pair, and a raw packet socket on the peer side.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var nsSeq atomic.Int32

// vethPair is namespace A (the port's side: its veth end has no address, the kernel stays
// out of the way) and namespace B (a Linux peer at 198.18.0.2/24 that reaches 198.18.0.1,
// the port's side, through a permanent neighbour entry).
type vethPair struct {
	NSA, NSB     string
	fA, fB       *os.File // the namespaces, held open: commands and setns go through these
	IfA, IfB     string
	MACA, MACB   net.HardwareAddr
	AddrA, AddrB netip.Addr
}

// requireNetAdmin skips the test unless the process can create namespaces and packet
// sockets (CAP_NET_ADMIN and CAP_NET_RAW) and has ip(8).
func requireNetAdmin(t testing.TB) {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("needs CAP_NET_ADMIN: cannot read /proc/self/status: %v", err)
	}
	defer f.Close()
	var capEff uint64
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			capEff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	const netAdmin, netRaw = 12, 13
	if capEff&(1<<netAdmin) == 0 || capEff&(1<<netRaw) == 0 {
		t.Skip("needs CAP_NET_ADMIN and CAP_NET_RAW (run as root) for network namespaces and packet sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%s: %s", strings.Join(args, " "), out)
	return string(out)
}

// newVethPair makes the two namespaces and the veth pair; t.Cleanup removes them even when
// the test fails.
func newVethPair(t testing.TB) *vethPair {
	t.Helper()
	requireNetAdmin(t)
	seq := nsSeq.Add(1)
	id := fmt.Sprintf("ss-afp-%d-%d", os.Getpid(), seq)
	v := &vethPair{
		NSA: id + "-a", NSB: id + "-b",
		IfA: fmt.Sprintf("afpa%d", seq), IfB: fmt.Sprintf("afpb%d", seq),
		MACA:  net.HardwareAddr{0x02, 0x5a, 0xfa, 0, byte(seq), 1},
		MACB:  net.HardwareAddr{0x02, 0x5a, 0xfa, 0, byte(seq), 2},
		AddrA: netip.MustParseAddr("198.18.0.1"),
		AddrB: netip.MustParseAddr("198.18.0.2"),
	}
	for i, ns := range []string{v.NSA, v.NSB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		// Hold the namespace open and reach it through the descriptor from now on: the
		// name's bind mount under /run/netns can glitch while other processes add and
		// delete namespaces of their own.
		f, err := os.Open("/run/netns/" + ns)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		if i == 0 {
			v.fA = f
		} else {
			v.fB = f
		}
		// No IPv6: no router solicitations or MLD reports on the wire, only our frames.
		v.in(t, f, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		v.in(t, f, "ip", "link", "set", "lo", "up")
	}
	// In A: both ends, then the peer moves to B (ip takes a path for a namespace).
	v.in(t, v.fA, "ip", "link", "add", v.IfA, "address", v.MACA.String(), "type", "veth",
		"peer", "name", v.IfB, "address", v.MACB.String(), "netns", "/proc/self/fd/4")
	v.B(t, "ip", "addr", "add", v.AddrB.String()+"/24", "dev", v.IfB)
	v.B(t, "ip", "neigh", "add", v.AddrA.String(), "lladdr", v.MACA.String(), "dev", v.IfB, "nud", "permanent")
	v.A(t, "ip", "link", "set", v.IfA, "up")
	v.B(t, "ip", "link", "set", v.IfB, "up")
	return v
}

// in runs a command inside the namespace ns is open on (nsenter through /proc/self/fd/3);
// the other namespace is open in the command as fd 4.
func (v *vethPair) in(t testing.TB, ns *os.File, args ...string) string {
	t.Helper()
	other := v.fB
	if ns == v.fB {
		other = v.fA
	}
	files := []*os.File{ns}
	if other != nil {
		files = append(files, other)
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/proc/self/fd/3", "--"}, args...)...)
	cmd.ExtraFiles = files
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "in %s: %s: %s", ns.Name(), strings.Join(args, " "), out)
	return string(out)
}

// A runs a command in namespace A.
func (v *vethPair) A(t testing.TB, args ...string) string { t.Helper(); return v.in(t, v.fA, args...) }

// B runs a command in namespace B.
func (v *vethPair) B(t testing.TB, args ...string) string { t.Helper(); return v.in(t, v.fB, args...) }

// inNS runs fn on a goroutine whose OS thread has entered namespace ns. The thread is
// never unlocked: it exits with the goroutine, so no other goroutine runs in ns by accident.
// fn must not call t's FailNow; it returns an error instead.
func inNS(t testing.TB, ns *os.File, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.Name(), err)
			return
		}
		errc <- fn()
	}()
	require.NoError(t, <-errc)
}

// openIn opens a port on the A side of v.
func openIn(t testing.TB, v *vethPair, cfg Config) *Port {
	t.Helper()
	cfg.Interface = v.IfA
	var p *Port
	inNS(t, v.fA, func() (err error) {
		p, err = Open(cfg)
		return err
	})
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// linkPackets is an interface's received-packet counter (ip -s link), read in its namespace.
func linkPackets(t testing.TB, v *vethPair, ns *os.File, ifname string) (rx, tx uint64) {
	t.Helper()
	out := v.in(t, ns, "ip", "-s", "-j", "link", "show", "dev", ifname)
	var links []struct {
		Stats64 struct {
			Rx struct{ Packets uint64 } `json:"rx"`
			Tx struct{ Packets uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &links), out)
	require.Len(t, links, 1)
	return links[0].Stats64.Rx.Packets, links[0].Stats64.Tx.Packets
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
	inNS(t, v.fB, func() error {
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
	})
	t.Cleanup(func() { unix.Close(pr.fd) })
	return pr
}

// send transmits frame (with a zero virtio-net header if the socket has them).
func (pr *peer) send(frame []byte) error {
	if pr.vnet {
		return pr.sendVnet(make([]byte, vnetHdrLen), frame)
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
		return buf[vnetHdrLen:m], buf[:vnetHdrLen], nil
	}
	return buf[:m], nil, nil
}

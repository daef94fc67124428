//go:build linux

package main

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/pkg/stack"
)

// TestTUN_SeedBacklog: the seed's listen(2) experiments (TestLink_SeedBacklog) with
// shardstack on TUN beside a Linux listener reached the same way (seedOnTUN): the same
// states as Linux under the linux profile, the seed's under linux-3.12.
func TestTUN_SeedBacklog(t *testing.T) {
	runSeedBacklog(t, family4, seedOnTUN)
}

// TestTUN_IPv6SeedBacklog: TestTUN_SeedBacklog over IPv6, shardstack with an IPv6 address
// only.
func TestTUN_IPv6SeedBacklog(t *testing.T) {
	requireIPv6(t)
	runSeedBacklog(t, family6, seedOnTUN)
}

// seedOnTUN is the seed experiments' net on TUN: shardstack on the tun namespace's sst0,
// whose other side is the namespace's kernel, where the Linux clients are. The Linux
// listener with the same backlog cannot be in that namespace too: the clients would
// reach it over loopback, and it would share their kernel and their ss. It has a
// namespace of its own, lsrv, reached from the clients' through a TUN device as well:
// lst0 beside sst0, whose packets this process copies to lst1 in lsrv and back
// (tunPair). So each server is one point-to-point hop from the clients, on a TUN device
// a process reads and writes, with no neighbour discovery on the way, and the clients'
// routes to the two differ only in their device.
func seedOnTUN(t *testing.T, fam addrFamily) *seedNet {
	t.Helper()
	n := newTunNet(t)
	lsrv := netns.New(t, "lsrv")
	tunPair(t, n.ns, "lst0", lsrv, "lst1")
	addPeer(t, n.ns, "lst0", fam.cli, fam.lsrv)
	addPeer(t, lsrv, "lst1", fam.lsrv, fam.cli)
	return &seedNet{cli: n.ns, dialer: n.dialer, lsrv: lsrv, open: func(t *testing.T, cfg stack.Config) *stack.Stack {
		st := openStackIn(t, n.ns, cfg, "tun:"+tunDev)
		addPeer(t, n.ns, tunDev, fam.cli, fam.ss)
		return st
	}}
}

// tunPair makes a point-to-point link between two namespaces out of two TUN devices,
// aDev in a and bDev in b, both up: two goroutines copy each packet one device gives to
// the other, until the test's cleanup closes them (which removes the devices) and waits
// for both.
func tunPair(t *testing.T, a *netns.NS, aDev string, b *netns.NS, bDev string) {
	t.Helper()
	fa, fb := openTUN(t, a, aDev), openTUN(t, b, bDev)
	var wg sync.WaitGroup
	for _, p := range [][2]*os.File{{fa, fb}, {fb, fa}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<16)
			for {
				n, err := p[0].Read(buf) // one packet
				if err != nil {
					return // closed
				}
				_, _ = p[1].Write(buf[:n]) // what the other kernel refuses is lost, as on a wire
			}
		}()
	}
	t.Cleanup(func() {
		fa.Close()
		fb.Close()
		wg.Wait()
	})
	a.SetUp(t, aDev, true)
	b.SetUp(t, bDev, true)
}

// openTUN creates the single-queue TUN device dev in ns (IFF_TUN, no packet information
// header: a read or a write is one bare IP packet) and returns its descriptor,
// non-blocking so that Close ends a Read that waits.
func openTUN(t *testing.T, ns *netns.NS, dev string) *os.File {
	t.Helper()
	var f *os.File
	require.NoError(t, ns.Do(func() error {
		// The device belongs to the namespace of the thread that opens /dev/net/tun.
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(dev)
		if err == nil {
			ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
			err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		}
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF %s: %w", dev, err)
		}
		f = os.NewFile(uintptr(fd), dev)
		return nil
	}))
	t.Cleanup(func() { f.Close() })
	return f
}

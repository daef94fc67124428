package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// allowed is the only IPv4 range AddAddr accepts: RFC 2544's benchmarking block, so no
// test can address, and send to, anything real.
var allowed = netip.MustParsePrefix("198.18.0.0/15")

// allowed6 is the only IPv6 range tests may address: unique-local fd00::/8 (RFC 4193).
var allowed6 = netip.MustParsePrefix("fd00::/8")

// Veth creates a veth pair with one end, aName, made directly inside a and the other,
// bName, inside b (never in the host's namespace), and brings both up. The pair goes
// when either namespace does; a cleanup also deletes it first.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	// ip takes a path for a namespace: the two held open, as its descriptors 3 and 4.
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "link", "add", aName, "netns", "/proc/self/fd/3", "type", "veth",
		"peer", "name", bName, "netns", "/proc/self/fd/4")
	cmd.ExtraFiles = []*os.File{a.f, b.f}
	what := fmt.Sprintf("ip link add %s (in %s) type veth peer name %s (in %s)", aName, a.name, bName, b.name)
	if _, err := runCmd(cmd, "", what); err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() {
		// Deleting one end deletes both; it may be gone already with its namespace.
		_, _ = a.run("", "ip", "link", "delete", "dev", aName)
	})
	a.ip(t, "link", "set", "dev", aName, "up")
	b.ip(t, "link", "set", "dev", bName, "up")
}

// checkPrefix parses an address with its prefix length and refuses any outside allowed.
func checkPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("netns: address %q: %w", s, err)
	}
	if p.Addr().Is6() && !p.Addr().Is4In6() && p.Addr().Zone() == "" && p.Bits() >= allowed6.Bits() && allowed6.Contains(p.Addr()) {
		return p, nil
	}
	if !p.Addr().Is4() || p.Bits() < allowed.Bits() || !allowed.Contains(p.Addr()) {
		return p, fmt.Errorf("netns: address %s is outside %s and %s, the only ranges tests may use", p, allowed, allowed6)
	}
	return p, nil
}

// AddAddr adds an address with its prefix length ("198.18.0.2/24", "fd00::2/64") to dev;
// an address or prefix outside 198.18.0.0/15 (RFC 2544 benchmarking) or fd00::/8
// (unique-local) fails the test before anything is configured. An IPv6 address is added
// without duplicate address detection (nodad), so that it is usable at once.
func (ns *NS) AddAddr(t testing.TB, dev, addr string) {
	t.Helper()
	p, err := checkPrefix(addr)
	if err != nil {
		t.Fatal(err)
	}
	if p.Addr().Is6() {
		ns.ip(t, "-6", "address", "add", p.String(), "dev", dev, "nodad")
		return
	}
	ns.ip(t, "address", "add", p.String(), "dev", dev)
}

// SetMTU sets dev's MTU.
func (ns *NS) SetMTU(t testing.TB, dev string, mtu int) {
	t.Helper()
	ns.ip(t, "link", "set", "dev", dev, "mtu", strconv.Itoa(mtu))
}

// Interface returns dev as the namespace sees it (index, MTU, MAC, flags).
func (ns *NS) Interface(dev string) (*net.Interface, error) {
	var ifi *net.Interface
	err := ns.Do(func() error {
		var err error
		ifi, err = net.InterfaceByName(dev)
		if err != nil {
			return fmt.Errorf("netns: %s: %w", ns.name, err)
		}
		return nil
	})
	return ifi, err
}

// MAC returns dev's hardware address.
func (ns *NS) MAC(dev string) (net.HardwareAddr, error) {
	ifi, err := ns.Interface(dev)
	if err != nil {
		return nil, err
	}
	return ifi.HardwareAddr, nil
}

// SetUp brings dev up or down (ip link set dev DEV up|down). The kernel updates the
// operational state after it returns: a veth end has carrier (net.FlagRunning in
// Interface) only once both ends are up, so a test that needs the link back waits for
// that flag on both.
func (ns *NS) SetUp(t testing.TB, dev string, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	ns.ip(t, "link", "set", "dev", dev, state)
}

// AddNeighbor adds a permanent neighbour entry on dev: the kernel sends to addr, an IPv4
// address inside 198.18.0.0/15, at Ethernet address mac without asking ARP, and never
// ages the entry out. That is how a Linux peer reaches a stack on the other end that
// does not answer ARP itself.
func (ns *NS) AddNeighbor(t testing.TB, dev, addr string, mac net.HardwareAddr) {
	t.Helper()
	a, err := netip.ParseAddr(addr)
	if err != nil || !a.Is4() || !allowed.Contains(a) {
		t.Fatalf("netns: neighbour %q is not an IPv4 address inside %s, the only range tests may use", addr, allowed)
	}
	if len(mac) != 6 {
		t.Fatalf("netns: neighbour %s: %q is not an Ethernet address", a, mac)
	}
	ns.ip(t, "neigh", "add", a.String(), "lladdr", mac.String(), "dev", dev, "nud", "permanent")
}

package netns

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Direction says which of a device's packets a rule sees.
type Direction int

const (
	// Egress is the packets dev transmits, including those an AF_PACKET socket sends
	// through it (unless PACKET_QDISC_BYPASS is set).
	Egress Direction = iota
	// Ingress is the packets dev receives, before the kernel's IP stack sees them; an
	// AF_PACKET socket for ETH_P_ALL on dev sees them before the rule does.
	Ingress
)

// String returns the nftables hook name, "egress" or "ingress".
func (d Direction) String() string {
	if d == Ingress {
		return "ingress"
	}
	return "egress"
}

// nftTable is the netdev table that holds this package's rules in each namespace.
const nftTable = "shardstack"

// chain names the base chain for one device and direction.
func chain(dev string, dir Direction) string { return dir.String() + "_" + dev }

// checkDev refuses device names that could not be spliced into an nft script.
func checkDev(dev string) error {
	if dev == "" || len(dev) > maxName {
		return fmt.Errorf("netns: bad device name %q", dev)
	}
	for _, c := range []byte(dev) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("netns: bad device name %q", dev)
		}
	}
	return nil
}

// dropScript is the nft script that makes dev's chain for dir drop perMille/1000 of
// its IPv4 packets, replacing whatever rule DropRandom put there before.
func dropScript(dev string, dir Direction, perMille int) string {
	c := chain(dev, dir)
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev %s {\n\tchain %s { type filter hook %s device %q priority filter; policy accept; }\n}\n",
		nftTable, c, dir, dev)
	fmt.Fprintf(&b, "flush chain netdev %s %s\n", nftTable, c)
	switch {
	case perMille >= 1000: // numgen's modulus bounds the operand to 0-999
		fmt.Fprintf(&b, "add rule netdev %s %s meta protocol ip counter drop\n", nftTable, c)
	case perMille > 0:
		fmt.Fprintf(&b, "add rule netdev %s %s meta protocol ip numgen random mod 1000 < %d counter drop\n", nftTable, c, perMille)
	}
	return b.String()
}

// DropRandom makes dev drop about perMille out of every 1000 IPv4 packets (ARP always
// passes) in direction dir, at random (nftables numgen; this kernel has no netem).
// Another call for the same dev and dir replaces the rule; 0 removes it. The rule lives
// in the namespace and goes with it. It fails the test if dev does not exist or nft is
// missing or refuses.
//
// To drop the segments of a flow between Linux and shardstack in both directions, put
// both rules on the Linux end: Egress there drops what Linux sends, Ingress what
// shardstack sent before Linux's TCP sees it.
func (ns *NS) DropRandom(t testing.TB, dev string, dir Direction, perMille int) {
	t.Helper()
	if err := checkDev(dev); err != nil {
		t.Fatal(err)
	}
	if perMille < 0 || perMille > 1000 {
		t.Fatalf("netns: DropRandom: perMille %d is not in 0-1000", perMille)
	}
	// Linux 6.18 lets a netdev chain name a device that does not exist (it attaches when
	// one appears), so a misspelt dev would silently drop nothing.
	if _, err := ns.Interface(dev); err != nil {
		t.Fatalf("netns: DropRandom: %v", err)
	}
	if _, err := ns.run(dropScript(dev, dir, perMille), "nft", "-f", "-"); err != nil {
		t.Fatalf("netns: %v", err)
	}
}

var counterRE = regexp.MustCompile(`counter packets (\d+) `)

// Dropped returns how many packets DropRandom's rule for dev and dir has dropped since it
// was installed (0 after DropRandom with perMille 0); it fails the test if DropRandom was
// never called for dev and dir.
func (ns *NS) Dropped(t testing.TB, dev string, dir Direction) uint64 {
	t.Helper()
	if err := checkDev(dev); err != nil {
		t.Fatal(err)
	}
	out, err := ns.run("", "nft", "list", "chain", "netdev", nftTable, chain(dev, dir))
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	var n uint64
	for _, m := range counterRE.FindAllStringSubmatch(out, -1) {
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatalf("netns: nft counter %q: %v", m[0], err)
		}
		n += v
	}
	return n
}

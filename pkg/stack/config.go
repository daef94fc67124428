package stack

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Config describes a stack.
type Config struct {
	// Port is the link. It must have at least Shards queue pairs.
	Port dpdkshim.Port
	// Addr is the stack's primary address and subnet, IPv4 (198.18.0.1/24) or IPv6
	// (fd00::1/64).
	Addr netip.Prefix
	// MoreAddrs are further addresses of the stack on the same link, of either family,
	// each with its subnet (Linux's secondary addresses). Connections leave from the
	// address of their family whose subnet holds the destination, else from the first of
	// the family (the primary for its family).
	//
	// Every stack on an Ethernet link also has the IPv6 link-local address Linux derives
	// from the MAC (fe80::/64, modified EUI-64, addr_gen_mode 0): see Stack.LinkLocal.
	// Addresses are usable at once: shardstack does no duplicate address detection.
	MoreAddrs []netip.Prefix
	// Gateway is the IPv4 next hop for destinations outside the IPv4 subnets (optional).
	Gateway netip.Addr
	// Gateway6 is the IPv6 next hop for destinations outside the IPv6 prefixes (optional):
	// a link-local address, as routers advertise themselves, or one on an IPv6 prefix.
	Gateway6 netip.Addr
	// Shards is the number of shards (default: GOMAXPROCS, at most the port's queues).
	Shards int
	// Clock is the stack's time (default: a real clock). Tests use clock.NewVirtual.
	Clock clock.Clock
	// Manual makes a stack that runs no goroutines; the caller calls Poll.
	Manual bool
	// Seed makes the flow hash and the TCP secrets reproducible (0: random).
	Seed uint64
	// HashSeed, if set, seeds the flow hash alone. The hash is symmetric, so two stacks
	// given the same HashSeed (two stacks in one process) put both directions of a flow on
	// the same shard index, and each flow stays with one pair of shards.
	HashSeed uint64
	// TCP holds the sysctl-named TCP settings.
	TCP tcp.Settings
	// Burst is the largest receive burst (default 64, a link burst: recvmmsg messages, ring frames).
	Burst int
	// Name labels the stack in logs and pprof (default the port's name).
	Name string
	// BusyPoll makes idle shards spin instead of sleeping (lower latency, a core each).
	BusyPoll bool
	// RxCoalesce, if set, makes a shard wait this long after a receive burst that came back
	// less than half full before it looks again (ethtool's rx-usecs): more frames per system
	// call under load, for at most that much added latency.
	RxCoalesce time.Duration
	// Pin locks each shard's goroutine to its own OS thread and that thread to one CPU
	// (shard i to the i-th CPU the process may run on).
	Pin bool
	// StaticNeighbours pre-fills every shard's neighbour cache (no ARP for these).
	StaticNeighbours map[netip.Addr][6]byte
	// Neigh holds the IPv4 neighbour cache's (ARP's) settings, named as Linux's
	// net.ipv4.neigh.* sysctls; zero fields take Linux's defaults.
	Neigh NeighSettings
	// Neigh6 holds the IPv6 neighbour cache's settings (net.ipv6.neigh.*), a table of its
	// own with its own bounds; zero fields take Linux's defaults, the same as IPv4's but
	// for locktime, which is 0 for IPv6.
	Neigh6 NeighSettings
	// ICMP holds the ICMPv4 settings, named as Linux's net.ipv4.icmp_* sysctls.
	ICMP ICMPSettings
}

// NeighSettings are the neighbour cache's limits and timers, per shard, with Linux's names
// (net.ipv4.neigh.default.*) and defaults.
type NeighSettings struct {
	// GCThresh1 is the size below which entries are never collected (default 128).
	GCThresh1 int
	// GCThresh2 is the size above which a new entry forces a collection if none ran in
	// the last 5 s (default 512).
	GCThresh2 int
	// GCThresh3 is the most entries the table holds (default 1024); static entries are
	// not counted.
	GCThresh3 int
	// BaseReachableTime is how long a confirmation lasts, randomised 0.5-1.5x (default 30 s).
	BaseReachableTime time.Duration
	// DelayFirstProbeTime is how long a used STALE entry waits for a confirmation
	// before probing (default 5 s).
	DelayFirstProbeTime time.Duration
	// RetransTime is the time between probes (default 1 s).
	RetransTime time.Duration
	// UcastSolicit is how many unicast probes a PROBE entry sends (default 3).
	UcastSolicit int
	// McastSolicit is how many broadcast requests an INCOMPLETE entry sends (default 3).
	McastSolicit int
	// UnresQLen is how many packets wait on one unresolved neighbour, the oldest dropped
	// first (default 101, what Linux derives from unres_qlen_bytes 212992).
	UnresQLen int
	// UnresQLenTotal caps the packets waiting on all of a shard's unresolved neighbours
	// together (default 1024): shardstack's addition, since they hold buffers of the
	// shard's fixed packet pool.
	UnresQLenTotal int
	// GCStaleTime is how long an unused entry survives a periodic collection (default 60 s).
	GCStaleTime time.Duration
	// Locktime is how long after an update a different address is ignored (default 1 s
	// for IPv4, 0 for IPv6).
	Locktime time.Duration
}

func (n *NeighSettings) fill(v6 bool) error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&n.GCThresh1, 128)
	def(&n.GCThresh2, 512)
	def(&n.GCThresh3, 1024)
	def(&n.UcastSolicit, 3)
	def(&n.McastSolicit, 3)
	def(&n.UnresQLen, 101)
	def(&n.UnresQLenTotal, 1024)
	defd(&n.BaseReachableTime, 30*time.Second)
	defd(&n.DelayFirstProbeTime, 5*time.Second)
	defd(&n.RetransTime, time.Second)
	defd(&n.GCStaleTime, 60*time.Second)
	if !v6 { // nd_tbl's locktime is 0
		defd(&n.Locktime, time.Second)
	}
	switch {
	case n.GCThresh1 < 0 || n.GCThresh2 < n.GCThresh1 || n.GCThresh3 < n.GCThresh2:
		return fmt.Errorf("stack: neighbour gc_thresh1/2/3 %d/%d/%d must be ordered", n.GCThresh1, n.GCThresh2, n.GCThresh3)
	case n.UcastSolicit < 0 || n.McastSolicit < 1 || n.UnresQLen < 0 || n.UnresQLenTotal < 0:
		return fmt.Errorf("stack: bad neighbour settings %+v", *n)
	case n.BaseReachableTime < 0 || n.DelayFirstProbeTime < 0 || n.RetransTime < time.Millisecond || n.GCStaleTime < 0 || n.Locktime < 0:
		return fmt.Errorf("stack: bad neighbour timers %+v", *n)
	}
	return nil
}

func (c *Config) fill() error {
	if c.Port == nil {
		return fmt.Errorf("stack: no port")
	}
	seen := map[netip.Addr]bool{}
	for i, a := range append([]netip.Prefix{c.Addr}, c.MoreAddrs...) {
		if err := checkPrefix(a); err != nil {
			if i == 0 && !a.IsValid() {
				return fmt.Errorf("stack: no address: need a prefix such as 198.18.0.1/24 or fd00::1/64")
			}
			return err
		}
		if seen[a.Addr()] {
			return fmt.Errorf("stack: address %v given twice", a.Addr())
		}
		seen[a.Addr()] = true
	}
	if c.Shards <= 0 {
		c.Shards = min(runtime.GOMAXPROCS(0), c.Port.NumQueues())
	}
	if c.Shards > c.Port.NumQueues() {
		return fmt.Errorf("stack: %d shards but port %s has %d queues", c.Shards, c.Port.Name(), c.Port.NumQueues())
	}
	if _, ok := c.Port.(dpdkshim.QueueLimiter); !ok && c.Shards < c.Port.NumQueues() {
		return fmt.Errorf("stack: %d shards would leave queues of port %s (%d) unread; use %d shards",
			c.Shards, c.Port.Name(), c.Port.NumQueues(), c.Port.NumQueues())
	}
	if c.Clock == nil {
		c.Clock = clock.NewReal()
	}
	if c.Burst <= 0 {
		c.Burst = 64
	}
	if c.Name == "" {
		c.Name = c.Port.Name()
	}
	if c.Gateway.IsValid() && !c.Gateway.Is4() {
		return fmt.Errorf("stack: gateway %v is not IPv4 (Gateway6 is the IPv6 one)", c.Gateway)
	}
	if g := c.Gateway6; g.IsValid() && (!g.Is6() || g.Is4In6() || g.IsMulticast() || g.IsUnspecified() || g.IsLoopback()) {
		return fmt.Errorf("stack: IPv6 gateway %v is not a unicast IPv6 address", g)
	}
	if err := c.Neigh.fill(false); err != nil {
		return err
	}
	if err := c.Neigh6.fill(true); err != nil {
		return err
	}
	if err := c.ICMP.validate(); err != nil {
		return err
	}
	return c.TCP.Validate()
}

// checkPrefix accepts an address with its subnet that a host may hold: IPv4, or IPv6
// that is unicast, not loopback, not IPv4-mapped and not link-local (the link-local
// address is derived from the MAC).
func checkPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return fmt.Errorf("stack: address %v: need a prefix such as 198.18.0.3/24 or fd00::3/64", p)
	case a.Zone() != "":
		return fmt.Errorf("stack: address %v: no zone, please", p)
	case a.Is4():
		return nil
	case a.Is4In6():
		return fmt.Errorf("stack: address %v: an IPv4-mapped address; give the IPv4 address", p)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return fmt.Errorf("stack: address %v: not a global or unique-local unicast IPv6 address", p)
	}
	return nil
}

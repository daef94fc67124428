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
	// Addr is the stack's IPv4 address and subnet, e.g. 198.18.0.1/24.
	Addr netip.Prefix
	// MoreAddrs are further IPv4 addresses of the stack on the same link, each with its
	// subnet (Linux's secondary addresses). Connections leave from the address whose subnet
	// holds the destination, else from Addr.
	MoreAddrs []netip.Prefix
	// Gateway is the next hop for destinations outside Addr's subnet (optional).
	Gateway netip.Addr
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
	// Neigh holds the neighbour cache's settings, named as Linux's net.ipv4.neigh.*
	// sysctls; zero fields take Linux's defaults.
	Neigh NeighSettings
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
	// Locktime is how long after an update a different address is ignored (default 1 s).
	Locktime time.Duration
}

func (n *NeighSettings) fill() error {
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
	defd(&n.Locktime, time.Second)
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
	if !c.Addr.IsValid() || !c.Addr.Addr().Is4() {
		return fmt.Errorf("stack: address %v: need an IPv4 prefix such as 198.18.0.1/24", c.Addr)
	}
	seen := map[netip.Addr]bool{c.Addr.Addr(): true}
	for _, a := range c.MoreAddrs {
		if !a.IsValid() || !a.Addr().Is4() {
			return fmt.Errorf("stack: address %v: need an IPv4 prefix such as 198.18.0.3/24", a)
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
		return fmt.Errorf("stack: gateway %v is not IPv4", c.Gateway)
	}
	if err := c.Neigh.fill(); err != nil {
		return err
	}
	if err := c.ICMP.validate(); err != nil {
		return err
	}
	return c.TCP.Validate()
}

package stack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Stack is a sharded TCP/IP stack on one port.
type Stack struct {
	cfg     Config
	port    dpdkshim.Port
	clock   clock.Clock
	hasher  hash.Hasher
	steer   dpdkshim.Steering // nil: the link's steering is unknown
	tcp     *tcp.Engine
	shards  []*shard
	mac     header.MAC
	l3      bool     // the port carries bare IP packets (dpdkshim.LinkIP): no Ethernet, no ARP or NDP
	addr    [4]byte  // the primary IPv4 address (zero without IPv4)
	addrs   []ifaddr // every IPv4 address, the primary first
	gw      [4]byte
	hasGW   bool
	ip6     ip6State // IPv6: addresses, link-local, groups, gateway (ip6.go)
	closing atomic.Bool
	closed  atomic.Bool
	running atomic.Bool // goroutines (its own cores or a Group's) run the shards
	group   *Group
	cores   []*core
	wg      sync.WaitGroup

	icmp icmpStack // ICMP settings and the stack-wide rate limit (icmp_out.go)
}

// ErrStackClosed is returned by operations on a closed stack.
var ErrStackClosed = errors.New("stack: closed")

// New makes a stack and, unless cfg.Manual, starts its shards.
func New(cfg Config) (*Stack, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Stack{
		cfg:   cfg,
		port:  cfg.Port,
		clock: cfg.Clock,
		mac:   cfg.Port.MAC(),
		l3:    dpdkshim.LinkTypeOf(cfg.Port) == dpdkshim.LinkIP,
	}
	s.icmp.conf = cfg.ICMP.conf()
	for _, p := range append([]netip.Prefix{cfg.Addr}, cfg.MoreAddrs...) {
		if p.Addr().Is4() {
			s.addrs = append(s.addrs, newIfaddr(p))
		} else {
			s.ip6.addrs = append(s.ip6.addrs, newIfaddr6(p))
		}
	}
	if len(s.addrs) > 0 {
		s.addr = s.addrs[0].prefix.Addr().As4()
	}
	s.ip6.init(s.mac, cfg.Gateway6)
	switch {
	case cfg.HashSeed != 0:
		s.hasher = hash.NewHasher(cfg.HashSeed)
	case cfg.Seed != 0:
		s.hasher = hash.NewHasher(cfg.Seed)
	default:
		s.hasher = hash.RandomHasher()
	}
	if cfg.Gateway.IsValid() {
		s.gw, s.hasGW = cfg.Gateway.As4(), true
	}
	s.steer = cfg.Port.Steering()
	if ql, ok := cfg.Port.(dpdkshim.QueueLimiter); ok {
		ql.UseQueues(cfg.Shards)
	}
	eng, err := tcp.NewEngine(tcp.Config{
		Settings: cfg.TCP,
		Shards:   cfg.Shards,
		Hasher:   s.hasher,
		Clock:    cfg.Clock,
		Seed:     cfg.Seed,
		Addr:     cfg.Addr.Addr(),
		Local:    s.isLocal,
		Source:   s.source,
		MTU:      cfg.Port.MTU(),
		Routable: s.routable,
		Owner:    s.owner,
		TxCsum:   cfg.Port.Offloads().TxCsum,
	})
	if err != nil {
		return nil, err
	}
	s.tcp = eng
	for i := 0; i < cfg.Shards; i++ {
		s.shards = append(s.shards, newShard(s, i))
	}
	for _, sh := range s.shards {
		sh.initInboxes()
	}
	for i, sh := range s.shards {
		if nt := cfg.Port.RxWait(i).Notifier; nt != nil {
			nt.SetRxWaker(i, sh)
		}
	}
	if !cfg.Manual {
		for _, sh := range s.shards {
			s.cores = append(s.cores, sh.core)
		}
		s.running.Store(true)
		if err := startCores(s.cores, cfg.Name, &s.wg); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	return s, nil
}

// owner is the shard that owns a flow: the one whose queue the link delivers it to, or,
// where the link cannot say, the one its flow hash picks (other shards hand it over).
func (s *Stack) owner(k hash.Key, h uint64) int {
	if s.steer != nil {
		return s.steer.Queue(k, len(s.shards))
	}
	return hash.Shard(h, len(s.shards))
}

// ifaddr is one IPv4 address of the stack with its subnet, as masks for quick tests.
type ifaddr struct {
	addr, net, mask uint32
	prefix          netip.Prefix
}

func newIfaddr(p netip.Prefix) ifaddr {
	a := binary.BigEndian.Uint32(p.Addr().AsSlice())
	mask := ^uint32(0) << (32 - p.Bits())
	if p.Bits() == 0 {
		mask = 0
	}
	return ifaddr{addr: a, net: a & mask, mask: mask, prefix: p}
}

func ip4(a [4]byte) uint32 { return binary.BigEndian.Uint32(a[:]) }

// isLocal reports whether a is one of the stack's addresses (tcp.Config.Local).
func (s *Stack) isLocal(a netip.Addr) bool {
	if a.Is4() {
		return s.isLocal4(ip4(a.As4()))
	}
	a16 := a.As16()
	return s.ip6.isLocal(&a16)
}

// onLink reports whether dst is on one of the stack's subnets.
func (s *Stack) onLink(dst [4]byte) bool {
	d := ip4(dst)
	for i := range s.addrs {
		if d&s.addrs[i].mask == s.addrs[i].net {
			return true
		}
	}
	return false
}

// source is the address a connection to dst leaves from (tcp.Config.Source): invalid when
// the stack has no address of dst's family.
func (s *Stack) source(dst netip.Addr) netip.Addr {
	if dst.Is4() {
		if len(s.addrs) == 0 {
			return netip.Addr{}
		}
		return netip.AddrFrom4(s.source4(dst.As4()))
	}
	if src, ok := s.ip6.source(dst.As16()); ok {
		return netip.AddrFrom16(src)
	}
	return netip.Addr{}
}

// source4 is the IPv4 address a datagram to dst leaves from: the one whose subnet holds
// dst, else the primary (Linux picks the preferred source of the route).
func (s *Stack) source4(dst [4]byte) [4]byte {
	d := ip4(dst)
	for i := range s.addrs {
		if d&s.addrs[i].mask == s.addrs[i].net {
			return s.addrs[i].prefix.Addr().As4()
		}
	}
	return s.addr
}

// routable reports whether dst can be reached (tcp.Config.Routable).
func (s *Stack) routable(dst netip.Addr) bool {
	if dst.Is4() {
		return len(s.addrs) > 0 && (s.onLink(dst.As4()) || s.hasGW)
	}
	d := dst.As16()
	_, ok := s.ip6.nextHop(&d)
	return ok
}

// Addr returns the stack's primary address (Config.Addr's).
func (s *Stack) Addr() netip.Addr { return s.cfg.Addr.Addr() }

// Addrs returns every configured address of the stack with its subnet, IPv4 ones first
// (the primary IPv4 address leading), then IPv6 ones; the link-local address is LinkLocal.
func (s *Stack) Addrs() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(s.addrs)+len(s.ip6.addrs))
	for i := range s.addrs {
		out = append(out, s.addrs[i].prefix)
	}
	for i := range s.ip6.addrs {
		out = append(out, s.ip6.addrs[i].prefix)
	}
	return out
}

// LinkLocal returns the stack's IPv6 link-local address (fe80::/64 from the MAC, as
// Linux's addr_gen_mode 0 makes it), or the invalid Addr on a link without a MAC.
func (s *Stack) LinkLocal() netip.Addr {
	if !s.ip6.hasLL {
		return netip.Addr{}
	}
	return netip.AddrFrom16(s.ip6.ll)
}

// NumShards returns the number of shards.
func (s *Stack) NumShards() int { return len(s.shards) }

// TCP returns the stack's TCP engine.
func (s *Stack) TCP() *tcp.Engine { return s.tcp }

// Clock returns the stack's clock.
func (s *Stack) Clock() clock.Clock { return s.clock }

// Hasher returns the stack's flow hash.
func (s *Stack) Hasher() hash.Hasher { return s.hasher }

// Listen is listen(2): it binds addr with the given backlog. ":80" and "[::]:80" take
// every address of both families (as a Linux IPv6 socket without IPV6_V6ONLY, and Go's
// net.Listen); "0.0.0.0:80" takes every IPv4 address only; "198.18.0.1:80" or
// "[fd00::1]:80" one address. ListenTCP with tcp.ListenOptions.V6Only takes IPv6 only.
func (s *Stack) Listen(addr string, backlog int) (*tcp.Listener, error) {
	ap, err := parseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	return s.ListenTCP(ap, tcp.ListenOptions{Backlog: backlog})
}

// ListenTCP binds a listener with socket options.
func (s *Stack) ListenTCP(addr netip.AddrPort, opts tcp.ListenOptions) (*tcp.Listener, error) {
	if s.closing.Load() {
		return nil, ErrStackClosed
	}
	return s.tcp.Listen(addr, opts)
}

// Dial connects to addr ("198.18.0.1:80") and waits until the connection is established.
// As with Go's net.Dial, every error is a *net.OpError (Op "dial", Net "tcp") wrapping the
// cause, as tcp.Engine.Dial documents; a bad address is a *net.AddrError inside it.
func (s *Stack) Dial(ctx context.Context, addr string) (*tcp.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: err.Error(), Addr: addr}}
	}
	return s.DialTCP(ctx, ap)
}

// closedDial is a Dial on a closing stack: ErrStackClosed inside a *net.OpError.
func closedDial(addr netip.AddrPort) error {
	return &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: ErrStackClosed}
}

// DialTCP connects to addr and waits until the connection is established.
func (s *Stack) DialTCP(ctx context.Context, addr netip.AddrPort) (*tcp.Conn, error) {
	if s.closing.Load() {
		return nil, closedDial(addr)
	}
	return s.tcp.Dial(ctx, addr)
}

// DialHandle connects to addr and returns the zero-allocation handle.
func (s *Stack) DialHandle(ctx context.Context, addr netip.AddrPort) (tcp.Handle, error) {
	if s.closing.Load() {
		return tcp.Handle{}, closedDial(addr)
	}
	return s.tcp.DialHandle(ctx, addr)
}

// DialAsyncHandle starts a connection and returns its zero-allocation handle at once.
func (s *Stack) DialAsyncHandle(addr netip.AddrPort, opts tcp.DialOptions) (tcp.Handle, error) {
	if s.closing.Load() {
		return tcp.Handle{}, closedDial(addr)
	}
	return s.tcp.DialAsyncHandle(addr, opts)
}

// DialAsync starts a connection and returns at once (a non-blocking connect).
func (s *Stack) DialAsync(addr netip.AddrPort, opts tcp.DialOptions) (*tcp.Conn, error) {
	if s.closing.Load() {
		return nil, closedDial(addr)
	}
	return s.tcp.DialAsync(addr, opts)
}

func parseAddrPort(addr string) (netip.AddrPort, error) {
	if len(addr) > 0 && addr[0] == ':' {
		p, err := strconv.ParseUint(addr[1:], 10, 16)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("stack: bad address %q", addr)
		}
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil // both families
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("stack: bad address %q: %w", addr, err)
	}
	return ap, nil
}

// Poll runs one iteration of every shard on the calling goroutine (Manual stacks only) and
// returns how much work it did.
func (s *Stack) Poll() int {
	n := 0
	for _, sh := range s.shards {
		n += sh.poll()
	}
	return n
}

// PollShard runs one iteration of shard i on the calling goroutine (Manual stacks only:
// several goroutines may each drive their own shard).
func (s *Stack) PollShard(i int) int { return s.shards[i].poll() }

// NextDeadline returns the earliest time a shard timer is due.
func (s *Stack) NextDeadline() (int64, bool) {
	var best int64
	found := false
	for _, sh := range s.shards {
		if d, ok := sh.wheel.NextDeadline(); ok && (!found || d < best) {
			best, found = d, true
		}
	}
	return best, found
}

// onShards runs fn on every shard's goroutine and waits (on a Manual stack, directly).
func (s *Stack) onShards(fn func(sh *shard)) {
	if !s.running.Load() {
		for _, sh := range s.shards {
			fn(sh)
		}
		return
	}
	var wg sync.WaitGroup
	for _, sh := range s.shards {
		wg.Add(1)
		sh.tcp.Control(func() {
			fn(sh)
			wg.Done()
		})
	}
	wg.Wait()
}

// Counters returns every counter summed over the shards.
func (s *Stack) Counters() stats.Counters {
	var sum stats.Counters
	for _, c := range s.ShardCounters() {
		sum.Merge(&c)
	}
	return sum
}

// ShardCounters returns each shard's counters.
func (s *Stack) ShardCounters() []stats.Counters {
	out := make([]stats.Counters, len(s.shards))
	s.onShards(func(sh *shard) { out[sh.id] = sh.ctr })
	return out
}

// ShardLoad is how much a shard has worked: the clock time its iterations that found work
// took, and how many there were (an idle shard's spinning and parking are not counted).
type ShardLoad struct {
	Busy       time.Duration
	Iterations int64
	// Handoffs counts packets this shard received for flows another shard owns and passed
	// on through that shard's inbox.
	Handoffs int64
}

// ShardLoads returns each shard's load since the stack started.
func (s *Stack) ShardLoads() []ShardLoad {
	out := make([]ShardLoad, len(s.shards))
	s.onShards(func(sh *shard) { out[sh.id] = ShardLoad{time.Duration(sh.busy), sh.polls, sh.handoffs} })
	return out
}

// Sockets returns an `ss -tan`-style table: listeners, requests (SYN-RECV), connections
// and TIME-WAIT entries.
func (s *Stack) Sockets() []tcp.SocketRow {
	rows := s.tcp.ListenerRows()
	per := make([][]tcp.SocketRow, len(s.shards))
	s.onShards(func(sh *shard) { per[sh.id], _ = sh.tcp.SocketRows().([]tcp.SocketRow) })
	for _, p := range per {
		rows = append(rows, p...)
	}
	return rows
}

// Close stops every shard: connections are reset, requests and TIME-WAIT entries dropped,
// goroutines joined.
func (s *Stack) Close() error {
	if !s.closing.CompareAndSwap(false, true) {
		return ErrStackClosed
	}
	for _, l := range s.tcp.Listeners() {
		l.Close()
	}
	if g := s.group; g != nil {
		g.Stop()
	}
	if len(s.cores) > 0 {
		stopCores(s.cores, &s.wg)
		s.running.Store(false)
	}
	for _, sh := range s.shards {
		sh.poll()
		sh.shutdown()
	}
	s.closed.Store(true)
	return nil
}

// NeighbourRow is one neighbour cache entry of one shard, as `ip neigh show` lists it.
type NeighbourRow struct {
	Shard int
	Addr  netip.Addr
	MAC   header.MAC
	State string // Linux's NUD state: INCOMPLETE, REACHABLE, STALE, DELAY, PROBE, FAILED, PERMANENT
	Queue int    // packets waiting for the address
}

// Neighbours returns every shard's neighbour cache entries.
func (s *Stack) Neighbours() []NeighbourRow {
	per := make([][]NeighbourRow, len(s.shards))
	s.onShards(func(sh *shard) {
		for _, n := range [2]*neighbours{sh.neigh, sh.neigh6} {
			for _, e := range n.m {
				per[sh.id] = append(per[sh.id], NeighbourRow{sh.id, n.addr(e), e.mac, e.state.String(), len(e.pending)})
			}
		}
	})
	var rows []NeighbourRow
	for _, p := range per {
		rows = append(rows, p...)
	}
	return rows
}

package tcp

import (
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/hash"
)

// Config is what the stack tells the engine when it makes it.
type Config struct {
	Settings Settings
	// Shards is the number of shards (the stack makes each one through internal/tcpdrv).
	Shards int
	// Hasher is the stack's flow hash (shard choice and tables).
	Hasher hash.Hasher
	// Clock is the stack's clock.
	Clock clock.Clock
	// Seed makes the keyed secrets reproducible (0: random).
	Seed uint64
	// Addr is the stack's primary address (IPv4 or IPv6), what Local and Source default to.
	Addr netip.Addr
	// Local reports whether an address is one of the stack's (nil: only Addr). It is given
	// unmapped IPv4 addresses and IPv6 addresses without a zone.
	Local func(a netip.Addr) bool
	// Source returns the local address a connection to dst leaves from, of dst's family
	// (nil: Addr). An invalid address means the stack has none for dst: Dial fails with
	// ErrAddrNotAvail.
	Source func(dst netip.Addr) netip.Addr
	// MTU of the link: the MSS is MTU-40 for IPv4 and MTU-60 for IPv6.
	MTU int
	// Routable reports whether a destination can be reached (a neighbour on the subnet or a
	// gateway of its family); Dial fails with ErrNetUnreachable otherwise. Nil means always.
	Routable func(dst netip.Addr) bool
	// Owner returns the shard that owns a flow, given its key and flow hash: the shard
	// whose link queue receives it. Dial picks ephemeral ports whose flows it owns. Nil
	// means hash.Shard(h, Shards).
	Owner func(k hash.Key, h uint64) int
	// TxCsum makes segments leave with only the pseudo-header checksum, for the link to
	// complete (dpdkshim.TxCsum).
	TxCsum bool
}

// Engine is the stack-wide part of TCP: settings, secrets and the listener registry. It is
// shared by every shard and every application goroutine; it is read on the packet path only
// through atomic loads.
type Engine struct {
	settings Settings
	hasher   hash.Hasher
	clock    clock.Clock
	sec      secrets
	local    func(netip.Addr) bool
	source   func(netip.Addr) netip.Addr
	mss4     int // MSS the link allows over IPv4 (MTU-40)
	mss6     int // and over IPv6 (MTU-60)
	routable func(netip.Addr) bool
	owner    func(hash.Key, uint64) int
	txCsum   bool
	ccAlgo   uint8 // tcp_congestion_control (sender.go ccTable)
	shards   []*shard

	mu        sync.Mutex // serialises listener registration (Listen/Close), never the packet path
	listeners atomic.Pointer[listenerSet]

	twCount   atomic.Int64 // TIME-WAIT entries, against tcp_max_tw_buckets
	dialRR    atomic.Uint32
	challenge challengeState // the stack-wide challenge-ACK budget (tcp_challenge_ack_limit)
	pmtu      pmtuTable      // path MTUs learned from ICMP (pmtu.go)
}

// listenKey is a listener's place in the registry: a local address (the key's layout; all
// zero for the wildcard of the family) and port. A listener that takes both families has
// a key in each.
type listenKey struct {
	addr [16]byte
	port uint16
	v6   bool
}

type listenerMap map[listenKey]*Listener

// listenerSet is the registry as the packet path reads it: a short slice scanned in order
// while there are few listeners (a few nanoseconds, no hashing), the map beyond that.
type listenerSet struct {
	m     listenerMap
	small []listenEntry
}

type listenEntry struct {
	key listenKey
	l   *Listener
}

const smallListeners = 8

func newListenerSet(m listenerMap) *listenerSet {
	s := &listenerSet{m: m}
	if len(m) <= smallListeners {
		for k, l := range m {
			s.small = append(s.small, listenEntry{k, l})
		}
	}
	return s
}

func (s *listenerSet) get(k listenKey) *Listener {
	if len(s.m) <= smallListeners {
		for i := range s.small {
			if s.small[i].key == k {
				return s.small[i].l
			}
		}
		return nil
	}
	return s.m[k]
}

// NewEngine makes an engine; the stack then makes its shards (through internal/tcpdrv).
// An engine is only useful inside a stack: pkg/stack makes it.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Settings.Validate(); err != nil {
		return nil, err
	}
	if cfg.Shards <= 0 {
		return nil, fmt.Errorf("tcp: %d shards", cfg.Shards)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewReal()
	}
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	e := &Engine{
		settings: cfg.Settings.withDefaults(),
		hasher:   cfg.Hasher,
		clock:    cfg.Clock,
		sec:      newSecrets(cfg.Seed),
		local:    cfg.Local,
		source:   cfg.Source,
		mss4:     cfg.MTU - 40,
		mss6:     cfg.MTU - 60,
		routable: cfg.Routable,
		owner:    cfg.Owner,
		txCsum:   cfg.TxCsum,
		shards:   make([]*shard, cfg.Shards),
	}
	e.ccAlgo, _ = ccIndex(e.settings.TCPCongestionControl)
	if e.local == nil {
		e.local = func(a netip.Addr) bool { return a == cfg.Addr }
	}
	if e.source == nil {
		e.source = func(dst netip.Addr) netip.Addr {
			if dst.Is4() != cfg.Addr.Is4() {
				return netip.Addr{}
			}
			return cfg.Addr
		}
	}
	if e.owner == nil {
		n := cfg.Shards
		e.owner = func(_ hash.Key, h uint64) int { return hash.Shard(h, n) }
	}
	e.listeners.Store(newListenerSet(listenerMap{}))
	e.challenge.second.Store(math.MinInt64) // no second has a budget yet
	return e, nil
}

// Settings returns the engine's settings with defaults filled in.
func (e *Engine) Settings() Settings { return e.settings }

// NumShards returns the number of shards.
func (e *Engine) NumShards() int { return len(e.shards) }

// lookupListener finds the listener for a segment's local address and port (k is seen from
// us): an exact address first, then the wildcard of the family, as Linux's listener lookup
// scores them.
func (e *Engine) lookupListener(k *hash.Key) *Listener {
	set := e.listeners.Load()
	if len(set.m) == 0 {
		return nil
	}
	lk := listenKey{addr: k.LocalAddr, port: k.LocalPort, v6: k.V6}
	if l := set.get(lk); l != nil {
		return l
	}
	lk.addr = [16]byte{}
	return set.get(lk)
}

// portListened reports whether a listener holds k's local port on k's local address (or
// the wildcard of its family), which makes it unusable as an ephemeral port.
func (e *Engine) portListened(k *hash.Key) bool {
	return e.lookupListener(k) != nil
}

// listenKeys returns the registry keys a listener on addr takes. An invalid or
// unspecified IPv6 address takes both families unless v6only (IPV6_V6ONLY); 0.0.0.0 and
// IPv4 addresses take IPv4 only, other IPv6 addresses IPv6 only.
func listenKeys(addr netip.Addr, port uint16, v6only bool) []listenKey {
	switch {
	case !addr.IsValid() || addr == netip.IPv6Unspecified():
		if v6only {
			return []listenKey{{port: port, v6: true}}
		}
		return []listenKey{{port: port}, {port: port, v6: true}}
	case addr.Is4():
		a, _ := addrBytes(addr)
		return []listenKey{{addr: a, port: port}}
	default:
		return []listenKey{{addr: addr.As16(), port: port, v6: true}}
	}
}

// Listen binds a listener to addr and starts accepting connections. An unspecified IPv6
// address ([::]) or the zero netip.Addr means every address of the stack, of both
// families unless opts.V6Only; 0.0.0.0 means every IPv4 address; an IPv4-mapped IPv6
// address is the IPv4 address.
func (e *Engine) Listen(addr netip.AddrPort, opts ListenOptions) (*Listener, error) {
	if _, err := optionKeepAlive(opts.KeepAlive); err != nil {
		return nil, fmt.Errorf("tcp: listen %v: bad keepalive: %w", addr, err)
	}
	if _, err := userTimeoutMs(opts.UserTimeout); err != nil {
		return nil, fmt.Errorf("tcp: listen %v: bad user timeout: %w", addr, ErrInvalid)
	}
	a := addr.Addr().WithZone("").Unmap()
	if opts.V6Only && a.Is4() {
		// Linux: a v6-only socket cannot bind an IPv4 (or IPv4-mapped) address.
		return nil, fmt.Errorf("tcp: listen %v: IPv6-only on an IPv4 address: %w", addr, ErrInvalid)
	}
	if a.IsValid() && !a.IsUnspecified() && !e.local(a) {
		return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrNotAvail)
	}
	port := addr.Port()
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.listeners.Load().m
	if port == 0 {
		p, ok := e.freeListenPort(old, a, opts.V6Only)
		if !ok {
			return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrInUse)
		}
		port = p
	}
	keys := listenKeys(a, port, opts.V6Only)
	if !keysFree(old, keys) {
		return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrInUse)
	}
	l := newListener(e, a, port, keys, opts)
	m := make(listenerMap, len(old)+len(keys))
	for kk, v := range old {
		m[kk] = v
	}
	for _, k := range keys {
		m[k] = l
	}
	e.listeners.Store(newListenerSet(m))
	return l, nil
}

// keysFree reports whether a listener may take keys: none is taken, a wildcard finds no
// listener on a specific address of its family and port, and a specific address no
// wildcard of its family on the port.
func keysFree(m listenerMap, keys []listenKey) bool {
	for _, k := range keys {
		if m[k] != nil {
			return false
		}
		if k.addr == ([16]byte{}) {
			if portBoundExactly(m, k.port, k.v6) {
				return false
			}
		} else if m[listenKey{port: k.port, v6: k.v6}] != nil {
			return false
		}
	}
	return true
}

// portBoundExactly reports whether a listener holds port on a specific address of the
// family (which a wildcard listener on the port would conflict with).
func portBoundExactly(m listenerMap, port uint16, v6 bool) bool {
	for k := range m {
		if k.port == port && k.v6 == v6 && k.addr != ([16]byte{}) {
			return true
		}
	}
	return false
}

func (e *Engine) freeListenPort(m listenerMap, a netip.Addr, v6only bool) (uint16, bool) {
	r := e.settings.IPLocalPortRange
	for p := int(r[0]); p <= int(r[1]); p++ {
		if keysFree(m, listenKeys(a, uint16(p), v6only)) {
			return uint16(p), true
		}
	}
	return 0, false
}

func (e *Engine) unregister(l *Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.listeners.Load().m
	if len(l.keys) == 0 || old[l.keys[0]] != l {
		return
	}
	m := make(listenerMap, len(old))
	for kk, v := range old {
		if v != l {
			m[kk] = v
		}
	}
	e.listeners.Store(newListenerSet(m))
}

// Listeners returns the registered listeners (for socket tables).
func (e *Engine) Listeners() []*Listener {
	m := e.listeners.Load().m
	out := make([]*Listener, 0, len(m))
	for k, l := range m {
		if l.keys[0] == k { // once each, though a dual-stack listener has two keys
			out = append(out, l)
		}
	}
	return out
}

// tsNow is the TCP timestamp clock: milliseconds, as Linux's tcp_time_stamp_ms.
func tsNow(nowNanos int64) uint32 { return uint32(nowNanos / 1e6) }

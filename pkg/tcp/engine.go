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
	// Addr is the stack's primary IPv4 address.
	Addr [4]byte
	// Local reports whether an address is one of the stack's (nil: only Addr).
	Local func(a [4]byte) bool
	// Source returns the local address a connection to dst leaves from (nil: Addr).
	Source func(dst [4]byte) [4]byte
	// MTU of the link (the MSS is MTU-40).
	MTU int
	// Routable reports whether a destination can be reached (a neighbour on the subnet or a
	// gateway); Dial fails with ErrNetUnreachable otherwise. Nil means always.
	Routable func(dst [4]byte) bool
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
	addr     [4]byte
	local    func([4]byte) bool
	source   func([4]byte) [4]byte
	mss      int
	routable func([4]byte) bool
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

type listenKey struct {
	addr [4]byte
	port uint16
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
		addr:     cfg.Addr,
		local:    cfg.Local,
		source:   cfg.Source,
		mss:      cfg.MTU - 40,
		routable: cfg.Routable,
		owner:    cfg.Owner,
		txCsum:   cfg.TxCsum,
		shards:   make([]*shard, cfg.Shards),
	}
	e.ccAlgo, _ = ccIndex(e.settings.TCPCongestionControl)
	if e.local == nil {
		e.local = func(a [4]byte) bool { return a == cfg.Addr }
	}
	if e.source == nil {
		e.source = func([4]byte) [4]byte { return cfg.Addr }
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

// lookupListener finds the listener for a local address and port: an exact address first,
// then the wildcard 0.0.0.0, as Linux's listener lookup scores them.
func (e *Engine) lookupListener(addr [4]byte, port uint16) *Listener {
	set := e.listeners.Load()
	if len(set.m) == 0 {
		return nil
	}
	if l := set.get(listenKey{addr, port}); l != nil {
		return l
	}
	return set.get(listenKey{[4]byte{}, port})
}

// portListened reports whether a listener holds the port on addr (or the wildcard), which
// makes it unusable as an ephemeral port.
func (e *Engine) portListened(addr [4]byte, port uint16) bool {
	return e.lookupListener(addr, port) != nil
}

// Listen binds a listener to addr (an unspecified address means every address of the stack)
// and starts accepting connections.
func (e *Engine) Listen(addr netip.AddrPort, opts ListenOptions) (*Listener, error) {
	if !addr.Addr().Is4() && addr.Addr().IsValid() {
		return nil, fmt.Errorf("tcp: listen %v: only IPv4 is supported so far: %w", addr, ErrInvalid)
	}
	if _, err := optionKeepAlive(opts.KeepAlive); err != nil {
		return nil, fmt.Errorf("tcp: listen %v: bad keepalive: %w", addr, err)
	}
	if _, err := userTimeoutMs(opts.UserTimeout); err != nil {
		return nil, fmt.Errorf("tcp: listen %v: bad user timeout: %w", addr, ErrInvalid)
	}
	var a [4]byte
	if addr.Addr().IsValid() {
		a = addr.Addr().As4()
	}
	if a != ([4]byte{}) && !e.local(a) {
		return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrNotAvail)
	}
	port := addr.Port()
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.listeners.Load().m
	if port == 0 {
		p, ok := e.freeListenPort(old, a)
		if !ok {
			return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrInUse)
		}
		port = p
	}
	k := listenKey{a, port}
	if old[k] != nil || (a == [4]byte{} && portBoundExactly(old, port)) ||
		(a != [4]byte{} && old[listenKey{[4]byte{}, port}] != nil) {
		return nil, fmt.Errorf("tcp: listen %v: %w", addr, ErrAddrInUse)
	}
	l := newListener(e, a, port, opts)
	m := make(listenerMap, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = l
	e.listeners.Store(newListenerSet(m))
	return l, nil
}

// portBoundExactly reports whether a listener holds port on a specific address (which a
// wildcard listener on the port would conflict with).
func portBoundExactly(m listenerMap, port uint16) bool {
	for k := range m {
		if k.port == port && k.addr != ([4]byte{}) {
			return true
		}
	}
	return false
}

func (e *Engine) freeListenPort(m listenerMap, a [4]byte) (uint16, bool) {
	r := e.settings.IPLocalPortRange
	for p := int(r[0]); p <= int(r[1]); p++ {
		if m[listenKey{a, uint16(p)}] == nil && m[listenKey{[4]byte{}, uint16(p)}] == nil &&
			(a != [4]byte{} || !portBoundExactly(m, uint16(p))) {
			return uint16(p), true
		}
	}
	return 0, false
}

func (e *Engine) unregister(l *Listener) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.listeners.Load().m
	k := listenKey{l.addr, l.port}
	if old[k] != l {
		return
	}
	m := make(listenerMap, len(old))
	for kk, v := range old {
		if kk != k {
			m[kk] = v
		}
	}
	e.listeners.Store(newListenerSet(m))
}

// Listeners returns the registered listeners (for socket tables).
func (e *Engine) Listeners() []*Listener {
	m := e.listeners.Load().m
	out := make([]*Listener, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	return out
}

// tsNow is the TCP timestamp clock: milliseconds, as Linux's tcp_time_stamp_ms.
func tsNow(nowNanos int64) uint32 { return uint32(nowNanos / 1e6) }

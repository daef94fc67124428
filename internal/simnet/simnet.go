// Package simnet runs two shardstack stacks in one goroutine on a virtual clock, wired by
// the in-memory pair, and records every frame that crosses. Tests and the backlog lab use
// it to play out seconds or minutes of TCP in microseconds, deterministically.
package simnet

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// Addresses of the two stacks.
var (
	ServerAddr = netip.MustParsePrefix("198.18.0.1/24")
	ClientAddr = netip.MustParsePrefix("198.18.0.2/24")
	// With Options.IPv6, the stacks also have these (unique-local, RFC 4193).
	ServerAddr6 = netip.MustParsePrefix("fd00:5eed::1/64")
	ClientAddr6 = netip.MustParsePrefix("fd00:5eed::2/64")
)

// Options configure a Net.
type Options struct {
	Shards    int          // per stack (default 1)
	ServerTCP tcp.Settings // the server stack's TCP settings
	ClientTCP tcp.Settings // the client stack's TCP settings
	Seed      uint64       // default 1
	// StaticARP pre-fills both neighbour caches so that no ARP crosses the wire.
	StaticARP bool
	// NoCapture turns the frame recorder off (allocation tests, long runs).
	NoCapture bool
	// ByTxQueue makes the pair deliver queue i to queue i and state no steering, so that
	// segments reach shards that do not own their flow and are handed over.
	ByTxQueue bool
	// Offloads makes the pair offload checksums as a veth does (dpdkshim.PairConfig.Offloads).
	Offloads bool
	// Pool sizes each queue's packet pool (default 1024 packets).
	Pool dpdkshim.PoolConfig
	// RingSize is the capacity of the pair's rings (dpdkshim.PairConfig.RingSize; default 4096).
	RingSize int
	// IPv6 gives the stacks ServerAddr6 and ClientAddr6 beside their IPv4 addresses
	// (with StaticARP, static IPv6 neighbours too).
	IPv6 bool
	// L3 makes the pair carry bare IP packets (dpdkshim.LinkIP, like a TUN device): no
	// Ethernet header, no ARP. Frames then hold IPv4 packets from their first byte.
	L3 bool
}

// Frame is one frame that crossed the pair.
type Frame struct {
	Time     int64 // virtual ns
	ToServer bool  // client -> server
	L3       bool  // Data is a bare IP packet (Options.L3), not an Ethernet frame
	Data     []byte
}

// Net is two manual stacks on one virtual clock.
type Net struct {
	Clock          *clock.Virtual
	Server, Client *stack.Stack
	PortS, PortC   *dpdkshim.MemPort
	mu             sync.Mutex
	frames         []Frame
	serverMAC      header.MAC
	l3             bool
}

// New builds a Net.
func New(opts Options) (*Net, error) {
	if opts.Shards <= 0 {
		opts.Shards = 1
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Pool.Size == 0 {
		opts.Pool.Size = 1024
	}
	vc := clock.NewVirtual(0)
	ps, pc := dpdkshim.NewPair(dpdkshim.PairConfig{
		Queues:    opts.Shards,
		Clock:     vc,
		Pool:      opts.Pool,
		RingSize:  opts.RingSize,
		ByTxQueue: opts.ByTxQueue,
		Offloads:  opts.Offloads,
		L3:        opts.L3,
	})
	n := &Net{Clock: vc, PortS: ps, PortC: pc, serverMAC: ps.MAC(), l3: opts.L3}
	if !opts.NoCapture {
		ps.SetSink(n.record)
	}
	scfg := stack.Config{Port: ps, Addr: ServerAddr, Shards: opts.Shards, Clock: vc, Manual: true, Seed: opts.Seed, TCP: opts.ServerTCP, Name: "server"}
	ccfg := stack.Config{Port: pc, Addr: ClientAddr, Shards: opts.Shards, Clock: vc, Manual: true, Seed: opts.Seed + 1, TCP: opts.ClientTCP, Name: "client"}
	if opts.StaticARP {
		scfg.StaticNeighbours = map[netip.Addr][6]byte{ClientAddr.Addr(): pc.MAC()}
		ccfg.StaticNeighbours = map[netip.Addr][6]byte{ServerAddr.Addr(): ps.MAC()}
	}
	if opts.IPv6 {
		scfg.MoreAddrs = []netip.Prefix{ServerAddr6}
		ccfg.MoreAddrs = []netip.Prefix{ClientAddr6}
		if opts.StaticARP {
			scfg.StaticNeighbours[ClientAddr6.Addr()] = pc.MAC()
			ccfg.StaticNeighbours[ServerAddr6.Addr()] = ps.MAC()
		}
	}
	var err error
	if n.Server, err = stack.New(scfg); err != nil {
		return nil, err
	}
	if n.Client, err = stack.New(ccfg); err != nil {
		return nil, err
	}
	return n, nil
}

func (n *Net) record(ts int64, frame []byte) {
	f := Frame{Time: ts, L3: n.l3, Data: append([]byte(nil), frame...)}
	if n.l3 {
		if ip, err := header.ParseIPv4(frame); err == nil {
			f.ToServer = ip.Dst() == ServerAddr.Addr().As4()
		}
	} else if eth, err := header.ParseEthernet(frame); err == nil {
		f.ToServer = eth.Src() != n.serverMAC
	}
	n.mu.Lock()
	n.frames = append(n.frames, f)
	n.mu.Unlock()
}

// Frames returns a copy of every frame recorded so far.
func (n *Net) Frames() []Frame {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Frame(nil), n.frames...)
}

// ResetFrames forgets the recorded frames.
func (n *Net) ResetFrames() {
	n.mu.Lock()
	n.frames = nil
	n.mu.Unlock()
}

// Settle polls both stacks until neither has anything left to do at the current time.
func (n *Net) Settle() {
	for i := 0; i < 100000; i++ {
		if n.Server.Poll()+n.Client.Poll() == 0 {
			// One more round: a poll can leave work for the other stack.
			if n.Server.Poll()+n.Client.Poll() == 0 {
				return
			}
		}
	}
	panic("simnet: stacks never settled")
}

// next returns the earliest pending event (a timer of either stack, a delayed frame).
func (n *Net) next() (int64, bool) {
	var best int64
	found := false
	consider := func(t int64, ok bool) {
		if ok && (!found || t < best) {
			best, found = t, true
		}
	}
	consider(n.Server.NextDeadline())
	consider(n.Client.NextDeadline())
	consider(n.PortS.NextDelivery())
	consider(n.PortC.NextDelivery())
	return best, found
}

// Now returns the virtual time.
func (n *Net) Now() int64 { return n.Clock.Now() }

// RunUntil advances virtual time event by event up to the absolute time end, settling the
// stacks at each step; stop, if not nil, is checked after each step and ends the run early.
func (n *Net) RunUntil(end int64, stop func() bool) {
	n.Settle()
	for {
		if stop != nil && stop() {
			return
		}
		t, ok := n.next()
		if !ok || t > end {
			n.Clock.Set(end)
			n.Settle()
			return
		}
		if t > n.Clock.Now() {
			n.Clock.Set(t)
		}
		n.Settle()
	}
}

// RunFor runs d of virtual time from now.
func (n *Net) RunFor(d time.Duration) { n.RunUntil(n.Clock.Now()+int64(d), nil) }

// Close shuts both stacks down.
func (n *Net) Close() {
	n.Client.Close()
	n.Server.Close()
}

// Describe renders a frame as tcpdump would, roughly (for test failure messages).
func Describe(f Frame) string {
	dir := "S<-C"
	if !f.ToServer {
		dir = "S->C"
	}
	seg, ok := TCPOf(f.Data)
	if f.L3 {
		seg, ok = TCPOfIP(f.Data)
	}
	if !ok {
		return fmt.Sprintf("%8.3fs %s non-TCP %d bytes", float64(f.Time)/1e9, dir, len(f.Data))
	}
	return fmt.Sprintf("%8.3fs %s %d>%d [%s] seq %d ack %d win %d len %d", float64(f.Time)/1e9, dir,
		seg.SrcPort(), seg.DstPort(), FlagString(seg.Flags()), seg.Seq(), seg.Ack(), seg.Window(), len(seg.Payload()))
}

// TCPOf returns the TCP header of an Ethernet/IPv4/TCP or Ethernet/IPv6/TCP frame (no
// IPv6 extension headers).
func TCPOf(frame []byte) (header.TCP, bool) {
	eth, err := header.ParseEthernet(frame)
	if err != nil {
		return nil, false
	}
	switch eth.Type() {
	case header.EtherTypeIPv4, header.EtherTypeIPv6:
		return TCPOfIP(eth.Payload())
	}
	return nil, false
}

// TCPOfIP returns the TCP header of a bare IPv4/TCP or IPv6/TCP packet (an L3 frame; no
// IPv6 extension headers).
func TCPOfIP(pkt []byte) (header.TCP, bool) {
	if len(pkt) == 0 {
		return nil, false
	}
	var payload []byte
	switch pkt[0] >> 4 {
	case 4:
		ip, err := header.ParseIPv4(pkt)
		if err != nil || ip.Protocol() != header.ProtoTCP {
			return nil, false
		}
		payload = ip.Payload()
	case 6:
		ip, err := header.ParseIPv6(pkt)
		if err != nil || ip.NextHeader() != header.ProtoTCP {
			return nil, false
		}
		payload = ip.Payload()
	default:
		return nil, false
	}
	t, err := header.ParseTCP(payload)
	if err != nil {
		return nil, false
	}
	return t, true
}

// FlagString renders TCP flags as tcpdump does: S, F, R, P, ".", ...
func FlagString(f uint8) string {
	s := ""
	if f&header.TCPFlagSYN != 0 {
		s += "S"
	}
	if f&header.TCPFlagFIN != 0 {
		s += "F"
	}
	if f&header.TCPFlagRST != 0 {
		s += "R"
	}
	if f&header.TCPFlagPSH != 0 {
		s += "P"
	}
	if f&header.TCPFlagACK != 0 {
		s += "."
	}
	return s
}

// TCPFrames returns the recorded TCP frames matching a direction filter (nil: both).
func (n *Net) TCPFrames(toServer *bool) []Frame {
	var out []Frame
	for _, f := range n.Frames() {
		if _, ok := TCPOf(f.Data); !ok {
			continue
		}
		if toServer != nil && f.ToServer != *toServer {
			continue
		}
		out = append(out, f)
	}
	return out
}

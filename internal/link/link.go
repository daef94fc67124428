// Package link opens the links the shardstack command runs on, from a specification such
// as "afpacket:veth0" or "afpacket:veth0,rxring,txring,bypass,burst=64": a name for the
// backend, a colon, the device, then options. A backend registered with RegisterRaw parses
// what follows the colon itself: "dpdk:--no-huge -m 256 --vdev=net_af_packet0,iface=veth0
// -- rxd=512" passes DPDK's EAL its arguments, split as a shell splits words, and takes
// its own options after a "--" word. Backends register themselves; the specification
// "kernel" is not a link but Linux's own TCP stack, which serve and load offer for
// comparison.
package link

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// Kernel is the specification of Linux's own stack.
const Kernel = "kernel"

// Spec is a parsed link specification.
type Spec struct {
	Backend string            // "afpacket", ...
	Device  string            // the interface (or the backend's argument)
	Options map[string]string // "rxring" -> "", "burst" -> "64"
	order   []string
}

// ParseSpec parses "backend:device[,opt[=value]]...".
func ParseSpec(s string) (Spec, error) {
	backend, rest, ok := strings.Cut(s, ":")
	if !ok || backend == "" || rest == "" {
		return Spec{}, fmt.Errorf("link %q: want backend:device, e.g. afpacket:veth0", s)
	}
	parts := strings.Split(rest, ",")
	sp := Spec{Backend: backend, Device: parts[0], Options: map[string]string{}}
	if sp.Device == "" {
		return Spec{}, fmt.Errorf("link %q: no device", s)
	}
	for _, o := range parts[1:] {
		k, v, _ := strings.Cut(o, "=")
		if k == "" {
			return Spec{}, fmt.Errorf("link %q: empty option", s)
		}
		if _, dup := sp.Options[k]; dup {
			return Spec{}, fmt.Errorf("link %q: option %q given twice", s, k)
		}
		sp.Options[k] = v
		sp.order = append(sp.order, k)
	}
	return sp, nil
}

// Flag reports whether a bare option was given, and removes it from the options.
func (s *Spec) Flag(name string) bool {
	v, ok := s.Options[name]
	if ok && v == "" {
		delete(s.Options, name)
		return true
	}
	return false
}

// Int returns an option's integer value (def if absent) and removes it from the options.
func (s *Spec) Int(name string, def int) (int, error) {
	v, ok := s.Options[name]
	if !ok {
		return def, nil
	}
	delete(s.Options, name)
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("link option %s=%q: not a number", name, v)
	}
	return n, nil
}

// Done fails if options remain that no one took.
func (s *Spec) Done() error {
	var left []string
	for _, k := range s.order {
		if _, ok := s.Options[k]; ok {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("link %s: unknown option(s) %s", s.Backend, strings.Join(left, ", "))
	}
	return nil
}

// Params are what the command knows beyond the specification.
type Params struct {
	Queues int // one per shard
}

// Link is an open link: the port and what the command prints about it.
type Link struct {
	Port dpdkshim.Port
	// Stats returns per-queue link figures for the summary (nil: none).
	Stats func() []QueueStats
}

// QueueStats are one queue's link figures, as backends count them.
type QueueStats struct {
	RxPackets  uint64 `json:"rx_packets"`
	RxBytes    uint64 `json:"rx_bytes"`
	RxSyscalls uint64 `json:"rx_syscalls"`
	RxEmpty    uint64 `json:"rx_empty_syscalls"` // receive calls that found nothing
	TxPackets  uint64 `json:"tx_packets"`
	TxBytes    uint64 `json:"tx_bytes"`
	TxSyscalls uint64 `json:"tx_syscalls"`
	// TxGSOPackets counts the GSO super-packets among the frames handed over, each a run
	// of TxPackets' segments (the afpacket and tun backends' gso option).
	TxGSOPackets uint64 `json:"tx_gso_packets,omitempty"`
	// CgoCalls, for a backend in C (DPDK), counts every call into it: bursts (in
	// RxSyscalls and TxSyscalls, which count rx_burst and tx_burst calls there) and mbuf
	// allocations and frees in bulk.
	CgoCalls    uint64 `json:"cgo_calls,omitempty"`
	KernelDrops uint64 `json:"kernel_drops"` // frames the kernel dropped for want of room
	Errors      uint64 `json:"errors"`       // anything else lost (truncated, refused, no buffer)
}

// Opener opens a backend's link.
type Opener func(spec *Spec, p Params) (*Link, error)

var (
	backends = map[string]Opener{}
	raw      = map[string]bool{}
)

// Register makes a backend available under name (backends call it from init).
func Register(name string, open Opener) { backends[name] = open }

// RegisterRaw makes a backend available under name whose specification is not
// "device,options": the opener gets everything after the colon in Spec.Device, untouched,
// and Spec.Options empty, to fill from it (SetOption) for Int, Flag and Done.
func RegisterRaw(name string, open Opener) {
	backends[name] = open
	raw[name] = true
}

// SetOption records an option, for a raw backend's opener that parsed it; an option given
// twice is an error.
func (s *Spec) SetOption(k, v string) error {
	if k == "" {
		return fmt.Errorf("link %s: empty option", s.Backend)
	}
	if _, dup := s.Options[k]; dup {
		return fmt.Errorf("link %s: option %q given twice", s.Backend, k)
	}
	s.Options[k] = v
	s.order = append(s.order, k)
	return nil
}

// String returns an option's value (def if absent) and removes it from the options.
func (s *Spec) String(name, def string) string {
	v, ok := s.Options[name]
	if !ok {
		return def
	}
	delete(s.Options, name)
	return v
}

// Backends lists the registered backends.
func Backends() []string {
	out := make([]string, 0, len(backends))
	for k := range backends {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrKernel is returned by Open for the "kernel" specification, which has no port.
var ErrKernel = errors.New("link: kernel is Linux's own stack, not a link")

// Open opens the link a specification names.
func Open(spec string, p Params) (*Link, error) {
	if spec == Kernel {
		return nil, ErrKernel
	}
	var sp Spec
	if backend, rest, ok := strings.Cut(spec, ":"); ok && raw[backend] {
		if strings.TrimSpace(rest) == "" {
			return nil, fmt.Errorf("link %q: nothing after the colon", spec)
		}
		sp = Spec{Backend: backend, Device: rest, Options: map[string]string{}}
	} else {
		var err error
		if sp, err = ParseSpec(spec); err != nil {
			return nil, err
		}
	}
	open, ok := backends[sp.Backend]
	if !ok {
		return nil, fmt.Errorf("link %q: unknown backend %q (have %s, and %q)", spec, sp.Backend, strings.Join(Backends(), ", "), Kernel)
	}
	l, err := open(&sp, p)
	if err != nil {
		return nil, err
	}
	if err := sp.Done(); err != nil {
		l.Port.Close()
		return nil, err
	}
	return l, nil
}

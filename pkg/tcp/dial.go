package tcp

import (
	"context"
	"net/netip"

	"github.com/shardstack/shardstack/pkg/hash"
)

// DialOptions tune an active open.
type DialOptions struct {
	// LocalPort binds the connection to a port (0: an ephemeral one, spec §7).
	LocalPort uint16
	// Events, if set, makes the connection event-driven: its callbacks run on its shard.
	Events Events
	// UserData is the connection's initial Handle.UserData (set before any callback runs).
	UserData uint64
	// SynCnt is TCP_SYNCNT: it replaces tcp_syn_retries for this connection (1-255).
	SynCnt int
	// Near opens the connection on the shard that owns Near (the zero Handle lets the
	// stack spread connections over the shards). An event-driven client that dials its next
	// connection from a callback keeps it on the same core this way.
	Near Handle
}

// Dial opens a connection to raddr and waits until it is established, fails, or ctx ends.
func (e *Engine) Dial(ctx context.Context, raddr netip.AddrPort) (*Conn, error) {
	h, err := e.DialHandle(ctx, raddr)
	if err != nil {
		return nil, err
	}
	return NewConn(h), nil
}

// DialHandle is Dial without the net.Conn wrapper: it allocates nothing.
func (e *Engine) DialHandle(ctx context.Context, raddr netip.AddrPort) (Handle, error) {
	h, err := e.DialAsyncHandle(raddr, DialOptions{})
	if err != nil {
		return Handle{}, err
	}
	if err := h.WaitConnected(ctx); err != nil {
		h.Close()
		return Handle{}, &DialError{Addr: raddr, Err: err}
	}
	return h, nil
}

// DialError is a failed Dial: the address and why.
type DialError struct {
	Addr netip.AddrPort
	Err  error
}

// Error implements error.
func (e *DialError) Error() string { return "tcp: dial " + e.Addr.String() + ": " + e.Err.Error() }

// Unwrap returns the cause (ErrConnectionRefused, ErrTimedOut, a context error, ...).
func (e *DialError) Unwrap() error { return e.Err }

// DialAsync starts an active open and returns at once, like a non-blocking connect(2); the
// Conn reports the outcome through State, WaitConnected or its first Read/Write.
func (e *Engine) DialAsync(raddr netip.AddrPort, opts DialOptions) (*Conn, error) {
	h, err := e.DialAsyncHandle(raddr, opts)
	if err != nil {
		return nil, err
	}
	c := NewConn(h)
	c.raddr = raddr
	return c, nil
}

// DialAsyncHandle is DialAsync without the net.Conn wrapper.
func (e *Engine) DialAsyncHandle(raddr netip.AddrPort, opts DialOptions) (Handle, error) {
	if !raddr.Addr().Is4() {
		return Handle{}, &DialError{Addr: raddr, Err: ErrInvalid}
	}
	if raddr.Port() == 0 {
		return Handle{}, &DialError{Addr: raddr, Err: ErrInvalid}
	}
	dst := raddr.Addr().As4()
	if e.routable != nil && !e.routable(dst) {
		return Handle{}, &DialError{Addr: raddr, Err: ErrNetUnreachable}
	}
	var s *shard
	if opts.LocalPort != 0 {
		// A fixed 4-tuple has exactly one owner: the shard its link queue feeds.
		k := hash.KeyV4(e.source(dst), opts.LocalPort, dst, raddr.Port())
		s = e.shards[e.owner(k, e.hasher.Sum(&k))]
	} else if opts.Near.ep != nil && opts.Near.ep.sh.eng == e {
		s = opts.Near.ep.sh
	} else {
		s = e.shards[int(e.dialRR.Add(1))%len(e.shards)]
	}
	ep := s.allocEndpoint()
	ep.dialAddr, ep.dialPort, ep.dialLocalPort = dst, raddr.Port(), opts.LocalPort
	ep.events, ep.userData = opts.Events, opts.UserData
	ep.synCnt = uint8(min(max(opts.SynCnt, 0), 255))
	ep.pub.Store(uint32(StateSynSent))
	h := Handle{ep: ep, gen: ep.gen()}
	ep.post(pendConnect)
	return h, nil
}

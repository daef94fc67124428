package tcp

import (
	"context"
	"net"
	"net/netip"
	"time"
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
	// KeepAlive turns keepalive on from the start when KeepAlive.Enable is set, with
	// net.KeepAliveConfig's meaning of the other fields (as Handle.SetKeepAliveConfig).
	KeepAlive net.KeepAliveConfig
	// UserTimeout is TCP_USER_TIMEOUT (0: off), as Handle.SetUserTimeout; it also bounds
	// the SYN retransmissions of this Dial.
	UserTimeout time.Duration
}

// Dial opens a connection to raddr and waits until it is established, fails, or ctx ends.
// Like Go's net.Dial, every error it returns is a *net.OpError (Op "dial", Net "tcp") whose
// Err is the cause: ErrConnectionRefused, ErrTimedOut, a context error, ...; errors.Is sees
// through it to the cause and its errno, and its Timeout method reports a deadline or
// ETIMEDOUT.
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
		laddr := h.LocalAddrPort()
		h.Close()
		return Handle{}, dialError(laddr, raddr, err)
	}
	return h, nil
}

// dialError wraps why a connection to raddr failed as Go's net does: a *net.OpError with
// Op "dial" and Net "tcp", and Source when the local port had been picked.
func dialError(laddr, raddr netip.AddrPort, err error) error {
	op := &net.OpError{Op: "dial", Net: "tcp", Err: err}
	if laddr.IsValid() {
		op.Source = net.TCPAddrFromAddrPort(laddr)
	}
	if raddr.IsValid() {
		op.Addr = net.TCPAddrFromAddrPort(raddr)
	}
	return op
}

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
	// An IPv4-mapped address is the IPv4 address (a dual-stack socket connecting to it
	// speaks IPv4); a zone does not select anything on a stack with one link.
	dst := raddr.Addr().WithZone("").Unmap()
	if !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast() || raddr.Port() == 0 {
		return Handle{}, dialError(netip.AddrPort{}, raddr, ErrInvalid)
	}
	ka, err := optionKeepAlive(opts.KeepAlive)
	if err != nil {
		return Handle{}, dialError(netip.AddrPort{}, raddr, err)
	}
	ut, err := userTimeoutMs(opts.UserTimeout)
	if err != nil {
		return Handle{}, dialError(netip.AddrPort{}, raddr, err)
	}
	if e.routable != nil && !e.routable(dst) {
		return Handle{}, dialError(netip.AddrPort{}, raddr, ErrNetUnreachable)
	}
	var s *shard
	if opts.LocalPort != 0 {
		// A fixed 4-tuple has exactly one owner: the shard its link queue feeds.
		src := e.source(dst)
		if !src.IsValid() {
			return Handle{}, dialError(netip.AddrPort{}, raddr, ErrAddrNotAvail)
		}
		k := keyFor(src, opts.LocalPort, dst, raddr.Port())
		s = e.shards[e.owner(k, e.hasher.Sum(&k))]
	} else if opts.Near.ep != nil && opts.Near.ep.sh.eng == e {
		s = opts.Near.ep.sh
	} else {
		s = e.shards[int(e.dialRR.Add(1))%len(e.shards)]
	}
	ep := s.allocEndpoint()
	ep.dialAddr, ep.dialPort, ep.dialLocalPort = dst, raddr.Port(), opts.LocalPort
	ep.events = opts.Events
	if opts.UserData != 0 {
		ep.userData.Store(opts.UserData)
	}
	ep.opts.setKeepAlive(ka)
	ep.opts.setUserTimeout(ut)
	ep.synCnt = uint8(min(max(opts.SynCnt, 0), 255))
	ep.pub.Store(uint32(StateSynSent))
	h := Handle{ep: ep, gen: ep.gen()}
	ep.post(pendConnect)
	return h, nil
}

package stack

// Linux's input filters for IPv4: the checks ip_route_input_noref makes before a datagram
// is delivered locally (martian sources and destinations, broadcast and multicast
// destinations), in ip_route_input_slow's order so that a datagram that is martian twice
// over is counted where Linux counts it.

// inRoute is the verdict of routeInput.
type inRoute uint8

const (
	routeLocal     inRoute = iota // unicast to one of our addresses (RTN_LOCAL)
	routeBroadcast                // to 255.255.255.255 or a subnet's broadcast address (RTN_BROADCAST)
	routeMulticast                // to a multicast group (RTN_MULTICAST)
	routeMartianSrc
	routeMartianDst
	routeNotLocal // for another host: with forwarding off Linux counts IpInAddrErrors (ip_error, EHOSTUNREACH)
)

func isMulticast4(a uint32) bool { return a&0xf0000000 == 0xe0000000 } // 224.0.0.0/4
func isZeronet4(a uint32) bool   { return a&0xff000000 == 0 }          // 0.0.0.0/8
func isLoopback4(a uint32) bool  { return a&0xff000000 == 0x7f000000 } // 127.0.0.0/8
func isClassE4(a uint32) bool    { return a&0xf0000000 == 0xf0000000 } // 240.0.0.0/4
const limitedBroadcast = 0xffffffff

// subnetBroadcast reports whether a is the directed broadcast address of one of our
// subnets (Linux adds a broadcast route for prefix|~mask when the prefix is shorter than /31).
func (s *Stack) subnetBroadcast(a uint32) bool {
	for i := range s.addrs {
		f := &s.addrs[i]
		if f.prefix.Bits() < 31 && a == f.net|^f.mask {
			return true
		}
	}
	return false
}

func (s *Stack) isLocal4(a uint32) bool {
	for i := range s.addrs {
		if s.addrs[i].addr == a {
			return true
		}
	}
	return false
}

// validSource is fib_validate_source with rp_filter=0 and accept_local=0: the source must
// not be one of our own addresses (a "land" packet) nor one of our broadcast addresses,
// whose reverse routes are RTN_LOCAL and RTN_BROADCAST rather than RTN_UNICAST.
func (s *Stack) validSource(a uint32) bool {
	return !s.isLocal4(a) && !s.subnetBroadcast(a)
}

// routeInput is ip_route_input_noref for a received datagram, as Linux decides it with
// forwarding off, route_localnet=0 and no multicast routing.
//
// One deliberate difference: a source in 240.0.0.0/4 (class E) is martian here. Linux
// dropped that check (the old BADCLASS test) and now accepts such sources; RFC 1812
// §5.3.7 lists them as martian, and no host that shardstack serves may use them.
func (s *Stack) routeInput(src, dst [4]byte) inRoute {
	sa, da := ip4(src), ip4(dst)
	if isMulticast4(da) {
		// ip_route_input_rcu takes multicast before the slow path; ip_mc_validate_source
		// refuses the same sources the slow path calls martian.
		if isMulticast4(sa) || sa == limitedBroadcast || isZeronet4(sa) || isLoopback4(sa) ||
			isClassE4(sa) || !s.validSource(sa) {
			return routeMartianSrc
		}
		return routeMulticast
	}
	// ip_route_input_slow: "check for the most weird martians".
	if isMulticast4(sa) || sa == limitedBroadcast {
		return routeMartianSrc
	}
	if da == limitedBroadcast || (sa == 0 && da == 0) {
		if !isZeronet4(sa) && !s.validSource(sa) {
			return routeMartianSrc
		}
		return routeBroadcast
	}
	if isZeronet4(sa) {
		return routeMartianSrc
	}
	if isZeronet4(da) {
		return routeMartianDst
	}
	if isLoopback4(da) {
		return routeMartianDst
	} else if isLoopback4(sa) {
		return routeMartianSrc
	}
	if isClassE4(sa) {
		return routeMartianSrc
	}
	// fib_lookup: our addresses are RTN_LOCAL, our subnets' broadcasts RTN_BROADCAST.
	switch {
	case s.isLocal4(da):
		if !s.validSource(sa) {
			return routeMartianSrc
		}
		return routeLocal
	case s.subnetBroadcast(da):
		if !s.validSource(sa) {
			return routeMartianSrc
		}
		return routeBroadcast
	}
	return routeNotLocal
}

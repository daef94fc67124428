package main

import (
	"net/netip"
)

// parseAddrs parses --addr values: an IPv4 or IPv6 address with its subnet each.
func parseAddrs(fs *flagSet, addrs multiFlag) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil || p.Addr().Zone() != "" {
			return nil, fs.errorf("--addr %q: want an address with its subnet, e.g. 198.18.0.1/24 or fd00::1/64", a)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseGateways parses --gateway values: at most one IPv4 and one IPv6 next hop.
func parseGateways(fs *flagSet, gws multiFlag) (gw4, gw6 netip.Addr, err error) {
	for _, g := range gws {
		a, perr := netip.ParseAddr(g)
		switch {
		case perr != nil:
			return gw4, gw6, fs.errorf("--gateway %q: want an IPv4 or IPv6 address", g)
		case a.Unmap().Is4():
			if gw4.IsValid() {
				return gw4, gw6, fs.errorf("--gateway %q: one IPv4 gateway only (%v given)", g, gw4)
			}
			gw4 = a.Unmap()
		default:
			if gw6.IsValid() {
				return gw4, gw6, fs.errorf("--gateway %q: one IPv6 gateway only (%v given)", g, gw6)
			}
			gw6 = a
		}
	}
	return gw4, gw6, nil
}

// tcpNetwork is Go's network for an address: "tcp4" for an IPv4 one, "tcp" (both
// families, dual-stack for [::]) otherwise.
func tcpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp"
}

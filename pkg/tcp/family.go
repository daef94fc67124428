package tcp

import (
	"net/netip"

	"github.com/shardstack/shardstack/pkg/hash"
)

// Addresses inside pkg/tcp live in the flow key (hash.Key): 16 bytes each, an IPv4
// address in the first 4 with the rest zero, and V6 for IPv6. The packet path reads and
// hashes them straight from the key, so that IPv4 costs what it did when addresses were
// [4]byte; netip.Addr appears only where an application or the stack hands one over (Dial,
// Listen, Config's functions, the socket table).

// keyFor returns the flow key of (laddr, lport) -> (raddr, rport); both addresses must be
// of the same family, IPv4 ones unmapped.
func keyFor(laddr netip.Addr, lport uint16, raddr netip.Addr, rport uint16) hash.Key {
	if raddr.Is4() {
		return hash.KeyV4(laddr.As4(), lport, raddr.As4(), rport)
	}
	return hash.KeyV6(laddr.As16(), lport, raddr.As16(), rport)
}

// keyAddr returns an address of a key (LocalAddr or RemoteAddr) as a netip.Addr.
func keyAddr(a *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*a)
	}
	return netip.AddrFrom4([4]byte(a[:4]))
}

func addrPorts(k *hash.Key) (local, peer netip.AddrPort) {
	local = netip.AddrPortFrom(keyAddr(&k.LocalAddr, k.V6), k.LocalPort)
	peer = netip.AddrPortFrom(keyAddr(&k.RemoteAddr, k.V6), k.RemotePort)
	return
}

// addrBytes is an address in the key's layout.
func addrBytes(a netip.Addr) (b [16]byte, v6 bool) {
	if a.Is4() {
		a4 := a.As4()
		copy(b[:4], a4[:])
		return b, false
	}
	return a.As16(), true
}

// Linux's SYN-cookie MSS tables: msstab in net/ipv4/syncookies.c and net/ipv6/syncookies.c
// (the IPv6 one is the common link MTUs less the 60 bytes of IPv6 and TCP headers).
var (
	cookieMSS4 = [4]uint16{536, 1300, 1440, 1460}
	cookieMSS6 = [4]uint16{1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60}
)

func cookieMSS(v6 bool) *[4]uint16 {
	if v6 {
		return &cookieMSS6
	}
	return &cookieMSS4
}

// mssFor is the MSS the link allows for a family: MTU less 40 bytes of IPv4 and TCP
// headers, or 60 for IPv6 (Linux tcp_mss_to_mtu / ipv6's advmss).
func (e *Engine) mssFor(v6 bool) int {
	if v6 {
		return e.mss6
	}
	return e.mss4
}

package hash

import (
	"net/netip"
	"strconv"
)

// Key is a comparable flow key seen from the local stack: local and remote
// address and port. IPv4 addresses live in the first 4 bytes of the arrays
// (the rest zero); V6 marks IPv6, so a v4 key never equals a v6 key.
type Key struct {
	LocalAddr, RemoteAddr [16]byte
	LocalPort, RemotePort uint16
	V6                    bool
}

// KeyV4 returns the key of an IPv4 flow.
func KeyV4(local [4]byte, lport uint16, remote [4]byte, rport uint16) Key {
	k := Key{LocalPort: lport, RemotePort: rport}
	copy(k.LocalAddr[:4], local[:])
	copy(k.RemoteAddr[:4], remote[:])
	return k
}

// KeyV6 returns the key of an IPv6 flow.
func KeyV6(local [16]byte, lport uint16, remote [16]byte, rport uint16) Key {
	return Key{
		LocalAddr: local, RemoteAddr: remote,
		LocalPort: lport, RemotePort: rport,
		V6: true,
	}
}

// Reverse returns the key with local and remote swapped: the same flow seen
// from the peer.
func (k Key) Reverse() Key {
	k.LocalAddr, k.RemoteAddr = k.RemoteAddr, k.LocalAddr
	k.LocalPort, k.RemotePort = k.RemotePort, k.LocalPort
	return k
}

// String formats the key as "local->remote", for example
// "198.18.0.1:80->198.18.0.2:40000" or "[2001:db8::1]:80->[2001:db8::2]:40000".
// It is for logs and the socket table, not the packet path.
func (k Key) String() string {
	return endpoint(k.LocalAddr, k.LocalPort, k.V6) + "->" + endpoint(k.RemoteAddr, k.RemotePort, k.V6)
}

func endpoint(a [16]byte, port uint16, v6 bool) string {
	if !v6 {
		return netip.AddrFrom4([4]byte(a[:4])).String() + ":" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), port).String()
}

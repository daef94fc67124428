package dpdkshim

// LinkType is the framing of the frames a port carries.
type LinkType uint8

// The link types.
const (
	// LinkEthernet: frames are Ethernet II frames; the stack resolves neighbours (ARP).
	LinkEthernet LinkType = iota
	// LinkIP: frames are bare IP packets with no link header (a TUN device), IPv4 or IPv6
	// as the version nibble of the first byte says. There are no link addresses: the stack
	// sends every packet straight to the port, with no neighbour resolution.
	LinkIP
)

// String returns the link type's name.
func (t LinkType) String() string {
	switch t {
	case LinkEthernet:
		return "ethernet"
	case LinkIP:
		return "ip"
	}
	return "unknown"
}

// LinkTyper is a port whose frames are not Ethernet frames: LinkType says what they are.
// A port that does not implement it carries Ethernet.
type LinkTyper interface {
	LinkType() LinkType
}

// LinkTypeOf returns the link type of port p.
func LinkTypeOf(p Port) LinkType {
	if lt, ok := p.(LinkTyper); ok {
		return lt.LinkType()
	}
	return LinkEthernet
}

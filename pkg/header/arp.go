package header

import "encoding/binary"

// ARPLen is the length of an ARP packet for IPv4 over Ethernet (RFC 826).
const ARPLen = 28

// ARP operation codes (RFC 826).
const (
	ARPRequest uint16 = 1 // ARPRequest asks who has the target protocol address.
	ARPReply   uint16 = 2 // ARPReply answers with the sender hardware address.
)

const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	arpHTypeEthernet = 1
)

// ARP is a view of an ARP packet for IPv4 over Ethernet, exactly ARPLen bytes.
type ARP []byte

// ParseARP checks that b starts with an ARP packet for IPv4 over Ethernet (hardware type 1,
// protocol 0x0800, address lengths 6 and 4) and returns a view of its ARPLen bytes; frame
// padding after it is not part of the view. Any operation code is accepted. After it
// succeeds, no accessor of the view can panic.
func ParseARP(b []byte) (ARP, error) {
	if len(b) < ARPLen {
		return nil, ErrTruncated
	}
	if binary.BigEndian.Uint16(b[arpHType:]) != arpHTypeEthernet ||
		binary.BigEndian.Uint16(b[arpPType:]) != EtherTypeIPv4 ||
		b[arpHLen] != 6 || b[arpPLen] != 4 {
		return nil, ErrARPFormat
	}
	return ARP(b[:ARPLen]), nil
}

// Op returns the operation code (ARPRequest, ARPReply, or another value).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOp:]) }

// SenderMAC returns the sender hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[arpSHA : arpSHA+6]) }

// SenderIP returns the sender protocol address.
func (a ARP) SenderIP() [4]byte { return [4]byte(a[arpSPA : arpSPA+4]) }

// TargetMAC returns the target hardware address (zero in a Linux request).
func (a ARP) TargetMAC() MAC { return MAC(a[arpTHA : arpTHA+6]) }

// TargetIP returns the target protocol address.
func (a ARP) TargetIP() [4]byte { return [4]byte(a[arpTPA : arpTPA+4]) }

// EncodeARP writes an IPv4-over-Ethernet ARP packet into b, which must have len(b) >= ARPLen.
func EncodeARP(b []byte, op uint16, sha MAC, spa [4]byte, tha MAC, tpa [4]byte) {
	b = room(b, ARPLen)
	binary.BigEndian.PutUint16(b[arpHType:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(b[arpPType:], EtherTypeIPv4)
	b[arpHLen] = 6
	b[arpPLen] = 4
	binary.BigEndian.PutUint16(b[arpOp:], op)
	copy(b[arpSHA:], sha[:])
	copy(b[arpSPA:], spa[:])
	copy(b[arpTHA:], tha[:])
	copy(b[arpTPA:], tpa[:])
}

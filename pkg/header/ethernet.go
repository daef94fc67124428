package header

import "encoding/binary"

// EthernetLen is the length of an Ethernet II header without a VLAN tag.
const EthernetLen = 14

// EtherType values shardstack dispatches on.
const (
	EtherTypeIPv4 uint16 = 0x0800 // EtherTypeIPv4 is IPv4 (RFC 894).
	EtherTypeARP  uint16 = 0x0806 // EtherTypeARP is ARP (RFC 826).
	EtherTypeIPv6 uint16 = 0x86DD // EtherTypeIPv6 is IPv6 (RFC 2464).
)

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
)

// Ethernet is a view of an Ethernet II frame: header and payload.
type Ethernet []byte

// ParseEthernet checks that b holds an Ethernet header and returns it as a view. After it
// succeeds, no accessor of the view can panic. VLAN tags are not interpreted: a tagged frame
// reads as EtherType 0x8100.
func ParseEthernet(b []byte) (Ethernet, error) {
	if len(b) < EthernetLen {
		return nil, ErrTruncated
	}
	return Ethernet(b), nil
}

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[ethDst : ethDst+6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[ethSrc : ethSrc+6]) }

// Type returns the EtherType.
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[ethType:]) }

// Payload returns the bytes after the header, including any padding to the minimum frame.
func (e Ethernet) Payload() []byte { return e[EthernetLen:] }

// SetDst stores the destination address.
func (e Ethernet) SetDst(m MAC) { copy(e[ethDst:ethDst+6], m[:]) }

// SetSrc stores the source address.
func (e Ethernet) SetSrc(m MAC) { copy(e[ethSrc:ethSrc+6], m[:]) }

// SetType stores the EtherType.
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[ethType:], t) }

// EncodeEthernet writes an Ethernet header into b, which must have len(b) >= EthernetLen.
func EncodeEthernet(b []byte, dst, src MAC, etherType uint16) {
	e := Ethernet(room(b, EthernetLen))
	e.SetDst(dst)
	e.SetSrc(src)
	e.SetType(etherType)
}

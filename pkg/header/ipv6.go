package header

import "encoding/binary"

// IPv6Len is the length of the fixed IPv6 header (RFC 8200 §3).
const IPv6Len = 40

const (
	ipv6VersionTC  = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24
)

// IPv6 is a view of an IPv6 packet: fixed header and payload (extension headers included).
type IPv6 []byte

// ParseIPv6 checks an IPv6 header at the start of b: version 6, len(b) >= IPv6Len, and a
// payload length that fits in b. The view it returns ends at the payload length. Jumbograms
// (RFC 2675, payload length 0 with a hop-by-hop option) are not supported and read as an
// empty payload. After it succeeds, no accessor of the view can panic.
func ParseIPv6(b []byte) (IPv6, error) {
	if len(b) < IPv6Len {
		return nil, ErrTruncated
	}
	if b[ipv6VersionTC]>>4 != 6 {
		return nil, ErrVersion
	}
	n := IPv6Len + int(binary.BigEndian.Uint16(b[ipv6PayloadLen:]))
	if n > len(b) {
		return nil, ErrTotalLength
	}
	return IPv6(b[:n]), nil
}

// TrafficClass returns the traffic class byte (DSCP and ECN).
func (ip IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(ip[ipv6VersionTC:]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (ip IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(ip[ipv6VersionTC:]) & 0xfffff
}

// PayloadLen returns the payload length field in bytes.
func (ip IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(ip[ipv6PayloadLen:])) }

// NextHeader returns the next header (protocol) number.
func (ip IPv6) NextHeader() uint8 { return ip[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (ip IPv6) HopLimit() uint8 { return ip[ipv6HopLimit] }

// Src returns the source address.
func (ip IPv6) Src() [16]byte { return [16]byte(ip[ipv6Src : ipv6Src+16]) }

// Dst returns the destination address.
func (ip IPv6) Dst() [16]byte { return [16]byte(ip[ipv6Dst : ipv6Dst+16]) }

// Payload returns the bytes after the fixed header, up to the payload length.
func (ip IPv6) Payload() []byte { return ip[IPv6Len : IPv6Len+ip.PayloadLen()] }

// EncodeIPv6 writes a 40-byte IPv6 header with traffic class and flow label 0 into b, which
// must have len(b) >= IPv6Len.
func EncodeIPv6(b []byte, payloadLen uint16, next, hop uint8, src, dst [16]byte) {
	ip := IPv6(room(b, IPv6Len))
	binary.BigEndian.PutUint32(ip[ipv6VersionTC:], 6<<28)
	binary.BigEndian.PutUint16(ip[ipv6PayloadLen:], payloadLen)
	ip[ipv6NextHeader] = next
	ip[ipv6HopLimit] = hop
	copy(ip[ipv6Src:], src[:])
	copy(ip[ipv6Dst:], dst[:])
}

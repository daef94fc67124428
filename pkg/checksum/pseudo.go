package checksum

import "encoding/binary"

// PseudoHeaderIPv4 returns the partial sum of the IPv4 pseudo-header that TCP and UDP
// checksums cover (RFC 9293 §3.1, RFC 768): source, destination, zero, protocol, and the
// transport length (header plus data).
func PseudoHeaderIPv4(src, dst [4]byte, proto uint8, length uint16) uint32 {
	// At most 6 words of 0xffff: no overflow of 32 bits.
	return uint32(binary.BigEndian.Uint16(src[0:2])) +
		uint32(binary.BigEndian.Uint16(src[2:4])) +
		uint32(binary.BigEndian.Uint16(dst[0:2])) +
		uint32(binary.BigEndian.Uint16(dst[2:4])) +
		uint32(proto) +
		uint32(length)
}

// PseudoHeaderIPv6 returns the partial sum of the IPv6 pseudo-header (RFC 8200 §8.1):
// source, destination, 32-bit upper-layer length, three zero bytes and the next header.
func PseudoHeaderIPv6(src, dst [16]byte, proto uint8, length uint32) uint32 {
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(binary.BigEndian.Uint16(src[i:]))
		s += uint32(binary.BigEndian.Uint16(dst[i:]))
	}
	// At most 19 words of 0xffff: no overflow of 32 bits.
	return s + length>>16 + length&0xffff + uint32(proto)
}

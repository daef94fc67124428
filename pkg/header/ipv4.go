package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IP protocol numbers shardstack dispatches on.
const (
	ProtoICMP uint8 = 1  // ProtoICMP is ICMP (RFC 792).
	ProtoTCP  uint8 = 6  // ProtoTCP is TCP (RFC 9293).
	ProtoUDP  uint8 = 17 // ProtoUDP is UDP (RFC 768).
)

// IPv4 flag bits as returned by IPv4.Flags and taken by IPv4Fields.Flags (RFC 791 §3.1).
const (
	IPv4FlagMoreFragments uint8 = 0x1 // IPv4FlagMoreFragments is MF.
	IPv4FlagDontFragment  uint8 = 0x2 // IPv4FlagDontFragment is DF.
)

const (
	ipv4VersionIHL = 0
	ipv4TOS        = 1
	ipv4TotalLen   = 2
	ipv4ID         = 4
	ipv4FlagsFrag  = 6
	ipv4TTL        = 8
	ipv4Protocol   = 9
	ipv4Checksum   = 10
	ipv4Src        = 12
	ipv4Dst        = 16
)

// IPv4 is a view of an IPv4 datagram: header, options and payload.
type IPv4 []byte

// ParseIPv4 checks an IPv4 header at the start of b: version 4, IHL >= 5, len(b) >= IHL*4,
// IHL*4 <= total length <= len(b), and the header checksum. Options are skipped by IHL, not
// interpreted. The view it returns ends at the total length, so link-layer padding after
// the datagram is not part of it. After it succeeds, no accessor of the view can panic.
func ParseIPv4(b []byte) (IPv4, error) {
	if len(b) < IPv4MinLen {
		return nil, ErrTruncated
	}
	if b[ipv4VersionIHL]>>4 != 4 {
		return nil, ErrVersion
	}
	hl := int(b[ipv4VersionIHL]&0xf) * 4
	if hl < IPv4MinLen {
		return nil, ErrHeaderLength
	}
	if hl > len(b) {
		return nil, ErrTruncated
	}
	tl := int(binary.BigEndian.Uint16(b[ipv4TotalLen:]))
	if tl < hl || tl > len(b) {
		return nil, ErrTotalLength
	}
	// RFC 1071: summing a header that includes its correct checksum gives 0 after complement.
	if checksum.Checksum(b[:hl], 0) != 0 {
		return nil, ErrChecksum
	}
	return IPv4(b[:tl]), nil
}

// HeaderLen returns the header length in bytes, options included (IHL * 4).
func (ip IPv4) HeaderLen() int { return int(ip[ipv4VersionIHL]&0xf) * 4 }

// TotalLen returns the total length field: header plus payload, in bytes.
func (ip IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(ip[ipv4TotalLen:])) }

// TOS returns the type-of-service byte (DSCP and ECN).
func (ip IPv4) TOS() uint8 { return ip[ipv4TOS] }

// ID returns the identification field.
func (ip IPv4) ID() uint16 { return binary.BigEndian.Uint16(ip[ipv4ID:]) }

// Flags returns the three flag bits: IPv4FlagDontFragment (0x2), IPv4FlagMoreFragments (0x1)
// and the reserved bit (0x4).
func (ip IPv4) Flags() uint8 { return ip[ipv4FlagsFrag] >> 5 }

// DontFragment reports whether DF is set.
func (ip IPv4) DontFragment() bool { return ip.Flags()&IPv4FlagDontFragment != 0 }

// MoreFragments reports whether MF is set.
func (ip IPv4) MoreFragments() bool { return ip.Flags()&IPv4FlagMoreFragments != 0 }

// FragmentOffset returns the fragment offset in bytes (the field counts 8-byte units).
func (ip IPv4) FragmentOffset() uint16 {
	return (binary.BigEndian.Uint16(ip[ipv4FlagsFrag:]) & 0x1fff) * 8
}

// IsFragment reports whether the datagram is a fragment: MF set or a non-zero offset.
func (ip IPv4) IsFragment() bool {
	return ip.MoreFragments() || ip.FragmentOffset() != 0
}

// TTL returns the time to live.
func (ip IPv4) TTL() uint8 { return ip[ipv4TTL] }

// Protocol returns the payload's protocol number.
func (ip IPv4) Protocol() uint8 { return ip[ipv4Protocol] }

// Checksum returns the header checksum field as stored.
func (ip IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(ip[ipv4Checksum:]) }

// Src returns the source address.
func (ip IPv4) Src() [4]byte { return [4]byte(ip[ipv4Src : ipv4Src+4]) }

// Dst returns the destination address.
func (ip IPv4) Dst() [4]byte { return [4]byte(ip[ipv4Dst : ipv4Dst+4]) }

// Options returns the header options, between the fixed header and HeaderLen.
func (ip IPv4) Options() []byte { return ip[IPv4MinLen:ip.HeaderLen()] }

// Payload returns the bytes between the header and the total length.
func (ip IPv4) Payload() []byte { return ip[ip.HeaderLen():ip.TotalLen()] }

// SetChecksum recomputes the header checksum over HeaderLen bytes and stores it.
func (ip IPv4) SetChecksum() {
	hl := ip.HeaderLen()
	ip[ipv4Checksum], ip[ipv4Checksum+1] = 0, 0
	binary.BigEndian.PutUint16(ip[ipv4Checksum:], checksum.Checksum(ip[:hl], 0))
}

// IPv4Fields holds the values EncodeIPv4 writes.
type IPv4Fields struct {
	TOS      uint8   // TOS is the type-of-service byte.
	TotalLen uint16  // TotalLen is header plus payload in bytes.
	ID       uint16  // ID is the identification field.
	Flags    uint8   // Flags are 3 bits: 0x2 DF, 0x1 MF.
	FragOff  uint16  // FragOff is the fragment offset in bytes, a multiple of 8.
	TTL      uint8   // TTL is the time to live.
	Protocol uint8   // Protocol is the payload protocol number.
	Src      [4]byte // Src is the source address.
	Dst      [4]byte // Dst is the destination address.
}

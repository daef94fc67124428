package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// ICMPv4Len is the length of the fixed ICMPv4 header: type, code, checksum and the 4-byte
// rest of header (RFC 792).
const ICMPv4Len = 8

// ICMPv4 message types (RFC 792, RFC 950, RFC 1256).
const (
	ICMPv4EchoReply      uint8 = 0
	ICMPv4DestUnreach    uint8 = 3
	ICMPv4SourceQuench   uint8 = 4
	ICMPv4Redirect       uint8 = 5
	ICMPv4Echo           uint8 = 8
	ICMPv4TimeExceeded   uint8 = 11
	ICMPv4ParamProblem   uint8 = 12
	ICMPv4Timestamp      uint8 = 13
	ICMPv4TimestampReply uint8 = 14
	ICMPv4AddrMask       uint8 = 17
	ICMPv4AddrMaskReply  uint8 = 18
	// ICMPv4MaxType is the highest type Linux knows (NR_ICMP_TYPES); higher ones are
	// discarded (RFC 1122 §3.2.2).
	ICMPv4MaxType uint8 = 18
)

// ICMPv4 destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
const (
	ICMPv4NetUnreach      uint8 = 0
	ICMPv4HostUnreach     uint8 = 1
	ICMPv4ProtoUnreach    uint8 = 2
	ICMPv4PortUnreach     uint8 = 3
	ICMPv4FragNeeded      uint8 = 4
	ICMPv4SourceRouteFail uint8 = 5
	// ICMPv4MaxUnreachCode is the highest code Linux maps to an errno (NR_ICMP_UNREACH,
	// precedence cutoff).
	ICMPv4MaxUnreachCode uint8 = 15
)

// ICMPv4 is a view of an ICMPv4 message: the 8-byte header and its body.
type ICMPv4 []byte

// ParseICMPv4 checks that b holds at least the ICMPv4 header. It does not verify the
// checksum (ChecksumValid does). After it succeeds no accessor of the view can panic.
func ParseICMPv4(b []byte) (ICMPv4, error) {
	if len(b) < ICMPv4Len {
		return nil, ErrTruncated
	}
	return ICMPv4(b), nil
}

// Type returns the message type.
func (m ICMPv4) Type() uint8 { return m[0] }

// Code returns the message code.
func (m ICMPv4) Code() uint8 { return m[1] }

// Checksum returns the checksum field as stored.
func (m ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(m[2:]) }

// Ident returns the identifier of an echo or timestamp message.
func (m ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(m[4:]) }

// Seq returns the sequence number of an echo or timestamp message.
func (m ICMPv4) Seq() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// NextHopMTU returns the next-hop MTU of a fragmentation-needed message (RFC 1191 §4).
func (m ICMPv4) NextHopMTU() uint16 { return binary.BigEndian.Uint16(m[6:]) }

// Pointer returns the pointer byte of a parameter problem message (RFC 792).
func (m ICMPv4) Pointer() uint8 { return m[4] }

// RestOfHeader returns the 4 bytes after the checksum.
func (m ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(m[4:]) }

// Body returns what follows the header: an echo's data, or an error's quoted datagram.
func (m ICMPv4) Body() []byte { return m[ICMPv4Len:] }

// ChecksumValid reports whether the checksum verifies over the whole message.
func (m ICMPv4) ChecksumValid() bool { return checksum.Checksum(m, 0) == 0 }

// IsICMPv4Error reports whether an ICMPv4 type is an error message (RFC 1122 §3.2.2: never
// answered with an error), as Linux's icmp_pointers[].error marks them: every type up to
// ICMPv4MaxType that is not a query or a reply to one.
func IsICMPv4Error(t uint8) bool {
	switch t {
	case ICMPv4EchoReply, ICMPv4Echo, ICMPv4Timestamp, ICMPv4TimestampReply,
		ICMPv4AddrMask, ICMPv4AddrMaskReply, 15, 16: // 15, 16: information request and reply
		return false
	}
	return t <= ICMPv4MaxType
}

// PutICMPv4 writes an ICMPv4 header of the given type, code and rest of header in front of
// the body that b already holds after it (b[ICMPv4Len:]) and fills in the checksum over
// the whole of b; len(b) >= ICMPv4Len.
func PutICMPv4(b []byte, typ, code uint8, rest uint32) {
	b[0], b[1], b[2], b[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(b[4:], rest)
	binary.BigEndian.PutUint16(b[2:], checksum.Checksum(b, 0))
}

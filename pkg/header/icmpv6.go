package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// IPv6 next-header values beyond TCP (RFC 8200 §4, RFC 4443).
const (
	ProtoHopByHop uint8 = 0  // hop-by-hop options
	ProtoRouting  uint8 = 43 // routing header
	ProtoFragment uint8 = 44 // fragment header
	ProtoICMPv6   uint8 = 58 // ICMPv6
	ProtoNoNext   uint8 = 59 // no next header
	ProtoDstOpts  uint8 = 60 // destination options
)

// ICMPv6 types (RFC 4443, RFC 4861).
const (
	ICMPv6DstUnreach    uint8 = 1
	ICMPv6PacketTooBig  uint8 = 2
	ICMPv6TimeExceeded  uint8 = 3
	ICMPv6ParamProblem  uint8 = 4
	ICMPv6EchoRequest   uint8 = 128
	ICMPv6EchoReply     uint8 = 129
	ICMPv6RouterSolicit uint8 = 133
	ICMPv6RouterAdvert  uint8 = 134
	ICMPv6NeighSolicit  uint8 = 135
	ICMPv6NeighAdvert   uint8 = 136
	ICMPv6Redirect      uint8 = 137
)

// ICMPv6MinLen is the ICMPv6 header: type, code, checksum.
const ICMPv6MinLen = 4

// NDP sizes and flags (RFC 4861 §4.3, §4.4, §4.6.1).
const (
	NDPMsgLen        = 24 // a solicitation or advertisement without options: header, reserved or flags, target
	NDPLinkAddrLen   = 8  // a source or target link-layer address option for Ethernet
	NDPOptSourceLLA  = 1
	NDPOptTargetLLA  = 2
	NDPFlagRouter    = 0x80
	NDPFlagSolicited = 0x40
	NDPFlagOverride  = 0x20
)

// ICMPv6ChecksumValid reports whether an ICMPv6 message b carried from src to dst
// verifies with the IPv6 pseudo-header (RFC 4443 §2.3).
func ICMPv6ChecksumValid(b []byte, src, dst [16]byte) bool {
	return checksum.Checksum(b, checksum.PseudoHeaderIPv6(src, dst, ProtoICMPv6, uint32(len(b)))) == 0
}

// SetICMPv6Checksum computes and stores the checksum of an ICMPv6 message b (at least
// ICMPv6MinLen bytes) from src to dst.
func SetICMPv6Checksum(b []byte, src, dst [16]byte) {
	b[2], b[3] = 0, 0
	binary.BigEndian.PutUint16(b[2:], checksum.Checksum(b, checksum.PseudoHeaderIPv6(src, dst, ProtoICMPv6, uint32(len(b)))))
}

// NDPLinkAddr walks the options of a neighbour discovery message (opts: what follows the
// fixed part) and returns the Ethernet address of the first option of type want. ok is
// false when an option has length 0 or runs past the message (RFC 4861 §7.1.1/§7.1.2
// make the message invalid), or a link-layer address option is not 8 bytes (not
// Ethernet's). An option of another type is skipped.
func NDPLinkAddr(opts []byte, want uint8) (mac MAC, found, ok bool) {
	for len(opts) > 0 {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return MAC{}, false, false
		}
		n := int(opts[1]) * 8
		if t := opts[0]; t == NDPOptSourceLLA || t == NDPOptTargetLLA {
			if n != NDPLinkAddrLen {
				return MAC{}, false, false
			}
			if t == want && !found {
				mac, found = MAC(opts[2:8]), true
			}
		}
		opts = opts[n:]
	}
	return mac, found, true
}

// PutNDP writes a neighbour solicitation (typ ICMPv6NeighSolicit, flags 0) or
// advertisement (ICMPv6NeighAdvert with NDPFlag* bits) for target with one link-layer
// address option (source for a solicitation, target for an advertisement) into b, which
// must hold NDPMsgLen+NDPLinkAddrLen bytes; the checksum is left for SetICMPv6Checksum.
func PutNDP(b []byte, typ, flags uint8, target [16]byte, lla MAC) {
	b = room(b, NDPMsgLen+NDPLinkAddrLen)
	b[0], b[1], b[2], b[3] = typ, 0, 0, 0
	b[4], b[5], b[6], b[7] = flags, 0, 0, 0
	copy(b[8:24], target[:])
	b[24] = NDPOptSourceLLA
	if typ == ICMPv6NeighAdvert {
		b[24] = NDPOptTargetLLA
	}
	b[25] = 1
	copy(b[26:32], lla[:])
}

// SolicitedNode returns the solicited-node multicast group of a (RFC 4291 §2.7.1):
// ff02::1:ff00:0/104 with a's low 24 bits.
func SolicitedNode(a [16]byte) [16]byte {
	return [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: a[13], 14: a[14], 15: a[15]}
}

// IPv6MulticastMAC is the Ethernet address of an IPv6 multicast group (RFC 2464 §7):
// 33:33 and the group's low 32 bits.
func IPv6MulticastMAC(a [16]byte) MAC { return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]} }

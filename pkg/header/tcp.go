package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// TCPMinLen is the length of a TCP header without options.
const TCPMinLen = 20

// MaxTCPOptionsLen is the most option bytes a TCP header can carry (data offset 15 words).
const MaxTCPOptionsLen = 40

// TCP flag bits as returned by TCP.Flags (RFC 9293 §3.1, RFC 3168 §6.1 for ECE and CWR).
const (
	TCPFlagFIN uint8 = 1 << iota // TCPFlagFIN: no more data from sender.
	TCPFlagSYN                   // TCPFlagSYN: synchronize sequence numbers.
	TCPFlagRST                   // TCPFlagRST: reset the connection.
	TCPFlagPSH                   // TCPFlagPSH: push function.
	TCPFlagACK                   // TCPFlagACK: acknowledgment field is significant.
	TCPFlagURG                   // TCPFlagURG: urgent pointer field is significant.
	TCPFlagECE                   // TCPFlagECE: ECN echo.
	TCPFlagCWR                   // TCPFlagCWR: congestion window reduced.
)

const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18
)

// TCP is a view of a TCP segment: header, options and payload.
type TCP []byte

// ParseTCP checks that b holds a TCP header: len(b) >= TCPMinLen and
// TCPMinLen <= data offset * 4 <= len(b). It verifies neither the checksum (that needs the
// IP addresses: see ChecksumValidIPv4) nor the options (see ParseTCPOptionsTolerant and
// ParseTCPOptions). After it succeeds, no accessor of the view can panic.
func ParseTCP(b []byte) (TCP, error) {
	if len(b) < TCPMinLen {
		return nil, ErrTruncated
	}
	off := int(b[tcpDataOffset]>>4) * 4
	if off < TCPMinLen || off > len(b) {
		return nil, ErrDataOffset
	}
	return TCP(b), nil
}

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPort:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPort:]) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[tcpSeq:]) }

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[tcpAck:]) }

// DataOffset returns the header length in bytes, options included.
func (t TCP) DataOffset() int { return int(t[tcpDataOffset]>>4) * 4 }

// Reserved returns the four bits between the data offset and the flags (RFC 9293 §3.1; the
// lowest was RFC 3540's historic NS bit and is AccECN's AE bit). EncodeTCP writes them as 0.
func (t TCP) Reserved() uint8 { return t[tcpDataOffset] & 0x0f }

// Flags returns the eight flag bits (TCPFlagFIN ... TCPFlagCWR).
func (t TCP) Flags() uint8 { return t[tcpFlags] }

// Window returns the window field, not scaled.
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindow:]) }

// Checksum returns the checksum field as stored.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksum:]) }

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[tcpUrgent:]) }

// Options returns the option bytes between the fixed header and the data offset.
func (t TCP) Options() []byte { return t[TCPMinLen:t.DataOffset()] }

// Payload returns the bytes after the header.
func (t TCP) Payload() []byte { return t[t.DataOffset():] }

// SetSrcPort stores the source port.
func (t TCP) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPort:], p) }

// SetDstPort stores the destination port.
func (t TCP) SetDstPort(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPort:], p) }

// SetSeq stores the sequence number.
func (t TCP) SetSeq(s uint32) { binary.BigEndian.PutUint32(t[tcpSeq:], s) }

// SetAck stores the acknowledgment number.
func (t TCP) SetAck(a uint32) { binary.BigEndian.PutUint32(t[tcpAck:], a) }

// SetFlags stores the eight flag bits.
func (t TCP) SetFlags(f uint8) { t[tcpFlags] = f }

// SetWindow stores the window field.
func (t TCP) SetWindow(w uint16) { binary.BigEndian.PutUint16(t[tcpWindow:], w) }

// SetChecksum stores the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[tcpChecksum:], c) }

// SetUrgent stores the urgent pointer.
func (t TCP) SetUrgent(u uint16) { binary.BigEndian.PutUint16(t[tcpUrgent:], u) }

// ChecksumValidIPv4 reports whether the checksum verifies over the whole segment t (header
// and payload) with the IPv4 pseudo-header of src and dst (RFC 9293 §3.1). A segment longer
// than 65535 bytes cannot be described by the pseudo-header and never verifies.
func (t TCP) ChecksumValidIPv4(src, dst [4]byte) bool {
	if len(t) > 0xffff {
		return false
	}
	return checksum.Checksum(t, checksum.PseudoHeaderIPv4(src, dst, ProtoTCP, uint16(len(t)))) == 0
}

// TCPChecksumOffset is where the checksum field sits in a TCP header.
const TCPChecksumOffset = tcpChecksum

// PartialTCPChecksumIPv4 stores in t's checksum field the folded IPv4 pseudo-header sum of
// src and dst (not inverted), which is what a link that offloads the checksum completes:
// it sums the whole segment from its first byte, field included, and stores the inverse
// (Linux CHECKSUM_PARTIAL, virtio's NEEDS_CSUM). t must not be longer than 65535 bytes.
func PartialTCPChecksumIPv4(t TCP, src, dst [4]byte) {
	t.SetChecksum(checksum.Fold(checksum.PseudoHeaderIPv4(src, dst, ProtoTCP, uint16(len(t)))))
}

// SetChecksumIPv4 computes the checksum over the whole segment t with the IPv4
// pseudo-header of src and dst and stores it. t must not be longer than 65535 bytes.
func (t TCP) SetChecksumIPv4(src, dst [4]byte) {
	t.SetChecksum(0)
	t.SetChecksum(checksum.Checksum(t, checksum.PseudoHeaderIPv4(src, dst, ProtoTCP, uint16(len(t)))))
}

// ChecksumValidIPv6 reports whether the checksum verifies over the whole segment t with the
// IPv6 pseudo-header of src and dst (RFC 8200 §8.1).
func (t TCP) ChecksumValidIPv6(src, dst [16]byte) bool {
	return checksum.Checksum(t, checksum.PseudoHeaderIPv6(src, dst, ProtoTCP, uint32(len(t)))) == 0
}

// SetChecksumIPv6 computes the checksum over the whole segment t with the IPv6
// pseudo-header of src and dst and stores it.
func (t TCP) SetChecksumIPv6(src, dst [16]byte) {
	t.SetChecksum(0)
	t.SetChecksum(checksum.Checksum(t, checksum.PseudoHeaderIPv6(src, dst, ProtoTCP, uint32(len(t)))))
}

// TCPFields holds the values EncodeTCP writes.
type TCPFields struct {
	SrcPort uint16 // SrcPort is the source port.
	DstPort uint16 // DstPort is the destination port.
	Seq     uint32 // Seq is the sequence number.
	Ack     uint32 // Ack is the acknowledgment number.
	Flags   uint8  // Flags are the eight flag bits.
	Window  uint16 // Window is the window field, already scaled down.
	Urgent  uint16 // Urgent is the urgent pointer.
}

// EncodeTCP writes the fixed TCP header (with PutTCPHeader) and option bytes opts as they
// are, malformed ones included (tests, fuzzing and generators use it), into b and returns
// the header length. opts is at most MaxTCPOptionsLen bytes; a length that
// is not a multiple of 4 is padded with zero (EOL) bytes, which RFC 9293 §3.1 allows. b must
// have room for the header and the padded options. The checksum field is left 0, the
// reserved bits too.
func EncodeTCP(b []byte, f *TCPFields, opts []byte) int {
	if len(opts) > MaxTCPOptionsLen {
		panic("header: EncodeTCP given more than 40 bytes of TCP options")
	}
	hl := TCPMinLen + (len(opts)+3)&^3
	t := TCP(room(b, hl))
	PutTCPHeader(t, f.SrcPort, f.DstPort, f.Seq, f.Ack, f.Flags, f.Window, nil)
	t[tcpDataOffset] = uint8(hl/4) << 4
	t.SetUrgent(f.Urgent)
	n := copy(t[TCPMinLen:], opts)
	clear(t[TCPMinLen+n : hl])
	return hl
}

package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// Builders that compute the checksum from the values they write instead of reading the
// bytes back. A checksum that reads a header straight after it was written with byte and
// 16-bit stores makes every 8-byte load wait for those stores to drain (a failed
// store-to-load forward costs a dozen cycles each); summing the values in registers costs
// nothing extra. The headers are written with 8- and 4-byte stores for the same reason.

// sum32 adds the two 16-bit halves of w.
func sum32(w uint32) uint32 { return w>>16 + w&0xffff }

// encodeOptionWords writes o as whole 32-bit words and returns their sum.
func encodeOptionWords(b []byte, o *TCPOptions) uint32 {
	var sum uint32
	i := 0
	put := func(w uint32) {
		binary.BigEndian.PutUint32(b[i:], w)
		sum += sum32(w)
		i += 4
	}
	if o.MSS != 0 {
		put(tcpOptMSS<<24 | tcpOptMSSLen<<16 | uint32(o.MSS))
	}
	switch {
	case o.TS:
		if o.SACKPermitted {
			put(tcpOptSACKPermitted<<24 | tcpOptSACKPermittedLen<<16 | tcpOptTimestamps<<8 | tcpOptTimestampsLen)
		} else {
			put(tcpOptNOP<<24 | tcpOptNOP<<16 | tcpOptTimestamps<<8 | tcpOptTimestampsLen)
		}
		put(o.TSVal)
		put(o.TSEcr)
	case o.SACKPermitted:
		put(tcpOptNOP<<24 | tcpOptNOP<<16 | tcpOptSACKPermitted<<8 | tcpOptSACKPermittedLen)
	}
	if o.WScale >= 0 {
		put(tcpOptNOP<<24 | tcpOptWScale<<16 | tcpOptWScaleLen<<8 | uint32(uint8(o.WScale)))
	}
	if s := o.sackBlocksToSend(i); s > 0 {
		put(tcpOptNOP<<24 | tcpOptNOP<<16 | tcpOptSACK<<8 | uint32(tcpOptSACKBaseLen+s*tcpOptSACKBlockLen))
		for j := range s {
			put(o.SACK[j].Start)
			put(o.SACK[j].End)
		}
	}
	return sum
}

// FinishTCPChecksumIPv4 stores the checksum of a segment t whose header sum PutTCPHeader
// returned: it adds the IPv4 pseudo-header and the payload (bytes after hl).
func FinishTCPChecksumIPv4(t TCP, hl int, headerSum uint32, src, dst [4]byte) {
	s := checksum.PseudoHeaderIPv4(src, dst, ProtoTCP, uint16(len(t))) + headerSum
	if len(t) > hl {
		s = checksum.Partial(t[hl:], s)
	}
	binary.BigEndian.PutUint16(t[tcpChecksum:], ^checksum.Fold(s))
}

// EncodeIPv4 writes a 20-byte IPv4 header without options into b from f, checksum
// included; b must have len(b) >= IPv4MinLen. It is PutIPv4Header with every field (type
// of service, identification, fragment offset): the form ICMP output, traffic generators
// and tests use.
func EncodeIPv4(b []byte, f *IPv4Fields) {
	putIPv4(b, uint32(f.TOS)<<16|uint32(f.TotalLen), uint32(f.ID)<<16|uint32(f.Flags&0x7)<<13|uint32((f.FragOff/8)&0x1fff),
		uint32(f.TTL)<<24|uint32(f.Protocol)<<16, f.Src, f.Dst)
}

// PutIPv4Header writes a 20-byte IPv4 header with no options, ID 0 and the given flags and
// TTL, with its checksum: the form of the per-packet output path. It takes the fields as
// arguments rather than a struct: building a struct literal and handing it over makes the
// compiler copy it with wide loads from narrower stores just made, which stalls on every
// packet.
func PutIPv4Header(b []byte, totalLen uint16, flags, ttl, proto uint8, src, dst [4]byte) {
	putIPv4(b, uint32(totalLen), uint32(flags&0x7)<<13, uint32(ttl)<<24|uint32(proto)<<16, src, dst)
}

// putIPv4 is the one IPv4 header writer: the first three 32-bit words without the version
// and header length (w0: TOS and total length; w1: ID, flags, fragment offset; w2: TTL and
// protocol, checksum zero), then the addresses; the checksum is summed from the values.
func putIPv4(b []byte, w0, w1, w2 uint32, src, dst [4]byte) {
	b = room(b, IPv4MinLen)
	w0 |= uint32(4<<4|IPv4MinLen/4) << 24
	s4 := binary.BigEndian.Uint32(src[:])
	d4 := binary.BigEndian.Uint32(dst[:])
	s := sum32(w0) + sum32(w1) + sum32(w2) + sum32(s4) + sum32(d4)
	w2 |= uint32(^checksum.Fold(s))
	binary.BigEndian.PutUint64(b[0:], uint64(w0)<<32|uint64(w1))
	binary.BigEndian.PutUint64(b[8:], uint64(w2)<<32|uint64(s4))
	binary.BigEndian.PutUint32(b[16:], d4)
}

// PutTCPHeader is the one TCP header writer: the fixed header and o's options (in the
// layout of EncodeTCPOptions; o may be nil) into b, the urgent pointer zero. It returns the
// header length and the ones'-complement partial sum of everything it wrote (the checksum
// field counts as zero); finish with FinishTCPChecksumIPv4 or FinishTCPChecksumIPv6 once the
// payload is in place. The fields are arguments rather than a struct (see PutIPv4Header).
func PutTCPHeader(b []byte, sport, dport uint16, seq, ack uint32, flags uint8, window uint16, o *TCPOptions) (hl int, sum uint32) {
	optLen := 0
	if o != nil {
		optLen = o.EncodedLen()
	}
	hl = TCPMinLen + optLen
	b = room(b, hl)
	w1 := uint32(hl/4)<<28 | uint32(flags)<<16 | uint32(window)
	binary.BigEndian.PutUint64(b[0:], uint64(sport)<<48|uint64(dport)<<32|uint64(seq))
	binary.BigEndian.PutUint64(b[8:], uint64(ack)<<32|uint64(w1))
	binary.BigEndian.PutUint32(b[16:], 0)
	sum = uint32(sport) + uint32(dport) + sum32(seq) + sum32(ack) + sum32(w1)
	if optLen > 0 {
		sum += encodeOptionWords(b[TCPMinLen:], o)
	}
	return hl, sum
}

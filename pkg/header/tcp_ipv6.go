package header

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/checksum"
)

// FinishTCPChecksumIPv6 is FinishTCPChecksumIPv4 with the IPv6 pseudo-header (RFC 8200
// §8.1): it stores the checksum of a segment t whose header sum PutTCPHeader
// returned, adding the payload (bytes after hl).
func FinishTCPChecksumIPv6(t TCP, hl int, headerSum uint32, src, dst [16]byte) {
	s := checksum.PseudoHeaderIPv6(src, dst, ProtoTCP, uint32(len(t))) + headerSum
	if len(t) > hl {
		s = checksum.Partial(t[hl:], s)
	}
	binary.BigEndian.PutUint16(t[tcpChecksum:], ^checksum.Fold(s))
}

// PartialTCPChecksumIPv6 is PartialTCPChecksumIPv4 with the IPv6 pseudo-header: the folded
// pseudo-header sum, not inverted, for a link that completes the checksum.
func PartialTCPChecksumIPv6(t TCP, src, dst [16]byte) {
	t.SetChecksum(checksum.Fold(checksum.PseudoHeaderIPv6(src, dst, ProtoTCP, uint32(len(t)))))
}

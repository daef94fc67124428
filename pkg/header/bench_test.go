package header

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Indexes into the golden capture (see TestGolden_HandshakeDataAndClose).
const (
	goldenSYN = 4 // default-options SYN, 74 bytes
	goldenACK = 6 // the handshake's final ACK, with timestamps
)

// parseSegment is the receive path's header work for one frame: every layer, the TCP
// checksum, the options. It reports whether the frame was a valid TCP segment.
func parseSegment(frame []byte, o *TCPOptions) bool {
	eth, err := ParseEthernet(frame)
	if err != nil || eth.Type() != EtherTypeIPv4 {
		return false
	}
	ip, err := ParseIPv4(eth.Payload())
	if err != nil || ip.Protocol() != ProtoTCP {
		return false
	}
	tcp, err := ParseTCP(ip.Payload())
	if err != nil || !tcp.ChecksumValidIPv4(ip.Src(), ip.Dst()) {
		return false
	}
	return ParseTCPOptions(tcp.Options(), o) == nil
}

var (
	synackSrc = MAC{0x02, 0, 0, 0, 0, 2}
	synackDst = MAC{0x02, 0, 0, 0, 0, 1}
	synackIP  = IPv4Fields{TotalLen: 60, Flags: IPv4FlagDontFragment, TTL: 64, Protocol: ProtoTCP,
		Src: [4]byte{198, 18, 0, 2}, Dst: [4]byte{198, 18, 0, 1}}
	synackTCP = TCPFields{SrcPort: 8080, DstPort: 34972, Seq: 2291341087, Ack: 3408088259,
		Flags: TCPFlagSYN | TCPFlagACK, Window: 65160}
	synackOpts = TCPOptions{MSS: 1460, WScale: 10, SACKPermitted: true, TS: true,
		TSVal: 3981935946, TSEcr: 681852075}
)

// buildSYNACK writes a complete SYN-ACK frame into b and returns its length.
func buildSYNACK(b []byte) int {
	EncodeEthernet(b, synackDst, synackSrc, EtherTypeIPv4)
	var opts [MaxTCPOptionsLen]byte
	n := EncodeTCPOptions(opts[:], &synackOpts)
	seg := b[EthernetLen+IPv4MinLen:]
	hl := EncodeTCP(seg, &synackTCP, opts[:n])
	f := synackIP
	f.TotalLen = uint16(IPv4MinLen + hl)
	EncodeIPv4(b[EthernetLen:], &f)
	TCP(seg[:hl]).SetChecksumIPv4(f.Src, f.Dst)
	return EthernetLen + IPv4MinLen + hl
}

func TestBuildSYNACK_MatchesLinux(t *testing.T) {
	frames := loadGolden(t)
	linux := decode(t, frames[goldenSYN+1]) // the kernel's SYN-ACK to the default SYN
	b := make([]byte, 128)
	n := buildSYNACK(b)
	require.Equal(t, len(frames[goldenSYN+1]), n)
	// Same TCP header and options as the kernel's (the MACs and IP ID differ).
	require.Equal(t, []byte(linux.tcp), b[EthernetLen+IPv4MinLen:n])
}

func TestHotPath_NoAllocs(t *testing.T) {
	frames := loadGolden(t)
	syn, ack := frames[goldenSYN], frames[goldenACK]
	bad := append([]byte(nil), syn...)
	bad[EthernetLen+8]-- // TTL changed under a stale checksum: an error path
	var o TCPOptions
	buf := make([]byte, 128)
	allocs := testing.AllocsPerRun(200, func() {
		if !parseSegment(syn, &o) || !parseSegment(ack, &o) || parseSegment(bad, &o) {
			panic("unexpected verdict")
		}
		buildSYNACK(buf)
		a, err := ParseARP(frames[0][EthernetLen:])
		if err != nil {
			panic(err)
		}
		EncodeARP(buf, ARPReply, a.TargetMAC(), a.TargetIP(), a.SenderMAC(), a.SenderIP())
		if ParseTCPOptions([]byte{2, 4, 5}, &o) == nil {
			panic("bad option accepted")
		}
		if ParseTCPOptionsTolerant([]byte{2, 3, 5, 3, 3, 7}, &o) == nil || o.WScale != 7 {
			panic("tolerant parse went wrong")
		}
	})
	require.Zero(t, allocs)
}

func BenchmarkParseSYN(b *testing.B) {
	frame := loadGolden(b)[goldenSYN]
	var o TCPOptions
	b.ReportAllocs()
	for b.Loop() {
		if !parseSegment(frame, &o) {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkParseACK(b *testing.B) {
	frame := loadGolden(b)[goldenACK]
	var o TCPOptions
	b.ReportAllocs()
	for b.Loop() {
		if !parseSegment(frame, &o) {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkBuildSYNACK(b *testing.B) {
	buf := make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		buildSYNACK(buf)
	}
}

func BenchmarkParseTCPOptionsSYN(b *testing.B) {
	opts := []byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}
	var o TCPOptions
	b.ReportAllocs()
	for b.Loop() {
		if ParseTCPOptions(opts, &o) != nil {
			b.Fatal("parse failed")
		}
	}
}

package header

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The writers are checked against byte-by-byte references written here from the RFCs'
// layouts (RFC 9293 §3.1, RFC 791 §3.1, Linux's tcp_options_write order), independent of
// the word-and-sum code they test.

// refTCPOptions writes o one byte at a time in tcp_options_write's order.
func refTCPOptions(o *TCPOptions) []byte {
	b := []byte{}
	if o.MSS != 0 {
		b = append(b, 2, 4, byte(o.MSS>>8), byte(o.MSS))
	}
	switch {
	case o.TS && o.SACKPermitted:
		b = append(b, 4, 2, 8, 10)
	case o.TS:
		b = append(b, 1, 1, 8, 10)
	case o.SACKPermitted:
		b = append(b, 1, 1, 4, 2)
	}
	if o.TS {
		b = binary.BigEndian.AppendUint32(b, o.TSVal)
		b = binary.BigEndian.AppendUint32(b, o.TSEcr)
	}
	if o.WScale >= 0 {
		b = append(b, 1, 3, 3, byte(o.WScale))
	}
	if n := min(o.NumSACK, (MaxTCPOptionsLen-len(b)-4)/8, len(o.SACK)); n > 0 {
		b = append(b, 1, 1, 5, byte(2+8*n))
		for j := 0; j < n; j++ {
			b = binary.BigEndian.AppendUint32(b, o.SACK[j].Start)
			b = binary.BigEndian.AppendUint32(b, o.SACK[j].End)
		}
	}
	return b
}

// refTCP is a segment written byte by byte, its checksum computed from the bytes.
func refTCP(f *TCPFields, opts, payload []byte, src, dst [4]byte) []byte {
	hl := TCPMinLen + len(opts)
	b := make([]byte, 0, hl+len(payload))
	b = binary.BigEndian.AppendUint16(b, f.SrcPort)
	b = binary.BigEndian.AppendUint16(b, f.DstPort)
	b = binary.BigEndian.AppendUint32(b, f.Seq)
	b = binary.BigEndian.AppendUint32(b, f.Ack)
	b = append(b, byte(hl/4)<<4, f.Flags)
	b = binary.BigEndian.AppendUint16(b, f.Window)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, f.Urgent)
	b = append(b, opts...)
	b = append(b, payload...)
	TCP(b).SetChecksumIPv4(src, dst)
	return b
}

func randomOptions(r *rand.Rand) TCPOptions {
	o := TCPOptions{WScale: -1}
	if r.IntN(2) == 0 {
		o.MSS = uint16(r.Uint32() | 1)
	}
	if r.IntN(2) == 0 {
		o.WScale = int8(r.IntN(15))
	}
	o.SACKPermitted = r.IntN(2) == 0
	if r.IntN(2) == 0 {
		o.TS, o.TSVal, o.TSEcr = true, r.Uint32(), r.Uint32()
	}
	o.NumSACK = r.IntN(5)
	for j := range o.SACK {
		o.SACK[j] = SACKBlock{r.Uint32(), r.Uint32()}
	}
	return o
}

// PutTCPHeader (the one TCP writer), EncodeTCPOptions and EncodeTCP write what the
// reference writes, and the sum PutTCPHeader returns finishes to the checksum of the bytes.
func TestTCPWritersMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5000; i++ {
		f := TCPFields{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
			Flags: uint8(r.Uint32()), Window: uint16(r.Uint32())}
		o := randomOptions(r)
		payload := make([]byte, r.IntN(40))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		src, dst := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, byte(i), 2}
		ref := refTCPOptions(&o)
		var ob [MaxTCPOptionsLen]byte
		require.Equal(t, ref, ob[:EncodeTCPOptions(ob[:], &o)], "options %+v", o)
		require.Equal(t, len(ref), o.EncodedLen())
		want := refTCP(&f, ref, payload, src, dst)

		got := make([]byte, len(want))
		hl, sum := PutTCPHeader(got, f.SrcPort, f.DstPort, f.Seq, f.Ack, f.Flags, f.Window, &o)
		require.Equal(t, TCPMinLen+len(ref), hl)
		copy(got[hl:], payload)
		FinishTCPChecksumIPv4(TCP(got), hl, sum, src, dst)
		require.Equal(t, want, got, "case %d %+v", i, o)

		// EncodeTCP with raw option bytes and an urgent pointer.
		f.Urgent = uint16(r.Uint32())
		want = refTCP(&f, ref, nil, src, dst)
		raw := make([]byte, len(want))
		require.Equal(t, len(want), EncodeTCP(raw, &f, ref))
		TCP(raw).SetChecksumIPv4(src, dst)
		require.Equal(t, want, raw)
	}
	// Without options; raw options that are not a whole word are padded with EOL.
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagRST}
	got := make([]byte, TCPMinLen)
	hl, sum := PutTCPHeader(got, 1, 2, 3, 4, TCPFlagRST, 0, nil)
	FinishTCPChecksumIPv4(TCP(got), hl, sum, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8})
	require.Equal(t, refTCP(&f, nil, nil, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}), got)
	raw := make([]byte, TCPMinLen+8)
	for i := range raw {
		raw[i] = 0xee
	}
	require.Equal(t, TCPMinLen+8, EncodeTCP(raw, &f, []byte{2, 4, 5, 0xb4, 1}))
	require.Equal(t, []byte{2, 4, 5, 0xb4, 1, 0, 0, 0}, raw[TCPMinLen:])
	require.Equal(t, uint8(7), raw[12]>>4, "data offset")
}

// refIPv4 is an IPv4 header written byte by byte, its checksum computed from the bytes.
func refIPv4(f *IPv4Fields) []byte {
	b := []byte{4<<4 | 5, f.TOS}
	b = binary.BigEndian.AppendUint16(b, f.TotalLen)
	b = binary.BigEndian.AppendUint16(b, f.ID)
	b = binary.BigEndian.AppendUint16(b, uint16(f.Flags&7)<<13|(f.FragOff/8)&0x1fff)
	b = append(b, f.TTL, f.Protocol, 0, 0)
	b = append(b, f.Src[:]...)
	b = append(b, f.Dst[:]...)
	IPv4(b).SetChecksum()
	return b
}

// EncodeIPv4 and PutIPv4Header (one writer, two argument forms) write what the reference
// writes.
func TestIPv4WritersMatchReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 5000; i++ {
		f := IPv4Fields{TOS: uint8(r.Uint32()), TotalLen: uint16(r.Uint32()), ID: uint16(r.Uint32()),
			Flags: uint8(r.IntN(8)), FragOff: uint16(r.Uint32()) &^ 7, TTL: uint8(r.Uint32()), Protocol: uint8(r.Uint32())}
		binary.BigEndian.PutUint32(f.Src[:], r.Uint32())
		binary.BigEndian.PutUint32(f.Dst[:], r.Uint32())
		got := make([]byte, IPv4MinLen)
		EncodeIPv4(got, &f)
		require.Equal(t, refIPv4(&f), got, "%+v", f)
		_, err := ParseIPv4(append(got, make([]byte, max(int(f.TotalLen)-IPv4MinLen, 0))...))
		require.NotErrorIs(t, err, ErrChecksum)

		f.ID, f.TOS, f.FragOff = 0, 0, 0
		PutIPv4Header(got, f.TotalLen, f.Flags, f.TTL, f.Protocol, f.Src, f.Dst)
		require.Equal(t, refIPv4(&f), got, "%+v", f)
	}
}

func TestBuildersAllocateNothing(t *testing.T) {
	b := make([]byte, 128)
	o := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 9}
	ip := IPv4Fields{TotalLen: 60, TTL: 64, Protocol: ProtoTCP}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		hl, sum := PutTCPHeader(b, 1, 2, 3, 4, TCPFlagSYN, 5, &o)
		FinishTCPChecksumIPv4(TCP(b[:hl]), hl, sum, [4]byte{1}, [4]byte{2})
		EncodeIPv4(b[64:], &ip)
		PutIPv4Header(b[64:], 60, IPv4FlagDontFragment, 64, ProtoTCP, [4]byte{1}, [4]byte{2})
	}))
}

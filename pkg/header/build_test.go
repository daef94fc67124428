package header

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The value-summing builders write exactly what the plain encoders write, and their
// checksums are the ones computed from the bytes.
func TestEncodeTCPHeaderMatchesEncodeTCP(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5000; i++ {
		f := TCPFields{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32()), Seq: r.Uint32(), Ack: r.Uint32(),
			Flags: uint8(r.Uint32()), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32())}
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
		payload := make([]byte, r.IntN(40))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		var ob [MaxTCPOptionsLen]byte
		n := EncodeTCPOptions(ob[:], &o)
		want := make([]byte, TCPMinLen+n+len(payload))
		hl := EncodeTCP(want, &f, ob[:n])
		copy(want[hl:], payload)
		src, dst := [4]byte{198, 18, 0, 1}, [4]byte{198, 18, byte(i), 2}
		TCP(want).SetChecksumIPv4(src, dst)

		got := make([]byte, len(want))
		ghl, sum := EncodeTCPHeader(got, &f, &o)
		require.Equal(t, hl, ghl)
		copy(got[ghl:], payload)
		FinishTCPChecksumIPv4(TCP(got), ghl, sum, src, dst)
		require.Equal(t, want, got, "case %d %+v", i, o)
		if f.Urgent == 0 {
			put := make([]byte, len(want))
			phl, psum := PutTCPHeader(put, f.SrcPort, f.DstPort, f.Seq, f.Ack, f.Flags, f.Window, &o)
			copy(put[phl:], payload)
			FinishTCPChecksumIPv4(TCP(put), phl, psum, src, dst)
			require.Equal(t, want, put)
		}
	}
	// Without options.
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagRST, Window: 0}
	want := make([]byte, TCPMinLen)
	EncodeTCP(want, &f, nil)
	TCP(want).SetChecksumIPv4([4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8})
	got := make([]byte, TCPMinLen)
	hl, sum := EncodeTCPHeader(got, &f, nil)
	FinishTCPChecksumIPv4(TCP(got), hl, sum, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8})
	require.Equal(t, want, got)
}

func TestEncodeIPv4HeaderMatchesEncodeIPv4(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 5000; i++ {
		f := IPv4Fields{TOS: uint8(r.Uint32()), TotalLen: uint16(r.Uint32()), ID: uint16(r.Uint32()),
			Flags: uint8(r.IntN(8)), FragOff: uint16(r.Uint32()) &^ 7, TTL: uint8(r.Uint32()), Protocol: uint8(r.Uint32())}
		src, dst := r.Uint32(), r.Uint32()
		f.Src = [4]byte{byte(src >> 24), byte(src >> 16), byte(src >> 8), byte(src)}
		f.Dst = [4]byte{byte(dst >> 24), byte(dst >> 16), byte(dst >> 8), byte(dst)}
		want, got := make([]byte, IPv4MinLen), make([]byte, IPv4MinLen)
		EncodeIPv4(want, &f)
		EncodeIPv4Header(got, &f)
		require.Equal(t, want, got)
		if f.ID == 0 && f.TOS == 0 && f.FragOff == 0 {
			put := make([]byte, IPv4MinLen)
			PutIPv4Header(put, f.TotalLen, f.Flags, f.TTL, f.Protocol, f.Src, f.Dst)
			require.Equal(t, want, put)
		}
		f.ID, f.TOS, f.FragOff = 0, 0, 0
		EncodeIPv4(want, &f)
		PutIPv4Header(got, f.TotalLen, f.Flags, f.TTL, f.Protocol, f.Src, f.Dst)
		require.Equal(t, want, got)
	}
}

func TestBuildersAllocateNothing(t *testing.T) {
	b := make([]byte, 128)
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: TCPFlagSYN, Window: 5}
	o := TCPOptions{MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSVal: 9}
	ip := IPv4Fields{TotalLen: 60, TTL: 64, Protocol: ProtoTCP}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		hl, sum := EncodeTCPHeader(b, &f, &o)
		FinishTCPChecksumIPv4(TCP(b[:hl]), hl, sum, [4]byte{1}, [4]byte{2})
		EncodeIPv4Header(b[64:], &ip)
	}))
}

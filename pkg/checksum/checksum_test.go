package checksum

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// refSum is the textbook byte-pair loop of RFC 1071 §4.1, folded to 16 bits.
func refSum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestPartial_MatchesReferenceEveryLengthAndAlignment(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 208)
	for round := 0; round < 4; round++ {
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if round == 3 {
			// All ones stresses every carry path.
			for i := range buf {
				buf[i] = 0xff
			}
		}
		for off := 0; off < 8; off++ {
			for n := 0; n <= 200; n++ {
				b := buf[off : off+n]
				initial := rng.Uint32()
				require.Equal(t, refSum(b, initial), Fold(Partial(b, initial)), "off %d len %d", off, n)
				require.Equal(t, ^refSum(b, 0), Checksum(b, 0), "off %d len %d", off, n)
			}
		}
	}
}

func TestPartial_RFC1071Example(t *testing.T) {
	// RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 (before complement).
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	require.Equal(t, uint16(0xddf2), Fold(Partial(b, 0)))
	require.Equal(t, uint16(^uint16(0xddf2)), Checksum(b, 0))
}

func TestChecksum_KnownIPv4Header(t *testing.T) {
	// A 20-byte IPv4 header whose checksum field holds b861: the sum over it must verify to 0.
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	require.Equal(t, uint16(0), Checksum(h, 0))
	h[10], h[11] = 0, 0
	require.Equal(t, uint16(0xb861), Checksum(h, 0))
}

func TestCombine_EqualsWholeSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 301)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for split := 0; split <= len(b); split += 2 {
		got := Combine(Partial(b[:split], 0), Partial(b[split:], 0))
		require.Equal(t, Fold(Partial(b, 0)), Fold(got), "split %d", split)
	}
	// The end-around carry: 0xffffffff + 0xffffffff = 0x1_fffffffe -> 0xffffffff.
	require.Equal(t, uint32(0xffffffff), Combine(0xffffffff, 0xffffffff))
	require.Equal(t, uint32(2), Combine(0xffffffff, 2)) // 0x1_00000001 -> 1 + 1
}

func TestPseudoHeader_MatchesExplicitBytes(t *testing.T) {
	src4 := [4]byte{198, 18, 0, 1}
	dst4 := [4]byte{198, 18, 0, 2}
	ph4 := append(append(append([]byte{}, src4[:]...), dst4[:]...), 0, 6, 0x05, 0xdc)
	require.Equal(t, refSum(ph4, 0), Fold(PseudoHeaderIPv4(src4, dst4, 6, 1500)))

	var src6, dst6 [16]byte
	for i := range src6 {
		src6[i] = byte(0xf0 + i)
		dst6[i] = byte(0xff - i)
	}
	ph6 := append(append([]byte{}, src6[:]...), dst6[:]...)
	ph6 = binary.BigEndian.AppendUint32(ph6, 0x0001_2345)
	ph6 = append(ph6, 0, 0, 0, 6)
	require.Equal(t, refSum(ph6, 0), Fold(PseudoHeaderIPv6(src6, dst6, 6, 0x0001_2345)))
	// Every word at its maximum must not overflow the 32-bit partial sum.
	var all [16]byte
	for i := range all {
		all[i] = 0xfe
	}
	phMax := append(append([]byte{}, all[:]...), all[:]...)
	phMax = append(phMax, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff)
	require.Equal(t, refSum(phMax, 0), Fold(PseudoHeaderIPv6(all, all, 0xff, 0xffffffff)))
}

func TestUpdate_EqualsRecomputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 40)
	for round := 0; round < 20000; round++ {
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		// The checksum field lives at bytes 16:18; it is zero while computing.
		b[16], b[17] = 0, 0
		check := Checksum(b, 0)

		// One 16-bit word.
		off := 2 * rng.IntN(8) // words 0..7, clear of the checksum field
		old16 := binary.BigEndian.Uint16(b[off:])
		new16 := uint16(rng.Uint32())
		if round%7 == 0 {
			new16 = 0 // zero and all-ones values are the RFC 1624 corner cases
		} else if round%7 == 1 {
			new16 = 0xffff
		}
		binary.BigEndian.PutUint16(b[off:], new16)
		want := Checksum(b, 0)
		check = Update16(check, old16, new16)
		require.Equal(t, want, check, "round %d", round)

		// One 32-bit word.
		off = 20 + 4*rng.IntN(5)
		old32 := binary.BigEndian.Uint32(b[off:])
		new32 := rng.Uint32()
		binary.BigEndian.PutUint32(b[off:], new32)
		want = Checksum(b, 0)
		require.Equal(t, want, Update32(check, old32, new32), "round %d", round)
	}
}

func TestUpdate16_RFC1624Example(t *testing.T) {
	// RFC 1624 §3: HC = 0xdd2f, m = 0x5555, m' = 0x3285 gives 0x0000 by eqn. 3, where
	// eqn. 2 would give the -0 value 0xffff.
	require.Equal(t, uint16(0x0000), Update16(0xdd2f, 0x5555, 0x3285))
}

func TestChecksum_NoAllocs(t *testing.T) {
	b := make([]byte, 1500)
	var sink uint16
	allocs := testing.AllocsPerRun(100, func() {
		sink += Checksum(b, PseudoHeaderIPv4([4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8}, 6, 1500))
		sink += Update32(sink, 1, 2)
	})
	require.Zero(t, allocs)
	_ = sink
}

var benchSink uint32

func benchmarkPartial(b *testing.B, n int) {
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		benchSink += Partial(buf, benchSink)
	}
}

func BenchmarkPartial20(b *testing.B)   { benchmarkPartial(b, 20) }
func BenchmarkPartial40(b *testing.B)   { benchmarkPartial(b, 40) }
func BenchmarkPartial60(b *testing.B)   { benchmarkPartial(b, 60) }
func BenchmarkPartial1500(b *testing.B) { benchmarkPartial(b, 1500) }

package dpdkshim_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// Small buffers make every boundary easy to reach: 16 bytes of headroom, 48 of room after it.
const (
	testBuf      = 64
	testHeadroom = 16
)

// newTestPacket returns an empty packet from a fresh small pool.
func newTestPacket(t *testing.T) *dpdkshim.Packet {
	t.Helper()
	pk := dpdkshim.NewPool(dpdkshim.PoolConfig{Size: 1, BufSize: testBuf, Headroom: testHeadroom}).Get()
	require.NotNil(t, pk)
	return pk
}

// window is where a packet's frame sits in its buffer: headroom, length, tailroom.
type window struct{ head, len, tail int }

func windowOf(pk *dpdkshim.Packet) window {
	return window{pk.Headroom(), pk.Len(), pk.Tailroom()}
}

func TestPacket_FreshFromPool(t *testing.T) {
	pk := newTestPacket(t)
	require.Equal(t, window{testHeadroom, 0, testBuf - testHeadroom}, windowOf(pk))
	require.Empty(t, pk.Data())
}

func TestPacket_PrependBoundaries(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		wantNil bool
		want    window
	}{
		{"zero", 0, false, window{16, 0, 48}},
		{"one", 1, false, window{15, 1, 48}},
		{"all headroom", testHeadroom, false, window{0, 16, 48}},
		{"one past headroom", testHeadroom + 1, true, window{16, 0, 48}},
		{"whole buffer", testBuf, true, window{16, 0, 48}},
		{"negative", -1, true, window{16, 0, 48}},
		{"min int", math.MinInt, true, window{16, 0, 48}},
		{"max int", math.MaxInt, true, window{16, 0, 48}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := newTestPacket(t)
			var got []byte
			require.NotPanics(t, func() { got = pk.Prepend(tc.n) })
			if tc.wantNil {
				require.Nil(t, got)
			} else {
				require.NotNil(t, got)
				require.Len(t, got, tc.n)
			}
			require.Equal(t, tc.want, windowOf(pk))
		})
	}
}

func TestPacket_AppendBoundaries(t *testing.T) {
	cases := []struct {
		name    string
		n       int
		wantNil bool
		want    window
	}{
		{"zero", 0, false, window{16, 0, 48}},
		{"one", 1, false, window{16, 1, 47}},
		{"all tailroom", testBuf - testHeadroom, false, window{16, 48, 0}},
		{"one past tailroom", testBuf - testHeadroom + 1, true, window{16, 0, 48}},
		{"negative", -1, true, window{16, 0, 48}},
		{"min int", math.MinInt, true, window{16, 0, 48}},
		{"max int", math.MaxInt, true, window{16, 0, 48}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := newTestPacket(t)
			var got []byte
			require.NotPanics(t, func() { got = pk.Append(tc.n) })
			if tc.wantNil {
				require.Nil(t, got)
			} else {
				require.NotNil(t, got)
				require.Len(t, got, tc.n)
			}
			require.Equal(t, tc.want, windowOf(pk))
		})
	}
}

// TestPacket_PrependAppendBuildFrame checks that the slices returned alias the frame: bytes
// written through them are what Data shows, headers in front of the payload.
func TestPacket_PrependAppendBuildFrame(t *testing.T) {
	pk := newTestPacket(t)
	copy(pk.Append(3), "pay")
	copy(pk.Append(4), "load")
	copy(pk.Prepend(4), "tcp:")
	copy(pk.Prepend(3), "ip:")
	require.Equal(t, []byte("ip:tcp:payload"), pk.Data())
	require.Equal(t, 14, pk.Len())
	require.Equal(t, testHeadroom-7, pk.Headroom())
	require.Equal(t, testBuf-testHeadroom-7, pk.Tailroom())
}

func TestPacket_TrimFront(t *testing.T) {
	cases := []struct {
		name string
		n    int
		want string
	}{
		{"zero", 0, "abcdefgh"},
		{"some", 3, "defgh"},
		{"all", 8, ""},
		{"more than length", 9, ""},
		{"max int", math.MaxInt, ""},
		{"negative", -4, "abcdefgh"},
		{"min int", math.MinInt, "abcdefgh"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := newTestPacket(t)
			require.True(t, pk.SetData([]byte("abcdefgh")))
			require.NotPanics(t, func() { pk.TrimFront(tc.n) })
			require.Equal(t, tc.want, string(pk.Data()))
			// The trimmed bytes become headroom; the end does not move.
			require.Equal(t, testHeadroom+8-len(tc.want), pk.Headroom())
			require.Equal(t, testBuf-testHeadroom-8, pk.Tailroom())
		})
	}
}

func TestPacket_SetLen(t *testing.T) {
	cases := []struct {
		name    string
		trimmed int // TrimFront before SetLen
		n       int
		wantLen int
	}{
		{"truncate", 0, 3, 3},
		{"keep", 0, 8, 8},
		{"extend", 0, 20, 20},
		{"to end of buffer", 0, testBuf - testHeadroom, testBuf - testHeadroom},
		{"past end of buffer", 0, testBuf, testBuf - testHeadroom},
		{"max int", 0, math.MaxInt, testBuf - testHeadroom},
		{"zero", 0, 0, 0},
		{"negative", 0, -1, 0},
		{"min int", 0, math.MinInt, 0},
		{"after trim, from new start", 2, 3, 3},
		{"after trim, clamped", 2, math.MaxInt, testBuf - testHeadroom - 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := newTestPacket(t)
			require.True(t, pk.SetData([]byte("abcdefgh")))
			pk.TrimFront(tc.trimmed)
			require.NotPanics(t, func() { pk.SetLen(tc.n) })
			require.Equal(t, tc.wantLen, pk.Len())
			require.Len(t, pk.Data(), tc.wantLen)
			require.Equal(t, testHeadroom+tc.trimmed, pk.Headroom(), "SetLen must not move the start")
			require.Equal(t, testBuf-testHeadroom-tc.trimmed-tc.wantLen, pk.Tailroom())
			if keep := min(tc.wantLen, 8-tc.trimmed); keep > 0 {
				require.Equal(t, "abcdefgh"[tc.trimmed:tc.trimmed+keep], string(pk.Data()[:keep]))
			}
		})
	}
}

func TestPacket_SetData(t *testing.T) {
	cases := []struct {
		name string
		n    int
		ok   bool
	}{
		{"empty", 0, true},
		{"small", 10, true},
		{"fills buffer after headroom", testBuf - testHeadroom, true},
		{"one too many", testBuf - testHeadroom + 1, false},
		{"much too large", 10 * testBuf, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := newTestPacket(t)
			// Move the window first: SetData must restore the pool's headroom.
			pk.Prepend(5)
			pk.Append(2)
			src := make([]byte, tc.n)
			for i := range src {
				src[i] = byte(i + 1)
			}
			require.Equal(t, tc.ok, pk.SetData(src))
			require.Equal(t, testHeadroom, pk.Headroom())
			if tc.ok {
				require.Equal(t, src, append([]byte{}, pk.Data()...))
				if len(src) > 0 {
					src[0] ^= 0xff // the packet holds a copy, not an alias
					require.NotEqual(t, src[0], pk.Data()[0])
				}
			} else {
				require.Zero(t, pk.Len(), "a frame that does not fit leaves the packet empty")
			}
		})
	}
}

func TestPacket_ResetClearsWindowAndMetadata(t *testing.T) {
	pk := newTestPacket(t)
	require.True(t, pk.SetData([]byte("frame")))
	pk.Prepend(10)
	pk.Queue, pk.Flags, pk.GSOSize, pk.Ref, pk.Time, pk.Mark = 3, dpdkshim.CsumVerified, 1448, 42, 99, 7
	pk.Reset()
	require.Equal(t, window{testHeadroom, 0, testBuf - testHeadroom}, windowOf(pk))
	require.Equal(t, uint16(0), pk.Queue)
	require.Zero(t, pk.Flags)
	require.Zero(t, pk.GSOSize)
	require.Zero(t, pk.Ref)
	require.Equal(t, int64(0), pk.Time)
	require.Equal(t, uint8(0), pk.Mark)
}

// TestPacket_OpsNeverPanic drives every window operation with every size around the buffer's
// edges, in sequence, and checks the window invariants after each step.
func TestPacket_OpsNeverPanic(t *testing.T) {
	sizes := []int{math.MinInt, -testBuf, -1, 0, 1, testHeadroom - 1, testHeadroom, testHeadroom + 1,
		testBuf - testHeadroom, testBuf, testBuf + 1, math.MaxInt}
	pk := newTestPacket(t)
	for _, a := range sizes {
		for _, b := range sizes {
			require.NotPanics(t, func() {
				pk.Prepend(a)
				pk.Append(b)
				pk.TrimFront(a)
				pk.SetLen(b)
				pk.Prepend(b)
				_ = pk.Data()
			}, "a=%d b=%d", a, b)
			require.GreaterOrEqual(t, pk.Headroom(), 0)
			require.GreaterOrEqual(t, pk.Len(), 0)
			require.GreaterOrEqual(t, pk.Tailroom(), 0)
			require.Equal(t, testBuf, pk.Headroom()+pk.Len()+pk.Tailroom())
			require.Len(t, pk.Data(), pk.Len())
		}
	}
}

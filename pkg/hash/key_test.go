package hash

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeyV4_FillsFirstFourBytesOnly(t *testing.T) {
	k := KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 40000)
	require.Equal(t, [16]byte{198, 18, 0, 1}, k.LocalAddr)
	require.Equal(t, [16]byte{198, 18, 0, 2}, k.RemoteAddr)
	require.Equal(t, uint16(80), k.LocalPort)
	require.Equal(t, uint16(40000), k.RemotePort)
	require.False(t, k.V6)
}

func TestKeyV6_KeepsAllBytes(t *testing.T) {
	l := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	r := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	k := KeyV6(l, 443, r, 50000)
	require.Equal(t, Key{LocalAddr: l, RemoteAddr: r, LocalPort: 443, RemotePort: 50000, V6: true}, k)
}

func TestKey_V4NeverEqualsV6(t *testing.T) {
	v4 := KeyV4([4]byte{10, 0, 0, 1}, 80, [4]byte{10, 0, 0, 2}, 1234)
	// The same bytes in the same places, marked IPv6.
	v6 := KeyV6(v4.LocalAddr, 80, v4.RemoteAddr, 1234)
	require.NotEqual(t, v4, v6)
	m := map[Key]int{v4: 4, v6: 6}
	require.Len(t, m, 2)
	h := NewHasher(7)
	require.NotEqual(t, h.Sum(&v4), h.Sum(&v6))
}

func TestKey_String(t *testing.T) {
	cases := []struct {
		k    Key
		want string
	}{
		{KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 40000), "198.18.0.1:80->198.18.0.2:40000"},
		{KeyV4([4]byte{}, 0, [4]byte{255, 255, 255, 255}, 65535), "0.0.0.0:0->255.255.255.255:65535"},
		{
			KeyV6([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, 80, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}, 40000),
			"[2001:db8::1]:80->[2001:db8::2]:40000",
		},
		{
			KeyV6([16]byte{10: 0xff, 11: 0xff, 12: 1, 13: 2, 14: 3, 15: 4}, 1, [16]byte{15: 1}, 2),
			"[::ffff:1.2.3.4]:1->[::1]:2",
		},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.k.String())
	}
}

func TestKey_ReverseSwapsEnds(t *testing.T) {
	k := KeyV4([4]byte{1, 1, 1, 1}, 80, [4]byte{2, 2, 2, 2}, 9000)
	r := k.Reverse()
	require.Equal(t, KeyV4([4]byte{2, 2, 2, 2}, 9000, [4]byte{1, 1, 1, 1}, 80), r)
	require.Equal(t, k, r.Reverse())
	require.Equal(t, "2.2.2.2:9000->1.1.1.1:80", r.String())

	k6 := KeyV6([16]byte{15: 1}, 1, [16]byte{15: 2}, 2)
	require.Equal(t, KeyV6([16]byte{15: 2}, 2, [16]byte{15: 1}, 1), k6.Reverse())
}

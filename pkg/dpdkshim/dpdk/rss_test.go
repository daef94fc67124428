package dpdk

import (
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/hash"
)

// The verification suite of Microsoft's RSS specification: its key and IPv4 cases.
func TestToeplitz_VerificationSuite(t *testing.T) {
	key, err := hex.DecodeString("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")
	require.NoError(t, err)
	for _, c := range []struct {
		dst, src   string
		dport, sp  uint16
		ip, withTC uint32
	}{
		{"161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178},
		{"65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea},
		{"12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a},
	} {
		src, dst := netip.MustParseAddr(c.src).As4(), netip.MustParseAddr(c.dst).As4()
		in := append(append([]byte{}, src[:]...), dst[:]...)
		require.Equal(t, c.ip, Toeplitz(key, in), "%s -> %s", c.src, c.dst)
		in = append(in, byte(c.sp>>8), byte(c.sp), byte(c.dport>>8), byte(c.dport))
		require.Equal(t, c.withTC, Toeplitz(key, in), "%s:%d -> %s:%d", c.src, c.sp, c.dst, c.dport)
	}
	require.Zero(t, Toeplitz(key[:8], make([]byte, 12)), "a key too short for the input")
}

// With the symmetric key both directions of every flow hash alike, and RSS steering
// spreads flows over every queue of the table.
func TestRSS_SymmetricKeySteersBothDirectionsAlike(t *testing.T) {
	key := SymmetricKey(40)
	reta := make([]uint16, 128)
	for i := range reta {
		reta[i] = uint16(i % 4)
	}
	r := &RSS{Key: key, Reta: reta, TCP4: true, IP4: true, TCP6: true, IP6: true}
	a, b := netip.MustParseAddr("198.18.0.1").As4(), netip.MustParseAddr("198.18.0.2").As4()
	seen := map[int]int{}
	for port := uint16(1024); port < 2048; port++ {
		fwd := hash.KeyV4(a, 80, b, port)
		rev := hash.KeyV4(b, port, a, 80)
		in1 := append(append(append([]byte{}, b[:]...), a[:]...), byte(port>>8), byte(port), 0, 80)
		in2 := append(append(append([]byte{}, a[:]...), b[:]...), 0, 80, byte(port>>8), byte(port))
		require.Equal(t, Toeplitz(key, in1), Toeplitz(key, in2))
		q := r.Queue(fwd, 4)
		require.Equal(t, q, r.Queue(rev, 4), "port %d", port)
		seen[q]++
	}
	require.Len(t, seen, 4, "every queue gets flows")
	for q, n := range seen {
		require.Greater(t, n, 128, "queue %d gets a fair share", q)
	}
	v6 := hash.Key{V6: true, LocalPort: 80, RemotePort: 40000}
	copy(v6.LocalAddr[:], netip.MustParseAddr("fd00::1").AsSlice())
	copy(v6.RemoteAddr[:], netip.MustParseAddr("fd00::2").AsSlice())
	rv6 := hash.Key{V6: true, LocalPort: 40000, RemotePort: 80, LocalAddr: v6.RemoteAddr, RemoteAddr: v6.LocalAddr}
	require.Equal(t, r.Queue(v6, 4), r.Queue(rv6, 4))
	require.Zero(t, (&RSS{Key: key, Reta: reta}).Queue(v6, 4), "nothing hashed: queue 0")
	require.Zero(t, r.Queue(hash.KeyV4(a, 80, b, 1), 1), "one queue")
}

package tcp

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

func familyEngine(t *testing.T) *Engine {
	t.Helper()
	v4 := netip.MustParseAddr("198.18.0.1")
	v6 := netip.MustParseAddr("fd00::1")
	e, err := NewEngine(Config{Shards: 1, Addr: v4, Seed: 7,
		Local: func(a netip.Addr) bool { return a == v4 || a == v6 }})
	require.NoError(t, err)
	var ctr stats.Counters
	e.newShard(0, &wakeCounter{}, wheel.New(0, 1e6), &ctr)
	return e
}

// Listeners take families as Linux sockets do: [::] (or no address) both unless
// IPV6_V6ONLY, 0.0.0.0 and IPv4 addresses IPv4 only, and conflicts only within a family.
func TestListenFamilies(t *testing.T) {
	e := familyEngine(t)
	ap := netip.MustParseAddrPort
	dual, err := e.Listen(netip.AddrPortFrom(netip.Addr{}, 80), ListenOptions{})
	require.NoError(t, err)
	v4, v6 := dual.Families()
	require.True(t, v4 && v6, "a wildcard listener takes both families")
	require.Equal(t, ap("[::]:80"), dual.AddrPort())
	_, err = e.Listen(ap("0.0.0.0:80"), ListenOptions{})
	require.ErrorIs(t, err, ErrAddrInUse, "the dual-stack listener holds IPv4's wildcard")
	_, err = e.Listen(ap("[fd00::1]:80"), ListenOptions{})
	require.ErrorIs(t, err, ErrAddrInUse, "and IPv6's")
	require.Len(t, e.Listeners(), 1, "one listener, though it has two keys")

	k4 := hash.KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 1234)
	k6 := hash.KeyV6(ap("[fd00::1]:80").Addr().As16(), 80, ap("[fd00::2]:1").Addr().As16(), 1234)
	require.Same(t, dual, e.lookupListener(&k4))
	require.Same(t, dual, e.lookupListener(&k6))
	require.NoError(t, dual.Close())
	require.Nil(t, e.lookupListener(&k4))
	require.Nil(t, e.lookupListener(&k6))

	only6, err := e.Listen(ap("[::]:80"), ListenOptions{V6Only: true})
	require.NoError(t, err)
	only4, err := e.Listen(ap("0.0.0.0:80"), ListenOptions{})
	require.NoError(t, err, "IPV6_V6ONLY leaves IPv4's wildcard free")
	require.Same(t, only6, e.lookupListener(&k6))
	require.Same(t, only4, e.lookupListener(&k4))
	_, err = e.Listen(ap("[fd00::1]:80"), ListenOptions{})
	require.ErrorIs(t, err, ErrAddrInUse)
	_, err = e.Listen(ap("198.18.0.1:80"), ListenOptions{})
	require.ErrorIs(t, err, ErrAddrInUse)

	exact6, err := e.Listen(ap("[fd00::1]:81"), ListenOptions{})
	require.NoError(t, err)
	k6.LocalPort = 81
	k4.LocalPort = 81
	require.Same(t, exact6, e.lookupListener(&k6))
	require.Nil(t, e.lookupListener(&k4), "an IPv6 address takes no IPv4")
	mapped, err := e.Listen(ap("[::ffff:198.18.0.1]:82"), ListenOptions{})
	require.NoError(t, err)
	require.Equal(t, ap("198.18.0.1:82"), mapped.AddrPort(), "a mapped address is the IPv4 address")

	_, err = e.Listen(ap("198.18.0.1:83"), ListenOptions{V6Only: true})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = e.Listen(ap("[fd00::9]:83"), ListenOptions{})
	require.ErrorIs(t, err, ErrAddrNotAvail)

	p, err := e.Listen(netip.AddrPortFrom(netip.Addr{}, 0), ListenOptions{})
	require.NoError(t, err, "port 0 finds a port free in both families")
	require.NotZero(t, p.AddrPort().Port())
}

// The keyed functions see the family: the same bytes in an IPv4 and an IPv6 key hash
// differently, and the IPv6 key's whole addresses count.
func TestSecretsByFamily(t *testing.T) {
	e := familyEngine(t)
	k4 := hash.KeyV4([4]byte{198, 18, 0, 1}, 80, [4]byte{198, 18, 0, 2}, 1234)
	k6 := k4
	k6.V6 = true
	require.NotEqual(t, e.sec.isnFor(&k4, 0), e.sec.isnFor(&k6, 0))
	k6b := k6
	k6b.RemoteAddr[15] = 1
	require.NotEqual(t, e.sec.isnFor(&k6, 0), e.sec.isnFor(&k6b, 0))
	require.NotEqual(t, e.sec.tsOffset(&k6), e.sec.tsOffset(&k6b))
	require.NotEqual(t, e.sec.portOffset(&k6), e.sec.portOffset(&k6b))
	require.Equal(t, 1500-40, e.mssFor(false))
	require.Equal(t, 1500-60, e.mssFor(true))
	require.Equal(t, uint16(8940), cookieMSS(true)[3], "Linux's tcp6 msstab")
	require.Equal(t, uint16(1460), cookieMSS(false)[3])
}

package stack_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// A stack with a second address on another subnet answers ARP for both, accepts on both,
// refuses a listener on an address it does not have, and dials from the address on the
// destination's subnet.
func TestSecondaryAddress(t *testing.T) {
	vc := clock.NewVirtual(0)
	a, b := dpdkshim.NewPair(dpdkshim.PairConfig{Clock: vc})
	srv, err := stack.New(stack.Config{Port: a, Addr: netip.MustParsePrefix("198.18.0.1/24"),
		MoreAddrs: []netip.Prefix{netip.MustParsePrefix("198.19.0.1/24")}, Manual: true, Clock: vc, Seed: 1})
	require.NoError(t, err)
	defer srv.Close()
	cli, err := stack.New(stack.Config{Port: b, Addr: netip.MustParsePrefix("198.18.0.2/24"),
		MoreAddrs: []netip.Prefix{netip.MustParsePrefix("198.19.0.2/24")}, Manual: true, Clock: vc, Seed: 2})
	require.NoError(t, err)
	defer cli.Close()
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.19.0.1/24")}, srv.Addrs())

	_, err = srv.Listen("198.20.0.1:80", 4)
	require.ErrorIs(t, err, tcp.ErrAddrNotAvail)
	l2, err := srv.Listen("198.19.0.1:80", 4)
	require.NoError(t, err)
	_, err = srv.Listen(":80", 4)
	require.ErrorIs(t, err, tcp.ErrAddrInUse, "a wildcard listener conflicts with one on a secondary address")
	l1, err := srv.Listen("198.18.0.1:80", 4)
	require.NoError(t, err)

	run := func() {
		for i := 0; i < 20; i++ {
			srv.Poll()
			cli.Poll()
			vc.Advance(time.Millisecond)
		}
	}
	for _, tc := range []struct {
		to   string
		l    *tcp.Listener
		from string
	}{{"198.19.0.1:80", l2, "198.19.0.2"}, {"198.18.0.1:80", l1, "198.18.0.2"}} {
		c, err := cli.DialAsync(netip.MustParseAddrPort(tc.to), tcp.DialOptions{})
		require.NoError(t, err)
		run()
		require.Equal(t, tcp.StateEstablished, c.State(), tc.to)
		require.Equal(t, tc.from, c.LocalAddrPort().Addr().String(), "the source on the destination's subnet")
		s, err := tc.l.TryAccept()
		require.NoError(t, err, tc.to)
		require.Equal(t, tc.to, s.LocalAddrPort().String())
		require.Equal(t, tc.from, s.RemoteAddrPort().Addr().String())
	}
	require.Equal(t, uint64(2), srv.Counters()[stats.ArpRepliesSent], "one ARP reply per address asked for")
}

package link

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

func TestParseSpec(t *testing.T) {
	sp, err := ParseSpec("afpacket:veth0,rxring,burst=32")
	require.NoError(t, err)
	require.Equal(t, "afpacket", sp.Backend)
	require.Equal(t, "veth0", sp.Device)
	require.True(t, sp.Flag("rxring"))
	require.False(t, sp.Flag("txring"))
	n, err := sp.Int("burst", 64)
	require.NoError(t, err)
	require.Equal(t, 32, n)
	n, err = sp.Int("other", 7)
	require.NoError(t, err)
	require.Equal(t, 7, n)
	require.NoError(t, sp.Done())

	for _, bad := range []string{"", "afpacket", "afpacket:", ":veth0", "afpacket:,rxring", "afpacket:v,,x", "afpacket:v,a,a"} {
		_, err := ParseSpec(bad)
		require.Error(t, err, bad)
	}
	sp, err = ParseSpec("afpacket:v,bogus,burst=x")
	require.NoError(t, err)
	_, err = sp.Int("burst", 1)
	require.ErrorContains(t, err, "not a number")
	require.ErrorContains(t, sp.Done(), "bogus")
}

func TestOpenUnknown(t *testing.T) {
	_, err := Open("nosuch:dev", Params{Queues: 1})
	require.ErrorContains(t, err, "unknown backend")
	_, err = Open(Kernel, Params{})
	require.ErrorIs(t, err, ErrKernel)
}

// A raw backend gets everything after the colon, commas and blanks included, and fills
// the options it parsed itself.
func TestOpenRaw(t *testing.T) {
	var got Spec
	RegisterRaw("rawtest", func(sp *Spec, p Params) (*Link, error) {
		require.NoError(t, sp.SetOption("rxd", "512"))
		require.NoError(t, sp.SetOption("port", "p0"))
		require.Error(t, sp.SetOption("rxd", "1"), "twice")
		require.Error(t, sp.SetOption("", "1"), "empty")
		require.Equal(t, "p0", sp.String("port", "x"))
		require.Equal(t, "x", sp.String("port", "x"), "taken")
		got = *sp
		port, _ := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 1})
		return &Link{Port: port}, nil
	})
	defer func() { delete(backends, "rawtest"); delete(raw, "rawtest") }()
	_, err := Open("rawtest:--no-huge -m 256 --vdev=net_af_packet0,iface=v,qpairs=2", Params{Queues: 2})
	require.ErrorContains(t, err, "unknown option(s) rxd", "options left over are refused")
	require.Equal(t, "--no-huge -m 256 --vdev=net_af_packet0,iface=v,qpairs=2", got.Device)
	_, err = Open("rawtest: ", Params{Queues: 1})
	require.ErrorContains(t, err, "nothing after the colon")
}

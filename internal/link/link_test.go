package link

import (
	"testing"

	"github.com/stretchr/testify/require"
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

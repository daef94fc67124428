package link

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/dpdkshim/afpacket"
)

// TestTUNOptions: the tun backend is registered and refuses options it does not know,
// or numbers that are not, before it touches any device.
func TestTUNOptions(t *testing.T) {
	require.Contains(t, Backends(), "tun")
	_, err := Open("tun:sstx0,vnet,bogus", Params{Queues: 1})
	require.ErrorContains(t, err, "bogus")
	_, err = Open("tun:sstx0,mtu=big", Params{Queues: 1})
	require.ErrorContains(t, err, "not a number")
	_, err = Open("tun:sstx0,burst=x", Params{Queues: 1})
	require.ErrorContains(t, err, "not a number")
}

// TestAFPacketOptions: the afpacket backend takes gso, refuses it with novnet or bypass
// before it opens anything, and refuses options it does not know.
func TestAFPacketOptions(t *testing.T) {
	require.Contains(t, Backends(), "afpacket")
	_, err := Open("afpacket:ssnosuch0,gso", Params{Queues: 1})
	require.ErrorIs(t, err, afpacket.ErrNoInterface, "gso is an option")
	for _, spec := range []string{"afpacket:ssnosuch0,gso,novnet", "afpacket:ssnosuch0,gso,bypass"} {
		_, err = Open(spec, Params{Queues: 1})
		require.ErrorIs(t, err, afpacket.ErrConfig, spec)
	}
	_, err = Open("afpacket:ssnosuch0,gso,bogus", Params{Queues: 1})
	require.ErrorContains(t, err, "bogus")
}

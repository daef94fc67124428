package link

import (
	"testing"

	"github.com/stretchr/testify/require"
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

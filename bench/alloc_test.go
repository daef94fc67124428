package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The server side of a handshake and its close allocates nothing in steady state: SYN,
// SYN-ACK, final ACK, child, accept (Handle), close, FIN, reset.
func TestServerHandshakeAllocatesNothing(t *testing.T) {
	s, l, g := manualServer(t)
	defer s.Close()
	for i := 0; i < 200; i++ {
		cycle(s, l, g, 32)
	}
	accepted := 0
	allocs := testing.AllocsPerRun(500, func() { accepted += cycle(s, l, g, 32) })
	require.Zero(t, allocs)
	require.Equal(t, 501*32, accepted) // AllocsPerRun runs the function once more to warm up
}

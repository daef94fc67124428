package stack

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// The packet path's prefix test agrees with netip's for every prefix length.
func TestIfaddr6Contains(t *testing.T) {
	probes := []string{"fd00:5eed::1", "fd00:5eed::ffff", "fd00:5eed:0:1::1", "fd00:5eee::1", "fe80::1", "::", "ffff::1", "fd00:5eed::"}
	for bits := 0; bits <= 128; bits++ {
		p := netip.PrefixFrom(netip.MustParseAddr("fd00:5eed::1"), bits)
		f := newIfaddr6(p)
		for _, s := range probes {
			a := netip.MustParseAddr(s)
			a16 := a.As16()
			require.Equal(t, p.Contains(a), f.contains(&a16), "%v contains %v", p, a)
		}
	}
}

package netns

import (
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// pair makes two namespaces joined by a veth, a's ssa0 at 198.18.0.1/24 and b's ssb0
// at 198.18.0.2/24.
func pair(t *testing.T) (a, b *NS) {
	t.Helper()
	a, b = New(t, "a"), New(t, "b")
	Veth(t, a, "ssa0", b, "ssb0")
	a.AddAddr(t, "ssa0", "198.18.0.1/24")
	b.AddAddr(t, "ssb0", "198.18.0.2/24")
	return a, b
}

func TestCheckPrefix(t *testing.T) {
	for _, ok := range []string{"198.18.0.1/24", "198.18.0.2/15", "198.19.255.254/16", "198.18.7.1/32"} {
		p, err := checkPrefix(ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, p.String())
	}
	for _, bad := range []string{
		"10.0.0.1/24", "198.20.0.1/24", "198.17.255.255/24", "192.168.1.1/24",
		"198.18.0.1/14", "198.18.0.1/0", "::ffff:198.18.0.1/120", "2001:db8::1/64",
		"198.18.0.1", "garbage", "",
	} {
		_, err := checkPrefix(bad)
		require.Error(t, err, bad)
	}
}

func TestAddAddr_RefusesAddressesOutsideTheRange(t *testing.T) {
	a, _ := pair(t)
	for _, bad := range []string{
		"10.0.0.1/24", "198.20.0.1/24", "198.17.255.254/24", "198.18.0.3/14",
		"::ffff:198.18.0.3/120", "2001:db8::1/64", "198.18.0.3", "nonsense",
	} {
		msg := fatalOf(t, func(tb testing.TB) { a.AddAddr(tb, "ssa0", bad) })
		require.Contains(t, msg, "netns: address", bad)
	}
	a.AddAddr(t, "ssa0", "198.19.255.254/16")
	got := strings.Fields(a.Run(t, "ip", "-4", "-br", "address", "show", "dev", "ssa0"))
	require.Equal(t, []string{"UP", "198.18.0.1/24", "198.19.255.254/16"}, got[1:], "only the good address went on")
}

func TestMACAndMTU(t *testing.T) {
	a, b := pair(t)
	macA, err := a.MAC("ssa0")
	require.NoError(t, err)
	macB, err := b.MAC("ssb0")
	require.NoError(t, err)
	require.Len(t, macA, 6)
	require.NotEqual(t, macA, macB)
	require.Contains(t, a.Run(t, "ip", "-br", "link", "show", "dev", "ssa0"), macA.String())
	require.Contains(t, b.Run(t, "ip", "-br", "link", "show", "dev", "ssb0"), macB.String())

	a.SetMTU(t, "ssa0", 1400)
	ifi, err := a.Interface("ssa0")
	require.NoError(t, err)
	require.Equal(t, 1400, ifi.MTU)
	require.NotZero(t, ifi.Flags&net.FlagUp)

	_, err = a.MAC("ssb0")
	require.Error(t, err, "ssb0 is in the other namespace")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.SetMTU(tb, "ssa0", 1) }), "mtu")
}

func TestSetOffloads(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skipf("needs ethtool: %v", err)
	}
	a, _ := pair(t)
	for _, on := range []bool{false, true, false} {
		require.NoError(t, a.SetOffloads(t, "ssa0", on))
		want := "off"
		if on {
			want = "on"
		}
		f := features(a.Run(t, "ethtool", "-k", "ssa0"))
		for _, o := range offloads {
			require.Equal(t, want, f[o.feature], o.feature)
		}
	}
	require.Error(t, a.SetOffloads(t, "nosuch0", false))
}

func TestFeatures(t *testing.T) {
	// Part of ethtool -k (6.1) for a veth end.
	out := "Features for va:\nrx-checksumming: on\ntx-checksumming: off\n\ttx-checksum-ipv4: off [fixed]\n" +
		"tcp-segmentation-offload: off\n\ttx-tcp-segmentation: off\ngeneric-segmentation-offload: off\n" +
		"generic-receive-offload: on\nlarge-receive-offload: off [fixed]\n"
	f := features(out)
	require.Equal(t, "off", f["tx-checksumming"])
	require.Equal(t, "off", f["tx-checksum-ipv4"])
	require.Equal(t, "off", f["tcp-segmentation-offload"])
	require.Equal(t, "on", f["generic-receive-offload"])
	require.Equal(t, "off", f["large-receive-offload"])
	require.NotContains(t, f, "Features for va")
}

package netns

import (
	"encoding/json"
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
	for _, ok := range []string{"198.18.0.1/24", "198.18.0.2/15", "198.19.255.254/16", "198.18.7.1/32", "fd00::1/64", "fd12:3456::2/48"} {
		p, err := checkPrefix(ok)
		require.NoError(t, err, ok)
		require.Equal(t, ok, p.String())
	}
	for _, bad := range []string{
		"10.0.0.1/24", "198.20.0.1/24", "198.17.255.255/24", "192.168.1.1/24",
		"198.18.0.1/14", "198.18.0.1/0", "::ffff:198.18.0.1/120", "2001:db8::1/64",
		"198.18.0.1", "garbage", "", "fc00::1/64", "fd00::1/7", "fe80::1/64", "::1/128",
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

func TestSetUp_CarrierFollowsBothEnds(t *testing.T) {
	a, b := pair(t)
	running := func(ns *NS, dev string) bool {
		ifi, err := ns.Interface(dev)
		require.NoError(t, err)
		return ifi.Flags&net.FlagRunning != 0
	}
	waitFor(t, "carrier on both ends", func() bool { return running(a, "ssa0") && running(b, "ssb0") })

	a.SetUp(t, "ssa0", false)
	ifi, err := a.Interface("ssa0")
	require.NoError(t, err)
	require.Zero(t, ifi.Flags&net.FlagUp, "ssa0 is down")
	waitFor(t, "ssb0 to lose carrier", func() bool { return !running(b, "ssb0") })
	ifi, err = b.Interface("ssb0")
	require.NoError(t, err)
	require.NotZero(t, ifi.Flags&net.FlagUp, "ssb0 itself stays up")

	a.SetUp(t, "ssa0", true)
	waitFor(t, "carrier back on both ends", func() bool { return running(a, "ssa0") && running(b, "ssb0") })
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.SetUp(tb, "nosuch0", true) }), "nosuch0")
}

func TestAddNeighbor(t *testing.T) {
	a, _ := pair(t)
	mac := net.HardwareAddr{0x02, 0x5a, 0, 0, 0, 9}
	a.AddNeighbor(t, "ssa0", "198.18.0.9", mac)
	var neigh []struct {
		Dst    string   `json:"dst"`
		LLAddr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	out := a.Run(t, "ip", "-j", "neigh", "show", "dev", "ssa0")
	require.NoError(t, json.Unmarshal([]byte(out), &neigh), out)
	require.Len(t, neigh, 1, out)
	require.Equal(t, "198.18.0.9", neigh[0].Dst)
	require.Equal(t, mac.String(), neigh[0].LLAddr)
	require.Equal(t, []string{"PERMANENT"}, neigh[0].State)

	for _, bad := range []string{"10.0.0.9", "198.20.0.9", "2001:db8::9", "198.18.0.0/24", "nonsense"} {
		require.Contains(t, fatalOf(t, func(tb testing.TB) { a.AddNeighbor(tb, "ssa0", bad, mac) }), "netns: neighbour", bad)
	}
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.AddNeighbor(tb, "ssa0", "198.18.0.10", mac[:4]) }), "not an Ethernet address")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.AddNeighbor(tb, "ssa0", "198.18.0.9", mac) }), "exists", "a second entry for the address")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.AddNeighbor(tb, "nosuch0", "198.18.0.11", mac) }), "nosuch0")
}

func TestParseLinkStats(t *testing.T) {
	// ip -s -j link show dev va (iproute2 6.1) for a veth end on this project's machine.
	out := `[{"ifindex":3,"link":"vb","ifname":"va","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,` +
		`"qdisc":"noqueue","operstate":"UP","linkmode":"DEFAULT","group":"default","txqlen":1000,"link_type":"ether",` +
		`"address":"72:ce:4d:98:6e:a3","broadcast":"ff:ff:ff:ff:ff:ff","stats64":{` +
		`"rx":{"bytes":90,"packets":1,"errors":2,"dropped":3,"over_errors":0,"multicast":0},` +
		`"tx":{"bytes":180,"packets":4,"errors":5,"dropped":6,"carrier_errors":0,"collisions":0}}}]`
	s, err := parseLinkStats(out)
	require.NoError(t, err)
	require.Equal(t, LinkStats{RxPackets: 1, RxBytes: 90, RxErrors: 2, RxDropped: 3, TxPackets: 4, TxBytes: 180, TxErrors: 5, TxDropped: 6}, s)
	for _, bad := range []string{"", "[]", `[{"ifname":"va"}]`, `[{"stats64":{"rx":{},"tx":{}}}]`, out[:len(out)-1], "[" + out[1:len(out)-1] + "," + out[1:]} {
		_, err := parseLinkStats(bad)
		require.Error(t, err, bad)
	}
}

func TestLinkStats_CountsWhatCrossesTheVeth(t *testing.T) {
	a, b := pair(t)
	u := newUDPPair(t, a, b)
	none := func() uint64 { return 0 }
	u.burst(t, 1, none) // resolves ARP
	txA, rxB := a.LinkStats(t, "ssa0"), b.LinkStats(t, "ssb0")
	const n = 100
	u.burst(t, n, none)
	txA2, rxB2 := a.LinkStats(t, "ssa0"), b.LinkStats(t, "ssb0")
	// The datagrams, and at most a few ARP frames should a neighbour entry be revalidated.
	const frame = 14 + 20 + 8 + len("datagram")
	for _, d := range []struct {
		what           string
		packets, bytes uint64
	}{
		{"ssa0 transmitted", txA2.TxPackets - txA.TxPackets, txA2.TxBytes - txA.TxBytes},
		{"ssb0 received", rxB2.RxPackets - rxB.RxPackets, rxB2.RxBytes - rxB.RxBytes},
	} {
		require.GreaterOrEqual(t, d.packets, uint64(n), d.what)
		require.LessOrEqual(t, d.packets, uint64(n+4), d.what)
		require.GreaterOrEqual(t, d.bytes, uint64(n*frame), d.what)
	}
	require.Zero(t, txA2.TxDropped+rxB2.RxDropped)
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.LinkStats(tb, "ssb0") }), "ssb0", "ssb0 is in the other namespace")
}

package netns

import (
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDropScript(t *testing.T) {
	head := "table netdev shardstack {\n\tchain egress_veth-a.1 { type filter hook egress device \"veth-a.1\" priority filter; policy accept; }\n}\n" +
		"flush chain netdev shardstack egress_veth-a.1\n"
	require.Equal(t, head, dropScript("veth-a.1", Egress, 0))
	require.Equal(t, head+"add rule netdev shardstack egress_veth-a.1 meta protocol ip numgen random mod 1000 < 250 counter drop\n",
		dropScript("veth-a.1", Egress, 250))
	require.Equal(t, head+"add rule netdev shardstack egress_veth-a.1 meta protocol ip counter drop\n",
		dropScript("veth-a.1", Egress, 1000))
	require.Contains(t, dropScript("v0", Ingress, 1), "chain ingress_v0 { type filter hook ingress device \"v0\"")
	for _, bad := range []string{"", "a b", "a\"b", "a;b", "a}", strings.Repeat("x", 16)} {
		require.Error(t, checkDev(bad), bad)
	}
	require.NoError(t, checkDev("veth-a.1_x"))
}

// udpPair is a UDP socket in a sending to one in b, which a goroutine drains and counts.
type udpPair struct {
	send     *net.UDPConn
	received atomic.Int64
}

func newUDPPair(t *testing.T, a, b *NS) *udpPair {
	t.Helper()
	var recv, send *net.UDPConn
	require.NoError(t, b.Do(func() (err error) {
		recv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2)})
		return err
	}))
	t.Cleanup(func() { _ = recv.Close() })
	require.NoError(t, a.Do(func() (err error) {
		send, err = net.DialUDP("udp4", nil, recv.LocalAddr().(*net.UDPAddr))
		return err
	}))
	t.Cleanup(func() { _ = send.Close() })
	u := &udpPair{send: send}
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := recv.Read(buf); err != nil {
				return
			}
			u.received.Add(1)
		}
	}()
	return u
}

// burst sends n datagrams, n/50 at a time, and returns once every one has either been
// received or counted by dropped, so no receive buffer overflows and nothing is in flight.
func (u *udpPair) burst(t *testing.T, n int, dropped func() uint64) {
	t.Helper()
	base := u.received.Load() + int64(dropped())
	for sent := 0; sent < n; {
		for i := 0; i < 50 && sent < n; i++ {
			_, err := u.send.Write([]byte("datagram"))
			require.NoError(t, err)
			sent++
		}
		waitFor(t, "every datagram to arrive or be dropped", func() bool {
			return u.received.Load()+int64(dropped()) == base+int64(sent)
		})
	}
}

func TestDropRandom(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("needs nft: %v", err)
	}
	a, b := pair(t)
	u := newUDPPair(t, a, b)
	none := func() uint64 { return 0 }
	egress := func() uint64 { return a.Dropped(t, "ssa0", Egress) }
	ingress := func() uint64 { return b.Dropped(t, "ssb0", Ingress) }

	u.burst(t, 1, none) // resolves ARP; nothing drops yet
	require.Equal(t, int64(1), u.received.Load())

	a.DropRandom(t, "ssa0", Egress, 1000)
	u.burst(t, 50, egress)
	require.Equal(t, uint64(50), egress(), "1000 per mille drops everything")
	require.Equal(t, int64(1), u.received.Load())

	a.DropRandom(t, "ssa0", Egress, 500) // replaces the rule and its counter
	require.Zero(t, egress())
	u.burst(t, 400, egress)
	d := egress()
	require.Equal(t, int64(1+400)-int64(d), u.received.Load())
	require.Greater(t, d, uint64(120), "about half: 8 standard deviations below 200")
	require.Less(t, d, uint64(280), "about half: 8 standard deviations above 200")

	a.DropRandom(t, "ssa0", Egress, 0)
	b.DropRandom(t, "ssb0", Ingress, 1000)
	u.burst(t, 20, ingress)
	require.Equal(t, uint64(20), ingress())
	require.Zero(t, egress())
	require.Equal(t, int64(1+400)-int64(d), u.received.Load())

	b.DropRandom(t, "ssb0", Ingress, 0)
	u.burst(t, 10, none)
	require.Equal(t, int64(1+400+10)-int64(d), u.received.Load())

	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.DropRandom(tb, "ssa0", Egress, 1001) }), "0-1000")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.DropRandom(tb, "ssa0;", Egress, 1) }), "bad device")
	require.Contains(t, fatalOf(t, func(tb testing.TB) { a.DropRandom(tb, "nosuch0", Ingress, 1) }), "no such network interface")
}

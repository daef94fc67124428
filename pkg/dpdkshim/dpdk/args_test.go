package dpdk

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		"--no-huge -m 256 --vdev=net_af_packet0,iface=veth0,qpairs=2": {"--no-huge", "-m", "256", "--vdev=net_af_packet0,iface=veth0,qpairs=2"},
		"  -l  0-1\t--in-memory ":                                     {"-l", "0-1", "--in-memory"},
		`--lcores '(0-1)@0' -a "0000:00:1f.0,x=\"y\""`:                {"--lcores", "(0-1)@0", "-a", `0000:00:1f.0,x="y"`},
		`a\ b ''`: {"a b", ""},
		"":        nil,
	} {
		got, err := SplitArgs(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"'x", `"x`, `a "b\"`} {
		_, err := SplitArgs(bad)
		require.Error(t, err, bad)
	}
}

func TestSplitVdevs(t *testing.T) {
	rest, vdevs, err := splitVdevs([]string{"--no-huge", "--vdev=net_af_packet0,iface=a", "-m", "256", "--vdev", "net_null0"})
	require.NoError(t, err)
	require.Equal(t, []string{"--no-huge", "-m", "256"}, rest)
	require.Equal(t, []string{"net_af_packet0,iface=a", "net_null0"}, vdevs)
	require.Equal(t, "net_af_packet0", vdevName(vdevs[0]))
	_, _, err = splitVdevs([]string{"--vdev"})
	require.Error(t, err)
	_, _, err = splitVdevs([]string{"--vdev=,iface=x"})
	require.Error(t, err)
}

func TestTxCsum(t *testing.T) {
	frame := make([]byte, 60)
	frame[12], frame[13] = 0x08, 0x00
	kind, l2, l3 := txCsum(frame, 34, 50)
	require.Equal(t, txTCP4, kind)
	require.Equal(t, 14, l2)
	require.Equal(t, 20, l3)
	kind, _, _ = txCsum(frame, 34, 40)
	require.Equal(t, txUDP4, kind)
	frame[12], frame[13] = 0x86, 0xdd
	kind, _, _ = txCsum(frame, 54, 10)
	require.Equal(t, txNone, kind, "field before start")
	big := make([]byte, 100)
	big[12], big[13] = 0x86, 0xdd
	kind, _, l3 = txCsum(big, 54, 70)
	require.Equal(t, txTCP6, kind)
	require.Equal(t, 40, l3)
	big[12] = 0x08
	big[13] = 0x06
	kind, _, _ = txCsum(big, 34, 50)
	require.Equal(t, txNone, kind, "ARP")
	kind, _, _ = txCsum(big[:10], 34, 50)
	require.Equal(t, txNone, kind, "short")
}

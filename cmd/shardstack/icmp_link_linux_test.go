//go:build linux

package main

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/netns"
)

// TestLink_PingServe: Linux's ping in the client namespace is answered by shardstack
// serve; with --sysctl net.ipv4.icmp_echo_ignore_all=1 it is not, and serve's counters say
// so in Linux's words.
func TestLink_PingServe(t *testing.T) {
	runPingServe(t, func(t *testing.T, args ...string) (*serveRun, *netns.NS) {
		n := newLinkNet(t)
		return n.startServe(t, args...), n.cli
	})
}

// TestTUN_PingServe: TestLink_PingServe over TUN, ping in the device's namespace.
func TestTUN_PingServe(t *testing.T) {
	runPingServe(t, func(t *testing.T, args ...string) (*serveRun, *netns.NS) {
		n := newTunNet(t)
		return n.startServe(t, "", args...), n.ns
	})
}

// runPingServe is TestLink_PingServe with serve started by serve with args, on a fresh
// net each time, pinged from the namespace it returns.
func runPingServe(t *testing.T, serve func(t *testing.T, args ...string) (*serveRun, *netns.NS)) {
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skipf("needs ping (iputils-ping): %v", err)
	}
	s, cli := serve(t, "--app", "echo", "--listen", ":7")
	out := cli.Run(t, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", ssAddr)
	t.Log(out)
	require.Contains(t, out, "3 received")
	sum := s.finish(t)
	require.Equal(t, uint64(3), sum.Counters["IcmpInEchos"])
	require.Equal(t, uint64(3), sum.Counters["IcmpOutEchoReps"])
	require.Equal(t, uint64(3), sum.Counters["IcmpMsgOutType0"])

	s, cli = serve(t, "--app", "echo", "--listen", ":7", "--sysctl", "net.ipv4.icmp_echo_ignore_all=1")
	err := cli.Command(t.Context(), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", ssAddr).Run()
	require.Error(t, err, "no reply with icmp_echo_ignore_all=1")
	sum = s.finish(t)
	require.Equal(t, uint64(2), sum.Counters["IcmpInEchos"])
	require.Zero(t, sum.Counters["IcmpOutEchoReps"])
}

package main

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/tcp"
)

func TestMultiFlag_CollectsEveryUseInOrder(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var addrs multiFlag
	fs.Var(&addrs, "addr", "an address (repeatable)")
	require.NoError(t, fs.Parse([]string{"--addr", "198.18.0.1/24", "--addr=198.18.1.1/24", "-addr", "198.18.0.1/24"}))
	require.Equal(t, multiFlag{"198.18.0.1/24", "198.18.1.1/24", "198.18.0.1/24"}, addrs)
	require.Equal(t, "198.18.0.1/24,198.18.1.1/24,198.18.0.1/24", addrs.String())

	var none multiFlag
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&none, "addr", "an address (repeatable)")
	require.NoError(t, fs.Parse(nil))
	require.Empty(t, none)
}

func TestSysctlFlag_SetsKnobsAsParsed(t *testing.T) {
	var s tcp.Settings
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := sysctlVar(fs, &s, "sysctl", "a knob")
	require.NoError(t, fs.Parse([]string{
		"--sysctl", "net.ipv4.tcp_synack_retries=3",
		"--sysctl", "tcp_syncookies=2", // the short name works too
		"--sysctl", "net.core.somaxconn=8",
		"--sysctl", "net.core.somaxconn=16", // the last one wins, as with sysctl -w
	}))
	for name, want := range map[string]string{
		"net.ipv4.tcp_synack_retries": "3",
		"net.ipv4.tcp_syncookies":     "2",
		"net.core.somaxconn":          "16",
	} {
		got, err := s.Get(name)
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
	require.Equal(t, "net.ipv4.tcp_synack_retries=3,tcp_syncookies=2,net.core.somaxconn=8,net.core.somaxconn=16", f.String())

	for _, bad := range []string{"net.ipv4.tcp_synack_retries", "=3", "net.ipv4.no_such_knob=1", "net.ipv4.tcp_syncookies=7", "net.core.somaxconn=many"} {
		var s tcp.Settings
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		sysctlVar(fs, &s, "sysctl", "a knob")
		require.Error(t, fs.Parse([]string{"--sysctl", bad}), bad)
		require.Equal(t, tcp.Settings{}, s, "%s: a rejected value sets nothing", bad)
	}
}

package main

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckAddrPort: --listen and --target take IPv4 in 198.18.0.0/15 and IPv6 literals in
// fd00::/8, and nothing else.
func TestCheckAddrPort(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"198.18.0.1:9000", true},
		{"198.19.255.254:1", true},
		{"[fd00:198:18::1]:9000", true},
		{"[fdff::1]:80", true},
		{"10.0.0.1:9000", false},
		{"[fc00::1]:9000", false},           // unique-local, but not the locally assigned half
		{"[fe80::1%lo]:9000", false},        // link-local and zoned
		{"[fd00::1%lo]:9000", false},        // a zone is not an address of the range
		{"[::ffff:198.18.0.1]:9000", false}, // IPv4-mapped: say 198.18.0.1
		{"fd00::1:9000", false},             // an IPv6 literal needs its brackets
		{"198.18.0.1", false},               // no port
	} {
		ap, err := checkAddrPort("--target", tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.in, ap.String())
	}
}

// TestRun_FamilyMismatch: shardstack's --addr must be of --target's and --listen's family;
// the command says so before it opens a link (so this needs no privileges). The kernel
// link takes no --addr, so any family passes for it.
func TestRun_FamilyMismatch(t *testing.T) {
	for _, args := range [][]string{
		{"send", "--link", "afpacket:flows-none0", "--addr", "198.18.0.2/24", "--target", "[fd00:198:18::1]:9000"},
		{"send", "--link", "tun:flows-none0", "--addr", "fd00:198:18::2/64", "--target", "198.18.0.1:9000"},
		{"serve", "--link", "afpacket:flows-none0", "--listen", "[fd00:198:18::1]:9000"}, // the default --addr is IPv4
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		require.True(t, errors.Is(err, errUsage), "%v: %v", args, err)
		require.ErrorContains(t, err, "different families", "%v", args)
	}
	err := run(context.Background(), []string{"send", "--link", "afpacket:flows-none0", "--addr", "fd00:198:18::2/64",
		"--target", "[fd00:198:18::1]:9000"}, io.Discard, io.Discard)
	require.Error(t, err)
	require.False(t, errors.Is(err, errUsage), "matching families pass the checks and fail only at the missing link: %v", err)
	err = run(context.Background(), []string{"send", "--addr", "10.1.1.1/24", "--link", "afpacket:flows-none0",
		"--target", "198.18.0.1:9000"}, io.Discard, io.Discard)
	require.ErrorContains(t, err, "outside")
}

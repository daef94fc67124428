package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runArgs runs a command line as main would and returns its exit status and output.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelp_ExitsZeroWithUsageOnStdout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the usage line
	}{
		{[]string{"-h"}, "usage: shardstack <command>"},
		{[]string{"--help"}, "usage: shardstack <command>"},
		{[]string{"help"}, "usage: shardstack <command>"},
		{[]string{"help", "help"}, "usage: shardstack <command>"},
		{[]string{"demo", "-h"}, "usage: shardstack demo [flags]"},
		{[]string{"demo", "--help"}, "usage: shardstack demo [flags]"},
		{[]string{"demo", "--conns", "5", "-h"}, "usage: shardstack demo [flags]"},
		{[]string{"help", "demo"}, "usage: shardstack demo [flags]"},
		{[]string{"lab", "-h"}, "usage: shardstack lab <command>"},
		{[]string{"help", "lab"}, "usage: shardstack lab <command>"},
		{[]string{"lab", "help"}, "usage: shardstack lab <command>"},
		{[]string{"lab", "backlog", "-h"}, "usage: shardstack lab backlog [flags]"},
		{[]string{"lab", "backlog", "--help"}, "usage: shardstack lab backlog [flags]"},
		{[]string{"lab", "help", "backlog"}, "usage: shardstack lab backlog [flags]"},
	} {
		code, stdout, stderr := runArgs(tc.args...)
		name := strings.Join(tc.args, " ")
		require.Equal(t, exitOK, code, name)
		require.True(t, strings.HasPrefix(stdout, tc.want), "%s: stdout %q", name, stdout)
		require.Empty(t, stderr, name)
	}
	// Every command in the tables shows up in its parent's usage, and a command's usage
	// lists its flags.
	_, stdout, _ := runArgs("-h")
	for _, c := range commands {
		require.Contains(t, stdout, "  "+c.name+" ")
	}
	_, stdout, _ = runArgs("lab", "-h")
	for _, c := range labs {
		require.Contains(t, stdout, "  "+c.name+" ")
	}
	_, stdout, _ = runArgs("demo", "-h")
	require.Contains(t, stdout, "-concurrency int")
	_, stdout, _ = runArgs("lab", "backlog", "-h")
	require.Contains(t, stdout, "-syncookies int")
}

func TestUsageErrors_ExitTwoWithErrorAndUsageOnStderr(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		first string // the one-line error
		usage string
	}{
		{nil, "shardstack: no command given", "usage: shardstack <command>"},
		{[]string{"nosuch"}, `shardstack: unknown command "nosuch"`, "usage: shardstack <command>"},
		{[]string{"--json"}, `shardstack: unknown command "--json"`, "usage: shardstack <command>"},
		{[]string{"help", "nosuch"}, `shardstack: unknown command "nosuch"`, "usage: shardstack <command>"},
		{[]string{"help", "demo", "lab"}, "shardstack: help takes one command", "usage: shardstack <command>"},
		{[]string{"demo", "--nosuch"}, "shardstack demo: flag provided but not defined: -nosuch", "usage: shardstack demo"},
		{[]string{"demo", "--conns", "many"}, `shardstack demo: invalid value "many" for flag -conns`, "usage: shardstack demo"},
		{[]string{"demo", "--duration", "10"}, `shardstack demo: invalid value "10" for flag -duration`, "usage: shardstack demo"},
		{[]string{"demo", "--concurrency", "0"}, "shardstack demo: --concurrency must be at least 1, not 0", "usage: shardstack demo"},
		{[]string{"demo", "--shards", "0"}, "shardstack demo: --shards must be at least 1, not 0", "usage: shardstack demo"},
		{[]string{"demo", "--conns", "-1"}, "shardstack demo: --conns must not be negative", "usage: shardstack demo"},
		{[]string{"demo", "--duration", "-1s"}, "shardstack demo: --duration must not be negative", "usage: shardstack demo"},
		{[]string{"demo", "--conns", "0", "--duration", "0"}, "shardstack demo: --conns 0 and --duration 0 would never stop", "usage: shardstack demo"},
		{[]string{"demo", "--api", "threads"}, `shardstack demo: --api must be events or goroutines, not "threads"`, "usage: shardstack demo"},
		{[]string{"demo", "extra"}, `shardstack demo: unexpected argument "extra"`, "usage: shardstack demo"},
		{[]string{"lab"}, "shardstack lab: no command given", "usage: shardstack lab <command>"},
		{[]string{"lab", "nosuchlab"}, `shardstack lab: unknown command "nosuchlab"`, "usage: shardstack lab <command>"},
		{[]string{"lab", "backlog", "--nosuch"}, "shardstack lab backlog: flag provided but not defined: -nosuch", "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--syncookies", "7"}, "shardstack lab backlog: --syncookies must be 0, 1 or 2, not 7", "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--clients", "0"}, "shardstack lab backlog: --clients must be at least 1, not 0", "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--seconds", "0"}, "shardstack lab backlog: --seconds must be more than 0", "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--client-interval", "0"}, "shardstack lab backlog: --client-interval must be more than 0", "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--seconds", "-1"}, `shardstack lab backlog: invalid value "-1" for flag -seconds`, "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--profile", "linux-2.6"}, `shardstack lab backlog: --profile: tcp: unknown profile "linux-2.6"`, "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--sysctl", "net.ipv4.no_such_knob=1"}, `shardstack lab backlog: invalid value "net.ipv4.no_such_knob=1" for flag -sysctl: tcp: unknown sysctl "net.ipv4.no_such_knob"`, "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--sysctl", "net.ipv4.tcp_synack_retries"}, `shardstack lab backlog: invalid value "net.ipv4.tcp_synack_retries" for flag -sysctl: want name=value`, "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "--sysctl", "tcp_syncookies=7"}, `shardstack lab backlog: invalid value "tcp_syncookies=7" for flag -sysctl: tcp_syncookies: tcp: tcp_syncookies must be 0, 1 or 2`, "usage: shardstack lab backlog"},
		{[]string{"lab", "backlog", "extra"}, `shardstack lab backlog: unexpected argument "extra"`, "usage: shardstack lab backlog"},
	} {
		code, stdout, stderr := runArgs(tc.args...)
		name := strings.Join(tc.args, " ")
		require.Equal(t, exitUsage, code, name)
		require.Empty(t, stdout, name)
		first, rest, _ := strings.Cut(stderr, "\n")
		require.True(t, strings.HasPrefix(first, tc.first), "%s: first line %q", name, first)
		require.True(t, strings.HasPrefix(rest, tc.usage), "%s: then %q", name, rest)
	}
}

func TestRuntimeFailure_ExitsOneWithoutUsage(t *testing.T) {
	bad := t.TempDir() + "/no/such/dir/cpu.pprof"
	code, stdout, stderr := runArgs("demo", "--cpuprofile", bad, "--conns", "1")
	require.Equal(t, exitFailure, code)
	require.Empty(t, stdout)
	require.True(t, strings.HasPrefix(stderr, "shardstack: open "+bad), stderr)
	require.NotContains(t, stderr, "usage:", "a failed run is not a usage error")
}

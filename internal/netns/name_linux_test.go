package netns

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewName_FitsAndCarriesPID(t *testing.T) {
	for _, tc := range []struct {
		pid   int
		n     uint64
		label string
		want  string
	}{
		{pid: 1, n: 1, label: "a", want: "ss-1-1-a"},
		{pid: 36, n: 35, label: "srv", want: "ss-10-z-srv"},
		{pid: 1234, n: 2, label: "client-side", want: "ss-ya-2-client_"},
		{pid: 1234, n: 2, label: "a/b c", want: "ss-ya-2-a_b_c"},
		{pid: 1234, n: 2, label: "", want: "ss-ya-2"},
		{pid: 4194304, n: 36*36*36*36*36*36 - 1, label: "x", want: "ss-2hwcg-zzzzzz"},
	} {
		got := newName(tc.pid, tc.n, tc.label)
		require.Equal(t, tc.want, got)
		require.LessOrEqual(t, len(got), maxName)
		pid, ok := ownerPID(got)
		require.True(t, ok, got)
		require.Equal(t, tc.pid, pid, got)
	}
}

func TestOwnerPID_IgnoresOtherNames(t *testing.T) {
	for _, name := range []string{"", "ss-", "ss-1", "ss-1-", "ss-0-1", "ss-!-1", "ss-1-!", "other", "xss-1-1", "SS-1-1"} {
		_, ok := ownerPID(name)
		require.False(t, ok, name)
	}
}

func TestAlive(t *testing.T) {
	require.True(t, alive(os.Getpid()))
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, alive(cmd.Process.Pid), "a reaped child")
}

func TestSysctlPath(t *testing.T) {
	p, err := sysctlPath("net.ipv4.tcp_syncookies")
	require.NoError(t, err)
	require.Equal(t, "/proc/sys/net/ipv4/tcp_syncookies", p)
	p, err = sysctlPath("net/ipv4/conf/eth0.5/rp_filter")
	require.NoError(t, err)
	require.Equal(t, "/proc/sys/net/ipv4/conf/eth0.5/rp_filter", p)
	for _, bad := range []string{"kernel.hostname", "vm.swappiness", "fs/file-max", "net/../kernel/hostname", "network.x", ""} {
		_, err := sysctlPath(bad)
		require.Error(t, err, bad)
	}
}

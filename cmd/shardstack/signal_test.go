package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mainArgsEnv makes the test binary run the command line it holds (JSON) as the shardstack
// command instead of the tests, so a test can run the real command as a child process.
const mainArgsEnv = "SHARDSTACK_TEST_MAIN_ARGS"

func TestMain(m *testing.M) {
	if v := os.Getenv(mainArgsEnv); v != "" {
		var args []string
		if err := json.Unmarshal([]byte(v), &args); err != nil {
			os.Exit(exitUsage)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// childCommand returns the shardstack command as a child process of the test.
func childCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	b, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), mainArgsEnv+"="+string(b))
	return cmd
}

// serve stops cleanly on SIGINT and on SIGTERM: it closes its connections (a client held
// open sees EOF), prints its summary and exits 0.
func TestServe_StopsOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp4", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			ln.Close()
			cmd := childCommand(t, "serve", "--link", "kernel", "--listen", addr, "--app", "echo", "--json")
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			line, err := bufio.NewReader(stderr).ReadString('\n')
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(line, "serving echo"), line)
			c, err := net.Dial("tcp4", addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write([]byte("x"))
			require.NoError(t, err)
			buf := make([]byte, 1)
			_, err = c.Read(buf)
			require.NoError(t, err, "echoed")
			require.NoError(t, cmd.Process.Signal(sig))
			var sum serveSummary
			require.NoError(t, json.NewDecoder(stdout).Decode(&sum))
			require.NoError(t, cmd.Wait(), "exit status 0")
			require.Equal(t, int64(1), sum.AppStats.Accepted)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err = c.Read(buf)
			require.Error(t, err, "the open connection was closed at stop")
		})
	}
}

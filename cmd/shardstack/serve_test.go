package main

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/pkg/tcp"
)

func TestServeAndLoad_HelpAndUsageErrors(t *testing.T) {
	for _, cmd := range []string{"serve", "load"} {
		code, stdout, _ := runArgs(cmd, "-h")
		require.Equal(t, exitOK, code)
		require.True(t, strings.HasPrefix(stdout, "usage: shardstack "+cmd+" [flags]"), stdout)
		require.Contains(t, stdout, "-link")
	}
	for _, args := range [][]string{
		{"serve"},                             // no --link
		{"serve", "--link", "afpacket:veth0"}, // no --addr
		{"serve", "--link", "afpacket:veth0", "--addr", "198.18.0.1"},                    // no prefix length
		{"serve", "--link", "afpacket:veth0", "--addr", "198.18.0.1/24", "--app", "ftp"}, // unknown app
		{"serve", "--link", "kernel", "--listen", "nonsense"},                            // bad listen
		{"serve", "--link", "kernel", "--syncookies", "3"},                               // out of range
		{"serve", "--link", "kernel", "--pin"},                                           // not for the kernel
		{"serve", "--link", "kernel", "--profile", "bsd"},                                // unknown profile
		{"serve", "--link", "kernel", "--sysctl", "net.ipv4.tcp_nosuch=1"},               // unknown knob
		{"serve", "--link", "kernel", "--api", "events"},                                 // events need shardstack
		{"serve", "--link", "afpacket:v", "--addr", "198.18.0.1/24", "--gateway", "x"},   // bad gateway
		{"load", "--link", "kernel"},                                                     // no --target
		{"load", "--link", "kernel", "--target", "198.18.0.1"},                           // no port
		{"load", "--link", "kernel", "--target", "198.18.0.1:80", "--concurrency", "0"},  // range
		{"load", "--link", "kernel", "--target", "198.18.0.1:80", "--conns", "0", "--duration", "0"},
		{"load", "--link", "afpacket:v", "--target", "198.18.0.1:80"}, // no --addr
	} {
		code, _, stderr := runArgs(args...)
		require.Equal(t, exitUsage, code, "%v: %s", args, stderr)
		require.Contains(t, stderr, "usage: shardstack "+args[0], "%v", args)
	}
	// A link that cannot be opened is a failed run, not a usage error.
	code, _, stderr := runArgs("serve", "--link", "nosuch:dev", "--addr", "198.18.0.1/24")
	require.Equal(t, exitFailure, code, stderr)
	require.Contains(t, stderr, "unknown backend")
}

func TestServeFlags_KnobsAndPrecedence(t *testing.T) {
	c, _, err := parseServe([]string{"--link", "afpacket:v", "--addr", "198.18.0.1/24", "--addr", "198.19.0.1/16",
		"--listen", ":80", "--listen", "198.18.0.1:81", "--sysctl", "net.ipv4.tcp_abort_on_overflow=1",
		"--syncookies", "0", "--profile", "linux-3.12", "--backlog", "1", "--no-accept"})
	require.NoError(t, err)
	require.Len(t, c.addrs, 2)
	require.Equal(t, "198.19.0.1/16", c.addrs[1].String())
	require.Equal(t, "[::]:80", c.listen[0].String(), ":PORT is both families' wildcard")
	require.Equal(t, "198.18.0.1:81", c.listen[1].String())
	require.True(t, c.settings.TCPAbortOnOverflow, "from --sysctl")
	require.Equal(t, tcp.SyncookiesOff, c.settings.TCPSyncookies)
	require.Equal(t, tcp.ProfileLinux312, c.settings.Profile)
	require.Equal(t, 1, c.backlog)
	require.True(t, c.noAccept)
	c, _, err = parseServe([]string{"--link", "kernel", "--sysctl", "tcp_abort_on_overflow=1", "--abort-on-overflow=false"})
	require.NoError(t, err)
	require.False(t, c.settings.TCPAbortOnOverflow, "the flag wins over --sysctl")
	require.Equal(t, "[::]:8080", c.listen[0].String(), "default --listen")
}

func TestServeAndLoadFlags_IPv6(t *testing.T) {
	c, _, err := parseServe([]string{"--link", "afpacket:v", "--addr", "198.18.0.1/24", "--addr", "fd00::1/64",
		"--gateway", "198.18.0.254", "--gateway", "fe80::1", "--listen", "[fd00::1]:80", "--listen", "0.0.0.0:81"})
	require.NoError(t, err)
	require.Equal(t, "fd00::1/64", c.addrs[1].String())
	require.Equal(t, "198.18.0.254", c.gateway.String())
	require.Equal(t, "fe80::1", c.gateway6.String())
	require.Equal(t, "[fd00::1]:80", c.listen[0].String())
	require.Equal(t, "0.0.0.0:81", c.listen[1].String())
	_, _, err = parseServe([]string{"--link", "afpacket:v", "--addr", "fd00::1/64", "--gateway", "fe80::1", "--gateway", "fe80::2"})
	require.ErrorContains(t, err, "one IPv6 gateway only")
	lc, err := parseLoad([]string{"--link", "afpacket:v", "--addr", "fd00::2/64", "--target", "[fd00::1]:8080"})
	require.NoError(t, err)
	require.Equal(t, "[fd00::1]:8080", lc.target.String())
	require.Equal(t, "fd00::2/64", lc.addrs[0].String())
	require.Equal(t, "tcp", tcpNetwork(lc.target.Addr()))
	require.Equal(t, "tcp4", tcpNetwork(c.listen[1].Addr()))
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeKernel_LoadKernel: serve on Linux's stack (loopback) runs until told to stop and
// prints its summary as JSON; load against it completes its connections with no failure and
// exits 0. (The same commands over AF_PACKET are the real-link tests.)
func TestServeKernel_LoadKernel(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var out, errOut syncBuffer
	stop := make(chan struct{})
	e := &env{stdout: &out, stderr: &errOut, stop: stop}
	done := make(chan int, 1)
	go func() {
		done <- e.run([]string{"serve", "--link", "kernel", "--listen", addr, "--app", "hello", "--json"})
	}()
	var c net.Conn
	for i := 0; i < 500; i++ { // bounded wait for the listener
		if c, err = net.Dial("tcp4", addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, err)
	c.Close()
	code, stdout, stderr := runArgs("load", "--link", "kernel", "--target", addr, "--conns", "300", "--concurrency", "8", "--json")
	require.Equal(t, exitOK, code, stderr)
	var lr struct {
		loadgen.Result
		Link string `json:"link"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &lr))
	require.Equal(t, int64(300), lr.Conns)
	require.Zero(t, lr.Failures)
	require.Equal(t, "kernel", lr.Link)
	close(stop)
	require.Equal(t, exitOK, <-done, errOut.String())
	var sum serveSummary
	require.NoError(t, json.Unmarshal([]byte(out.String()), &sum), out.String())
	require.Equal(t, int64(301), sum.AppStats.Accepted, "the probe and the 300")
	require.Zero(t, sum.AppStats.Open, "every connection closed at stop")
	require.Equal(t, "hello", sum.App)
}

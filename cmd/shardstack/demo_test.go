package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/demo"
)

// closedPort is a port nobody listens on in the demo: its clients are all refused.
const closedPort = 9

func TestDemo_JSONRunExitsZero(t *testing.T) {
	for _, api := range []string{demo.APIEvents, demo.APIGoroutines} {
		code, stdout, stderr := runArgs("demo", "--json", "--conns", "200", "--duration", "5s", "--api", api)
		require.Equal(t, exitOK, code, stderr)
		require.Empty(t, stderr)
		var res demo.Result
		require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
		require.Equal(t, api, res.API)
		require.Zero(t, res.Failures)
		require.Positive(t, res.Conns)
		require.LessOrEqual(t, res.Conns, int64(200), "--conns caps the run")
		require.NotEmpty(t, res.Server, "the server's counters are in the JSON")
	}
}

// runFailingDemo runs the demo with its clients pointed at a port with no listener.
func runFailingDemo(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, demoConfig: func(c *demo.Config) { c.DialPort = closedPort }}
	code = e.run(append([]string{"demo"}, args...))
	return code, out.String(), errOut.String()
}

// Refused connections fail the run with --json as without: the summary is printed all
// the same and the exit status is 1. --duration 0 ends the run by count alone.
func TestDemo_FailedConnectionsExitOne(t *testing.T) {
	for _, api := range []string{demo.APIEvents, demo.APIGoroutines} {
		code, stdout, stderr := runFailingDemo("--json", "--conns", "50", "--duration", "0", "--api", api)
		require.Equal(t, exitFailure, code, api)
		var res demo.Result
		require.NoError(t, json.Unmarshal([]byte(stdout), &res), "%s: the JSON is still printed: %s", api, stdout)
		require.Equal(t, int64(50), res.Failures, api)
		require.Zero(t, res.Conns, api)
		require.Contains(t, res.FirstError, "connection refused", api)
		require.True(t, strings.HasPrefix(stderr, "shardstack: demo: 50 of 50 connections failed"), "%s: %q", api, stderr)
		require.NotContains(t, stderr, "usage:", api)

		code, stdout, stderr = runFailingDemo("--conns", "50", "--duration", "0", "--api", api)
		require.Equal(t, exitFailure, code, api)
		require.Regexp(t, `(?m)^  failures +50$`, stdout, api)
		require.True(t, strings.HasPrefix(stderr, "shardstack: demo: 50 of 50 connections failed"), "%s: %q", api, stderr)
	}
}

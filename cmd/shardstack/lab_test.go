package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type labJSON struct {
	Config struct {
		Profile         string  `json:"profile"`
		Seconds         float64 `json:"seconds"`
		Syncookies      int     `json:"syncookies"`
		AbortOnOverflow bool    `json:"abort_on_overflow"`
	} `json:"config"`
	Steps []struct {
		Server []struct {
			State string `json:"state"`
			Peer  string `json:"peer"`
		} `json:"server"`
	} `json:"steps"`
	Clients []struct {
		ID      int    `json:"id"`
		Outcome string `json:"outcome"`
		State   string `json:"state"`
	} `json:"clients"`
}

func runLabJSON(t *testing.T, args ...string) labJSON {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"lab", "backlog", "--json"}, args...), &stdout, &stderr)
	require.Equal(t, exitOK, code, stderr.String())
	var res labJSON
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
	return res
}

func clientStates(res labJSON) (outcomes, states []string) {
	for _, c := range res.Clients {
		outcomes = append(outcomes, c.Outcome)
		states = append(states, c.State)
	}
	return outcomes, states
}

// The "done when" commands, through the command line.
func TestLabBacklogDoneWhen(t *testing.T) {
	res := runLabJSON(t, "--profile", "linux-3.12", "--backlog", "1", "--clients", "3", "--seconds", "10")
	outcomes, states := clientStates(res)
	require.Equal(t, []string{"connected", "connected", "connected"}, outcomes)
	require.Equal(t, []string{"ESTAB", "ESTAB", "ESTAB"}, states)
	var server []string
	for _, r := range res.Steps[len(res.Steps)-1].Server {
		server = append(server, r.State)
	}
	require.Equal(t, []string{"LISTEN", "ESTAB", "ESTAB", "SYN-RECV"}, server,
		"3.12 keeps client 3 in SYN-RECV on the server")

	res = runLabJSON(t, "--profile", "linux", "--backlog", "1", "--clients", "3", "--seconds", "10")
	_, states = clientStates(res)
	require.Equal(t, []string{"ESTAB", "ESTAB", "SYN-SENT"}, states)

	res = runLabJSON(t, "--profile", "linux-3.12", "--backlog", "1", "--clients", "3", "--abort-on-overflow")
	outcomes, _ = clientStates(res)
	require.Equal(t, "CONNECT FAILED: connection reset by peer", outcomes[2])
}

func TestLabSecondsTakesNumbersAndDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"10": 10 * time.Second, "0.5": 500 * time.Millisecond, "10s": 10 * time.Second, "2m": 2 * time.Minute,
	} {
		got, err := parseSeconds(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1", "-1s", "NaN", "1e300"} {
		_, err := parseSeconds(in)
		require.Error(t, err, in)
	}
	require.Equal(t, 7.5, runLabJSON(t, "--seconds", "7.5").Config.Seconds)
}

// --sysctl reaches the server's settings; of the two knobs with flags of their own, the flag
// wins when both are given.
func TestLabSysctl_SetsKnobsAndLosesToTheirFlags(t *testing.T) {
	res := runLabJSON(t, "--sysctl", "net.ipv4.tcp_syncookies=2", "--sysctl", "tcp_abort_on_overflow=1", "--seconds", "1")
	require.Equal(t, 2, res.Config.Syncookies)
	require.True(t, res.Config.AbortOnOverflow)

	res = runLabJSON(t, "--syncookies", "0", "--sysctl", "net.ipv4.tcp_syncookies=2", "--sysctl", "tcp_abort_on_overflow=1", "--abort-on-overflow=false", "--seconds", "1")
	require.Equal(t, 0, res.Config.Syncookies)
	require.False(t, res.Config.AbortOnOverflow)

	res = runLabJSON(t, "--seconds", "1")
	require.Equal(t, 1, res.Config.Syncookies, "the flag's default")
	require.False(t, res.Config.AbortOnOverflow)
}

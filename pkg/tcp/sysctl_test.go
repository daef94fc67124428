package tcp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Every knob reads back Linux's default, and what Set writes is what Get returns.
func TestSysctlDefaultsAndRoundTrip(t *testing.T) {
	var s Settings
	want := map[string]string{
		"net.core.somaxconn":               "4096",
		"net.ipv4.tcp_max_syn_backlog":     "2048",
		"net.ipv4.tcp_synack_retries":      "5",
		"net.ipv4.tcp_syn_retries":         "6",
		"net.ipv4.tcp_syn_linear_timeouts": "4",
		"net.ipv4.tcp_abort_on_overflow":   "0",
		"net.ipv4.tcp_syncookies":          "1",
		"net.ipv4.ip_local_port_range":     "32768 60999",
		"net.ipv4.tcp_timestamps":          "1",
		"net.ipv4.tcp_sack":                "1",
		"net.ipv4.tcp_window_scaling":      "1",
		"net.ipv4.tcp_max_tw_buckets":      "131072",
		"net.ipv4.tcp_fin_timeout":         "60",
		"net.ipv4.tcp_retries2":            "15",
		"net.ipv4.tcp_invalid_ratelimit":   "500",
		"net.ipv4.tcp_challenge_ack_limit": "2147483647",
		"net.ipv4.tcp_rfc1337":             "0",
		// Linux's defaults, as a fresh Linux prints them.
		"net.ipv4.tcp_congestion_control":           "cubic",
		"net.ipv4.tcp_available_congestion_control": "reno cubic",
		"net.ipv4.tcp_slow_start_after_idle":        "1",
		"net.ipv4.tcp_rmem":                         "4096\t131072\t6291456",
		"net.ipv4.tcp_wmem":                         "4096\t16384\t4194304",
		"net.ipv4.tcp_keepalive_time":               "7200",
		"net.ipv4.tcp_keepalive_intvl":              "75",
		"net.ipv4.tcp_keepalive_probes":             "9",
		"net.ipv4.route.min_pmtu":                   "552",
		"net.ipv4.route.mtu_expires":                "600",
	}
	require.Len(t, Sysctls(), len(want))
	for name, v := range want {
		got, err := s.Get(name)
		require.NoError(t, err)
		require.Equal(t, v, got, name)
	}
	for name, v := range map[string]string{
		"tcp_congestion_control": "reno", "tcp_slow_start_after_idle": "0",
		"tcp_rmem":       "4096\t87380\t1048576",
		"tcp_syncookies": "0", "tcp_abort_on_overflow": "1",
		"tcp_timestamps": "0", "tcp_sack": "0", "net/ipv4/tcp_window_scaling": "0",
		"somaxconn": "128", "ip_local_port_range": "40000 40100", "tcp_syn_linear_timeouts": "0",
		"tcp_synack_retries": "2", "tcp_fin_timeout": "30",
		"tcp_invalid_ratelimit": "0", "tcp_challenge_ack_limit": "0", "tcp_rfc1337": "1",
		"tcp_keepalive_time": "600", "tcp_keepalive_intvl": "10", "tcp_keepalive_probes": "3",
	} {
		require.NoError(t, s.Set(name, v), name)
		got, err := s.Get(name)
		require.NoError(t, err)
		require.Equal(t, v, got, name)
	}
	require.Equal(t, 0, s.withDefaults().TCPSynLinearTimeouts)
	require.Equal(t, 0, s.withDefaults().TCPSyncookies)
	require.True(t, s.TCPTimestampsOff)
	require.Zero(t, s.withDefaults().TCPInvalidRatelimit, "0 turns the limit off")
	require.Zero(t, s.withDefaults().TCPChallengeAckLimit)
	require.True(t, s.TCPRFC1337)
	require.NoError(t, s.Set("tcp_invalid_ratelimit", "250"))
	require.Equal(t, 250*time.Millisecond, s.withDefaults().TCPInvalidRatelimit)
	require.NoError(t, s.Set("tcp_challenge_ack_limit", "1000"))
	require.Equal(t, 1000, s.withDefaults().TCPChallengeAckLimit)
	require.Error(t, s.Set("tcp_invalid_ratelimit", "-1"))
	require.Error(t, s.Set("tcp_challenge_ack_limit", "2147483648"))
	require.NoError(t, s.Set("net.ipv4.tcp_syncookies", "2"))
	require.Equal(t, 2, s.withDefaults().TCPSyncookies)
	require.Error(t, s.Set("tcp_syncookies", "3"))
	require.Error(t, s.Set("tcp_no_such_thing", "1"))
	require.Error(t, s.Set("ip_local_port_range", "5 4"))
	require.Error(t, s.Set("tcp_sack", "yes"))
	require.NoError(t, s.Set("tcp_abort_on_overflow", "2")) // any non-zero value is on
	require.True(t, s.TCPAbortOnOverflow)
	require.Equal(t, 600*time.Second, s.TCPKeepaliveTime)
	require.Equal(t, 10*time.Second, s.TCPKeepaliveIntvl)
	require.Equal(t, 3, s.TCPKeepaliveProbes)
	require.Error(t, s.Set("tcp_keepalive_time", "0"))
	require.Error(t, s.Set("tcp_keepalive_intvl", "-1"))
	require.Error(t, s.Set("tcp_keepalive_probes", "256"))
}

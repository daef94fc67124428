package tcp

import (
	"fmt"
	"math"
	"net"
	"time"
)

// Profile selects which kernel's connection-establishment rules the stack reproduces.
type Profile uint8

// The profiles of spec §0.
const (
	// ProfileLinux is current Linux (checked against 6.18), the default.
	ProfileLinux Profile = iota
	// ProfileLinux312 is Linux 3.12, the kernel the seed documents describe.
	ProfileLinux312
)

// String returns the profile's name as the command line spells it.
func (p Profile) String() string {
	switch p {
	case ProfileLinux:
		return "linux"
	case ProfileLinux312:
		return "linux-3.12"
	}
	return fmt.Sprintf("Profile(%d)", uint8(p))
}

// ParseProfile parses "linux" or "linux-3.12".
func ParseProfile(s string) (Profile, error) {
	switch s {
	case "linux", "":
		return ProfileLinux, nil
	case "linux-3.12", "linux312", "3.12":
		return ProfileLinux312, nil
	}
	return 0, fmt.Errorf("tcp: unknown profile %q (want linux or linux-3.12)", s)
}

// Settings are the stack-wide knobs, each named after the Linux sysctl it mirrors and
// defaulting to Linux's value (spec §10). The zero value of a field means "Linux's default";
// use the explicit Off values where a sysctl's meaningful value is 0.
type Settings struct {
	// Profile picks the kernel whose rules are reproduced.
	Profile Profile
	// Somaxconn caps every listen backlog (net.core.somaxconn, 4096).
	Somaxconn int
	// TCPMaxSynBacklog (net.ipv4.tcp_max_syn_backlog, 2048).
	TCPMaxSynBacklog int
	// TCPSynackRetries (tcp_synack_retries, 5).
	TCPSynackRetries int
	// TCPSynRetries (tcp_syn_retries, 6).
	TCPSynRetries int
	// TCPSynLinearTimeouts (tcp_syn_linear_timeouts, 4; profile linux only). Use -1 for 0.
	TCPSynLinearTimeouts int
	// TCPAbortOnOverflow (tcp_abort_on_overflow, default off).
	TCPAbortOnOverflow bool
	// TCPSyncookies (tcp_syncookies: 0 never, 1 when the SYN queue overflows, 2 always).
	// Default 1; use SyncookiesOff for 0.
	TCPSyncookies int
	// IPLocalPortRange (ip_local_port_range, 32768-60999).
	IPLocalPortRange [2]uint16
	// TCPTimestampsOff, TCPSackOff, TCPWindowScalingOff turn off tcp_timestamps, tcp_sack,
	// tcp_window_scaling (all on by default, as in Linux).
	TCPTimestampsOff, TCPSackOff, TCPWindowScalingOff bool
	// TCPMaxTwBuckets (tcp_max_tw_buckets): TIME-WAIT entries per stack; beyond it a closing
	// connection skips TIME-WAIT (TcpExtTCPTimeWaitOverflow). Default 131072.
	TCPMaxTwBuckets int
	// TCPFinTimeout (tcp_fin_timeout, 60 s): how long an orphaned FIN-WAIT-2 lasts.
	TCPFinTimeout time.Duration
	// TCPRetries2 (tcp_retries2, 15): retransmissions of data before giving up.
	TCPRetries2 int
	// TCPInvalidRatelimit (tcp_invalid_ratelimit, 500 ms): the least time between two ACKs
	// that a connection, a request or a TIME-WAIT entry sends in answer to out-of-window
	// segments, or as challenge ACKs (Linux __tcp_oow_rate_limited). Use -1 for 0 (no limit).
	TCPInvalidRatelimit time.Duration
	// TCPChallengeAckLimit (tcp_challenge_ack_limit): challenge ACKs per second for the whole
	// stack, after each connection's own limit (Linux keeps it per network namespace). Linux
	// 6.0 and later default to INT_MAX, which turns the stack-wide limit off (earlier kernels
	// had 1000, and 100 before 4.7). Use -1 for 0.
	TCPChallengeAckLimit int
	// TCPRFC1337 (tcp_rfc1337, default off): TIME-WAIT ignores every RST (RFC 1337's remedy
	// for TIME-WAIT assassination) instead of ending on an RST at its rcv_nxt.
	TCPRFC1337 bool
	// TCPRmem and TCPWmem (tcp_rmem, tcp_wmem: min, default, max in bytes; Linux's
	// defaults 4096 131072 6291456 and 4096 16384 4194304). A connection's receive buffer
	// starts at the default and grows to the max with what the application reads per
	// round trip (Linux tcp_rcv_space_adjust); its send buffer grows with the congestion
	// window (tcp_sndbuf_expand). As in Linux with tcp_adv_win_scale 1, the window a
	// receive buffer of N bytes advertises is N/2: here that is the data it holds, since a
	// buffer here has no per-packet overhead. Memory is spent only while data waits.
	TCPRmem, TCPWmem [3]int
	// TCPKeepaliveTime (tcp_keepalive_time, 7200 s): how long a connection with SO_KEEPALIVE
	// must be idle before the first probe.
	TCPKeepaliveTime time.Duration
	// TCPKeepaliveIntvl (tcp_keepalive_intvl, 75 s): the time between keepalive probes.
	TCPKeepaliveIntvl time.Duration
	// TCPKeepaliveProbes (tcp_keepalive_probes, 9): unanswered probes before the connection
	// is given up with ETIMEDOUT.
	TCPKeepaliveProbes int
	// RcvBuf and SndBuf, when set, fix every connection's receive and send buffer at that
	// many bytes of data, as SO_RCVBUF and SO_SNDBUF set on each socket do (no autotuning;
	// Handle.SetReadBuffer and SetWriteBuffer do the same per connection).
	RcvBuf, SndBuf int
	// TCPCongestionControl (tcp_congestion_control): "cubic" (the default, with HyStart++)
	// or "reno".
	TCPCongestionControl string
	// TCPSlowStartAfterIdle (tcp_slow_start_after_idle, default 1): the congestion window
	// of a connection idle for an RTO restarts towards the initial window. Use -1 for 0.
	TCPSlowStartAfterIdle int
	// RouteMinPMTU (net.ipv4.route.min_pmtu, 552): a fragmentation-needed report below
	// it lowers an IPv4 path MTU only to it, and locks it (pmtu.go).
	RouteMinPMTU int
	// RouteMTUExpires (net.ipv4.route.mtu_expires, 600 s): how long a learned path MTU lasts.
	RouteMTUExpires time.Duration
}

// SyncookiesOff is the TCPSyncookies value for tcp_syncookies=0.
const SyncookiesOff = -1

// Linux's fixed constants (include/net/tcp.h).
const (
	timeoutInit = time.Second            // TCP_TIMEOUT_INIT
	rtoMax      = 120 * time.Second      // TCP_RTO_MAX
	rtoMin      = 200 * time.Millisecond // TCP_RTO_MIN
	timewaitLen = 60 * time.Second       // TCP_TIMEWAIT_LEN
	delackMin   = 40 * time.Millisecond  // TCP_DELACK_MIN
	cookieValid = 2 * time.Minute        // TCP_SYNCOOKIE_VALID
	defaultMSS  = 536                    // RFC 9293 §3.7.1 default when no MSS option
	maxWScale   = 14                     // RFC 7323 §2.3

	defaultInvalidRatelimit = 500 * time.Millisecond // HZ/2 (tcp_sk_init)
	challengeAckUnlimited   = math.MaxInt32          // INT_MAX: Linux's default, no stack-wide limit
)

// withDefaults fills the zero fields with Linux's defaults.
func (s Settings) withDefaults() Settings {
	if s.Somaxconn <= 0 {
		s.Somaxconn = 4096
	}
	if s.TCPMaxSynBacklog <= 0 {
		s.TCPMaxSynBacklog = 2048
	}
	if s.TCPSynackRetries <= 0 {
		s.TCPSynackRetries = 5
	}
	if s.TCPSynRetries <= 0 {
		s.TCPSynRetries = 6
	}
	switch {
	case s.TCPSynLinearTimeouts == 0:
		s.TCPSynLinearTimeouts = 4
	case s.TCPSynLinearTimeouts < 0:
		s.TCPSynLinearTimeouts = 0
	}
	switch {
	case s.TCPSyncookies == 0:
		s.TCPSyncookies = 1
	case s.TCPSyncookies < 0:
		s.TCPSyncookies = 0
	}
	if s.IPLocalPortRange == [2]uint16{} {
		s.IPLocalPortRange = [2]uint16{32768, 60999}
	}
	if s.TCPMaxTwBuckets <= 0 {
		s.TCPMaxTwBuckets = 131072
	}
	if s.TCPFinTimeout <= 0 {
		s.TCPFinTimeout = 60 * time.Second
	}
	if s.TCPRetries2 <= 0 {
		s.TCPRetries2 = 15
	}
	switch {
	case s.TCPInvalidRatelimit == 0:
		s.TCPInvalidRatelimit = defaultInvalidRatelimit
	case s.TCPInvalidRatelimit < 0:
		s.TCPInvalidRatelimit = 0
	}
	switch {
	case s.TCPChallengeAckLimit == 0:
		s.TCPChallengeAckLimit = challengeAckUnlimited
	case s.TCPChallengeAckLimit < 0:
		s.TCPChallengeAckLimit = 0
	}
	if s.TCPKeepaliveTime <= 0 {
		s.TCPKeepaliveTime = 7200 * time.Second
	}
	if s.TCPKeepaliveIntvl <= 0 {
		s.TCPKeepaliveIntvl = 75 * time.Second
	}
	if s.TCPKeepaliveProbes <= 0 {
		s.TCPKeepaliveProbes = 9
	}
	if s.TCPRmem == [3]int{} {
		s.TCPRmem = [3]int{4096, 131072, 6291456}
	}
	if s.TCPWmem == [3]int{} {
		s.TCPWmem = [3]int{4096, 16384, 4194304}
	}
	if s.TCPCongestionControl == "" {
		s.TCPCongestionControl = "cubic"
	}
	if s.TCPSlowStartAfterIdle == 0 {
		s.TCPSlowStartAfterIdle = 1
	}
	if s.RouteMinPMTU <= 0 {
		s.RouteMinPMTU = 552 // ip_rt_min_pmtu: 512 + 20 + 20
	}
	if s.RouteMTUExpires <= 0 {
		s.RouteMTUExpires = 600 * time.Second // ip_rt_mtu_expires
	}
	return s
}

// Validate reports settings Linux itself would refuse.
func (s Settings) Validate() error {
	if s.Profile > ProfileLinux312 {
		return fmt.Errorf("tcp: unknown profile %d", s.Profile)
	}
	if s.TCPSyncookies > 2 {
		return fmt.Errorf("tcp: tcp_syncookies must be 0, 1 or 2, not %d", s.TCPSyncookies)
	}
	if s.TCPChallengeAckLimit > challengeAckUnlimited {
		return fmt.Errorf("tcp: tcp_challenge_ack_limit %d is above INT_MAX", s.TCPChallengeAckLimit)
	}
	if _, ok := ccIndex(s.TCPCongestionControl); !ok {
		return fmt.Errorf("tcp: unknown tcp_congestion_control %q (cubic, reno)", s.TCPCongestionControl)
	}
	for _, m := range [][3]int{s.TCPRmem, s.TCPWmem} {
		if m != [3]int{} && (m[0] <= 0 || m[0] > m[1] || m[1] > m[2]) {
			return fmt.Errorf("tcp: bad buffer sizes %d %d %d (min <= default <= max)", m[0], m[1], m[2])
		}
	}
	if s.RcvBuf < 0 || s.SndBuf < 0 {
		return fmt.Errorf("tcp: negative buffer size")
	}
	if s.TCPKeepaliveProbes > 255 {
		return fmt.Errorf("tcp: tcp_keepalive_probes must be at most 255, not %d", s.TCPKeepaliveProbes)
	}
	r := s.IPLocalPortRange
	if r != [2]uint16{} && (r[0] == 0 || r[0] > r[1]) {
		return fmt.Errorf("tcp: bad ip_local_port_range %d-%d", r[0], r[1])
	}
	return nil
}

// ListenOptions are per-listener socket options, as Linux has them.
type ListenOptions struct {
	// Backlog is listen()'s argument, clamped to Somaxconn; negative means Somaxconn.
	Backlog int
	// DeferAccept is TCP_DEFER_ACCEPT: a bare final ACK only marks the request acked and
	// the child is made when data arrives, for up to this long.
	DeferAccept time.Duration
	// SynCnt is TCP_SYNCNT on the listener: it replaces tcp_synack_retries for its requests.
	SynCnt int
	// MaxSeg is TCP_MAXSEG: it caps the MSS the listener advertises and uses.
	MaxSeg int
	// Events, if set, makes the listener event-driven: each connection is handed to the
	// callbacks on its shard as soon as it is established, instead of waiting in the accept
	// queue for Accept.
	Events Events
	// KeepAlive turns keepalive on for every connection the listener makes when
	// KeepAlive.Enable is set, with net.KeepAliveConfig's meaning of the other fields.
	KeepAlive net.KeepAliveConfig
	// UserTimeout is TCP_USER_TIMEOUT for every connection the listener makes (0: off).
	UserTimeout time.Duration
	// V6Only is IPV6_V6ONLY: a listener on every address ([::] or no address) takes IPv6
	// connections only. Without it such a listener takes both families, as Linux's
	// default net.ipv6.bindv6only=0 does; a listener on 0.0.0.0 or an IPv4 address takes
	// IPv4 only either way.
	V6Only bool
}

package tcp

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The settings by the names of the sysctls they mirror, so that a configuration written for
// Linux reads the same here: s.Set("net.ipv4.tcp_syncookies", "0").
var sysctls = map[string]struct {
	get func(s *Settings) string
	set func(s *Settings, v string) error
}{
	"net.core.somaxconn":           intKnob(func(s *Settings) *int { return &s.Somaxconn }, 0),
	"net.ipv4.tcp_max_syn_backlog": intKnob(func(s *Settings) *int { return &s.TCPMaxSynBacklog }, 1),
	"net.ipv4.tcp_synack_retries":  intKnob(func(s *Settings) *int { return &s.TCPSynackRetries }, 1),
	"net.ipv4.tcp_syn_retries":     intKnob(func(s *Settings) *int { return &s.TCPSynRetries }, 1),
	"net.ipv4.tcp_max_tw_buckets":  intKnob(func(s *Settings) *int { return &s.TCPMaxTwBuckets }, 1),
	"net.ipv4.tcp_retries2":        intKnob(func(s *Settings) *int { return &s.TCPRetries2 }, 1),
	"net.ipv4.tcp_keepalive_time":  secondsKnob(func(s *Settings) *time.Duration { return &s.TCPKeepaliveTime }),
	"net.ipv4.tcp_keepalive_intvl": secondsKnob(func(s *Settings) *time.Duration { return &s.TCPKeepaliveIntvl }),
	"net.ipv4.tcp_keepalive_probes": {
		get: func(s *Settings) string { return strconv.Itoa(s.withDefaults().TCPKeepaliveProbes) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 255 { // a u8 in Linux; our 0 means the default
				return fmt.Errorf("tcp: bad tcp_keepalive_probes %q", v)
			}
			s.TCPKeepaliveProbes = n
			return nil
		},
	},
	"net.ipv4.tcp_syn_linear_timeouts": {
		get: func(s *Settings) string { return strconv.Itoa(s.withDefaults().TCPSynLinearTimeouts) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return fmt.Errorf("tcp: bad tcp_syn_linear_timeouts %q", v)
			}
			if n == 0 {
				n = -1 // our zero means the default
			}
			s.TCPSynLinearTimeouts = n
			return nil
		},
	},
	"net.ipv4.tcp_syncookies": {
		get: func(s *Settings) string { return strconv.Itoa(s.withDefaults().TCPSyncookies) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 2 {
				return fmt.Errorf("tcp: tcp_syncookies must be 0, 1 or 2, not %q", v)
			}
			if n == 0 {
				n = SyncookiesOff
			}
			s.TCPSyncookies = n
			return nil
		},
	},
	"net.ipv4.tcp_invalid_ratelimit": {
		// In milliseconds, as Linux reads it (proc_dointvec_ms_jiffies).
		get: func(s *Settings) string {
			return strconv.FormatInt(int64(s.withDefaults().TCPInvalidRatelimit/time.Millisecond), 10)
		},
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("tcp: bad tcp_invalid_ratelimit %q", v)
			}
			s.TCPInvalidRatelimit = time.Duration(n) * time.Millisecond
			if n == 0 {
				s.TCPInvalidRatelimit = -1 // our zero means the default
			}
			return nil
		},
	},
	"net.ipv4.tcp_challenge_ack_limit": {
		get: func(s *Settings) string { return strconv.Itoa(s.withDefaults().TCPChallengeAckLimit) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > challengeAckUnlimited {
				return fmt.Errorf("tcp: bad tcp_challenge_ack_limit %q", v)
			}
			if n == 0 {
				n = -1 // our zero means the default
			}
			s.TCPChallengeAckLimit = n
			return nil
		},
	},
	"net.ipv4.tcp_rfc1337":           boolKnob(func(s *Settings) *bool { return &s.TCPRFC1337 }, false),
	"net.ipv4.tcp_abort_on_overflow": boolKnob(func(s *Settings) *bool { return &s.TCPAbortOnOverflow }, false),
	"net.ipv4.tcp_timestamps":        boolKnob(func(s *Settings) *bool { return &s.TCPTimestampsOff }, true),
	"net.ipv4.tcp_sack":              boolKnob(func(s *Settings) *bool { return &s.TCPSackOff }, true),
	"net.ipv4.tcp_window_scaling":    boolKnob(func(s *Settings) *bool { return &s.TCPWindowScalingOff }, true),
	"net.ipv4.tcp_fin_timeout": {
		get: func(s *Settings) string { return strconv.Itoa(int(s.withDefaults().TCPFinTimeout / time.Second)) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("tcp: bad tcp_fin_timeout %q", v)
			}
			s.TCPFinTimeout = time.Duration(n) * time.Second
			return nil
		},
	},
	"net.ipv4.tcp_congestion_control": {
		get: func(s *Settings) string { return s.withDefaults().TCPCongestionControl },
		set: func(s *Settings, v string) error {
			if _, ok := ccIndex(v); !ok || v == "" {
				return fmt.Errorf("tcp: unknown tcp_congestion_control %q (cubic, reno)", v)
			}
			s.TCPCongestionControl = v
			return nil
		},
	},
	"net.ipv4.tcp_available_congestion_control": {
		get: func(*Settings) string { return "reno cubic" },
		set: func(*Settings, string) error {
			return fmt.Errorf("tcp: tcp_available_congestion_control is read-only")
		},
	},
	"net.ipv4.tcp_slow_start_after_idle": {
		get: func(s *Settings) string {
			if s.withDefaults().TCPSlowStartAfterIdle < 0 {
				return "0"
			}
			return "1"
		},
		set: func(s *Settings, v string) error {
			switch v {
			case "0":
				s.TCPSlowStartAfterIdle = -1
			case "1":
				s.TCPSlowStartAfterIdle = 1
			default:
				return fmt.Errorf("tcp: tcp_slow_start_after_idle must be 0 or 1, not %q", v)
			}
			return nil
		},
	},
	"net.ipv4.tcp_rmem": tripleKnob(func(s *Settings) *[3]int { return &s.TCPRmem }),
	"net.ipv4.tcp_wmem": tripleKnob(func(s *Settings) *[3]int { return &s.TCPWmem }),
	"net.ipv4.ip_local_port_range": {
		get: func(s *Settings) string {
			r := s.withDefaults().IPLocalPortRange
			return fmt.Sprintf("%d %d", r[0], r[1])
		},
		set: func(s *Settings, v string) error {
			f := strings.Fields(v)
			if len(f) != 2 {
				return fmt.Errorf("tcp: ip_local_port_range wants two ports, got %q", v)
			}
			lo, err1 := strconv.ParseUint(f[0], 10, 16)
			hi, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 != nil || err2 != nil || lo == 0 || lo > hi {
				return fmt.Errorf("tcp: bad ip_local_port_range %q", v)
			}
			s.IPLocalPortRange = [2]uint16{uint16(lo), uint16(hi)}
			return nil
		},
	},
}

// tripleKnob is a "min default max" sysctl (tcp_rmem, tcp_wmem).
func tripleKnob(field func(*Settings) *[3]int) struct {
	get func(s *Settings) string
	set func(s *Settings, v string) error
} {
	return struct {
		get func(s *Settings) string
		set func(s *Settings, v string) error
	}{
		get: func(s *Settings) string {
			d := s.withDefaults()
			m := *field(&d)
			return fmt.Sprintf("%d\t%d\t%d", m[0], m[1], m[2])
		},
		set: func(s *Settings, v string) error {
			f := strings.Fields(v)
			var m [3]int
			if len(f) != 3 {
				return fmt.Errorf("tcp: want three sizes (min default max), got %q", v)
			}
			for i := range f {
				n, err := strconv.Atoi(f[i])
				if err != nil || n <= 0 {
					return fmt.Errorf("tcp: bad size %q", f[i])
				}
				m[i] = n
			}
			if m[0] > m[1] || m[1] > m[2] {
				return fmt.Errorf("tcp: sizes %q must be min <= default <= max", v)
			}
			*field(s) = m
			return nil
		},
	}
}

func intKnob(field func(*Settings) *int, minimum int) struct {
	get func(s *Settings) string
	set func(s *Settings, v string) error
} {
	return struct {
		get func(s *Settings) string
		set func(s *Settings, v string) error
	}{
		get: func(s *Settings) string { d := s.withDefaults(); return strconv.Itoa(*field(&d)) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < minimum {
				return fmt.Errorf("tcp: bad value %q", v)
			}
			*field(s) = n
			return nil
		},
	}
}

// secondsKnob is a sysctl in whole seconds (Linux's proc_dointvec_jiffies), at least 1.
func secondsKnob(field func(*Settings) *time.Duration) struct {
	get func(s *Settings) string
	set func(s *Settings, v string) error
} {
	return struct {
		get func(s *Settings) string
		set func(s *Settings, v string) error
	}{
		get: func(s *Settings) string { d := s.withDefaults(); return strconv.Itoa(int(*field(&d) / time.Second)) },
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > math.MaxInt32/1000 {
				return fmt.Errorf("tcp: bad value %q (whole seconds)", v)
			}
			*field(s) = time.Duration(n) * time.Second
			return nil
		},
	}
}

// boolKnob is a 0/1 sysctl; inverted for the fields that record "off" (their zero value
// must mean Linux's default, on).
func boolKnob(field func(*Settings) *bool, inverted bool) struct {
	get func(s *Settings) string
	set func(s *Settings, v string) error
} {
	return struct {
		get func(s *Settings) string
		set func(s *Settings, v string) error
	}{
		get: func(s *Settings) string {
			if *field(s) != inverted {
				return "1"
			}
			return "0"
		},
		set: func(s *Settings, v string) error {
			// Linux reads these as integers and treats any non-zero value as on.
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("tcp: want a number, not %q", v)
			}
			*field(s) = (n != 0) != inverted
			return nil
		},
	}
}

// Set sets a knob by its sysctl name ("net.ipv4.tcp_syncookies", or the short
// "tcp_syncookies"), with the value written as for sysctl -w.
func (s *Settings) Set(name, value string) error {
	k, ok := sysctls[sysctlName(name)]
	if !ok {
		return fmt.Errorf("tcp: unknown sysctl %q", name)
	}
	if err := k.set(s, strings.TrimSpace(value)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Get returns a knob's value by its sysctl name, defaults applied.
func (s *Settings) Get(name string) (string, error) {
	k, ok := sysctls[sysctlName(name)]
	if !ok {
		return "", fmt.Errorf("tcp: unknown sysctl %q", name)
	}
	return k.get(s), nil
}

// Sysctls returns the names Set and Get accept.
func Sysctls() []string {
	out := make([]string, 0, len(sysctls))
	for k := range sysctls {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sysctlName(name string) string {
	name = strings.ReplaceAll(name, "/", ".")
	if _, ok := sysctls[name]; ok {
		return name
	}
	for _, prefix := range []string{"net.ipv4.", "net.core."} {
		if _, ok := sysctls[prefix+name]; ok {
			return prefix + name
		}
	}
	return name
}

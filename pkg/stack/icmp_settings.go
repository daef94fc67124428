package stack

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ICMPSettings are the ICMP knobs (ICMPv4's, and ICMPv6's rate limit), named after the
// sysctls they mirror and defaulting to Linux's values. The zero value of a field means
// Linux's default; fields whose meaningful Linux value is 0 take -1 for it.
type ICMPSettings struct {
	// EchoIgnoreAll (net.ipv4.icmp_echo_ignore_all, 0) makes the stack answer no echo request.
	EchoIgnoreAll bool
	// EchoIgnoreBroadcasts (icmp_echo_ignore_broadcasts, 1): echo and timestamp requests to a
	// broadcast or multicast address are dropped (IcmpInErrors). -1 answers them.
	EchoIgnoreBroadcasts int
	// Ratelimit (icmp_ratelimit, 1000 ms) is the token bucket interval per destination for
	// the types in Ratemask; -1 for none.
	Ratelimit time.Duration
	// Ratemask (icmp_ratemask, 0x1818: destination unreachable, source quench, time
	// exceeded, parameter problem) has bit N set for each type N that is rate-limited; -1
	// for none. Fragmentation needed is never limited.
	Ratemask int64
	// MsgsPerSec (icmp_msgs_per_sec, 1000) and MsgsBurst (icmp_msgs_burst, 50) are the
	// stack-wide token bucket for the types in Ratemask; -1 for 0.
	MsgsPerSec int
	MsgsBurst  int
	// Ratelimit6 (net.ipv6.icmp.ratelimit, 1000 ms) is ICMPv6's token interval per
	// destination for the error types (all but packet too big; net.ipv6.icmp.ratemask
	// 0-1,3-127), shortened for wider routes as Linux does; -1 for none. ICMPv6 errors
	// share the stack-wide bucket of MsgsPerSec and MsgsBurst with ICMPv4.
	Ratelimit6 time.Duration
}

// icmpConf is ICMPSettings with the defaults applied, as the packet path reads it.
type icmpConf struct {
	echoIgnoreAll, echoIgnoreBcast bool
	ratelimit, ratelimit6          int64 // ns
	ratemask                       uint32
	perSec, burst                  int32
}

func pick(v, def int64) int64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

func (c ICMPSettings) conf() icmpConf {
	return icmpConf{
		echoIgnoreAll:   c.EchoIgnoreAll,
		echoIgnoreBcast: c.EchoIgnoreBroadcasts >= 0,
		ratelimit:       pick(int64(c.Ratelimit), int64(time.Second)),
		ratelimit6:      pick(int64(c.Ratelimit6), int64(time.Second)),
		ratemask:        uint32(pick(c.Ratemask, 0x1818)),
		perSec:          int32(pick(int64(c.MsgsPerSec), 1000)),
		burst:           int32(pick(int64(c.MsgsBurst), 50)),
	}
}

func (c *ICMPSettings) validate() error {
	if c.Ratemask > 0xffffffff || c.Ratemask < -1 {
		return fmt.Errorf("stack: icmp_ratemask %#x out of range", c.Ratemask)
	}
	if c.MsgsPerSec < -1 || c.MsgsBurst < -1 || c.EchoIgnoreBroadcasts < -1 || c.EchoIgnoreBroadcasts > 1 || c.Ratelimit < -1 || c.Ratelimit6 < -1 {
		return fmt.Errorf("stack: bad ICMP settings %+v", *c)
	}
	return nil
}

var icmpSysctls = map[string]icmpKnob{
	"net.ipv4.icmp_echo_ignore_all": {
		get: func(c icmpConf) string { return boolStr(c.echoIgnoreAll) },
		set: func(c *ICMPSettings, n int64) { c.EchoIgnoreAll = n != 0 },
		max: 1,
	},
	"net.ipv4.icmp_echo_ignore_broadcasts": {
		get: func(c icmpConf) string { return boolStr(c.echoIgnoreBcast) },
		set: func(c *ICMPSettings, n int64) { c.EchoIgnoreBroadcasts = zeroAsMinus(n) },
		max: 1,
	},
	"net.ipv4.icmp_ratelimit": msKnob(func(c icmpConf) int64 { return c.ratelimit },
		func(c *ICMPSettings) *time.Duration { return &c.Ratelimit }),
	"net.ipv6.icmp.ratelimit": msKnob(func(c icmpConf) int64 { return c.ratelimit6 },
		func(c *ICMPSettings) *time.Duration { return &c.Ratelimit6 }),
	"net.ipv4.icmp_ratemask": {
		get: func(c icmpConf) string { return strconv.FormatUint(uint64(c.ratemask), 10) },
		set: func(c *ICMPSettings, n int64) { c.Ratemask = int64(zeroAsMinus(n)) },
		max: 0xffffffff,
	},
	"net.ipv4.icmp_msgs_per_sec": {
		get: func(c icmpConf) string { return strconv.Itoa(int(c.perSec)) },
		set: func(c *ICMPSettings, n int64) { c.MsgsPerSec = zeroAsMinus(n) },
		max: 1<<31 - 1,
	},
	"net.ipv4.icmp_msgs_burst": {
		get: func(c icmpConf) string { return strconv.Itoa(int(c.burst)) },
		set: func(c *ICMPSettings, n int64) { c.MsgsBurst = zeroAsMinus(n) },
		max: 1<<31 - 1,
	},
}

// icmpKnob is one sysctl of icmpSysctls.
type icmpKnob = struct {
	get func(c icmpConf) string
	set func(c *ICMPSettings, n int64)
	max int64
}

// msKnob is a sysctl in milliseconds over a duration field (0 stored as -1: none).
func msKnob(get func(icmpConf) int64, field func(*ICMPSettings) *time.Duration) icmpKnob {
	return icmpKnob{
		get: func(c icmpConf) string { return strconv.FormatInt(get(c)/int64(time.Millisecond), 10) },
		set: func(c *ICMPSettings, n int64) {
			d := field(c)
			*d = time.Duration(n) * time.Millisecond
			if n == 0 {
				*d = -1
			}
		},
		max: 1 << 31 / 1000,
	}
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func zeroAsMinus(n int64) int {
	if n == 0 {
		return -1
	}
	return int(n)
}

// Set sets a knob by its sysctl name (c.Set("net.ipv4.icmp_echo_ignore_all", "1")).
func (c *ICMPSettings) Set(name, value string) error {
	k, ok := icmpSysctls[name]
	if !ok {
		return fmt.Errorf("stack: unknown ICMP sysctl %q (known: %s)", name, strings.Join(ICMPSysctlNames(), ", "))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(value), 0, 64)
	if err != nil || n < 0 || n > k.max {
		return fmt.Errorf("stack: bad value %q for %s", value, name)
	}
	k.set(c, n)
	return nil
}

// Get returns a knob's value by its sysctl name, as Linux prints it.
func (c ICMPSettings) Get(name string) (string, error) {
	k, ok := icmpSysctls[name]
	if !ok {
		return "", fmt.Errorf("stack: unknown ICMP sysctl %q", name)
	}
	return k.get(c.conf()), nil
}

// ICMPSysctlNames lists the sysctl names ICMPSettings.Set takes.
func ICMPSysctlNames() []string {
	var out []string
	for n := range icmpSysctls {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

package fuzz

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/pkg/tcp"
)

// apiMode is the face of the connection the application in FuzzConnection uses.
type apiMode uint8

const (
	apiHandle apiMode = iota // tcp.Handle: TryRead, TryWrite, TryAcceptHandle
	apiConn                  // *tcp.Conn: the net.Conn wrapper, blocking calls where they cannot block
	apiEvents                // tcp.Events: the listener or the dial hands the connection to callbacks
)

// connConfig is the setup of one FuzzConnection input: who opens, which kernel profile and
// settings the stack runs, how its listener is set up, which API the application uses and
// how the peer behaves. It travels packed in the target's first argument.
type connConfig struct {
	active          bool // the stack dials the peer; otherwise the peer connects to a listener
	linux312        bool // tcp.ProfileLinux312 instead of tcp.ProfileLinux
	tsOff           bool // tcp_timestamps=0
	sackOff         bool // tcp_sack=0
	wsOff           bool // tcp_window_scaling=0
	syncookies      int  // tcp_syncookies: 0, 1 or 2
	fill            bool // other clients' SYNs fill the SYN queue before the script starts
	backlog         int  // listen()'s backlog: 0, 1, 2 or 8
	abortOnOverflow bool // tcp_abort_on_overflow=1
	deferAccept     bool // TCP_DEFER_ACCEPT of 1 s on the listener
	api             apiMode
	reflex          bool // the peer answers like an RFC 9293 TCP (see peer.reflexTo)
	smallBuf        bool // 4 KiB receive and send buffers instead of 16 KiB
	silentEnd       bool // at the end the peer falls silent instead of finishing the close
	tinyPool        bool // the stack's packet pool holds at most 8 packets
	twoShards       bool // two shards instead of one
	smallSynBacklog bool // tcp_max_syn_backlog=8
	shortRetries    bool // tcp_synack_retries=2, tcp_syn_retries=2, tcp_retries2=3, tcp_fin_timeout=5
	noLinear        bool // tcp_syn_linear_timeouts=0
	maxSeg          bool // TCP_MAXSEG 536 on the listener
	twBuckets1      bool // tcp_max_tw_buckets=1: a second TIME-WAIT overflows
}

var (
	cookieCodes  = [4]int{1, 0, 2, 1} // bits 5-6 -> tcp_syncookies (the default, 1, is code 0)
	backlogCodes = [4]int{1, 0, 2, 8} // bits 8-9 -> backlog
)

// decodeConnConfig unpacks v; every value is a valid configuration.
func decodeConnConfig(v uint32) connConfig {
	bit := func(i uint) bool { return v>>i&1 != 0 }
	api := apiMode(v >> 12 & 3)
	if api > apiEvents {
		api = apiHandle
	}
	return connConfig{
		active:          bit(0),
		linux312:        bit(1),
		tsOff:           bit(2),
		sackOff:         bit(3),
		wsOff:           bit(4),
		syncookies:      cookieCodes[v>>5&3],
		fill:            bit(7),
		backlog:         backlogCodes[v>>8&3],
		abortOnOverflow: bit(10),
		deferAccept:     bit(11),
		api:             api,
		reflex:          bit(14),
		smallBuf:        bit(15),
		silentEnd:       bit(16),
		tinyPool:        bit(17),
		twoShards:       bit(18),
		smallSynBacklog: bit(19),
		shortRetries:    bit(20),
		noLinear:        bit(21),
		maxSeg:          bit(22),
		twBuckets1:      bit(23),
	}
}

// encode packs c so that decodeConnConfig(c.encode()) == c (seeds are written this way).
func (c connConfig) encode() uint32 {
	var v uint32
	set := func(i uint, b bool) {
		if b {
			v |= 1 << i
		}
	}
	set(0, c.active)
	set(1, c.linux312)
	set(2, c.tsOff)
	set(3, c.sackOff)
	set(4, c.wsOff)
	for code, n := range cookieCodes[:3] {
		if n == c.syncookies {
			v |= uint32(code) << 5
			break
		}
	}
	set(7, c.fill)
	for code, n := range backlogCodes[:4] {
		if n == c.backlog {
			v |= uint32(code) << 8
			break
		}
	}
	set(10, c.abortOnOverflow)
	set(11, c.deferAccept)
	v |= uint32(c.api) << 12
	set(14, c.reflex)
	set(15, c.smallBuf)
	set(16, c.silentEnd)
	set(17, c.tinyPool)
	set(18, c.twoShards)
	set(19, c.smallSynBacklog)
	set(20, c.shortRetries)
	set(21, c.noLinear)
	set(22, c.maxSeg)
	set(23, c.twBuckets1)
	return v
}

// bufSize is the receive and send buffer of every connection.
func (c connConfig) bufSize() int {
	if c.smallBuf {
		return 4 << 10
	}
	return 16 << 10
}

// settings builds the stack's TCP settings by their sysctl names, as an operator would, and
// checks that each one reads back as it was written.
func (c connConfig) settings(t testing.TB) tcp.Settings {
	var s tcp.Settings
	name := "linux"
	if c.linux312 {
		name = "linux-3.12"
	}
	p, err := tcp.ParseProfile(name)
	require.NoError(t, err)
	require.Equal(t, name, p.String())
	s.Profile = p
	set := func(k, v string) {
		require.NoError(t, s.Set(k, v), k)
		got, err := s.Get(k)
		require.NoError(t, err, k)
		require.Equal(t, v, got, k)
	}
	onOff := func(off bool) string {
		if off {
			return "0"
		}
		return "1"
	}
	set("net.core.somaxconn", "64") // a small accept ring keeps each input cheap
	set("net.ipv4.tcp_syncookies", strconv.Itoa(c.syncookies))
	set("tcp_timestamps", onOff(c.tsOff))
	set("tcp_sack", onOff(c.sackOff))
	set("net/ipv4/tcp_window_scaling", onOff(c.wsOff))
	set("tcp_abort_on_overflow", onOff(!c.abortOnOverflow))
	if c.smallSynBacklog {
		set("tcp_max_syn_backlog", "8")
	}
	if c.shortRetries {
		set("tcp_synack_retries", "2")
		set("tcp_syn_retries", "2")
		set("tcp_retries2", "3")
		set("tcp_fin_timeout", "5")
	}
	if c.twBuckets1 {
		set("tcp_max_tw_buckets", "1")
	}
	if c.noLinear {
		set("tcp_syn_linear_timeouts", "0")
	}
	s.RcvBuf, s.SndBuf = c.bufSize(), c.bufSize()
	require.NoError(t, s.Validate())
	return s
}

// listenOptions are the listener's socket options.
func (c connConfig) listenOptions(ev tcp.Events) tcp.ListenOptions {
	o := tcp.ListenOptions{Backlog: c.backlog, Events: ev}
	if c.deferAccept {
		o.DeferAccept = time.Second
	}
	if c.maxSeg {
		o.MaxSeg = 536
	}
	return o
}

// TestConnConfigRoundTrip checks that every configuration a seed writes reads back the same.
func TestConnConfigRoundTrip(t *testing.T) {
	for v := uint32(0); v < 1<<24; v += 0x1357 {
		c := decodeConnConfig(v)
		require.Equal(t, c, decodeConnConfig(c.encode()), "%#x", v)
	}
	c := connConfig{active: true, syncookies: 2, backlog: 8, api: apiEvents, maxSeg: true}
	require.Equal(t, c, decodeConnConfig(c.encode()))
}

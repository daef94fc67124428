//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/netns"
	"github.com/shardstack/shardstack/internal/seedexp"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// seedView is what ss shows of one experiment: each side's sockets on the experiment's
// port, as sorted "STATE recvQ" strings (the listener first, with its accept queue).
type seedView struct {
	client []string // Linux's client sockets, read with ss in the client namespace
	server []string // the server's sockets: ss for a Linux listener, the socket table for shardstack
}

func (v seedView) String() string { return fmt.Sprintf("clients %v, server %v", v.client, v.server) }

func sortedStates(rows []string) []string {
	sort.Strings(rows)
	return rows
}

// clientView is the client sockets of ns whose peer is server, as seedView has them.
func clientView(ns *netns.NS, server string) ([]string, error) {
	socks, err := ns.ListSockets(seedexp.Port)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range socks {
		if s.Peer.String() == server {
			out = append(out, fmt.Sprintf("%s %d", s.State, s.RecvQ))
		}
	}
	return sortedStates(out), nil
}

// addrFamily is one address family's addresses in the real-link tests: shardstack's, a
// Linux listener's beside it and the Linux clients', all in one subnet of bits.
type addrFamily struct {
	name          string
	ss, lsrv, cli string
	bits          int
}

var (
	family4 = addrFamily{name: "ipv4", ss: ssAddr, lsrv: lsrvAddr, cli: linuxAddr, bits: 24}
	family6 = addrFamily{name: "ipv6", ss: ssAddr6, lsrv: lsrvAddr6, cli: linuxAddr6, bits: 64}
)

// prefix is addr with the family's subnet ("198.18.0.3/24").
func (f addrFamily) prefix(addr string) string { return fmt.Sprintf("%s/%d", addr, f.bits) }

// seedEndpoint is addr with the experiment's port, as ss and Dial write it ("[fd00:5eed::1]:20000").
func seedEndpoint(addr string) string { return net.JoinHostPort(addr, strconv.Itoa(seedexp.Port)) }

// seedNet is where one experiment runs: the Linux clients' namespace and its dialer, the
// Linux listener's namespace (its address configured), and open, which opens shardstack
// on its link with cfg and makes it reachable from the clients.
type seedNet struct {
	cli    *netns.NS
	dialer *nsDialer
	lsrv   *netns.NS
	open   func(t *testing.T, cfg stack.Config) *stack.Stack
}

// seedOnLink is the experiments' net on the veth newNet makes (newLinkNet, newLinkNet6,
// newDPDKNet), shardstack on the link spec() names: the Linux listener is the srv
// namespace's kernel, on the same veth as shardstack (sharing its MAC), so that the
// clients reach both over the same wire. For IPv6 the srv kernel's vs gets IPv6 back
// without the link-local address it would derive from that MAC (addr_gen_mode 1):
// shardstack has that address, and only one host may answer for it.
func seedOnLink(newNet func(*testing.T) *linkNet, spec func() string) func(*testing.T, addrFamily) *seedNet {
	return func(t *testing.T, fam addrFamily) *seedNet {
		t.Helper()
		n := newNet(t)
		if mustAddr(fam.lsrv).Is6() {
			n.srv.Sysctl(t, "net.ipv6.conf.vs.addr_gen_mode", "1")
			n.srv.Sysctl(t, "net.ipv6.conf.vs.disable_ipv6", "0")
		}
		n.srv.AddAddr(t, "vs", fam.prefix(fam.lsrv))
		return &seedNet{cli: n.cli, dialer: n.dialer, lsrv: n.srv, open: func(t *testing.T, cfg stack.Config) *stack.Stack {
			return n.openStack(t, cfg, spec())
		}}
	}
}

// TestLink_SeedBacklog runs the seed's three listen(2) experiments (backlog 1; never
// accept; never accept with tcp_abort_on_overflow; accept and reply) with real Linux
// clients, through the one experiment driver (internal/seedexp), against shardstack on
// AF_PACKET and, in the same run, against a Linux listener with the same backlog beside it.
// The states are read from the kernel with ss. Under the linux profile shardstack's
// states are Linux's; under linux-3.12 they are the seed's: the third client ESTABLISHED
// on its side and SYN-RECV on the server's.
func TestLink_SeedBacklog(t *testing.T) {
	runSeedBacklog(t, family4, seedOnLink(newLinkNet, func() string { return "afpacket:vs" }))
}

// TestLink_IPv6SeedBacklog: TestLink_SeedBacklog over IPv6 on AF_PACKET, the clients
// resolving both servers by neighbour discovery.
func TestLink_IPv6SeedBacklog(t *testing.T) {
	runSeedBacklog(t, family6, seedOnLink(newLinkNet6, func() string { return "afpacket:vs" }))
}

// seedCase is one of the experiments: a profile, tcp_abort_on_overflow for both servers,
// and whether the servers accept.
type seedCase struct {
	name    string
	profile tcp.Profile
	abort   bool
	accept  bool
}

// seedRun is one case under way on a net of its own: shardstack's listener and the Linux
// listener, then what the clients saw of each and what ss showed when the run ended.
type seedRun struct {
	seedCase
	n            *seedNet
	st           *stack.Stack
	sl           *tcp.Listener
	ll           net.Listener
	shard, linux seedView
	ssCli, lxCli []seedexp.ClientResult // the clients of shardstack and of Linux when ss looked
	err          error
}

// runSeedBacklog is TestLink_SeedBacklog on the nets newNet makes for fam's addresses
// (each case has its own). The six cases run together, each on its own net, and so do
// the tests that call this (t.Parallel): a case mostly waits for 9.5 s of the seed's
// timeline, and as subtests under t.Parallel they would run only -parallel (GOMAXPROCS)
// at a time. The nets are made one after the other on the test's goroutine; each case's
// clocks start only when all are ready, and its views are read as its own run ends.
func runSeedBacklog(t *testing.T, fam addrFamily, newNet func(*testing.T, addrFamily) *seedNet) {
	netns.Require(t)
	t.Parallel()
	cases := []seedCase{
		{"linux/no-accept", tcp.ProfileLinux, false, false},
		{"linux/abort-on-overflow", tcp.ProfileLinux, true, false},
		{"linux/accept", tcp.ProfileLinux, false, true},
		{"linux-3.12/no-accept", tcp.ProfileLinux312, false, false},
		{"linux-3.12/abort-on-overflow", tcp.ProfileLinux312, true, false},
		{"linux-3.12/accept", tcp.ProfileLinux312, false, true},
	}
	runs := make([]*seedRun, len(cases))
	for i, tc := range cases {
		r := &seedRun{seedCase: tc, n: newNet(t, fam)}
		if tc.abort {
			// Linux's tcp_abort_on_overflow is an IPv4 name for both families' listeners.
			r.n.lsrv.Sysctl(t, "net.ipv4.tcp_abort_on_overflow", "1")
		}
		r.st = r.n.open(t, stack.Config{Addr: mustPrefix(fam.prefix(fam.ss)),
			TCP: tcp.Settings{Profile: tc.profile, TCPAbortOnOverflow: tc.abort}})
		var err error
		r.sl, err = r.st.ListenTCP(mustAddrPort(seedEndpoint(fam.ss)), tcp.ListenOptions{Backlog: 1})
		require.NoError(t, err, tc.name)
		r.ll = listenBacklog(t, r.n.lsrv, fam.lsrv, seedexp.Port, 1)
		runs[i] = r
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(fam)
		}()
	}
	wg.Wait()
	for _, r := range runs {
		t.Run(r.name, r.check)
	}
}

// run runs the case's two experiments at once and reads their views when they end.
func (r *seedRun) run(fam addrFamily) {
	cfg := seedexp.Config{Starts: []time.Duration{0, time.Second, 2 * time.Second}, Accept: r.accept}
	dialTo := func(addr string) seedexp.NetDialer {
		return seedexp.NetDialer{DialContext: func(ctx context.Context) (net.Conn, error) {
			return r.n.dialer.Dial(ctx, seedEndpoint(addr))
		}}
	}
	ds := seedexp.New(cfg, seedexp.NewRealClock(seedexp.DefaultPoll), dialTo(fam.ss), seedexp.TCPListener{L: r.sl})
	dl := seedexp.New(cfg, seedexp.NewRealClock(seedexp.DefaultPoll), dialTo(fam.lsrv), seedexp.NewNetListener(r.ll))
	defer ds.Close()
	defer dl.Close()
	// Both experiments at once: 9.5 s covers the SYN-ACK retransmissions at 1, 3 and 7 s
	// of the seed's table and three of the clients' send periods, and ends between two
	// sends (every 2 s from starts 0, 1 and 2 s), so that no message is on its way to an
	// accepting server when ss looks.
	const end = 9500 * time.Millisecond
	var wg sync.WaitGroup
	for _, d := range []*seedexp.Driver{ds, dl} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.RunUntil(end)
		}()
	}
	wg.Wait()

	var ssRows []string
	for _, s := range r.st.Sockets() {
		if s.Local.Port() == seedexp.Port {
			ssRows = append(ssRows, fmt.Sprintf("%s %d", s.State, s.RecvQ))
		}
	}
	socks, err := r.n.lsrv.ListSockets(seedexp.Port)
	if err != nil {
		r.err = err
		return
	}
	var linuxRows []string
	for _, s := range socks {
		if s.Local.Addr().String() == fam.lsrv {
			linuxRows = append(linuxRows, fmt.Sprintf("%s %d", s.State, s.RecvQ))
		}
	}
	r.shard.server, r.linux.server = sortedStates(ssRows), sortedStates(linuxRows)
	if r.shard.client, r.err = clientView(r.n.cli, seedEndpoint(fam.ss)); r.err != nil {
		return
	}
	if r.linux.client, r.err = clientView(r.n.cli, seedEndpoint(fam.lsrv)); r.err != nil {
		return
	}
	r.ssCli, r.lxCli = ds.Clients(), dl.Clients()
}

// check asserts what the case's run saw: Linux's states under the linux profile, the
// seed's under linux-3.12.
func (r *seedRun) check(t *testing.T) {
	require.NoError(t, r.err)
	shard, linux := r.shard, r.linux
	outcomes := func(clients []seedexp.ClientResult) []string {
		var out []string
		for _, c := range clients {
			out = append(out, c.Outcome)
		}
		return out
	}
	t.Logf("shardstack: %v; outcomes %v", shard, outcomes(r.ssCli))
	t.Logf("linux:      %v; outcomes %v", linux, outcomes(r.lxCli))

	if r.profile == tcp.ProfileLinux {
		require.Equal(t, linux, shard, "the linux profile gives the clients what Linux gives them")
		require.Equal(t, outcomes(r.lxCli), outcomes(r.ssCli))
	}
	switch {
	case r.accept:
		// Every client connects and gets its replies, with either server.
		for _, c := range r.ssCli {
			require.Equal(t, seedexp.OutcomeConnected, c.Outcome, "client %d", c.ID)
			require.GreaterOrEqual(t, c.Replies, 2, "client %d", c.ID)
		}
	case r.profile == tcp.ProfileLinux:
		// The third client's SYNs are dropped while the accept queue is full: it stays
		// in SYN-SENT, whatever tcp_abort_on_overflow says.
		require.Equal(t, []string{"ESTAB 0", "ESTAB 0", "SYN-SENT 0"}, shard.client)
		require.Equal(t, []string{"ESTAB 13", "ESTAB 13", "LISTEN 2"}, shard.server)
	case r.abort:
		// linux-3.12 with tcp_abort_on_overflow: the third client's handshake completes
		// and its final ACK is answered with a reset.
		require.Equal(t, seedexp.OutcomeReset, r.ssCli[2].Outcome)
		require.Equal(t, []string{"ESTAB 0", "ESTAB 0"}, shard.client)
	default:
		// The seed's table: the third client is ESTABLISHED on its side and SYN-RECV on
		// the server's, whose SYN-ACKs keep coming.
		require.Equal(t, []string{"ESTAB 0", "ESTAB 0", "ESTAB 0"}, shard.client)
		require.Equal(t, []string{"ESTAB 13", "ESTAB 13", "LISTEN 2", "SYN-RECV 0"}, shard.server)
	}
}

//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"sort"
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

func clientView(t *testing.T, ns *netns.NS, server string) []string {
	var out []string
	for _, s := range ns.Sockets(t, seedexp.Port) {
		if s.Peer.String() == server {
			out = append(out, fmt.Sprintf("%s %d", s.State, s.RecvQ))
		}
	}
	return sortedStates(out)
}

// TestLink_SeedBacklog runs the seed's three listen(2) experiments (backlog 1; never
// accept; never accept with tcp_abort_on_overflow; accept and reply) with real Linux
// clients, through the one experiment driver (internal/seedexp), against shardstack on
// AF_PACKET and, in the same run, against a Linux listener with the same backlog beside it.
// The states are read from the kernel with ss. Under the linux profile shardstack's
// states are Linux's; under linux-3.12 they are the seed's: the third client ESTABLISHED
// on its side and SYN-RECV on the server's.
func TestLink_SeedBacklog(t *testing.T) {
	runSeedBacklog(t, newLinkNet, func() string { return "afpacket:vs" })
}

// runSeedBacklog is TestLink_SeedBacklog on the links newNet and spec make (each case
// opens its own).
func runSeedBacklog(t *testing.T, newNet func(*testing.T) *linkNet, spec func() string) {
	netns.Require(t)
	cases := []struct {
		name    string
		profile tcp.Profile
		abort   bool
		accept  bool
	}{
		{"linux/no-accept", tcp.ProfileLinux, false, false},
		{"linux/abort-on-overflow", tcp.ProfileLinux, true, false},
		{"linux/accept", tcp.ProfileLinux, false, true},
		{"linux-3.12/no-accept", tcp.ProfileLinux312, false, false},
		{"linux-3.12/abort-on-overflow", tcp.ProfileLinux312, true, false},
		{"linux-3.12/accept", tcp.ProfileLinux312, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := newNet(t)
			n.srv.AddAddr(t, "vs", lsrvAddr+"/24")
			if tc.abort {
				n.srv.Sysctl(t, "net.ipv4.tcp_abort_on_overflow", "1")
			}
			st := n.openStack(t, stack.Config{Addr: mustPrefix(ssAddr + "/24"),
				TCP: tcp.Settings{Profile: tc.profile, TCPAbortOnOverflow: tc.abort}}, spec())
			sl, err := st.ListenTCP(mustAddrPort(fmt.Sprintf("%s:%d", ssAddr, seedexp.Port)), tcp.ListenOptions{Backlog: 1})
			require.NoError(t, err)
			ll := listenBacklog(t, n.srv, lsrvAddr, seedexp.Port, 1)

			cfg := seedexp.Config{Starts: []time.Duration{0, time.Second, 2 * time.Second}, Accept: tc.accept}
			dialTo := func(addr string) seedexp.NetDialer {
				return seedexp.NetDialer{DialContext: func(ctx context.Context) (net.Conn, error) {
					return n.dialer.Dial(ctx, fmt.Sprintf("%s:%d", addr, seedexp.Port))
				}}
			}
			ds := seedexp.New(cfg, seedexp.NewRealClock(seedexp.DefaultPoll), dialTo(ssAddr), seedexp.TCPListener{L: sl})
			dl := seedexp.New(cfg, seedexp.NewRealClock(seedexp.DefaultPoll), dialTo(lsrvAddr), seedexp.NewNetListener(ll))
			defer ds.Close()
			defer dl.Close()
			// Both experiments at once: 9.5 s covers the SYN-ACK retransmissions at 1, 3
			// and 7 s of the seed's table and three of the clients' send periods, and
			// ends between two sends (every 2 s from starts 0, 1 and 2 s), so that no
			// message is on its way to an accepting server when ss looks.
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
			for _, r := range st.Sockets() {
				if r.Local.Port() == seedexp.Port {
					ssRows = append(ssRows, fmt.Sprintf("%s %d", r.State, r.RecvQ))
				}
			}
			var linuxRows []string
			for _, s := range n.srv.Sockets(t, seedexp.Port) {
				if s.Local.Addr().String() == lsrvAddr {
					linuxRows = append(linuxRows, fmt.Sprintf("%s %d", s.State, s.RecvQ))
				}
			}
			shard := seedView{clientView(t, n.cli, fmt.Sprintf("%s:%d", ssAddr, seedexp.Port)), sortedStates(ssRows)}
			linux := seedView{clientView(t, n.cli, fmt.Sprintf("%s:%d", lsrvAddr, seedexp.Port)), sortedStates(linuxRows)}
			outcomes := func(d *seedexp.Driver) []string {
				var out []string
				for _, c := range d.Clients() {
					out = append(out, c.Outcome)
				}
				return out
			}
			t.Logf("shardstack: %v; outcomes %v", shard, outcomes(ds))
			t.Logf("linux:      %v; outcomes %v", linux, outcomes(dl))

			if tc.profile == tcp.ProfileLinux {
				require.Equal(t, linux, shard, "the linux profile gives the clients what Linux gives them")
				require.Equal(t, outcomes(dl), outcomes(ds))
			}
			switch {
			case tc.accept:
				// Every client connects and gets its replies, with either server.
				for _, c := range ds.Clients() {
					require.Equal(t, seedexp.OutcomeConnected, c.Outcome, "client %d", c.ID)
					require.GreaterOrEqual(t, c.Replies, 2, "client %d", c.ID)
				}
			case tc.profile == tcp.ProfileLinux:
				// The third client's SYNs are dropped while the accept queue is full: it
				// stays in SYN-SENT, whatever tcp_abort_on_overflow says.
				require.Equal(t, []string{"ESTAB 0", "ESTAB 0", "SYN-SENT 0"}, shard.client)
				require.Equal(t, []string{"ESTAB 13", "ESTAB 13", "LISTEN 2"}, shard.server)
			case tc.abort:
				// linux-3.12 with tcp_abort_on_overflow: the third client's handshake
				// completes and its final ACK is answered with a reset.
				require.Equal(t, seedexp.OutcomeReset, ds.Clients()[2].Outcome)
				require.Equal(t, []string{"ESTAB 0", "ESTAB 0"}, shard.client)
			default:
				// The seed's table: the third client is ESTABLISHED on its side and
				// SYN-RECV on the server's, whose SYN-ACKs keep coming.
				require.Equal(t, []string{"ESTAB 0", "ESTAB 0", "ESTAB 0"}, shard.client)
				require.Equal(t, []string{"ESTAB 13", "ESTAB 13", "LISTEN 2", "SYN-RECV 0"}, shard.server)
			}
		})
	}
}

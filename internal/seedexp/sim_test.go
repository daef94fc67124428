package seedexp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shardstack/shardstack/internal/lab"
	"github.com/shardstack/shardstack/internal/seedexp"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/tcp"
)

const s = time.Second

var seedAP = netip.AddrPortFrom(simnet.ServerAddr.Addr(), seedexp.Port)

// seedNet builds two stacks the way the backlog lab and the scenarios do: static
// neighbours, one shard, the profile on both sides, and a listener on the seed's port.
func seedNet(t *testing.T, server tcp.Settings, client tcp.Settings, backlog int, rtt time.Duration) (*simnet.Net, *tcp.Listener) {
	t.Helper()
	n, err := simnet.New(simnet.Options{ServerTCP: server, ClientTCP: client, StaticARP: true})
	require.NoError(t, err)
	t.Cleanup(n.Close)
	l, err := n.Server.ListenTCP(seedAP, tcp.ListenOptions{Backlog: backlog})
	require.NoError(t, err)
	if rtt > 0 {
		delay := func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: rtt / 2} }
		n.PortS.SetHook(delay)
		n.PortC.SetHook(delay)
	}
	return n, l
}

func starts(k int, every time.Duration) []time.Duration {
	out := make([]time.Duration, k)
	for i := range out {
		out[i] = time.Duration(i) * every
	}
	return out
}

// The lab and the scenarios run one experiment: the lab's run, with its snapshots, puts on
// the wire exactly what OnStacks does on equal stacks run to the end in one go (as the
// scenario helper calls it), and the same run twice gives the same frames.
func TestLabAndScenariosRunOneExperiment(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  lab.BacklogConfig
	}{
		{"3.12 never accepts", lab.BacklogConfig{Profile: tcp.ProfileLinux312, Backlog: 1, Clients: 4}},
		{"linux never accepts", lab.BacklogConfig{Profile: tcp.ProfileLinux, Backlog: 1, Clients: 4}},
		{"accepts and replies", lab.BacklogConfig{Profile: tcp.ProfileLinux, Backlog: 1, Clients: 3, Accept: true}},
		{"3.12 abort on overflow", lab.BacklogConfig{Profile: tcp.ProfileLinux312, Backlog: 1, Clients: 3, AbortOnOverflow: true}},
		{"a burst over a round trip", lab.BacklogConfig{Profile: tcp.ProfileLinux, Backlog: 2, Clients: 6, AbortOnOverflow: true,
			ClientInterval: 7 * time.Millisecond, RTT: 10 * time.Millisecond, Syncookies: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := lab.RunBacklog(tc.cfg)
			require.NoError(t, err)
			defer first.Net.Close()
			second, err := lab.RunBacklog(tc.cfg)
			require.NoError(t, err)
			defer second.Net.Close()
			labFrames := first.Net.Frames()
			require.NotEmpty(t, labFrames)
			require.Equal(t, labFrames, second.Net.Frames(), "the same run twice")

			interval := tc.cfg.ClientInterval
			if interval == 0 {
				interval = s
			}
			srv := tcp.Settings{Profile: tc.cfg.Profile, TCPAbortOnOverflow: tc.cfg.AbortOnOverflow, TCPSyncookies: tc.cfg.Syncookies}
			if srv.TCPSyncookies == 0 {
				srv.TCPSyncookies = tcp.SyncookiesOff
			}
			n, l := seedNet(t, srv, tcp.Settings{Profile: tc.cfg.Profile}, tc.cfg.Backlog, tc.cfg.RTT)
			d := seedexp.OnStacks(seedexp.Config{Starts: starts(tc.cfg.Clients, interval), Accept: tc.cfg.Accept}, n, n.Client, l)
			d.RunUntil(20 * s)
			require.Equal(t, labFrames, n.Frames(), "the lab's run is the driver's")
			require.Equal(t, first.Driver.Clients(), d.Clients())
			require.Equal(t, first.Driver.Server(), d.Server())
		})
	}
}

// connect() failures on shardstack stacks, each seen at the instant it happens.
func TestOnStacks_ConnectFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		st := tcp.Settings{Profile: tcp.ProfileLinux}
		n, l := seedNet(t, st, st, 1, 0)
		require.NoError(t, l.Close())
		d := seedexp.OnStacks(seedexp.Config{Starts: []time.Duration{s}}, n, n.Client, l)
		d.RunUntil(s)
		r := d.Clients()[0]
		require.Equal(t, seedexp.OutcomeRefused, r.Outcome)
		require.ErrorIs(t, r.Err, tcp.ErrConnectionRefused)
		require.NotZero(t, r.LocalPort)
	})
	t.Run("reset", func(t *testing.T) {
		st := tcp.Settings{Profile: tcp.ProfileLinux312}
		srv := st
		srv.TCPAbortOnOverflow = true
		n, l := seedNet(t, srv, st, 1, 0)
		d := seedexp.OnStacks(seedexp.Config{Starts: starts(3, s)}, n, n.Client, l)
		d.RunUntil(2 * s)
		rs := d.Clients()
		require.Equal(t, seedexp.OutcomeConnected, rs[0].Outcome)
		require.Equal(t, seedexp.OutcomeConnected, rs[1].Outcome)
		require.Equal(t, seedexp.OutcomeReset, rs[2].Outcome)
		require.False(t, rs[2].Connected, "the RST came in the same instant as the SYN-ACK")
	})
	t.Run("timed out", func(t *testing.T) {
		st := tcp.Settings{Profile: tcp.ProfileLinux}
		n, l := seedNet(t, st, st, 1, 0)
		n.PortC.SetHook(func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Drop} })
		d := seedexp.OnStacks(seedexp.Config{Starts: []time.Duration{0}}, n, n.Client, l)
		d.RunUntil(131*s - 1)
		require.Equal(t, seedexp.OutcomeConnecting, d.Clients()[0].Outcome)
		d.RunUntil(131 * s)
		r := d.Clients()[0]
		require.Equal(t, seedexp.OutcomeTimedOut, r.Outcome, "spec §8 / S12: ETIMEDOUT at 131 s")
		require.ErrorIs(t, r.Err, tcp.ErrTimedOut)
	})
}

// The adapters keep Nagle's algorithm on, as the seed's C programs have it, where a
// tcp.Conn starts with it off: two small writes while the first is unacknowledged leave
// as one segment, then the second after the ACK.
func TestTCPAdapters_NagleOn(t *testing.T) {
	for _, tc := range []struct {
		name    string
		adapter bool
		want    int // data segments before the first ACK can come back
	}{
		{"adapters", true, 1},
		{"tcp.Conn as dialled and accepted", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tcp.Settings{Profile: tcp.ProfileLinux}
			n, l := seedNet(t, st, st, 8, 20*time.Millisecond)
			var cli, srv seedexp.Conn
			if tc.adapter {
				c, err := seedexp.TCPDialer{Stack: n.Client, Target: seedAP}.Dial()
				require.NoError(t, err)
				n.RunUntil(int64(s), c.Connected)
				require.True(t, c.Connected())
				cli = c
			} else {
				c, err := n.Client.DialAsync(seedAP, tcp.DialOptions{})
				require.NoError(t, err)
				n.RunUntil(int64(s), func() bool { return c.State() == tcp.StateEstablished })
				cli = &seedexp.TCPConn{Conn: c}
			}
			n.RunFor(50 * time.Millisecond) // the final ACK reaches the server
			for srv == nil {
				var err error
				if tc.adapter {
					srv, err = seedexp.TCPListener{L: l}.TryAccept()
				} else {
					var c *tcp.Conn
					if c, err = l.TryAccept(); err == nil {
						srv = &seedexp.TCPConn{Conn: c}
					}
				}
				require.NoError(t, err)
			}
			for _, side := range []struct {
				name     string
				c        seedexp.Conn
				toServer bool
			}{{"client", cli, true}, {"server", srv, false}} {
				n.ResetFrames()
				for _, b := range []string{"a", "b"} {
					k, err := side.c.TryWrite([]byte(b))
					require.NoError(t, err)
					require.Equal(t, 1, k)
					n.Settle()
				}
				require.Equal(t, tc.want, dataFrames(n, side.toServer), side.name)
				n.RunFor(100 * time.Millisecond)
				require.Equal(t, 2, dataFrames(n, side.toServer), "%s: the held byte goes after the ACK", side.name)
			}
		})
	}
}

func dataFrames(n *simnet.Net, toServer bool) int {
	k := 0
	for _, f := range n.TCPFrames(&toServer) {
		if th, _ := simnet.TCPOf(f.Data); len(th.Payload()) > 0 {
			k++
		}
	}
	return k
}

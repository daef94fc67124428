// Package lab reproduces experiments on two in-process stacks and a virtual clock. The
// backlog lab is the seed documents' three listen(2) experiments (seed 002 §1.4-1.6): a
// server listens with a small backlog and either never calls accept or accepts and, 1 s
// after each message, replies with it and a timestamp; clients connect one after another,
// and each sends 13 bytes 2 s after connecting and 2 s after each reply; both sides are
// inspected the way netstat/ss would show them. The clients and the server are
// internal/seedexp's driver, the same one the acceptance scenarios S1-S3 run.
package lab

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/shardstack/shardstack/internal/seedexp"
	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// ServerPort is the port the seed's server listens on.
const ServerPort = 20000

// Message is what the seed's client sends (13 bytes).
var Message = []byte(seedexp.Message)

// BacklogConfig is one run of the backlog lab.
type BacklogConfig struct {
	Profile         tcp.Profile
	Backlog         int
	Clients         int
	Accept          bool          // the server accepts and replies (seed §1.5)
	AbortOnOverflow bool          // tcp_abort_on_overflow = 1 (seed §1.6)
	Syncookies      int           // tcp_syncookies: 0, 1 or 2
	ClientInterval  time.Duration // time between client starts (default 1 s)
	Duration        time.Duration // virtual time to run (default 20 s)
	SendEvery       time.Duration // the clients' sleep before each send (default 2 s)
	// Server holds further server knobs (set by sysctl name); Profile, AbortOnOverflow and
	// Syncookies above take precedence.
	Server tcp.Settings
	// RTT is the link's round-trip time, half of it each way (default 0: instant).
	RTT time.Duration
}

// Row is one socket as ss -tan prints it.
type Row struct {
	State string `json:"state"`
	RecvQ int    `json:"recv_q"`
	SendQ int    `json:"send_q"`
	Local string `json:"local"`
	Peer  string `json:"peer"`
}

// Step is a snapshot of both stacks.
type Step struct {
	Time     float64                     `json:"time"`
	Note     string                      `json:"note"`
	Server   []Row                       `json:"server"`
	Client   []Row                       `json:"client"`
	Counters map[string]map[string]int64 `json:"counters"` // "server"/"client" -> counters that changed since the previous step
	Clients  []ClientResult              `json:"clients"`
}

// ClientResult is what one client saw.
type ClientResult struct {
	ID        int    `json:"id"`
	Outcome   string `json:"outcome"`
	State     string `json:"state"`
	LocalPort uint16 `json:"local_port"`
	Sent      int    `json:"sent"`
	Received  int    `json:"received"`
}

// BacklogResult is the whole run.
type BacklogResult struct {
	Config  BacklogConfig  `json:"config"`
	Steps   []Step         `json:"steps"`
	Clients []ClientResult `json:"clients"`
	Net     *simnet.Net    `json:"-"`
	// Driver is the experiment's driver, with the clients' and the server's full records.
	Driver *seedexp.Driver `json:"-"`
}

// Outcomes a client reports, worded as the seed's client prints them.
const (
	OutcomeConnected  = seedexp.OutcomeConnected
	OutcomeConnecting = seedexp.OutcomeConnecting
	OutcomeReset      = seedexp.OutcomeReset
	OutcomeTimedOut   = seedexp.OutcomeTimedOut
	OutcomeRefused    = seedexp.OutcomeRefused
)

func (c *BacklogConfig) fill() error {
	if c.Clients <= 0 {
		c.Clients = 3
	}
	if c.ClientInterval <= 0 {
		c.ClientInterval = time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 20 * time.Second
	}
	if c.SendEvery <= 0 {
		c.SendEvery = 2 * time.Second
	}
	if c.Syncookies < 0 || c.Syncookies > 2 {
		return fmt.Errorf("lab: tcp_syncookies must be 0, 1 or 2, not %d", c.Syncookies)
	}
	return nil
}

// RunBacklog runs the experiment.
func RunBacklog(cfg BacklogConfig) (*BacklogResult, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	cookies := cfg.Syncookies
	if cookies == 0 {
		cookies = tcp.SyncookiesOff
	}
	st := cfg.Server
	st.Profile, st.TCPAbortOnOverflow, st.TCPSyncookies = cfg.Profile, cfg.AbortOnOverflow, cookies
	// The seed ran its programs over loopback: no ARP, so neighbours are static here too.
	n, err := simnet.New(simnet.Options{ServerTCP: st, ClientTCP: tcp.Settings{Profile: cfg.Profile}, StaticARP: true})
	if err != nil {
		return nil, err
	}
	l, err := n.Server.ListenTCP(netip.AddrPortFrom(simnet.ServerAddr.Addr(), ServerPort), tcp.ListenOptions{Backlog: cfg.Backlog})
	if err != nil {
		n.Close()
		return nil, err
	}
	if cfg.RTT > 0 {
		oneWay := cfg.RTT / 2
		delay := func(int, []byte) dpdkshim.Action { return dpdkshim.Action{Kind: dpdkshim.Delay, Delay: oneWay} }
		n.PortS.SetHook(delay)
		n.PortC.SetHook(delay)
	}
	starts := make([]time.Duration, cfg.Clients)
	for i := range starts {
		starts[i] = time.Duration(i) * cfg.ClientInterval
	}
	d := seedexp.OnStacks(seedexp.Config{Starts: starts, Accept: cfg.Accept, SendEvery: cfg.SendEvery}, n, n.Client, l)
	res := &BacklogResult{Config: cfg, Net: n, Driver: d}
	// Snapshots: just before each next client starts, and at the end.
	var stepTimes []time.Duration
	prev := time.Duration(-1)
	for _, start := range starts[1:] {
		at := max(start-min(time.Millisecond, cfg.ClientInterval/2), prev+1)
		stepTimes = append(stepTimes, at)
		prev = at
	}
	stepTimes = append(stepTimes, max(cfg.Duration, prev+1))
	var prevS, prevC stats.Counters
	for i, at := range stepTimes {
		d.RunUntil(at)
		step := snapshot(n, d, at, &prevS, &prevC)
		step.Note = "end"
		if i < len(stepTimes)-1 {
			step.Note = fmt.Sprintf("before client %d starts", i+2)
		}
		res.Steps = append(res.Steps, step)
	}
	res.Clients = results(d)
	return res, nil
}

// results is the driver's record of each client with its connection's state.
func results(d *seedexp.Driver) []ClientResult {
	rs := d.Clients()
	out := make([]ClientResult, len(rs))
	for i, r := range rs {
		st := tcp.StateClosed
		if c, ok := d.Conn(i).(*seedexp.TCPConn); ok {
			st = c.Conn.State()
		}
		out[i] = ClientResult{ID: r.ID, Outcome: r.Outcome, State: st.String(), LocalPort: r.LocalPort, Sent: r.Sent, Received: r.Received}
	}
	return out
}

func snapshot(n *simnet.Net, d *seedexp.Driver, at time.Duration, prevS, prevC *stats.Counters) Step {
	s, c := n.Server.Counters(), n.Client.Counters()
	step := Step{
		Time:     at.Seconds(),
		Server:   rows(n.Server.Sockets()),
		Client:   rows(n.Client.Sockets()),
		Counters: map[string]map[string]int64{"server": changed(prevS, &s), "client": changed(prevC, &c)},
		Clients:  results(d),
	}
	*prevS, *prevC = s, c
	return step
}

func changed(prev, now *stats.Counters) map[string]int64 {
	m := map[string]int64{}
	now.Each(func(id stats.ID, name string, v uint64) {
		if d := int64(v - prev[id]); d != 0 {
			m[name] = d
		}
	})
	return m
}

func rows(rs []tcp.SocketRow) []Row {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].State == tcp.StateListen || rs[j].State == tcp.StateListen {
			return rs[i].State == tcp.StateListen && rs[j].State != tcp.StateListen
		}
		return rs[i].Peer.Port() < rs[j].Peer.Port() || (rs[i].Peer.Port() == rs[j].Peer.Port() && rs[i].Local.Port() < rs[j].Local.Port())
	})
	out := make([]Row, len(rs))
	for i, r := range rs {
		peer := r.Peer.String()
		if r.State == tcp.StateListen {
			peer = "0.0.0.0:*"
		}
		out[i] = Row{State: r.State.String(), RecvQ: r.RecvQ, SendQ: r.SendQ, Local: r.Local.String(), Peer: peer}
	}
	return out
}

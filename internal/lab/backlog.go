// Package lab reproduces experiments on two in-process stacks and a virtual clock. The
// backlog lab is the seed documents' three listen(2) experiments (seed 002 §1.4-1.6): a
// server listens with a small backlog and either never calls accept or accepts and echoes;
// clients connect one after another and send 13 bytes every 2 s; both sides are inspected
// the way netstat/ss would show them.
package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"github.com/shardstack/shardstack/internal/simnet"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// ServerPort is the port the seed's server listens on.
const ServerPort = 20000

// Message is what the seed's client sends every 2 s (13 bytes).
var Message = []byte("hello, world!")

// BacklogConfig is one run of the backlog lab.
type BacklogConfig struct {
	Profile         tcp.Profile
	Backlog         int
	Clients         int
	Accept          bool          // the server accepts and echoes (seed §1.5)
	AbortOnOverflow bool          // tcp_abort_on_overflow = 1 (seed §1.6)
	Syncookies      int           // tcp_syncookies: 0, 1 or 2
	ClientInterval  time.Duration // time between client starts (default 1 s)
	Duration        time.Duration // virtual time to run (default 20 s)
	SendEvery       time.Duration // the clients' send period (default 2 s)
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
}

// Outcomes a client reports, worded as the seed's client prints them.
const (
	OutcomeConnected  = "connected"
	OutcomeConnecting = "still connecting"
	OutcomeReset      = "CONNECT FAILED: connection reset by peer"
	OutcomeTimedOut   = "CONNECT FAILED: timed out"
	OutcomeRefused    = "CONNECT FAILED: connection refused"
)

type client struct {
	id        int
	start     int64
	conn      *tcp.Conn
	connected bool
	nextSend  int64
	sent      int
	received  int
	err       error
	port      uint16
}

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
	res := &BacklogResult{Config: cfg, Net: n}
	target := netip.AddrPortFrom(simnet.ServerAddr.Addr(), ServerPort)
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		clients[i] = &client{id: i + 1, start: int64(i) * int64(cfg.ClientInterval)}
	}
	var accepted []*tcp.Conn
	buf := make([]byte, 4096)
	end := int64(cfg.Duration)
	// Snapshots: just before each next client starts, and at the end.
	var stepTimes []int64
	prevStep := int64(-1)
	for i := 1; i < cfg.Clients; i++ {
		at := max(clients[i].start-min(int64(time.Millisecond), int64(cfg.ClientInterval)/2), prevStep+1)
		stepTimes = append(stepTimes, at)
		prevStep = at
	}
	stepTimes = append(stepTimes, max(end, prevStep+1))
	var prevS, prevC stats.Counters
	// The applications act on a 10 ms tick, and at the exact times clients start, send and
	// snapshots are taken; between those times the stacks run event by event.
	const tick = int64(10 * time.Millisecond)
	for now := int64(0); now <= end; {
		n.RunUntil(now, nil)
		for _, c := range clients {
			if c.conn == nil && now >= c.start {
				c.conn, err = n.Client.DialAsync(target, tcp.DialOptions{})
				if err != nil {
					return nil, err
				}
				c.conn.SetNoDelay(false) // the seed's C client keeps Nagle on, as Linux's default
			}
			if c.conn == nil || c.err != nil {
				continue
			}
			switch st := c.conn.State(); {
			case st == tcp.StateSynSent || st == tcp.StateSynRecv:
			case st == tcp.StateClosed:
				c.err = c.conn.Err()
				if c.err == nil {
					c.err = tcp.ErrConnectionReset
				}
			default:
				if !c.connected {
					c.connected = true
					c.nextSend = now + int64(cfg.SendEvery)
					c.port = c.conn.LocalAddrPort().Port()
				}
				if now >= c.nextSend {
					if k, err := c.conn.TryWrite(Message); err == nil {
						c.sent += k
					} else if !errors.Is(err, tcp.ErrWouldBlock) {
						c.err = err
					}
					c.nextSend += int64(cfg.SendEvery)
				}
				for {
					k, err := c.conn.TryRead(buf)
					c.received += k
					if err != nil {
						break
					}
				}
			}
		}
		if cfg.Accept {
			for {
				s, err := l.TryAccept()
				if err != nil {
					break
				}
				s.SetNoDelay(false)
				accepted = append(accepted, s)
			}
			for _, s := range accepted {
				// The seed's server echoes what it receives.
				if k, err := s.TryRead(buf); err == nil && k > 0 {
					s.TryWrite(buf[:k])
				}
			}
		}
		n.Settle()
		if len(stepTimes) > 0 && now == stepTimes[0] {
			step := snapshot(n, clients, now, &prevS, &prevC)
			if len(stepTimes) > 1 {
				step.Note = fmt.Sprintf("before client %d starts", len(res.Steps)+2)
			} else {
				step.Note = "end"
			}
			res.Steps = append(res.Steps, step)
			stepTimes = stepTimes[1:]
		}
		// The next moment something is due.
		next := (now/tick + 1) * tick
		for _, c := range clients {
			if c.conn == nil && c.start > now {
				next = min(next, c.start)
			}
			if c.connected && c.err == nil && c.nextSend > now {
				next = min(next, c.nextSend)
			}
		}
		if len(stepTimes) > 0 {
			next = min(next, stepTimes[0])
		}
		if now == end {
			break
		}
		now = min(next, end)
	}
	res.Clients = results(clients)
	return res, nil
}

func results(clients []*client) []ClientResult {
	out := make([]ClientResult, len(clients))
	for i, c := range clients {
		r := ClientResult{ID: c.id, Sent: c.sent, Received: c.received, LocalPort: c.port, State: tcp.StateClosed.String()}
		if c.conn != nil {
			r.State = c.conn.State().String()
			if r.LocalPort == 0 {
				r.LocalPort = c.conn.LocalAddrPort().Port()
			}
		}
		switch {
		case c.conn == nil:
			r.Outcome = "not started"
		case errors.Is(c.err, tcp.ErrConnectionReset):
			r.Outcome = OutcomeReset
		case errors.Is(c.err, tcp.ErrTimedOut):
			r.Outcome = OutcomeTimedOut
		case errors.Is(c.err, tcp.ErrConnectionRefused):
			r.Outcome = OutcomeRefused
		case c.err != nil:
			r.Outcome = "CONNECT FAILED: " + c.err.Error()
		case c.connected:
			r.Outcome = OutcomeConnected
		default:
			r.Outcome = OutcomeConnecting
		}
		out[i] = r
	}
	return out
}

func snapshot(n *simnet.Net, clients []*client, at int64, prevS, prevC *stats.Counters) Step {
	s, c := n.Server.Counters(), n.Client.Counters()
	step := Step{
		Time:     float64(at) / 1e9,
		Server:   rows(n.Server.Sockets()),
		Client:   rows(n.Client.Sockets()),
		Counters: map[string]map[string]int64{"server": changed(prevS, &s), "client": changed(prevC, &c)},
		Clients:  results(clients),
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

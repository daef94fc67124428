package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shardstack/shardstack/internal/lab"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// labs is the table of `shardstack lab`.
var labs = []command{
	{"backlog", "the seed documents' listen(2) backlog experiments, under either kernel profile", runLabBacklog},
}

func runLab(e *env, args []string) error {
	return dispatch(e, "shardstack lab", labs, args)
}

const backlogAbout = `Replays the seed documents' listen(2) experiments on a virtual clock: a server that
listens with --backlog and never accepts (or, with --accept, accepts and echoes), and
--clients clients started --client-interval apart. Prints ss -tan-style tables of both
stacks before each client starts and at the end, each client's outcome and the counters
that moved.`

func runLabBacklog(e *env, args []string) error {
	out := e.stdout
	fs := newFlagSet("shardstack lab backlog", backlogAbout)
	profile := fs.String("profile", "linux", "kernel behaviour: linux or linux-3.12")
	backlog := fs.Int("backlog", 1, "listen backlog")
	clients := fs.Int("clients", 3, "clients, started one after another")
	accept := fs.Bool("accept", false, "the server accepts and replies (otherwise it never calls accept)")
	abort := fs.Bool("abort-on-overflow", false, "tcp_abort_on_overflow = 1")
	cookies := fs.Int("syncookies", 1, "tcp_syncookies: 0, 1 or 2")
	interval := secondsFlag(fs.FlagSet, "client-interval", time.Second, "time between client starts (`seconds`, or a duration such as 500ms)")
	seconds := secondsFlag(fs.FlagSet, "seconds", 20*time.Second, "virtual time to run (`seconds`, or a duration such as 2m)")
	rtt := secondsFlag(fs.FlagSet, "rtt", 0, "round-trip time of the link between the stacks, half each way (`seconds`, or a duration such as 20ms)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var extra tcp.Settings
	sysctlVar(fs.FlagSet, &extra, "sysctl", "set a server knob by its Linux sysctl `name=value`, e.g. net.ipv4.tcp_synack_retries=3 (repeatable)")
	if err := fs.parse(args); err != nil {
		return err
	}
	p, err := tcp.ParseProfile(*profile)
	if err != nil {
		return fs.errorf("--profile: %v", err)
	}
	// Two knobs also have flags of their own: a flag given on the command line wins, else a
	// --sysctl, else the flag's default.
	if !fs.given("syncookies") {
		if v, err := extra.Get("tcp_syncookies"); err == nil {
			*cookies, _ = strconv.Atoi(v)
		}
	}
	switch {
	case *cookies < 0 || *cookies > 2:
		return fs.errorf("--syncookies must be 0, 1 or 2, not %d", *cookies)
	case *clients < 1:
		return fs.errorf("--clients must be at least 1, not %d", *clients)
	case *interval <= 0:
		return fs.errorf("--client-interval must be more than 0")
	case *seconds <= 0:
		return fs.errorf("--seconds must be more than 0")
	}
	if !fs.given("abort-on-overflow") {
		if v, err := extra.Get("tcp_abort_on_overflow"); err == nil {
			*abort = v == "1"
		}
	}
	res, err := lab.RunBacklog(lab.BacklogConfig{
		Profile: p, Backlog: *backlog, Clients: *clients, Accept: *accept, AbortOnOverflow: *abort,
		Syncookies: *cookies, ClientInterval: *interval, Duration: *seconds, Server: extra, RTT: *rtt,
	})
	if err != nil {
		return err
	}
	defer res.Net.Close()
	if *asJSON {
		type jsonConfig struct {
			Profile         string  `json:"profile"`
			Backlog         int     `json:"backlog"`
			Clients         int     `json:"clients"`
			Accept          bool    `json:"accept"`
			AbortOnOverflow bool    `json:"abort_on_overflow"`
			Syncookies      int     `json:"syncookies"`
			ClientInterval  float64 `json:"client_interval"`
			Seconds         float64 `json:"seconds"`
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Config  jsonConfig         `json:"config"`
			Steps   []lab.Step         `json:"steps"`
			Clients []lab.ClientResult `json:"clients"`
		}{jsonConfig{p.String(), *backlog, *clients, *accept, *abort, *cookies, interval.Seconds(), seconds.Seconds()}, res.Steps, res.Clients})
	}
	mode := "never accepts"
	if *accept {
		mode = "accepts and replies"
	}
	fmt.Fprintf(out, "shardstack lab backlog: profile %s, listen backlog %d, %d clients every %v, server %s,\n", p, *backlog, *clients, *interval, mode)
	fmt.Fprintf(out, "tcp_abort_on_overflow=%d tcp_syncookies=%d; each client sends %d bytes 2 s after connecting and after each reply. Virtual time, %v.\n", b2i(*abort), *cookies, len(lab.Message), *seconds)
	for _, s := range res.Steps {
		fmt.Fprintf(out, "\n=== t=%ss (%s)\n", stepTime(s.Time), s.Note)
		table(out, "server 198.18.0.1", s.Server)
		table(out, "client 198.18.0.2", s.Client)
		fmt.Fprintln(out, "clients:")
		for _, c := range s.Clients {
			if c.Outcome == "not started" {
				continue
			}
			fmt.Fprintf(out, "  client %d (port %d): %s\n", c.ID, c.LocalPort, c.Outcome)
		}
		fmt.Fprintf(out, "counters changed: server %s\n                  client %s\n", counterLine(s.Counters["server"]), counterLine(s.Counters["client"]))
	}
	fmt.Fprintln(out, "\noutcome:")
	for _, c := range res.Clients {
		fmt.Fprintf(out, "  client %d: %-42s (client side %s)\n", c.ID, c.Outcome, c.State)
	}
	return nil
}

// stepTime prints a time with milliseconds, or with microseconds when it needs them.
func stepTime(t float64) string {
	us := int64(t*1e6 + 0.5)
	if us%1000 == 0 {
		return strconv.FormatFloat(float64(us)/1e6, 'f', 3, 64)
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 6, 64)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func table(out io.Writer, title string, rows []lab.Row) {
	fmt.Fprintf(out, "%s\n  %-11s %6s %6s  %-22s %-22s\n", title, "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port")
	for _, r := range rows {
		fmt.Fprintf(out, "  %-11s %6d %6d  %-22s %-22s\n", r.State, r.RecvQ, r.SendQ, r.Local, r.Peer)
	}
}

func counterLine(m map[string]int64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if strings.HasPrefix(k, "rx_") || strings.HasPrefix(k, "tx_") {
			continue // link counters only restate the segment counts
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %+d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shardstack/shardstack/internal/lab"
	"github.com/shardstack/shardstack/pkg/tcp"
)

func runLab(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "backlog" {
		return fmt.Errorf("usage: shardstack lab backlog [flags] (the only lab so far)")
	}
	fs := flag.NewFlagSet("lab backlog", flag.ContinueOnError)
	profile := fs.String("profile", "linux", "kernel behaviour: linux or linux-3.12")
	backlog := fs.Int("backlog", 1, "listen backlog")
	clients := fs.Int("clients", 3, "clients, started one after another")
	accept := fs.Bool("accept", false, "the server accepts and replies (otherwise it never calls accept)")
	abort := fs.Bool("abort-on-overflow", false, "tcp_abort_on_overflow = 1")
	cookies := fs.Int("syncookies", 1, "tcp_syncookies: 0, 1 or 2")
	interval := secondsFlag(fs, "client-interval", time.Second, "time between client starts (seconds, or a duration such as 500ms)")
	seconds := secondsFlag(fs, "seconds", 20*time.Second, "virtual time to run (seconds, or a duration such as 2m)")
	rtt := secondsFlag(fs, "rtt", 0, "round-trip time of the link between the stacks, half each way (seconds, or a duration such as 20ms)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	var sysctls []string
	fs.Func("sysctl", "set a server knob by its Linux name, e.g. --sysctl net.ipv4.tcp_synack_retries=3 (repeatable)", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want name=value")
		}
		sysctls = append(sysctls, v)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	p, err := tcp.ParseProfile(*profile)
	if err != nil {
		return err
	}
	var extra tcp.Settings
	for _, kv := range sysctls {
		name, value, _ := strings.Cut(kv, "=")
		if err := extra.Set(name, value); err != nil {
			return err
		}
	}
	// Two knobs also have flags of their own: a flag given on the command line wins, else a
	// --sysctl, else the flag's default.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["syncookies"] {
		if v, err := extra.Get("tcp_syncookies"); err == nil {
			*cookies, _ = strconv.Atoi(v)
		}
	}
	if !given["abort-on-overflow"] {
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

// secondsFlag is a duration flag that also takes a bare number of seconds, so that
// --seconds 10 and --seconds 10s mean the same.
func secondsFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Func(name, fmt.Sprintf("%s (default %v)", usage, def), func(v string) error {
		parsed, err := parseSeconds(v)
		if err != nil {
			return err
		}
		d = parsed
		return nil
	})
	return &d
}

func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if !(f >= 0 && f <= (1<<63-1)/float64(time.Second)) { // also NaN
			return 0, fmt.Errorf("%q seconds is out of range", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want seconds (10, 0.5) or a duration (10s, 500ms)")
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

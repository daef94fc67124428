package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/shardstack/shardstack/internal/link"
	"github.com/shardstack/shardstack/internal/loadgen"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
)

const loadAbout = `The demo's client over a real link: --concurrency clients each open a connection to
--target, send one HTTP/1.0 request, read the reply up to the server's FIN and close, as
fast as they can, until --conns connections or --duration. Any "HTTP/1.x 200" reply counts
(serve --app hello or --app http answer so). Prints connections per second, handshake and
whole-connection latency, failures, the client stack's counters, each link queue's packets
per syscall and each shard's hand-offs; exits 1 if any connection failed, --json or not.
--link kernel runs the same clients on Linux's own stack (a goroutine each, Go's net).`

// loadConfig is a parsed load command line.
type loadConfig struct {
	link        string
	addrs       []netip.Prefix
	gateway     netip.Addr // IPv4's
	gateway6    netip.Addr
	target      netip.AddrPort
	concurrency int
	conns       int
	duration    time.Duration
	api         string
	shards      int
	pin         bool
	busyPoll    bool
	coalesce    time.Duration
	cpuprof     string
	json        bool
}

func parseLoad(args []string) (*loadConfig, error) {
	fs := newFlagSet("shardstack load", loadAbout)
	c := &loadConfig{}
	fs.StringVar(&c.link, "link", "", "the link: afpacket:IFACE[,options], tun:NAME[,options], dpdk:EAL-ARGS [-- options] (built with -tags dpdk) or kernel (required)")
	var addrs, gw multiFlag
	fs.Var(&addrs, "addr", "the client stack's address and subnet, IPv4 or IPv6, e.g. 198.18.0.2/24 or fd00::2/64 (repeatable)")
	fs.Var(&gw, "gateway", "next hop for destinations off the subnets (repeatable: one IPv4, one IPv6)")
	target := fs.String("target", "", "the server's `ADDR:PORT`, e.g. 198.18.0.1:8080 or [fd00::1]:8080 (required)")
	fs.IntVar(&c.concurrency, "concurrency", 256, "clients connecting at once")
	fs.IntVar(&c.conns, "conns", 0, "stop after this many connections (0: only --duration)")
	dur := secondsFlag(fs.FlagSet, "duration", 10*time.Second, "stop after this long (0: only --conns)")
	fs.StringVar(&c.api, "api", loadgen.APIEvents, "how the clients are written: events (callbacks inside the shards) or goroutines")
	fs.IntVar(&c.shards, "shards", runtime.GOMAXPROCS(0), "shards, one link queue each")
	fs.BoolVar(&c.pin, "pin", false, "lock each shard to its own OS thread and CPU")
	fs.BoolVar(&c.busyPoll, "busy-poll", false, "idle shards spin instead of sleeping in epoll")
	coalesce := secondsFlag(fs.FlagSet, "rx-coalesce", 0, "after a receive burst less than half full, wait this long before the next (like ethtool rx-usecs; e.g. 50us)")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write a CPU profile to this `file`")
	fs.BoolVar(&c.json, "json", false, "print the summary as one JSON object")
	if err := fs.parse(args); err != nil {
		return nil, err
	}
	c.duration, c.coalesce = *dur, *coalesce
	if c.link == "" {
		return nil, fs.errorf("--link is required (afpacket:IFACE, tun:NAME or kernel)")
	}
	var err error
	if c.addrs, err = parseAddrs(fs, addrs); err != nil {
		return nil, err
	}
	if c.link != link.Kernel && len(c.addrs) == 0 {
		return nil, fs.errorf("--addr is required with --link %s", c.link)
	}
	if c.gateway, c.gateway6, err = parseGateways(fs, gw); err != nil {
		return nil, err
	}
	t, err := netip.ParseAddrPort(*target)
	switch {
	case *target == "":
		return nil, fs.errorf("--target is required")
	case err != nil || t.Addr().IsUnspecified() || t.Addr().IsMulticast() || t.Port() == 0:
		return nil, fs.errorf("--target %q: want ADDR:PORT, e.g. 198.18.0.1:8080 or [fd00::1]:8080", *target)
	case c.concurrency < 1:
		return nil, fs.errorf("--concurrency must be at least 1, not %d", c.concurrency)
	case c.conns < 0:
		return nil, fs.errorf("--conns must not be negative, not %d", c.conns)
	case c.conns == 0 && c.duration == 0:
		return nil, fs.errorf("--conns 0 and --duration 0 would never stop")
	case c.shards < 1:
		return nil, fs.errorf("--shards must be at least 1, not %d", c.shards)
	case c.api != loadgen.APIEvents && c.api != loadgen.APIGoroutines:
		return nil, fs.errorf("--api must be %s or %s, not %q", loadgen.APIEvents, loadgen.APIGoroutines, c.api)
	case c.link == link.Kernel && (c.pin || c.busyPoll):
		return nil, fs.errorf("--pin and --busy-poll are shardstack's; --link kernel takes neither")
	}
	c.target = t
	return c, nil
}

// loadSummary is what load prints.
type loadSummary struct {
	*loadgen.Result
	Link     string            `json:"link"`
	Target   string            `json:"target"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	Shards   []shardSummary    `json:"shards,omitempty"`
	Queues   []link.QueueStats `json:"link_queues,omitempty"`
}

func runLoad(e *env, args []string) error {
	c, err := parseLoad(args)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(c.cpuprof)
	if err != nil {
		return err
	}
	defer stopProfile()
	var bar *progressBar
	if !c.json && isTerminal(e.stdout) {
		bar = newProgressBar(e.stdout, int64(c.conns), c.duration, "conns")
	}
	cfg := loadgen.Config{Target: c.target, Conns: c.conns, Concurrency: c.concurrency, Duration: c.duration, API: c.api}
	if bar != nil {
		cfg.Progress = bar.update
	}
	sum := &loadSummary{Link: c.link, Target: c.target.String()}
	if c.link == link.Kernel {
		var d net.Dialer
		sum.Result, err = loadgen.RunNet(func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, tcpNetwork(c.target.Addr()), c.target.String())
		}, cfg)
	} else {
		err = loadStack(c, cfg, sum)
	}
	bar.clear()
	if err != nil {
		return err
	}
	if err := writeLoadSummary(e.stdout, sum, c.json); err != nil {
		return err
	}
	if sum.Failures > 0 {
		return fmt.Errorf("load: %d of %d connections failed (first: %s)", sum.Failures, sum.Failures+sum.Conns, sum.FirstError)
	}
	return nil
}

func loadStack(c *loadConfig, cfg loadgen.Config, sum *loadSummary) error {
	lk, err := link.Open(c.link, link.Params{Queues: c.shards})
	if err != nil {
		return err
	}
	defer lk.Port.Close()
	sum.Link = lk.Port.Name()
	st, err := stack.New(stack.Config{
		Port: lk.Port, Addr: c.addrs[0], MoreAddrs: c.addrs[1:], Gateway: c.gateway, Gateway6: c.gateway6,
		Shards: c.shards, BusyPoll: c.busyPoll, Pin: c.pin, RxCoalesce: c.coalesce, Name: "load",
	})
	if err != nil {
		return err
	}
	defer st.Close()
	// One connection first, so that ARP has resolved before the clock starts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if conn, err := st.DialTCP(ctx, c.target); err == nil {
		_ = loadgen.Exchange(conn, make([]byte, loadgen.MaxReply))
		conn.Close()
	}
	cancel()
	sum.Result, err = loadgen.Run(st, cfg)
	if err != nil {
		return err
	}
	ctr := st.Counters()
	sum.Counters = ctr.NonZero()
	per := st.ShardCounters()
	for i, ld := range st.ShardLoads() {
		ss := shardSummary{RxPackets: per[i][stats.RxPackets], Handoffs: ld.Handoffs, BusySeconds: ld.Busy.Seconds()}
		if ss.RxPackets > 0 {
			ss.HandoffFraction = float64(ld.Handoffs) / float64(ss.RxPackets)
		}
		sum.Shards = append(sum.Shards, ss)
	}
	if lk.Stats != nil {
		sum.Queues = lk.Stats()
	}
	return nil
}

func writeLoadSummary(w io.Writer, sum *loadSummary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	r := sum.Result
	fmt.Fprintf(w, "shardstack load: %d clients (%s) on %s to %s\n\n", r.Concurrency, r.API, sum.Link, sum.Target)
	fmt.Fprintf(w, "  %-28s %d\n", "connections completed", r.Conns)
	fmt.Fprintf(w, "  %-28s %.1f s\n", "elapsed", r.Seconds)
	fmt.Fprintf(w, "  %-28s %.0f\n", "connections per second", r.ConnsPerSec)
	fmt.Fprintf(w, "  %-28s p50 %.1f us   p99 %.1f us   p99.9 %.1f us\n", "handshake latency", r.P50us, r.P99us, r.P999us)
	fmt.Fprintf(w, "  %-28s p50 %.1f us   p99 %.1f us\n", "connection latency", r.ConnP50us, r.ConnP99us)
	fmt.Fprintf(w, "  %-28s %d\n", "failures", r.Failures)
	for e, n := range r.Errors {
		fmt.Fprintf(w, "      %d x %s\n", n, e)
	}
	writeLinkDetails(w, sum.Queues, sum.Shards, sum.Counters)
	return nil
}

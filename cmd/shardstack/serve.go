package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/shardstack/shardstack/internal/apps"
	"github.com/shardstack/shardstack/internal/demo"
	"github.com/shardstack/shardstack/internal/link"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/pcap"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

const serveAbout = `Serves an application on a real link until SIGINT or SIGTERM (or --duration), then
closes every connection, releases the link and prints a summary: the application's totals,
the counters that moved, each link queue's packets and syscalls, and each shard's
hand-offs. --link afpacket:IFACE runs shardstack on an interface through AF_PACKET (the
interface must have no address of its own on --addr's subnets: the stack owns --addr,
IPv4 or IPv6, and answers ARP and neighbour discovery for it); options follow
commas: afpacket:IFACE,rxring,txring,bypass,burst=64,novnet,gso. --link tun:NAME runs it on a
multi-queue TUN device, bare IP packets with no ARP or neighbour discovery (created if NAME
is free, attached to if it is a persistent multi_queue device; give the Linux side an
address and shardstack's as its peer); options: tun:NAME,vnet,gso,nosteer,mtu=N,qlen=N,
burst=64,seed=N. --link kernel runs the same application on Linux's own TCP stack through
Go's net, for comparison.

Applications: echo (returns what it reads), discard (reads and drops), hello (answers one
HTTP/1.0 request with a fixed reply and closes, what shardstack load sends), http (net/http
answering "hello"). --no-accept listens but never accepts, like the seed's server.`

// serveConfig is a parsed serve command line.
type serveConfig struct {
	link      string
	addrs     []netip.Prefix
	gateway   netip.Addr // IPv4's
	gateway6  netip.Addr
	listen    []netip.AddrPort
	backlog   int
	noAccept  bool
	settings  tcp.Settings
	icmp      stack.ICMPSettings
	app       string
	api       string
	shards    int
	pin       bool
	busyPoll  bool
	coalesce  time.Duration
	pcapFile  string
	statEvery time.Duration
	duration  time.Duration
	cpuprof   string
	json      bool
}

func parseServe(args []string) (*serveConfig, *flagSet, error) {
	fs := newFlagSet("shardstack serve", serveAbout)
	c := &serveConfig{}
	fs.StringVar(&c.link, "link", "", "the link: afpacket:IFACE[,options], tun:NAME[,options], dpdk:EAL-ARGS [-- options] (built with -tags dpdk) or kernel (required)")
	var addrs, listens, gw multiFlag
	fs.Var(&addrs, "addr", "the stack's address and subnet, IPv4 or IPv6, e.g. 198.18.0.1/24 or fd00::1/64 (repeatable; the first is the primary)")
	fs.Var(&gw, "gateway", "next hop for destinations off the subnets (repeatable: one IPv4, one IPv6)")
	fs.Var(&listens, "listen", "`[ADDR]:PORT` to listen on: :PORT or [::]:PORT both families, 0.0.0.0:PORT IPv4 only (repeatable; default :8080)")
	fs.IntVar(&c.backlog, "backlog", 4096, "listen backlog (clamped to net.core.somaxconn, as listen(2) does)")
	fs.BoolVar(&c.noAccept, "no-accept", false, "never accept (the seed's server): connections wait in the accept queue")
	abort := fs.Bool("abort-on-overflow", false, "tcp_abort_on_overflow = 1")
	cookies := fs.Int("syncookies", 1, "tcp_syncookies: 0, 1 or 2")
	profile := fs.String("profile", "linux", "kernel behaviour: linux or linux-3.12")
	sysctlVar(fs.FlagSet, &c.settings, "sysctl", "set a knob by its Linux sysctl `name=value`, e.g. net.ipv4.tcp_synack_retries=3 or net.ipv4.icmp_echo_ignore_all=1 (repeatable)").icmp = &c.icmp
	fs.StringVar(&c.app, "app", "echo", "the application: "+strings.Join(apps.Names, ", "))
	fs.StringVar(&c.api, "api", "goroutines", "how the application is written: goroutines (net.Conn) or events (hello only: callbacks inside the shards)")
	fs.IntVar(&c.shards, "shards", runtime.GOMAXPROCS(0), "shards, one link queue each")
	fs.BoolVar(&c.pin, "pin", false, "lock each shard to its own OS thread and CPU")
	fs.BoolVar(&c.busyPoll, "busy-poll", false, "idle shards spin instead of sleeping in epoll")
	coalesce := secondsFlag(fs.FlagSet, "rx-coalesce", 0, "after a receive burst less than half full, wait this long before the next (like ethtool rx-usecs; e.g. 50us)")
	fs.StringVar(&c.pcapFile, "pcap", "", "write every frame both ways to this pcap `file`")
	statEvery := secondsFlag(fs.FlagSet, "stat-every", 0, "print the socket table and the counters that changed this often (0: never)")
	dur := secondsFlag(fs.FlagSet, "duration", 0, "stop after this long (0: at SIGINT/SIGTERM)")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write a CPU profile to this `file`")
	fs.BoolVar(&c.json, "json", false, "print JSON: one object per --stat-every report and the summary")
	if err := fs.parse(args); err != nil {
		return nil, fs, err
	}
	c.statEvery, c.duration, c.coalesce = *statEvery, *dur, *coalesce
	if err := c.settle(fs, addrs, listens, gw, *abort, *cookies, *profile); err != nil {
		return nil, fs, err
	}
	return c, fs, nil
}

// settle checks the flags against each other and fills in the parsed forms.
func (c *serveConfig) settle(fs *flagSet, addrs, listens, gw multiFlag, abort bool, cookies int, profile string) error {
	if c.link == "" {
		return fs.errorf("--link is required (afpacket:IFACE, tun:NAME or kernel)")
	}
	var err error
	if c.addrs, err = parseAddrs(fs, addrs); err != nil {
		return err
	}
	if c.link != link.Kernel && len(c.addrs) == 0 {
		return fs.errorf("--addr is required with --link %s", c.link)
	}
	if c.gateway, c.gateway6, err = parseGateways(fs, gw); err != nil {
		return err
	}
	if len(listens) == 0 {
		listens = multiFlag{":8080"}
	}
	for _, l := range listens {
		ap, err := parseListen(l)
		if err != nil {
			return fs.errorf("--listen %q: %v", l, err)
		}
		c.listen = append(c.listen, ap)
	}
	p, err := tcp.ParseProfile(profile)
	if err != nil {
		return fs.errorf("--profile: %v", err)
	}
	c.settings.Profile = p
	// A knob's own flag, when given, wins over a --sysctl of it.
	if fs.given("abort-on-overflow") {
		c.settings.TCPAbortOnOverflow = abort
	}
	if fs.given("syncookies") {
		switch cookies {
		case 0:
			c.settings.TCPSyncookies = tcp.SyncookiesOff
		case 1, 2:
			c.settings.TCPSyncookies = cookies
		default:
			return fs.errorf("--syncookies must be 0, 1 or 2, not %d", cookies)
		}
	}
	switch {
	case c.backlog < 0:
		return fs.errorf("--backlog must not be negative, not %d", c.backlog)
	case c.shards < 1:
		return fs.errorf("--shards must be at least 1, not %d", c.shards)
	case !contains(apps.Names, c.app):
		return fs.errorf("--app must be one of %s, not %q", strings.Join(apps.Names, ", "), c.app)
	case c.api != "goroutines" && c.api != "events":
		return fs.errorf("--api must be goroutines or events, not %q", c.api)
	case c.api == "events" && (c.app != "hello" || c.link == link.Kernel):
		return fs.errorf("--api events serves --app hello on shardstack links only")
	case c.link == link.Kernel && (c.pcapFile != "" || c.pin || c.busyPoll):
		return fs.errorf("--pcap, --pin and --busy-poll are shardstack's; --link kernel takes none of them")
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parseListen takes ":8080" (every address of both families, shown [::]:8080 as Go's net
// does), "0.0.0.0:8080" (every IPv4 address), "198.18.0.1:8080" or "[fd00::1]:8080".
func parseListen(s string) (netip.AddrPort, error) {
	if strings.HasPrefix(s, ":") {
		ap, err := netip.ParseAddrPort("[::]" + s)
		if err != nil {
			return netip.AddrPort{}, errors.New("want [ADDR]:PORT")
		}
		return ap, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("want [ADDR]:PORT")
	}
	return ap, nil
}

func runServe(e *env, args []string) error {
	c, _, err := parseServe(args)
	if err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(c.cpuprof)
	if err != nil {
		return err
	}
	defer stopProfile()
	ctx, stop := e.serveContext(c.duration)
	defer stop()
	if c.link == link.Kernel {
		return serveKernel(ctx, e, c)
	}
	return serveStack(ctx, e, c)
}

// status is where a long-running command says it has started: stdout, or stderr when
// stdout carries JSON.
func (e *env) status(asJSON bool) io.Writer {
	if asJSON {
		return e.stderr
	}
	return e.stdout
}

// serveContext ends at SIGINT or SIGTERM, after d (if not 0), or when a test's hook says.
func (e *env) serveContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx := context.Background()
	if e.stop != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		go func() {
			<-e.stop
			cancel()
		}()
	}
	ctx, cancelSig := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	if d <= 0 {
		return ctx, cancelSig
	}
	ctx, cancelT := context.WithTimeout(ctx, d)
	return ctx, func() { cancelT(); cancelSig() }
}

// server is what a running serve holds.
type server struct {
	c       *serveConfig
	lk      *link.Link
	port    dpdkshim.Port
	st      *stack.Stack
	ls      []*tcp.Listener
	app     *apps.Server
	started time.Time
	prev    stats.Counters
}

func serveStack(ctx context.Context, e *env, c *serveConfig) error {
	lk, err := link.Open(c.link, link.Params{Queues: c.shards})
	if err != nil {
		return err
	}
	s := &server{c: c, lk: lk, port: lk.Port, started: time.Now()}
	closePort := func() error { return s.port.Close() }
	defer func() {
		if closePort != nil {
			closePort()
		}
	}()
	if c.pcapFile != "" {
		f, err := os.Create(c.pcapFile)
		if err != nil {
			return err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		lt := uint32(pcap.LinkTypeEthernet)
		if dpdkshim.LinkTypeOf(lk.Port) == dpdkshim.LinkIP {
			lt = pcap.LinkTypeRaw // bare IP packets (a TUN device)
		}
		w, err := pcap.NewWriter(bw, pcap.MaxSnapLen, lt)
		if err != nil {
			f.Close()
			return err
		}
		s.port = dpdkshim.NewCapture(lk.Port, dpdkshim.CaptureConfig{Writer: w, Flush: func() error {
			if err := bw.Flush(); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}})
	}
	s.st, err = stack.New(stack.Config{
		Port: s.port, Addr: c.addrs[0], MoreAddrs: c.addrs[1:], Gateway: c.gateway, Gateway6: c.gateway6,
		Shards: c.shards, TCP: c.settings, ICMP: c.icmp, BusyPoll: c.busyPoll, Pin: c.pin, RxCoalesce: c.coalesce, Name: "serve",
	})
	if err != nil {
		return err
	}
	for _, ap := range c.listen {
		opts := tcp.ListenOptions{Backlog: c.backlog}
		if c.api == "events" {
			opts.Events = demo.EventServer{}
		}
		l, err := s.st.ListenTCP(ap, opts)
		if err != nil {
			s.st.Close()
			return err
		}
		s.ls = append(s.ls, l)
	}
	if !c.noAccept && c.api == "goroutines" {
		s.app, _ = apps.New(c.app)
		for _, l := range s.ls {
			go s.app.Serve(l)
		}
	}
	fmt.Fprintf(e.status(c.json), "serving %s on %s, %s, %d shards; listening on %s\n", c.app, s.port.Name(),
		joinPrefixes(c.addrs), c.shards, joinAddrPorts(c.listen))
	s.wait(ctx, e)
	// Shut down: the application's connections first, then the listeners (resetting what
	// still waits in their accept queues), then the stack and the link.
	if s.app != nil {
		s.app.Close()
	}
	for _, l := range s.ls {
		l.Close()
	}
	sum := s.summary()
	s.st.Close()
	err = closePort()
	closePort = nil
	if werr := s.printSummary(e.stdout, sum); werr != nil {
		return werr
	}
	return err
}

// wait runs until ctx ends, printing a report every --stat-every.
func (s *server) wait(ctx context.Context, e *env) {
	if s.c.statEvery <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(s.c.statEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.report(e.stdout)
		}
	}
}

// socketRow is one socket as ss -tan prints it.
type socketRow struct {
	State string `json:"state"`
	RecvQ int    `json:"recv_q"`
	SendQ int    `json:"send_q"`
	Local string `json:"local"`
	Peer  string `json:"peer"`
	MSS   int    `json:"mss,omitempty"` // a connection's send MSS (ss -i), lowered by a smaller path MTU
}

func socketRows(rows []tcp.SocketRow) []socketRow {
	out := make([]socketRow, len(rows))
	for i, r := range rows {
		out[i] = socketRow{r.State.String(), r.RecvQ, r.SendQ, r.Local.String(), r.Peer.String(), r.MSS}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].State == "LISTEN" || out[j].State == "LISTEN" {
			return out[i].State == "LISTEN" && out[j].State != "LISTEN"
		}
		return out[i].Peer < out[j].Peer
	})
	return out
}

// maxReportRows bounds the socket table of a periodic report.
const maxReportRows = 40

// report prints the socket table and the counters that changed since the last report.
func (s *server) report(w io.Writer) {
	now := s.st.Counters()
	diff := now.Diff(&s.prev)
	s.prev = now
	rows := socketRows(s.st.Sockets())
	if s.c.json {
		_ = json.NewEncoder(w).Encode(struct {
			Time     float64          `json:"time"`
			Sockets  []socketRow      `json:"sockets"`
			Counters map[string]int64 `json:"counters_changed"`
		}{time.Since(s.started).Seconds(), rows, changedCounters(&diff)})
		return
	}
	fmt.Fprintf(w, "\n=== %.1fs: %d sockets\n", time.Since(s.started).Seconds(), len(rows))
	fmt.Fprintf(w, "  %-11s %6s %6s  %-22s %-22s\n", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port")
	for i, r := range rows {
		if i == maxReportRows {
			fmt.Fprintf(w, "  ... %d more\n", len(rows)-i)
			break
		}
		fmt.Fprintf(w, "  %-11s %6d %6d  %-22s %-22s\n", r.State, r.RecvQ, r.SendQ, r.Local, r.Peer)
	}
	fmt.Fprintf(w, "  counters changed: %s\n", counterLine(changedCounters(&diff)))
}

func changedCounters(d *stats.Counters) map[string]int64 {
	m := map[string]int64{}
	d.Each(func(id stats.ID, name string, v uint64) {
		if v != 0 {
			m[name] = int64(v)
		}
	})
	return m
}

// serveSummary is what serve prints when it stops.
type serveSummary struct {
	Link     string            `json:"link"`
	Addrs    []string          `json:"addrs,omitempty"`
	Listen   []string          `json:"listen"`
	App      string            `json:"app"`
	Seconds  float64           `json:"seconds"`
	AppStats *apps.Stats       `json:"app_stats,omitempty"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	Shards   []shardSummary    `json:"shards,omitempty"`
	Queues   []link.QueueStats `json:"link_queues,omitempty"`
	Sockets  []socketRow       `json:"sockets_at_stop,omitempty"`
}

type shardSummary struct {
	RxPackets       uint64  `json:"rx_packets"`
	Handoffs        int64   `json:"handoffs"`
	HandoffFraction float64 `json:"handoff_fraction"`
	BusySeconds     float64 `json:"busy_seconds"`
}

func (s *server) summary() *serveSummary {
	sum := &serveSummary{Link: s.port.Name(), App: s.c.app, Seconds: time.Since(s.started).Seconds(),
		Addrs: prefixStrings(s.c.addrs), Listen: addrPortStrings(s.c.listen)}
	if s.app != nil {
		st := s.app.Stats()
		sum.AppStats = &st
	}
	if s.c.noAccept || s.c.api == "events" {
		sum.Sockets = socketRows(s.st.Sockets())
	}
	ctr := s.st.Counters()
	sum.Counters = ctr.NonZero()
	per := s.st.ShardCounters()
	for i, ld := range s.st.ShardLoads() {
		ss := shardSummary{RxPackets: per[i][stats.RxPackets], Handoffs: ld.Handoffs, BusySeconds: ld.Busy.Seconds()}
		if ss.RxPackets > 0 {
			ss.HandoffFraction = float64(ld.Handoffs) / float64(ss.RxPackets)
		}
		sum.Shards = append(sum.Shards, ss)
	}
	if s.lk.Stats != nil {
		sum.Queues = s.lk.Stats()
	}
	return sum
}

func (s *server) printSummary(w io.Writer, sum *serveSummary) error {
	return writeServeSummary(w, sum, s.c.json)
}

func writeServeSummary(w io.Writer, sum *serveSummary, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	fmt.Fprintf(w, "\nshardstack serve: %s on %s for %.1f s\n", sum.App, sum.Link, sum.Seconds)
	if a := sum.AppStats; a != nil {
		fmt.Fprintf(w, "  %-28s %d\n", "connections accepted", a.Accepted)
		if a.BytesIn+a.BytesOut > 0 {
			fmt.Fprintf(w, "  %-28s %d in, %d out\n", "application bytes", a.BytesIn, a.BytesOut)
		}
	}
	if len(sum.Sockets) > 0 {
		fmt.Fprintf(w, "  sockets at stop:\n")
		for i, r := range sum.Sockets {
			if i == maxReportRows {
				fmt.Fprintf(w, "    ... %d more\n", len(sum.Sockets)-i)
				break
			}
			fmt.Fprintf(w, "    %-11s %6d %6d  %-22s %-22s\n", r.State, r.RecvQ, r.SendQ, r.Local, r.Peer)
		}
	}
	writeLinkDetails(w, sum.Queues, sum.Shards, sum.Counters)
	return nil
}

// writeLinkDetails prints each link queue's figures, each shard's hand-offs and the counters.
func writeLinkDetails(w io.Writer, queues []link.QueueStats, shards []shardSummary, counters map[string]uint64) {
	for i, q := range queues {
		if q.CgoCalls > 0 {
			// A backend in C (DPDK): its calls are bursts, and the idle shard's polls
			// are the empty ones.
			fmt.Fprintf(w, "  queue %d: rx %d pkts in %d bursts (%d empty; %.1f/non-empty burst), tx %d pkts in %d bursts (%.1f/burst), %d cgo calls, drops %d, errors %d\n",
				i, q.RxPackets, q.RxSyscalls, q.RxEmpty, perCall(q.RxPackets, q.RxSyscalls-q.RxEmpty), q.TxPackets, q.TxSyscalls,
				perCall(q.TxPackets, q.TxSyscalls), q.CgoCalls, q.KernelDrops, q.Errors)
			continue
		}
		fmt.Fprintf(w, "  queue %d: rx %d pkts in %d syscalls (%.1f/syscall), tx %d pkts in %d syscalls (%.1f/syscall), kernel drops %d, errors %d\n",
			i, q.RxPackets, q.RxSyscalls, perCall(q.RxPackets, q.RxSyscalls), q.TxPackets, q.TxSyscalls, perCall(q.TxPackets, q.TxSyscalls), q.KernelDrops, q.Errors)
	}
	for i, sh := range shards {
		fmt.Fprintf(w, "  shard %d: %d frames received, %d handed to another shard (%.3f%%), busy %.2f s\n",
			i, sh.RxPackets, sh.Handoffs, 100*sh.HandoffFraction, sh.BusySeconds)
	}
	if len(counters) > 0 {
		keys := make([]string, 0, len(counters))
		for k := range counters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "  counters:\n")
		for _, k := range keys {
			v := counters[k]
			if k == "TcpCurrEstab" {
				fmt.Fprintf(w, "    %-32s %d\n", k, int64(v))
				continue
			}
			fmt.Fprintf(w, "    %-32s %d\n", k, v)
		}
	}
}

func perCall(n, calls uint64) float64 {
	if calls == 0 {
		return 0
	}
	return float64(n) / float64(calls)
}

// serveKernel runs the application on Linux's own stack.
func serveKernel(ctx context.Context, e *env, c *serveConfig) error {
	app, err := apps.New(c.app)
	if err != nil {
		return err
	}
	started := time.Now()
	var lns []net.Listener
	for _, ap := range c.listen {
		ln, err := net.Listen(tcpNetwork(ap.Addr()), ap.String())
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	if !c.noAccept {
		for _, ln := range lns {
			go app.Serve(ln)
		}
	}
	fmt.Fprintf(e.status(c.json), "serving %s on Linux's stack; listening on %s\n", c.app, joinAddrPorts(c.listen))
	<-ctx.Done()
	app.Close()
	for _, ln := range lns {
		ln.Close()
	}
	st := app.Stats()
	return writeServeSummary(e.stdout, &serveSummary{Link: link.Kernel, App: c.app, Seconds: time.Since(started).Seconds(),
		Listen: addrPortStrings(c.listen), AppStats: &st}, c.json)
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func addrPortStrings(aps []netip.AddrPort) []string {
	out := make([]string, len(aps))
	for i, a := range aps {
		out[i] = a.String()
	}
	return out
}

func joinPrefixes(ps []netip.Prefix) string     { return strings.Join(prefixStrings(ps), ", ") }
func joinAddrPorts(aps []netip.AddrPort) string { return strings.Join(addrPortStrings(aps), ", ") }

// Command flows runs the bulk workload of bench/BenchmarkLoss (internal/flows: F flows of B
// bytes, every byte hashed by the receiver and checked by the sender) across a real link,
// on Linux's own TCP through Go's net or on shardstack over any link (AF_PACKET, TUN), so
// that bench/loss/run.sh can measure both stacks in the same network namespaces under the
// same nftables drop rule.
//
//	flows serve --link kernel --listen 198.18.0.1:9000
//	flows serve --link afpacket:fs0 --addr 198.18.0.1/24 --listen 198.18.0.1:9000
//	flows send  --link kernel --target 198.18.0.1:9000 --runs 3 --json
//	flows send  --link afpacket:fc0 --addr 198.18.0.2/24 --target 198.18.0.1:9000 --runs 3 --json
//	flows serve --link tun:ts0 --addr fd00:198:18::1/64 --listen [fd00:198:18::1]:9000
//	flows send  --link tun:tc0,vnet,gso --addr fd00:198:18::2/64 --target [fd00:198:18::1]:9000
//
// serve answers flows until SIGINT or SIGTERM. send makes --runs runs of --flows flows of
// --bytes bytes each, one after another, and prints each run's time, whether every flow's
// digest matched, and the sender's retransmissions (TcpRetransSegs: /proc/net/snmp of its
// namespace for Linux, the stack's counters for shardstack). For shardstack both commands
// also write, as they end, its link's figures (packets, calls, kernel drops) and its
// non-zero counters to stderr, and --pcap records what it moves. Every address must lie in
// 198.18.0.0/15, the benchmarking range, or in fd00::/8 (unique-local IPv6); shardstack's
// --addr must be of the same family as --listen or --target.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardstack/shardstack/internal/flows"
	"github.com/shardstack/shardstack/internal/link"
	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/pcap"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// benchRanges are the only ranges flows talks to: IPv4's benchmarking range (RFC 2544) and
// IPv6's unique-local one (RFC 4193).
var benchRanges = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("fd00::/8")}

// inBenchRange reports whether a lies in one of benchRanges (a zoned address does not).
func inBenchRange(a netip.Addr) bool {
	for _, p := range benchRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "flows:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: flows serve|send [flags] (flows CMD -h)")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "send":
		err = send(ctx, args[1:], stdout, stderr)
	default:
		return errUsage
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h printed the flags
	}
	return err
}

// endpoint is one side's stack: Linux's (net) or shardstack on a link.
type endpoint struct {
	spec     string
	addr     netip.Prefix
	shards   int
	busyPoll bool          // --busy-poll
	coalesce time.Duration // --rx-coalesce
	pcap     string
	st       *stack.Stack
	lk       *link.Link
	closer   func() error
}

func (e *endpoint) flags(fs *flag.FlagSet, defAddr string) {
	fs.StringVar(&e.spec, "link", link.Kernel, "kernel (Linux's TCP through Go's net) or a shardstack link such as afpacket:fs0 or tun:ts0,vnet")
	fs.Func("addr", "shardstack's address and subnet (default "+defAddr+"; ignored with --link kernel)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		e.addr = p
		return err
	})
	e.addr = netip.MustParsePrefix(defAddr)
	fs.IntVar(&e.shards, "shards", 1, "shardstack shards (link queues)")
	fs.BoolVar(&e.busyPoll, "busy-poll", false, "shardstack's idle shards spin instead of sleeping in the kernel")
	fs.DurationVar(&e.coalesce, "rx-coalesce", 0, "shardstack waits this long after a receive burst less than half full (ethtool's rx-usecs)")
	fs.StringVar(&e.pcap, "pcap", "", "write every frame shardstack moves, both ways, to this pcap `file` (a debugging aid: it slows the stack)")
}

// check fails for a shardstack address outside benchRanges or of another family than
// peer, the address it listens on or dials (nothing to check for the kernel).
func (e *endpoint) check(peer netip.Addr) error {
	if e.spec == link.Kernel {
		return nil
	}
	if !inBenchRange(e.addr.Addr()) {
		return fmt.Errorf("--addr %v is outside %v", e.addr, benchRanges)
	}
	if e.addr.Addr().Is4() != peer.Is4() {
		return fmt.Errorf("--addr %v and %v are of different families", e.addr, peer)
	}
	return nil
}

// open brings up shardstack on the link (nothing for the kernel).
func (e *endpoint) open(name string) error {
	if e.spec == link.Kernel {
		return nil
	}
	lk, err := link.Open(e.spec, link.Params{Queues: e.shards})
	if err != nil {
		return err
	}
	port := lk.Port
	if e.pcap != "" {
		if port, err = capture(lk.Port, e.pcap); err != nil {
			lk.Port.Close()
			return err
		}
	}
	e.st, err = stack.New(stack.Config{Port: port, Addr: e.addr, Shards: e.shards, Name: name,
		BusyPoll: e.busyPoll, RxCoalesce: e.coalesce})
	if err != nil {
		port.Close()
		return err
	}
	e.lk = lk
	e.closer = func() error {
		e.st.Close()
		return port.Close()
	}
	return nil
}

// capture wraps port in one that writes its frames to the pcap file path (bare IP packets
// for a TUN device, Ethernet frames otherwise); closing it flushes and closes the file.
func capture(port dpdkshim.Port, path string) (dpdkshim.Port, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	lt := uint32(pcap.LinkTypeEthernet)
	if dpdkshim.LinkTypeOf(port) == dpdkshim.LinkIP {
		lt = pcap.LinkTypeRaw
	}
	w, err := pcap.NewWriter(bw, pcap.MaxSnapLen, lt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return dpdkshim.NewCapture(port, dpdkshim.CaptureConfig{Writer: w, Flush: func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}}), nil
}

func (e *endpoint) close() error {
	if e.closer == nil {
		return nil
	}
	return e.closer()
}

// summary writes shardstack's link figures and its non-zero counters, one line each, for
// a look at where packets went (nothing for the kernel: its counters are the namespace's,
// nstat's to show).
func (e *endpoint) summary(w io.Writer) {
	if e.st == nil {
		return
	}
	if e.lk.Stats != nil {
		var q link.QueueStats
		for _, s := range e.lk.Stats() {
			q.RxPackets += s.RxPackets
			q.TxPackets += s.TxPackets
			q.RxSyscalls += s.RxSyscalls
			q.TxSyscalls += s.TxSyscalls
			q.KernelDrops += s.KernelDrops
			q.Errors += s.Errors
		}
		fmt.Fprintf(w, "link %s: rx %d packets in %d calls, tx %d packets in %d calls, %d kernel drops, %d errors\n",
			e.spec, q.RxPackets, q.RxSyscalls, q.TxPackets, q.TxSyscalls, q.KernelDrops, q.Errors)
	}
	c := e.st.Counters()
	nz := c.NonZero()
	names := make([]string, 0, len(nz))
	for n := range nz {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s=%d", n, nz[n])
	}
	fmt.Fprintf(w, "counters:%s\n", b.String())
}

// stackName names the stack in the output.
func (e *endpoint) stackName() string {
	if e.spec == link.Kernel {
		return "linux"
	}
	return "shardstack"
}

// retrans is the sender's TcpRetransSegs so far.
func (e *endpoint) retrans() (uint64, error) {
	if e.st != nil {
		return uint64(e.st.Counters().Value(stats.TcpRetransSegs)), nil
	}
	return snmpTCP("RetransSegs")
}

// snmpTCP reads one field of the Tcp lines of this namespace's /proc/net/snmp.
func snmpTCP(field string) (uint64, error) {
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "Tcp: ")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(line)
			continue
		}
		vals := strings.Fields(line)
		if i := slices.Index(names, field); i >= 0 && i < len(vals) {
			return strconv.ParseUint(vals[i], 10, 64)
		}
	}
	return 0, fmt.Errorf("no Tcp %s in /proc/net/snmp", field)
}

func checkAddrPort(what, s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("%s %q: %w", what, s, err)
	}
	if !inBenchRange(ap.Addr()) {
		return ap, fmt.Errorf("%s %v is outside %v", what, ap, benchRanges)
	}
	return ap, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("flows serve", flag.ContinueOnError)
	var e endpoint
	e.flags(fs, "198.18.0.1/24")
	listen := fs.String("listen", "198.18.0.1:9000", "address and port to listen on ([fd00:198:18::1]:9000 for IPv6)")
	if err := fs.Parse(args); err != nil {
		return errors.Join(errUsage, err)
	}
	ap, err := checkAddrPort("--listen", *listen)
	if err == nil {
		err = e.check(ap.Addr())
	}
	if err != nil {
		return errors.Join(errUsage, err)
	}
	if err := e.open("flows-serve"); err != nil {
		return err
	}
	defer e.close()
	var l net.Listener
	if e.st != nil {
		l, err = e.st.ListenTCP(ap, tcpListenOptions())
	} else {
		l, err = net.Listen("tcp", ap.String())
	}
	if err != nil {
		return err
	}
	srv := &flows.Server{Deadline: 10 * time.Minute}
	go srv.Serve(l)
	fmt.Fprintf(stderr, "serving flows on %s (%s, %s)\n", ap, e.stackName(), e.spec)
	<-ctx.Done()
	l.Close()
	fmt.Fprintf(stderr, "answered %d flows, %d bytes received\n", srv.Answered(), srv.Received())
	e.summary(stderr)
	return nil
}

func send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flows send", flag.ContinueOnError)
	var e endpoint
	e.flags(fs, "198.18.0.2/24")
	target := fs.String("target", "198.18.0.1:9000", "the receiver's address and port ([fd00:198:18::1]:9000 for IPv6)")
	nflows := fs.Int("flows", 10, "flows per run")
	nbytes := fs.Int64("bytes", 1<<20, "bytes per flow")
	runs := fs.Int("runs", 3, "runs, one after another")
	deadline := fs.Duration("deadline", 60*time.Second, "a run not done by then fails")
	label := fs.String("label", "", "a label for the output")
	warmup := fs.Bool("warmup", true, "one unmeasured run of 1 flow x 64 KiB first (ARP, the bridge's tables, the first SYN)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return errors.Join(errUsage, err)
	}
	ap, err := checkAddrPort("--target", *target)
	if err == nil {
		err = e.check(ap.Addr())
	}
	if err != nil {
		return errors.Join(errUsage, err)
	}
	if *runs <= 0 {
		return errors.Join(errUsage, errors.New("--runs must be positive"))
	}
	w, err := flows.New(*nflows, *nbytes, 42, true)
	if err != nil {
		return errors.Join(errUsage, err)
	}
	if err := e.open("flows-send"); err != nil {
		return err
	}
	defer e.close()
	dial := func(ctx context.Context) (net.Conn, error) {
		if e.st != nil {
			return e.st.DialTCP(ctx, ap)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ap.String())
	}
	rep := flows.Report{Label: *label, Stack: e.stackName(), Link: e.spec, Flows: *nflows, Bytes: *nbytes}
	if *warmup {
		ww, _ := flows.New(1, 64<<10, 1, true)
		wctx, cancel := context.WithTimeout(ctx, *deadline)
		res := ww.Run(wctx, dial)
		cancel()
		if res.Err != nil {
			return fmt.Errorf("warm-up run: %w", res.Err)
		}
	}
	r0, err := e.retrans()
	if err != nil {
		return err
	}
	for i := 0; i < *runs && ctx.Err() == nil; i++ {
		rctx, cancel := context.WithTimeout(ctx, *deadline)
		res := w.Run(rctx, dial)
		cancel()
		ms := float64(res.Elapsed.Microseconds()) / 1e3
		if res.Err != nil {
			rep.Failed++
			ms = float64(deadline.Milliseconds())
			if rep.FirstError == "" {
				rep.FirstError = fmt.Sprintf("run %d: %d of %d flows complete, %d of %d bytes written: %v",
					i+1, res.Completed, *nflows, res.Written, w.Total(), res.Err)
			}
		}
		rep.RunsMs = append(rep.RunsMs, ms)
		fmt.Fprintf(stderr, "%s run %d: %.1f ms, %d/%d flows\n", rep.Stack, i+1, ms, res.Completed, *nflows)
	}
	r1, err := e.retrans()
	if err != nil {
		return err
	}
	e.summary(stderr)
	if n := len(rep.RunsMs); n > 0 {
		rep.MedianMs = flows.Median(rep.RunsMs)
		rep.RetransRun = float64(r1-r0) / float64(n)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s %s: %d x %d bytes, median %.1f ms over %d runs (%d failed), %.0f retransmissions per run\n",
		rep.Stack, rep.Link, rep.Flows, rep.Bytes, rep.MedianMs, len(rep.RunsMs), rep.Failed, rep.RetransRun)
	if rep.FirstError != "" {
		fmt.Fprintln(stdout, "first error:", rep.FirstError)
	}
	return nil
}

// tcpListenOptions is the shardstack listener's: a backlog for every flow of a run.
func tcpListenOptions() tcp.ListenOptions { return tcp.ListenOptions{Backlog: 1024} }

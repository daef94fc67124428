// Command flows runs the bulk workload of bench/BenchmarkLoss (internal/flows: F flows of B
// bytes, every byte hashed by the receiver and checked by the sender) across a real link,
// on Linux's own TCP through Go's net or on shardstack over AF_PACKET, so that
// bench/loss/run.sh can measure both stacks in the same two network namespaces under the
// same nftables drop rule.
//
//	flows serve --link kernel --listen 198.18.0.1:9000
//	flows serve --link afpacket:fs0 --addr 198.18.0.1/24 --listen 198.18.0.1:9000
//	flows send  --link kernel --target 198.18.0.1:9000 --runs 3 --json
//	flows send  --link afpacket:fc0 --addr 198.18.0.2/24 --target 198.18.0.1:9000 --runs 3 --json
//
// serve answers flows until SIGINT or SIGTERM. send makes --runs runs of --flows flows of
// --bytes bytes each, one after another, and prints each run's time, whether every flow's
// digest matched, and the sender's retransmissions (TcpRetransSegs: /proc/net/snmp of its
// namespace for Linux, the stack's counters for shardstack). Every address must lie in
// 198.18.0.0/15, the benchmarking range.
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
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// benchRange is the only range flows talks to (RFC 2544).
var benchRange = netip.MustParsePrefix("198.18.0.0/15")

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
	spec   string
	addr   netip.Prefix
	shards int
	st     *stack.Stack
	closer func() error
}

func (e *endpoint) flags(fs *flag.FlagSet, defAddr string) {
	fs.StringVar(&e.spec, "link", link.Kernel, "kernel (Linux's TCP through Go's net) or a shardstack link such as afpacket:fs0")
	fs.Func("addr", "shardstack's address and subnet (default "+defAddr+"; ignored with --link kernel)", func(s string) error {
		p, err := netip.ParsePrefix(s)
		e.addr = p
		return err
	})
	e.addr = netip.MustParsePrefix(defAddr)
	fs.IntVar(&e.shards, "shards", 1, "shardstack shards (link queues)")
}

// open brings up shardstack on the link (nothing for the kernel).
func (e *endpoint) open(name string) error {
	if e.spec == link.Kernel {
		return nil
	}
	if !benchRange.Contains(e.addr.Addr()) {
		return fmt.Errorf("--addr %v is outside %v", e.addr, benchRange)
	}
	lk, err := link.Open(e.spec, link.Params{Queues: e.shards})
	if err != nil {
		return err
	}
	e.st, err = stack.New(stack.Config{Port: lk.Port, Addr: e.addr, Shards: e.shards, Name: name})
	if err != nil {
		lk.Port.Close()
		return err
	}
	e.closer = func() error {
		e.st.Close()
		return lk.Port.Close()
	}
	return nil
}

func (e *endpoint) close() error {
	if e.closer == nil {
		return nil
	}
	return e.closer()
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
	if !benchRange.Contains(ap.Addr()) {
		return ap, fmt.Errorf("%s %v is outside %v", what, ap, benchRange)
	}
	return ap, nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("flows serve", flag.ContinueOnError)
	var e endpoint
	e.flags(fs, "198.18.0.1/24")
	listen := fs.String("listen", "198.18.0.1:9000", "address and port to listen on")
	if err := fs.Parse(args); err != nil {
		return errors.Join(errUsage, err)
	}
	ap, err := checkAddrPort("--listen", *listen)
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
	return nil
}

// report is what send prints.
type report struct {
	Label      string    `json:"label,omitempty"`
	Stack      string    `json:"stack"`
	Link       string    `json:"link"`
	Flows      int       `json:"flows"`
	Bytes      int64     `json:"bytes_per_flow"`
	RunsMs     []float64 `json:"runs_ms"` // a failed run counts as its deadline
	Failed     int       `json:"failed_runs"`
	MedianMs   float64   `json:"median_ms"`
	RetransRun float64   `json:"retrans_per_run"`
	FirstError string    `json:"first_error,omitempty"`
}

func send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("flows send", flag.ContinueOnError)
	var e endpoint
	e.flags(fs, "198.18.0.2/24")
	target := fs.String("target", "198.18.0.1:9000", "the receiver")
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
	rep := report{Label: *label, Stack: e.stackName(), Link: e.spec, Flows: *nflows, Bytes: *nbytes}
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

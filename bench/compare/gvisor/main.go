// Command gvisor runs shardstack's demo workload through gVisor's netstack, for
// comparison: two gVisor stacks in one process wired back to back, a server that accepts,
// reads one small request, writes a small reply and closes, and C client goroutines that
// dial, write, read to EOF and close, again and again, all through gonet's net.Conn API.
// It prints connections per second, dial latency and heap allocations per connection.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"time"
)

func main() {
	if err := runMain(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gvisor:", err)
		os.Exit(1)
	}
}

// runMain parses the flags, runs once and prints the figures; it returns an error when
// any connection failed, after printing.
func runMain(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gvisor", flag.ContinueOnError)
	cfg := config{}
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long clients open connections")
	fs.IntVar(&cfg.Conns, "conns", 0, "also stop after this many connections (0: only --duration)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 256, "client goroutines connecting at once")
	fs.BoolVar(&cfg.RST, "rst", false, "clients close with RST (linger 0) instead of FIN")
	fs.StringVar(&cfg.Link, "link", linkChannel, "how the stacks are wired: channel (queues pumped by a goroutine per direction) or pipe (inline delivery)")
	fs.IntVar(&cfg.Queue, "queue", 8192, "channel link queue length per side")
	fs.DurationVar(&cfg.Grace, "grace", 10*time.Second, "how long clients may take to finish after --duration")
	asJSON := fs.Bool("json", false, "print the figures as one JSON object")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := run(cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printTable(out, res)
	}
	if res.Stuck > 0 {
		return fmt.Errorf("%d clients were stuck at the end", res.Stuck)
	}
	if res.Failures > 0 {
		return fmt.Errorf("%d connections failed", res.Failures)
	}
	return nil
}

func printTable(w io.Writer, r *result) {
	fmt.Fprintf(w, "gVisor netstack %s: two stacks in one process (%s link), %d concurrent clients, close with %s, GOMAXPROCS %d\n\n",
		r.GVisorVersion, r.Link, r.Concurrency, r.Close, r.GOMAXPROCS)
	fmt.Fprintf(w, "  %-28s %d\n", "connections completed", r.Conns)
	fmt.Fprintf(w, "  %-28s %.1f s\n", "elapsed", r.Seconds)
	fmt.Fprintf(w, "  %-28s %.0f\n", "connections per second", r.ConnsPerSec)
	fmt.Fprintf(w, "  %-28s p50 %.1f us   p99 %.1f us   p99.9 %.1f us\n", "handshake latency", r.P50us, r.P99us, r.P999us)
	fmt.Fprintf(w, "  %-28s %.1f (%.0f bytes)\n", "heap allocations per conn", r.AllocsPerConn, r.BytesPerConn)
	fmt.Fprintf(w, "  %-28s %d\n", "failures", r.Failures)
	if r.Stuck > 0 {
		fmt.Fprintf(w, "  %-28s %d\n", "clients stuck at the end", r.Stuck)
	}
	msgs := make([]string, 0, len(r.Errors))
	for m := range r.Errors {
		msgs = append(msgs, m)
	}
	sort.Strings(msgs)
	for _, m := range msgs {
		fmt.Fprintf(w, "      %d x %s\n", r.Errors[m], m)
	}
}

// gvisorVersion returns the gVisor module version this binary was built with.
func gvisorVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "gvisor.dev/gvisor" {
				return d.Version
			}
		}
	}
	return "(unknown)"
}

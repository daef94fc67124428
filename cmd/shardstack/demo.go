package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"time"

	"github.com/shardstack/shardstack/internal/demo"
)

const demoAbout = `Two stacks in one process over the in-memory pair, core i running shard i of both:
C concurrent clients each open a connection, send a small request, read the reply and
close, until --conns connections or --duration. Prints connections per second, handshake
latency, heap allocations per connection and both stacks' counters; exits 1 if any
connection failed, with --json too (after printing the JSON).`

func runDemo(e *env, args []string) error {
	fs := newFlagSet("shardstack demo", demoAbout)
	conns := fs.Int("conns", 3_000_000, "stop after this many connections (0: only --duration)")
	concurrency := fs.Int("concurrency", 256, "clients connecting at once")
	shards := fs.Int("shards", runtime.GOMAXPROCS(0), "shards per stack")
	duration := fs.Duration("duration", 10*time.Second, "stop after this long (0: only --conns)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	memprofile := fs.String("memprofile", "", "write a heap profile to this file")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	api := fs.String("api", demo.APIEvents, "how the demo's client and server are written: events (callbacks inside the shards) or goroutines (blocking net.Conn style)")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *conns < 0:
		return fs.errorf("--conns must not be negative, not %d", *conns)
	case *duration < 0:
		return fs.errorf("--duration must not be negative, not %v", *duration)
	case *conns == 0 && *duration == 0:
		return fs.errorf("--conns 0 and --duration 0 would never stop")
	case *concurrency < 1:
		return fs.errorf("--concurrency must be at least 1, not %d", *concurrency)
	case *shards < 1:
		return fs.errorf("--shards must be at least 1, not %d", *shards)
	case *api != demo.APIEvents && *api != demo.APIGoroutines:
		return fs.errorf("--api must be %s or %s, not %q", demo.APIEvents, demo.APIGoroutines, *api)
	}
	out := e.stdout
	stopProfile, err := startCPUProfile(*cpuprofile)
	if err != nil {
		return err
	}
	defer stopProfile()
	cfg := demo.Config{
		Conns:       *conns,
		Concurrency: *concurrency,
		Shards:      *shards,
		Duration:    *duration,
		API:         *api,
	}
	if e.demoConfig != nil {
		e.demoConfig(&cfg)
	}
	var bar *progressBar // nil unless the table goes to a terminal
	if !*asJSON && isTerminal(out) {
		bar = newProgressBar(out, int64(cfg.Conns), cfg.Duration, "conns")
		cfg.Progress = bar.update
	}
	res, err := demo.Run(cfg)
	bar.clear()
	if err != nil {
		return err
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
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
	// Either way the summary is out; failed connections still fail the run.
	if res.Failures > 0 {
		err := fmt.Errorf("demo: %d of %d connections failed", res.Failures, res.Failures+res.Conns)
		if res.FirstError != "" {
			err = fmt.Errorf("%w (first error: %s)", err, res.FirstError)
		}
		return err
	}
	return nil
}

func printTable(w io.Writer, r *demo.Result) {
	fmt.Fprintf(w, "shardstack demo: two stacks, %d shards each, %d concurrent clients (%s API), in-memory pair\n\n", r.Shards, r.Concurrency, r.API)
	fmt.Fprintf(w, "  %-28s %d\n", "connections completed", r.Conns)
	fmt.Fprintf(w, "  %-28s %.1f s\n", "elapsed", r.Seconds)
	fmt.Fprintf(w, "  %-28s %.0f\n", "connections per second", r.ConnsPerSec)
	fmt.Fprintf(w, "  %-28s p50 %.1f us   p99 %.1f us   p99.9 %.1f us\n", "handshake latency", r.P50us, r.P99us, r.P999us)
	fmt.Fprintf(w, "  %-28s %.2f (%.0f bytes)\n", "heap allocations per conn", r.AllocsPerConn, r.BytesPerConn)
	fmt.Fprintf(w, "  %-28s %d\n", "failures", r.Failures)
	for e, n := range r.Errors {
		fmt.Fprintf(w, "      %d x %s\n", n, e)
	}
	fmt.Fprintf(w, "\n  %-32s %16s %16s\n", "counter", "server", "client")
	names := map[string]bool{}
	for k := range r.Server {
		names[k] = true
	}
	for k := range r.Client {
		names[k] = true
	}
	keys := make([]string, 0, len(names))
	for k := range names {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-32s %16s %16s\n", k, show(r.Server, k), show(r.Client, k))
	}
}

func show(m map[string]uint64, k string) string {
	v, ok := m[k]
	if !ok {
		return "0"
	}
	if k == "TcpCurrEstab" {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprint(v)
}

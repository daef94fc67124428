package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/shardstack/shardstack/internal/flows"
	"github.com/shardstack/shardstack/pkg/stats"
)

var (
	lossDeadline = flag.Duration("loss.deadline", 60*time.Second,
		"BenchmarkLoss: a run of all flows that takes longer fails the benchmark")
	lossFlows = flag.Int("loss.flows", 10, "BenchmarkLoss: flows per run")
	lossBytes = flag.Int64("loss.bytes", 1<<20, "BenchmarkLoss: bytes per flow")
	lossJSON  = flag.String("loss.json", "",
		"BenchmarkLoss: write the last case's runs to this file as bench/cmd/flows send --json does, "+
			"and count a failed run at the deadline instead of failing the benchmark")
)

// lossCase is one impairment of BenchmarkLoss.
type lossCase struct {
	name          string
	dropPerMille  int // of data segments
	delayPerMille int // of all frames, by lossDelay
}

// lossDelay is how long a reordered frame is held back.
const lossDelay = 3 * time.Millisecond

var lossCases = []lossCase{
	{"loss=0%", 0, 0},
	{"loss=1%", 10, 0},
	{"loss=5%", 50, 0},
	{"reorder=2%x3ms", 0, 20},
}

// BenchmarkLoss moves 10 flows x 1 MiB (internal/flows: every byte hashed and checked)
// from a client stack to a server stack, both running on their own shard goroutines and
// the real clock over the in-memory pair (2 shards each), while a hook on the client's
// port drops 0%, 1% or 5% of the data segments it sends (segments with payload only: the
// handshakes, pure ACKs and FINs always pass) or, with no loss, holds 2% of its frames
// back by 3 ms so later ones overtake them. One op is one run: all flows dialled, moved,
// checked and closed.
//
// It reports ms/run (the mean), p50-ms (the median run, the statistic bench/loss/run.sh
// gives for Linux over a veth: a rare run that waits for a 200 ms timer, as Linux's would,
// moves the mean of a few runs far more than the median), the retransmissions
// (TcpRetransSegs of both stacks), retransmission timeouts and loss probes, and the frames
// dropped or delayed per run, heap allocations per segment sent, and for the impaired
// cases the ratio of their median to the lossless case's in the same invocation
// (x-lossless; absent when -bench leaves loss=0% out). A run that has not finished after -loss.deadline
// (60 s) fails the benchmark with how far it got instead of hanging.
//
// With -loss.json FILE it also writes the runs of the case it ran last to FILE, in the
// shape bench/cmd/flows send --json prints plus the frames dropped, and a run that misses
// the deadline counts as the deadline (as flows send counts it) and the next one starts:
// bench/loss/run.sh's inproc column runs one case this way beside Linux over a veth.
//
//	go test -run '^$' -bench BenchmarkLoss -benchtime 5x ./bench/
func BenchmarkLoss(b *testing.B) {
	w, err := flows.New(*lossFlows, *lossBytes, 42, true)
	if err != nil {
		b.Fatal(err)
	}
	lossless := 0.0
	for _, c := range lossCases {
		b.Run(c.name, func(b *testing.B) {
			med := benchLoss(b, w, c)
			if c.dropPerMille == 0 && c.delayPerMille == 0 {
				lossless = med
			} else if lossless > 0 {
				b.ReportMetric(med/lossless, "x-lossless")
			}
		})
	}
}

// benchLoss runs one case b.N times on a fresh pair and returns its median ms per run.
func benchLoss(b *testing.B, w *flows.Workload, c lossCase) float64 {
	const shards = 2
	p := newLivePair(b, shards)
	defer p.close()
	// One lossless run first: pools, tables and goroutines exist before the clock starts.
	warm, _ := flows.New(w.Flows(), 64<<10, 1, true)
	if res := runFlows(warm, p, *lossDeadline); res.Err != nil {
		b.Fatalf("warm-up run failed: %v", res.Err)
	}
	m := newImpairment(shards, 7, c.dropPerMille, c.delayPerMille, lossDelay)
	p.cport.SetHook(m.hook)
	c0, rx0 := p.counters(), p.recv.Received()
	runs := make([]float64, 0, b.N)
	rep := flows.Report{Label: c.name, Stack: "shardstack", Link: "in-process pair", Flows: w.Flows(), Bytes: w.BytesPerFlow()}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := runFlows(w, p, *lossDeadline)
		if res.Err != nil && *lossJSON != "" {
			rep.Failed++
			if rep.FirstError == "" {
				rep.FirstError = fmt.Sprintf("run %d: %d of %d flows complete, %d of %d bytes written: %v",
					i+1, res.Completed, w.Flows(), res.Written, w.Total(), res.Err)
			}
			runs = append(runs, lossDeadline.Seconds()*1e3)
			continue
		}
		if res.Err != nil {
			b.StopTimer()
			drops, delays, _ := m.totals()
			c1 := p.counters()
			d := c1.Diff(&c0)
			b.Fatalf("%s, run %d of %d: %d of %d flows complete after %v (deadline %v); %.2f of %.2f MiB written by the senders, %.2f MiB received over all runs so far; "+
				"%d retransmissions, %d frames dropped, %d delayed over all runs so far; first error: %v",
				c.name, i+1, b.N, res.Completed, w.Flows(), res.Elapsed.Round(time.Millisecond), *lossDeadline,
				mib(res.Written), mib(w.Total()), mib(p.recv.Received()-rx0), d.Value(stats.TcpRetransSegs), drops, delays, res.Err)
		}
		runs = append(runs, res.Elapsed.Seconds()*1e3)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	c1 := p.counters()
	d := c1.Diff(&c0)
	drops, delays, _ := m.totals()
	n := float64(b.N)
	ms := b.Elapsed().Seconds() * 1e3 / n
	b.ReportMetric(ms, "ms/run")
	med := flows.Median(runs)
	b.ReportMetric(med, "p50-ms")
	b.ReportMetric(float64(d.Value(stats.TcpRetransSegs))/n, "retrans/run")
	b.ReportMetric(float64(d.Value(stats.TcpExtTCPTimeouts))/n, "rto/run")
	b.ReportMetric(float64(d.Value(stats.TcpExtTCPLossProbes))/n, "tlp/run")
	if c.dropPerMille > 0 {
		b.ReportMetric(float64(drops)/n, "dropped/run")
	}
	if c.delayPerMille > 0 {
		b.ReportMetric(float64(delays)/n, "delayed/run")
	}
	if segs := d.Value(stats.TcpOutSegs); segs > 0 {
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(segs), "allocs/seg")
	}
	if *lossJSON != "" {
		rep.RunsMs, rep.MedianMs, rep.Drops = runs, med, &drops
		rep.RetransRun = float64(d.Value(stats.TcpRetransSegs)) / n
		if err := writeLossReport(*lossJSON, &rep); err != nil {
			b.Fatal(err)
		}
	}
	return med
}

func writeLossReport(path string, r *flows.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(f).Encode(r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runFlows runs the workload once on p, bounded by deadline.
func runFlows(w *flows.Workload, p *livePair, deadline time.Duration) flows.Result {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	return w.Run(ctx, p.dial)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// A short lossy run through the harness completes with every byte checked, and the hook
// drops only data segments: the handshakes all succeed at once.
func TestLossHarness_DropsOnlyData(t *testing.T) {
	p := newLivePair(t, 2)
	defer p.close()
	m := newImpairment(2, 3, 50, 0, 0)
	p.cport.SetHook(m.hook)
	w, err := flows.New(2, 128<<10, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	res := runFlows(w, p, 60*time.Second)
	if res.Err != nil || res.Completed != 2 {
		t.Fatalf("%d flows complete: %v", res.Completed, res.Err)
	}
	drops, _, data := m.totals()
	c := p.counters()
	if drops == 0 || data == 0 {
		t.Fatalf("the hook dropped %d of %d data segments", drops, data)
	}
	if r := c.Value(stats.TcpExtTCPSynRetrans); r != 0 {
		t.Fatalf("%d SYN retransmissions: the hook must not drop handshake segments", r)
	}
	if c.Value(stats.TcpRetransSegs) == 0 {
		t.Fatal("data segments were dropped but nothing was retransmitted")
	}
	t.Logf("dropped %d of %d data segments, %d retransmissions, %v", drops, data, c.Value(stats.TcpRetransSegs), res.Elapsed)
}

package main

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// bulkTotal is what one op of BenchmarkBulk moves, over all its flows (as in shardstack's
// bench/bulk_test.go).
const bulkTotal = 64 << 20

// BenchmarkBulk is bulk throughput between two gVisor netstacks in one process over the
// channel link (a goroutine per direction moving packets, as newPair builds it; the
// channel's queue of 8192 packets drops what overflows, hence the retransmissions) and
// over the pipe link (a send delivered inline to the other stack), the same
// harness as shardstack's bench.BenchmarkBulk: 1 flow or 16 flows that together move 64
// MiB from the client stack to the server stack per op (counting receiver, no hash).
// MB/s comes from b.SetBytes; allocs/op and B/op are the whole process's, and allocs/seg
// divides the allocations by the segments both stacks sent.
//
//	cd bench/compare && go test -run '^$' -bench BenchmarkBulk -benchtime 10x -count 3 ./gvisor/
func BenchmarkBulk(b *testing.B) {
	for _, link := range []string{linkChannel, linkPipe} {
		for _, n := range []int{1, 16} {
			b.Run(fmt.Sprintf("link=%s/flows=%d", link, n), func(b *testing.B) { benchBulk(b, link, n) })
		}
	}
}

func benchBulk(b *testing.B, link string, n int) {
	w := newBulkWorkload(n, bulkTotal/int64(n))
	p, err := newPair(link, 8192)
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	target := tcpip.FullAddress{NIC: nicID, Addr: serverAddr, Port: serverPort}
	l, err := gonet.ListenTCP(p.server, target, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	srv := &bulkServer{}
	go srv.serve(l)
	dial := func(ctx context.Context) (net.Conn, error) {
		return gonet.DialContextTCP(ctx, p.client, target, ipv4.ProtocolNumber)
	}
	run := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return w.run(ctx, dial)
	}
	if err := run(); err != nil {
		b.Fatalf("warm-up run: %v", err)
	}
	segs0 := p.server.Stats().TCP.SegmentsSent.Value() + p.client.Stats().TCP.SegmentsSent.Value()
	rtx0 := p.server.Stats().TCP.Retransmits.Value() + p.client.Stats().TCP.Retransmits.Value()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.SetBytes(int64(bulkTotal))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := run(); err != nil {
			b.Fatalf("run %d: %v", i+1, err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	segs := p.server.Stats().TCP.SegmentsSent.Value() + p.client.Stats().TCP.SegmentsSent.Value() - segs0
	rtx := p.server.Stats().TCP.Retransmits.Value() + p.client.Stats().TCP.Retransmits.Value() - rtx0
	if segs > 0 {
		b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(segs), "allocs/seg")
	}
	b.ReportMetric(float64(rtx)/float64(b.N), "retrans/op")
}

// A small bulk run completes on both counts.
func TestBulk_Completes(t *testing.T) {
	p, err := newPair(linkChannel, 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	target := tcpip.FullAddress{NIC: nicID, Addr: serverAddr, Port: serverPort}
	l, err := gonet.ListenTCP(p.server, target, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv := &bulkServer{}
	go srv.serve(l)
	w := newBulkWorkload(3, 200_000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.run(ctx, func(ctx context.Context) (net.Conn, error) {
		return gonet.DialContextTCP(ctx, p.client, target, ipv4.ProtocolNumber)
	}); err != nil {
		t.Fatal(err)
	}
	if got := srv.received.Load(); got != 600_000 {
		t.Fatalf("received %d bytes, want 600000", got)
	}
}

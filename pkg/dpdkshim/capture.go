package dpdkshim

import (
	"encoding/binary"
	"sync"

	"github.com/shardstack/shardstack/pkg/checksum"
	"github.com/shardstack/shardstack/pkg/clock"
	"github.com/shardstack/shardstack/pkg/header"
	"github.com/shardstack/shardstack/pkg/pcap"
)

// CapturePort is a port that records every frame it receives and transmits to a pcap file
// (an Ethernet capture that tcpdump, tshark and Wireshark read, or a LINKTYPE_RAW one for a
// LinkIP port: the writer's link type is the caller's to pick), in the order its queues
// move them, stamped by a clock. It forwards everything else to the port it wraps.
//
// Received frames are recorded after RxBurst returns them, as the link delivered them (on a
// veth, with the partial checksums of Linux's CHECKSUM_PARTIAL, as tcpdump shows them);
// transmitted frames before they are handed to the inner port (which may free them at
// once), and only those it takes, with the checksum the wire will carry when the link is
// to complete it (TxCsum). Recording takes a lock and copies transmitted frames: it is for
// debugging and experiments, not for the fast path.
type CapturePort struct {
	inner Port
	clk   clock.Clock
	mu    sync.Mutex
	w     *pcap.Writer
	err   error
	flush func() error
	txbuf [][]byte // per queue: copies of the frames of the burst being sent
	txoff [][]int
}

// CaptureConfig says where a capture goes.
type CaptureConfig struct {
	// Writer receives the frames; NewCapture writes nothing else to it.
	Writer *pcap.Writer
	// Flush, if set, is called when the port closes (e.g. a bufio.Writer's Flush).
	Flush func() error
	// Clock stamps frames (default a real clock).
	Clock clock.Clock
}

// NewCapture wraps inner. The result implements QueueLimiter only when inner does.
func NewCapture(inner Port, cfg CaptureConfig) Port {
	if cfg.Clock == nil {
		cfg.Clock = clock.NewReal()
	}
	c := &CapturePort{
		inner: inner,
		clk:   cfg.Clock,
		w:     cfg.Writer,
		flush: cfg.Flush,
		txbuf: make([][]byte, inner.NumQueues()),
		txoff: make([][]int, inner.NumQueues()),
	}
	if _, ok := inner.(QueueLimiter); ok {
		return &captureLimiter{c}
	}
	return c
}

type captureLimiter struct{ *CapturePort }

// UseQueues implements QueueLimiter by passing it on.
func (c *captureLimiter) UseQueues(n int) { c.inner.(QueueLimiter).UseQueues(n) }

// Name implements Port.
func (c *CapturePort) Name() string { return c.inner.Name() }

// MAC implements Port.
func (c *CapturePort) MAC() header.MAC { return c.inner.MAC() }

// MTU implements Port.
func (c *CapturePort) MTU() int { return c.inner.MTU() }

// NumQueues implements Port.
func (c *CapturePort) NumQueues() int { return c.inner.NumQueues() }

// Steering implements Port.
func (c *CapturePort) Steering() Steering { return c.inner.Steering() }

// LinkType implements LinkTyper: the inner port's (a capture of a LinkIP port is a
// LINKTYPE_RAW capture).
func (c *CapturePort) LinkType() LinkType { return LinkTypeOf(c.inner) }

// Offloads implements Port.
func (c *CapturePort) Offloads() Offloads { return c.inner.Offloads() }

// RxWait implements Port.
func (c *CapturePort) RxWait(q int) Wait { return c.inner.RxWait(q) }

// Pool implements Port.
func (c *CapturePort) Pool(q int) *Pool { return c.inner.Pool(q) }

// TxPending implements TxPender for an inner port that does.
func (c *CapturePort) TxPending(q int) bool {
	tp, ok := c.inner.(TxPender)
	return ok && tp.TxPending(q)
}

// Err returns the first error writing the capture (recording stops there).
func (c *CapturePort) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// RxBurst implements Port.
func (c *CapturePort) RxBurst(q int, pkts []*Packet) int {
	n := c.inner.RxBurst(q, pkts)
	if n == 0 {
		return 0
	}
	now := c.clk.Now()
	c.mu.Lock()
	for _, p := range pkts[:n] {
		c.record(now, p.Data())
	}
	c.mu.Unlock()
	return n
}

// TxBurst implements Port.
func (c *CapturePort) TxBurst(q int, pkts []*Packet) int {
	if len(pkts) == 0 {
		return c.inner.TxBurst(q, pkts)
	}
	buf, offs := c.txbuf[q][:0], c.txoff[q][:0]
	for _, p := range pkts {
		offs = append(offs, len(buf))
		start := len(buf)
		buf = append(buf, p.Data()...)
		if s, f, ok := p.TxCsumOffsets(); ok {
			completeChecksum(buf[start:], s, f)
		}
	}
	offs = append(offs, len(buf))
	c.txbuf[q], c.txoff[q] = buf, offs
	n := c.inner.TxBurst(q, pkts)
	now := c.clk.Now()
	c.mu.Lock()
	for i := 0; i < n; i++ {
		c.record(now, buf[offs[i]:offs[i+1]])
	}
	c.mu.Unlock()
	return n
}

// completeChecksum does to a copy of a TxCsum frame what the link will do to the frame.
func completeChecksum(frame []byte, start, field int) {
	if start < 0 || field < start || field+2 > len(frame) {
		return
	}
	binary.BigEndian.PutUint16(frame[field:], checksum.Checksum(frame[start:], 0))
}

func (c *CapturePort) record(ts int64, frame []byte) {
	if c.err != nil || c.w == nil {
		return
	}
	c.err = c.w.WritePacket(ts, frame)
}

// Close closes the inner port and flushes the capture.
func (c *CapturePort) Close() error {
	err := c.inner.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flush != nil {
		if ferr := c.flush(); err == nil {
			err = ferr
		}
		c.flush = nil
	}
	if err == nil {
		err = c.err
	}
	return err
}

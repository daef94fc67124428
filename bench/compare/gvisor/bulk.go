package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The bulk workload, the counting mode of shardstack's internal/flows with the same bytes
// on the wire (this module does not import shardstack): each flow is one connection that
// carries a 16-byte header (magic 0xF1, mode 2, flow index, payload length) and the
// payload; the receiver counts what it reads and answers with the count in a 32-byte
// reply; the sender checks the count and closes.
const (
	bulkHeaderLen = 16
	bulkMagic     = 0xF1
	bulkModeCount = 2
	bulkReplyLen  = 32
)

// bulkWorkload is F flows of B bytes, the payload made once before any run.
type bulkWorkload struct {
	flows   int
	bytes   int64
	payload []byte
}

func newBulkWorkload(flows int, bytes int64) *bulkWorkload {
	p := make([]byte, bytes)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return &bulkWorkload{flows: flows, bytes: bytes, payload: p}
}

// run moves every flow at once, each on its own goroutine, bounded by ctx's deadline.
func (w *bulkWorkload) run(ctx context.Context, dial func(context.Context) (net.Conn, error)) error {
	errs := make([]error, w.flows)
	var wg sync.WaitGroup
	for i := 0; i < w.flows; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.flow(ctx, dial, i); err != nil {
				errs[i] = fmt.Errorf("flow %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *bulkWorkload) flow(ctx context.Context, dial func(context.Context) (net.Conn, error), i int) error {
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	var hdr [bulkHeaderLen]byte
	hdr[0], hdr[1] = bulkMagic, bulkModeCount
	binary.BigEndian.PutUint32(hdr[4:], uint32(i))
	binary.BigEndian.PutUint64(hdr[8:], uint64(w.bytes))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := c.Write(w.payload); err != nil {
		return err
	}
	var got [bulkReplyLen]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if n := binary.BigEndian.Uint64(got[:]); n != uint64(w.bytes) {
		return fmt.Errorf("the receiver counted %d bytes, want %d", n, w.bytes)
	}
	return nil
}

// bulkServer answers each flow on its own goroutine.
type bulkServer struct {
	received atomic.Int64
	wg       sync.WaitGroup
}

var bulkBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

func (s *bulkServer) serve(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

func (s *bulkServer) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Minute))
	var hdr [bulkHeaderLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != bulkMagic || hdr[1] != bulkModeCount {
		return
	}
	left := int64(binary.BigEndian.Uint64(hdr[8:]))
	bp := bulkBufs.Get().(*[]byte)
	defer bulkBufs.Put(bp)
	buf := *bp
	var n int64
	for n < left {
		k, err := c.Read(buf[:min(int64(len(buf)), left-n)])
		n += int64(k)
		s.received.Add(int64(k))
		if err != nil {
			return
		}
	}
	var reply [bulkReplyLen]byte
	binary.BigEndian.PutUint64(reply[:], uint64(n))
	if _, err := c.Write(reply[:]); err != nil {
		return
	}
	c.Read(buf[:1]) // to the sender's FIN
}

// Package flows is the bulk-transfer workload that the loss, reordering and throughput
// harnesses share: F flows, each one connection that carries a 16-byte header and then B
// bytes of a seeded pattern from the sender to the receiver. In checked mode the receiver
// hashes what arrives (SHA-256) and answers with the digest, which the sender compares
// with the pattern's, so every byte is checked; in counting mode it answers with the
// number of bytes it read. It runs on any net.Conn (Linux through Go's net, shardstack,
// any other stack) and knows nothing of a stack's internals.
package flows

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The header a flow starts with: magic, mode, flow index, payload length.
const (
	headerLen = 16
	magic     = 0xF1
	modeCheck = 1 // hash the payload, answer with its SHA-256
	modeCount = 2 // count the payload, answer with the count
	replyLen  = sha256.Size
)

// Workload is F flows of B bytes each, their payloads made and hashed before any run so
// that a run spends its time moving and checking bytes only.
type Workload struct {
	flows   int
	bytes   int64
	check   bool
	payload [][]byte
	digest  [][replyLen]byte
}

// New makes a workload of flows flows of bytes bytes each, patterned from seed. With
// check, the receiver hashes every byte and the sender compares digests; without, the
// receiver only counts (for throughput runs, where the hash would be part of the cost).
func New(flows int, bytes int64, seed uint64, check bool) (*Workload, error) {
	if flows <= 0 || bytes <= 0 {
		return nil, fmt.Errorf("flows: need at least one flow of at least one byte (have %d x %d)", flows, bytes)
	}
	w := &Workload{flows: flows, bytes: bytes, check: check}
	for i := 0; i < flows; i++ {
		p := Pattern(seed, i, bytes)
		w.payload = append(w.payload, p)
		var d [replyLen]byte
		if check {
			d = sha256.Sum256(p)
		} else {
			binary.BigEndian.PutUint64(d[:], uint64(bytes))
		}
		w.digest = append(w.digest, d)
	}
	return w, nil
}

// Flows is the number of flows.
func (w *Workload) Flows() int { return w.flows }

// BytesPerFlow is each flow's payload length.
func (w *Workload) BytesPerFlow() int64 { return w.bytes }

// Total is the payload bytes of one run, over all flows.
func (w *Workload) Total() int64 { return int64(w.flows) * w.bytes }

// Pattern returns flow's n bytes of the seeded pattern (ChaCha8, so every flow's bytes
// differ and a byte delivered to the wrong place or the wrong flow changes the digest).
func Pattern(seed uint64, flow int, n int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(flow))
	key[31] = 0x5a
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p)
	return p
}

// Dialer opens one connection to the receiver.
type Dialer func(ctx context.Context) (net.Conn, error)

// Result is what one run measured.
type Result struct {
	Elapsed   time.Duration   // first dial to the last flow's answer (or to the failure)
	Completed int             // flows whose answer matched
	Written   int64           // payload bytes the sender's writes accepted, over all flows
	FlowTimes []time.Duration // each flow's dial to answer (0 if it did not complete)
	Err       error           // the first flow's error, if any failed
}

// Run moves every flow at once, each on its own goroutine and connection, and returns
// when all have answered or failed. The context's deadline is also every connection's
// deadline, so a stalled flow fails the run at the deadline instead of hanging it.
func (w *Workload) Run(ctx context.Context, dial Dialer) Result {
	res := Result{FlowTimes: make([]time.Duration, w.flows)}
	var written atomic.Int64
	var completed atomic.Int32
	errs := make([]error, w.flows)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < w.flows; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if err := w.flow(ctx, dial, i, &written); err != nil {
				errs[i] = fmt.Errorf("flow %d: %w", i, err)
				return
			}
			res.FlowTimes[i] = time.Since(t0)
			completed.Add(1)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Completed = int(completed.Load())
	res.Written = written.Load()
	res.Err = errors.Join(errs...)
	return res
}

// flow is one flow's whole life: dial, header, payload, answer, close.
func (w *Workload) flow(ctx context.Context, dial Dialer, i int, written *atomic.Int64) error {
	c, err := dial(ctx)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return err
		}
	}
	var hdr [headerLen]byte
	hdr[0] = magic
	hdr[1] = modeCount
	if w.check {
		hdr[1] = modeCheck
	}
	binary.BigEndian.PutUint32(hdr[4:], uint32(i))
	binary.BigEndian.PutUint64(hdr[8:], uint64(w.bytes))
	if _, err := c.Write(hdr[:]); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	p := w.payload[i]
	const chunk = 64 << 10 // so that Written tracks progress when a run stalls
	for off := 0; off < len(p); off += chunk {
		n, err := c.Write(p[off:min(off+chunk, len(p))])
		written.Add(int64(n))
		if err != nil {
			return fmt.Errorf("write payload at byte %d: %w", off+n, err)
		}
	}
	var got [replyLen]byte
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if got != w.digest[i] {
		if w.check {
			return errors.New("the receiver's SHA-256 of the payload differs from the sender's")
		}
		return fmt.Errorf("the receiver counted %d bytes, want %d", binary.BigEndian.Uint64(got[:]), w.bytes)
	}
	return nil
}

// Server is the receiving side: it answers each flow's connection on its own goroutine.
type Server struct {
	// Deadline bounds each connection's life on the server (0: none), so that a flow its
	// sender gave up on does not hold a goroutine for ever.
	Deadline time.Duration
	received atomic.Int64
	answered atomic.Int64
	mu       sync.Mutex
	firstErr error
	wg       sync.WaitGroup
}

// Received is the payload bytes read so far over every connection.
func (s *Server) Received() int64 { return s.received.Load() }

// Answered is how many flows were read to their end and answered.
func (s *Server) Answered() int64 { return s.answered.Load() }

// Err is the first error a connection met, if any.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.firstErr
}

// Serve accepts until l is closed and returns the accept error that ended it.
func (s *Server) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.handle(c); err != nil {
				s.mu.Lock()
				if s.firstErr == nil {
					s.firstErr = err
				}
				s.mu.Unlock()
			}
		}()
	}
}

// Wait waits for every connection handler to return (after the listener was closed and
// the connections ended).
func (s *Server) Wait() { s.wg.Wait() }

// bufs holds the receivers' read buffers, so that a run's allocations are the stack's and
// the connections', not 64 KiB per flow of the harness's own.
var bufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// handle reads one flow's header and payload, answers, and waits for the sender's close.
func (s *Server) handle(c net.Conn) error {
	defer c.Close()
	if s.Deadline > 0 {
		if err := c.SetDeadline(time.Now().Add(s.Deadline)); err != nil {
			return err
		}
	}
	var hdr [headerLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	mode := hdr[1]
	if hdr[0] != magic || (mode != modeCheck && mode != modeCount) {
		return fmt.Errorf("bad header % x", hdr)
	}
	left := int64(binary.BigEndian.Uint64(hdr[8:]))
	h := sha256.New()
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var n int64
	for n < left {
		k, err := c.Read(buf[:min(int64(len(buf)), left-n)])
		if k > 0 {
			if mode == modeCheck {
				h.Write(buf[:k])
			}
			n += int64(k)
			s.received.Add(int64(k))
		}
		if err != nil {
			return fmt.Errorf("flow %d: read payload at byte %d: %w", binary.BigEndian.Uint32(hdr[4:]), n, err)
		}
	}
	var reply [replyLen]byte
	if mode == modeCheck {
		h.Sum(reply[:0])
	} else {
		binary.BigEndian.PutUint64(reply[:], uint64(n))
	}
	if _, err := c.Write(reply[:]); err != nil {
		return fmt.Errorf("write answer: %w", err)
	}
	s.answered.Add(1)
	// The sender closes once it has the answer; reading to its FIN keeps TIME-WAIT on
	// the sender's side.
	_, _ = c.Read(buf[:1])
	return nil
}

// Median is the median of run times in ms, the statistic both loss harnesses report (the
// mean of the two middle values for an even count). xs is left as it was.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[n/2]
}

// Report is what a measurement of a workload prints as JSON: bench/cmd/flows send --json,
// and BenchmarkLoss with -loss.json (which adds the frames its hook dropped), the shape
// bench/loss/run.sh reads.
type Report struct {
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
	// Drops is the frames dropped over all runs, where the measurement itself dropped them
	// (an in-process hook); a link's rule counts its own.
	Drops *uint64 `json:"drops,omitempty"`
}

package loadgen

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/internal/hist"
	"github.com/shardstack/shardstack/pkg/stack"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// The event-driven client: each connection's callbacks run inside its shard's loop, and
// each finished exchange dials the next connection on the same shard. A connection's
// UserData packs its dial time (microseconds since the run began, high 40 bits), a flag
// for a reply that is not HTTP 200 (bit 23) and the reply bytes seen (low 23 bits).
const (
	udTimeShift = 24
	udBad       = 1 << 23
	udGot       = udBad - 1
)

// shardStats is what the callbacks of one shard's connections record; only that shard's
// goroutine writes it.
type shardStats struct {
	hs, total hist.Histogram
	done      int64
	failures  int64
	lastErr   error
	_         [64]byte
}

type eventClient struct {
	cli     *stack.Stack
	cfg     Config
	start   time.Time
	stop    atomic.Bool
	issued  atomic.Int64
	limit   int64
	active  atomic.Int64
	done    atomic.Int64
	stats   []shardStats
	dialErr atomic.Int64
	errMu   atomic.Pointer[error]
}

var prefix = []byte("HTTP/1.? 200")

func (c *eventClient) sinceStart() uint64 { return uint64(time.Since(c.start) / time.Microsecond) }

// next starts the next connection, on the same shard as the one that just finished (near).
func (c *eventClient) next(near tcp.Handle) {
	if c.stop.Load() || c.issued.Add(1) > c.limit {
		c.active.Add(-1)
		return
	}
	ud := c.sinceStart() << udTimeShift
	if _, err := c.cli.DialAsyncHandle(c.cfg.Target, tcp.DialOptions{Events: c, UserData: ud, Near: near}); err != nil {
		c.dialFailed(err)
	}
}

// dialFailed counts a dial that could not start (kept apart from next so that next's err
// does not move to the heap on every call).
func (c *eventClient) dialFailed(err error) {
	c.dialErr.Add(1)
	c.errMu.CompareAndSwap(nil, &err)
	c.active.Add(-1)
}

func (c *eventClient) OnOpen(h tcp.Handle) {
	st := &c.stats[h.Shard()]
	st.hs.Record(int64(c.sinceStart()-h.UserData()>>udTimeShift) * 1e3)
	if _, err := h.TryWrite(Request); err != nil {
		c.finish(h, st, err)
	}
}

func (c *eventClient) OnWritable(tcp.Handle) {}

func (c *eventClient) OnData(h tcp.Handle) {
	st := &c.stats[h.Shard()]
	if !h.Opened() {
		// A dial that failed (refused, reset, timed out).
		c.finish(h, st, h.Err())
		return
	}
	var buf [512]byte
	ud := h.UserData()
	got := int(ud & udGot)
	for {
		n, err := h.TryRead(buf[:])
		// Check the status line as it arrives, a chunk at a time.
		for i := 0; i < n && got+i < len(prefix); i++ {
			if p := prefix[got+i]; p != '?' && buf[i] != p {
				ud |= udBad
			}
		}
		got += n
		switch {
		case err == nil && got < MaxReply:
			continue
		case err == nil:
			c.finish(h, st, errors.New("loadgen: reply too long"))
		case errors.Is(err, tcp.ErrWouldBlock):
			h.SetUserData(ud&^udGot | uint64(got))
			return
		case err == io.EOF && got >= len(prefix) && ud&udBad == 0:
			st.total.Record(int64(c.sinceStart()-ud>>udTimeShift) * 1e3)
			st.done++
			c.done.Add(1)
			c.finish(h, st, nil)
		case err == io.EOF:
			c.finish(h, st, errors.New("loadgen: not an HTTP 200 reply"))
		default:
			c.finish(h, st, err)
		}
		return
	}
}

func (c *eventClient) finish(h tcp.Handle, st *shardStats, err error) {
	if err != nil {
		st.failures++
		st.lastErr = err
	}
	h.Close()
	c.next(h)
}

func runEvents(cli *stack.Stack, cfg Config) *Result {
	c := &eventClient{cli: cli, cfg: cfg, limit: int64(cfg.Conns), stats: make([]shardStats, cli.NumShards())}
	if c.limit <= 0 {
		c.limit = 1 << 62
	}
	m := startMeasure()
	c.start = m.start
	c.active.Store(int64(cfg.Concurrency))
	for i := 0; i < cfg.Concurrency; i++ {
		c.next(tcp.Handle{})
	}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = m.start.Add(cfg.Duration)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	lastProgress := m.start
	for c.active.Load() > 0 {
		<-tick.C
		now := time.Now()
		if !deadline.IsZero() && now.After(deadline) {
			c.stop.Store(true)
		}
		if cfg.Progress != nil && now.Sub(lastProgress) >= cfg.ProgressEvery {
			cfg.Progress(c.done.Load(), now.Sub(m.start))
			lastProgress = now
		}
	}
	var hs, total hist.Histogram
	for i := range c.stats {
		hs.Merge(&c.stats[i].hs)
		total.Merge(&c.stats[i].total)
	}
	res := m.finish(cfg, &hs, &total)
	for i := range c.stats {
		st := &c.stats[i]
		res.Conns += st.done
		res.Failures += st.failures
		if st.lastErr != nil {
			res.Errors[st.lastErr.Error()] += st.failures
			res.FirstError = st.lastErr.Error()
		}
	}
	if n := c.dialErr.Load(); n > 0 {
		res.Failures += n
		e := *c.errMu.Load()
		res.Errors[e.Error()] += n
		if res.FirstError == "" {
			res.FirstError = e.Error()
		}
	}
	res.summarize()
	return res
}

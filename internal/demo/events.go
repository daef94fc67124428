package demo

import (
	"errors"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/internal/hist"
	"github.com/shardstack/shardstack/pkg/tcp"
)

// The event-driven demo: the same exchange, written against tcp.Events, so that the
// application's code runs inside the shards' run-to-completion loops and no goroutine
// blocks, wakes or switches per connection.

// eventServer reads the request, writes the reply and closes, all from callbacks. A
// connection's UserData counts the request bytes seen so far.
type eventServer struct{}

func (eventServer) OnOpen(tcp.Handle) {}

func (eventServer) OnWritable(tcp.Handle) {}

func (eventServer) OnData(h tcp.Handle) {
	var buf [64]byte
	got := int(h.UserData())
	for {
		n, err := h.TryRead(buf[:])
		got += n
		if got >= len(Request) {
			h.TryWrite(Reply)
			h.Close()
			return
		}
		if errors.Is(err, tcp.ErrWouldBlock) {
			h.SetUserData(uint64(got))
			return
		}
		if err != nil {
			h.Close()
			return
		}
	}
}

// shardStats is what the callbacks of one shard's connections record; only that shard's
// goroutine writes it.
type shardStats struct {
	lat      hist.Histogram
	done     int64
	failures int64
	lastErr  error
	_        [64]byte
}

// eventClient keeps C connections going: each finished exchange dials the next.
type eventClient struct {
	dial    func(opts tcp.DialOptions) (tcp.Handle, error)
	stop    atomic.Bool
	issued  atomic.Int64
	limit   int64
	active  atomic.Int64
	done    atomic.Int64
	stats   []shardStats
	dialErr atomic.Int64
}

// next starts the next connection, on the same shard as the one that just finished (near).
func (c *eventClient) next(near tcp.Handle) {
	if c.stop.Load() || c.issued.Add(1) > c.limit {
		c.active.Add(-1)
		return
	}
	// UserData carries the dial time until OnOpen, then the reply bytes counted.
	if _, err := c.dial(tcp.DialOptions{Events: c, UserData: uint64(time.Now().UnixNano()), Near: near}); err != nil {
		c.dialErr.Add(1)
		c.active.Add(-1)
	}
}

func (c *eventClient) OnOpen(h tcp.Handle) {
	st := &c.stats[h.Shard()]
	st.lat.Record(time.Now().UnixNano() - int64(h.UserData()))
	h.SetUserData(0)
	if _, err := h.TryWrite(Request); err != nil {
		c.finish(h, st, err)
	}
}

func (c *eventClient) OnWritable(tcp.Handle) {}

func (c *eventClient) OnData(h tcp.Handle) {
	st := &c.stats[h.Shard()]
	var buf [128]byte
	got := int(h.UserData())
	if !h.Opened() {
		// A dial that failed (refused, reset, timed out).
		c.finish(h, st, h.Err())
		return
	}
	for {
		n, err := h.TryRead(buf[:])
		got += n
		switch {
		case err == nil:
			continue
		case errors.Is(err, tcp.ErrWouldBlock):
			h.SetUserData(uint64(got))
			return
		case err == io.EOF && got == len(Reply):
			st.done++
			c.done.Add(1)
			c.finish(h, st, nil)
		case err == io.EOF:
			c.finish(h, st, errors.New("demo: short reply"))
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

// runEvents runs the event-driven load on a pair whose server listens with eventServer.
func runEvents(p *Pair, cfg Config, target netip.AddrPort) *Result {
	c := &eventClient{
		dial: func(opts tcp.DialOptions) (tcp.Handle, error) {
			return p.Client.DialAsyncHandle(target, opts)
		},
		limit: int64(cfg.Conns),
		stats: make([]shardStats, cfg.Shards),
	}
	if c.limit <= 0 {
		c.limit = 1 << 62
	}
	m := startMeasure()
	c.active.Store(int64(cfg.Concurrency))
	for i := 0; i < cfg.Concurrency; i++ {
		c.next(tcp.Handle{})
	}
	deadline := time.Time{}
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
		if cfg.Progress != nil && now.Sub(lastProgress) >= 200*time.Millisecond {
			cfg.Progress(c.done.Load(), now.Sub(m.start))
			lastProgress = now
		}
	}
	res := m.finish(cfg)
	var lat hist.Histogram
	for i := range c.stats {
		st := &c.stats[i]
		lat.Merge(&st.lat)
		res.Conns += st.done
		res.Failures += st.failures
		if st.lastErr != nil {
			res.Errors[st.lastErr.Error()] += st.failures
			res.FirstError = st.lastErr.Error()
		}
	}
	res.Failures += c.dialErr.Load()
	res.summarize(&lat, p)
	return res
}

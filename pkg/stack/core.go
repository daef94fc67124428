package stack

import (
	"context"
	"errors"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/clock"
)

// A core is one goroutine that runs shards to completion: shard i of its stack, or shard i
// of every stack in a Group, the way one DPDK lcore polls the queues of several ports. It
// parks when all of them are idle, until a timer is due or something wakes it.
type core struct {
	shards   []*shard
	clock    clock.Clock
	sleeping atomic.Int32
	wakeCh   chan struct{}
	timer    clock.Timer
	stop     atomic.Bool
}

func newCore(clk clock.Clock) *core {
	return &core{clock: clk, wakeCh: make(chan struct{}, 1)}
}

// spinYields is how many idle iterations a core yields the processor before it parks:
// under load more work arrives within microseconds, and a yield costs far less than a park
// and the wake-up that ends it.
const spinYields = 16

func (c *core) run() {
	idle := 0
	for !c.stop.Load() {
		work := 0
		for _, sh := range c.shards {
			work += sh.poll()
		}
		if work != 0 {
			idle = 0
			continue
		}
		if idle++; idle < spinYields {
			runtime.Gosched()
			continue
		}
		idle = 0
		c.park()
	}
}

func (c *core) hasWork() bool {
	if c.stop.Load() {
		return true
	}
	for _, sh := range c.shards {
		if sh.hasWork() {
			return true
		}
	}
	return false
}

// park sleeps until woken or until the next timer is due. Wakers check `sleeping` first,
// so waking a busy core costs them one atomic load.
func (c *core) park() {
	c.sleeping.Store(1)
	if c.hasWork() {
		c.sleeping.Store(0)
		return
	}
	var when int64
	found, polled := false, false
	for _, sh := range c.shards {
		if sh.notifier == nil {
			polled = true
		}
		if t, ok := sh.wheel.NextDeadline(); ok && (!found || t < when) {
			when, found = t, true
		}
	}
	switch {
	case polled:
		// A port that cannot wake us is polled every 50 µs.
		c.sleepFor(50 * time.Microsecond)
	case found:
		if d := time.Duration(when - c.clock.Now()); d > 0 {
			c.sleepFor(d)
		}
	default:
		<-c.wakeCh
	}
	c.sleeping.Store(0)
}

func (c *core) sleepFor(d time.Duration) {
	if c.timer == nil {
		c.timer = c.clock.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.wakeCh:
		c.timer.Stop()
	case <-c.timer.C():
	}
}

// Wake makes a parked core run.
func (c *core) Wake() {
	if c.sleeping.Load() != 0 {
		select {
		case c.wakeCh <- struct{}{}:
		default:
		}
	}
}

// startCores runs one goroutine per core, labelled for pprof.
func startCores(cores []*core, name string, wg *sync.WaitGroup) {
	for i, c := range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pprof.Do(context.Background(), pprof.Labels("stack", name, "core", strconv.Itoa(i)), func(context.Context) {
				c.run()
			})
		}()
	}
}

// Group runs the shards of several stacks on shared cores: core i polls shard i of every
// stack. Two stacks in one process (a client and a server over the in-memory pair) then
// keep each flow's packets on one core, with no cross-core hand-off and no wake-up between
// them. The stacks must be made with Config.Manual and the same number of shards.
type Group struct {
	stacks []*Stack
	cores  []*core
	wg     sync.WaitGroup
	once   sync.Once
}

// RunGroup starts the shared cores of manual stacks.
func RunGroup(stacks ...*Stack) (*Group, error) {
	if len(stacks) == 0 {
		return nil, errors.New("stack: empty group")
	}
	n := len(stacks[0].shards)
	for _, s := range stacks {
		if !s.cfg.Manual || s.running.Load() {
			return nil, errors.New("stack: a group needs manual stacks that nothing else runs")
		}
		if len(s.shards) != n {
			return nil, errors.New("stack: a group needs stacks with the same number of shards")
		}
	}
	g := &Group{stacks: stacks}
	for i := 0; i < n; i++ {
		c := newCore(stacks[0].clock)
		for _, s := range stacks {
			sh := s.shards[i]
			sh.core = c
			c.shards = append(c.shards, sh)
		}
		g.cores = append(g.cores, c)
	}
	for _, s := range stacks {
		s.group = g
		s.running.Store(true)
	}
	startCores(g.cores, "group", &g.wg)
	return g, nil
}

// Stop stops the group's cores; the stacks are then manual again (and can be closed).
func (g *Group) Stop() {
	g.once.Do(func() {
		for _, c := range g.cores {
			c.stop.Store(true)
			c.sleeping.Store(1)
			c.Wake()
		}
		g.wg.Wait()
		for _, s := range g.stacks {
			s.running.Store(false)
			s.group = nil
		}
	})
}

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
	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// A core is one goroutine that runs shards to completion: shard i of its stack, or shard i
// of every stack in a Group, the way one DPDK lcore polls the queues of several ports. It
// parks when all of them are idle, until a timer is due or something wakes it: in the
// kernel (epoll on the link's file descriptors and an eventfd that wakers write) when its
// shards' links have descriptors, else on a channel that the in-memory link and wakers
// signal. With busy polling it never parks.
type core struct {
	id       int
	shards   []*shard
	clock    clock.Clock
	sleeping atomic.Int32
	wakeCh   chan struct{}
	timer    clock.Timer
	stop     atomic.Bool
	busyPoll bool
	pin      bool
	poller   *poller             // epoll set of the shards' link descriptors, or nil
	spins    int                 // idle iterations before parking
	coalesce time.Duration       // Config.RxCoalesce
	sleep    func(time.Duration) // sleepThread; tests replace it
	wakeups  atomic.Uint64
}

func newCore(id int, clk clock.Clock) *core {
	return &core{id: id, clock: clk, wakeCh: make(chan struct{}, 1), spins: spinYields, sleep: sleepThread}
}

// prepare sets the core up from its shards' links before it first runs: an epoll set when
// any link has a descriptor to wait on.
func (c *core) prepare() error {
	var fds []int
	for _, sh := range c.shards {
		if sh.wait.FD >= 0 {
			fds = append(fds, sh.wait.FD)
		}
	}
	if len(fds) == 0 || c.busyPoll {
		return nil
	}
	p, err := newPoller(fds)
	if err != nil {
		return err
	}
	c.poller = p
	c.spins = spinYieldsFD
	return nil
}

// release frees what prepare made; the core has stopped.
func (c *core) release() {
	if c.poller != nil {
		c.poller.close()
		c.poller = nil
	}
}

// spinYields is how many idle iterations a core yields the processor before it parks:
// under load more work arrives within microseconds, and a yield costs far less than a park
// and the wake-up that ends it.
const spinYields = 16

// spinYieldsFD replaces spinYields for a core that sleeps in epoll: each idle iteration of
// such a core costs a receive system call that finds nothing, and epoll_wait returns at once
// when a frame is already there, so it parks after one.
const spinYieldsFD = 1

func (c *core) run() {
	if c.pin {
		// The thread stays locked for the goroutine's life; the runtime retires it after.
		runtime.LockOSThread()
		pinThread(c.id)
	}
	defer c.bindThreads()()
	idle := 0
	for !c.stop.Load() {
		work := 0
		for _, sh := range c.shards {
			work += sh.poll()
		}
		if work != 0 {
			idle = 0
			if c.coalesce > 0 {
				c.coalesceRx()
			}
			if c.poller != nil && c.drained() {
				// The last bursts emptied the sockets: another receive call now would
				// most likely find nothing, so wait in epoll (which returns at once if
				// frames came meanwhile) instead of spending a system call to learn it.
				c.park()
			}
			continue
		}
		if c.busyPoll {
			// Spin; yield now and then so that other goroutines (and the collector) run.
			if idle++; idle&63 == 0 || !c.pin {
				runtime.Gosched()
			}
			continue
		}
		if idle++; idle < c.spins {
			runtime.Gosched()
			continue
		}
		idle = 0
		c.park()
	}
}

// bindThreads gives the core's thread to the ports that want to know the threads their
// queues are driven from (dpdkshim.ThreadBinder: DPDK registers the thread as an lcore):
// the goroutine is locked to its thread for its life, and the returned function undoes the
// bindings on that thread when the core stops. A port that refuses is polled unbound.
func (c *core) bindThreads() func() {
	var unbinds []func()
	locked := c.pin
	for _, sh := range c.shards {
		tb, ok := sh.port.(dpdkshim.ThreadBinder)
		if !ok {
			continue
		}
		if !locked {
			runtime.LockOSThread() // never unlocked: the runtime retires the thread after
			locked = true
		}
		if unbind, err := tb.BindThread(sh.id); err == nil && unbind != nil {
			unbinds = append(unbinds, unbind)
		}
	}
	return func() {
		for i := len(unbinds) - 1; i >= 0; i-- {
			unbinds[i]()
		}
	}
}

// coalesceRx waits a little after a short receive burst, so that the next one finds more
// frames waiting (a NIC's receive interrupt moderation, ethtool's rx-usecs): fewer system
// calls per packet, and the processor goes to other work meanwhile.
func (c *core) coalesceRx() {
	rx, burst := 0, 0
	for _, sh := range c.shards {
		rx += sh.lastRx
		burst += sh.burst
	}
	if rx > 0 && rx < burst/2 {
		c.sleep(c.coalesce)
	}
}

// drained reports whether every shard's last receive burst came back short of a full one.
func (c *core) drained() bool {
	for _, sh := range c.shards {
		if sh.lastRx >= sh.burst {
			return false
		}
	}
	return true
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
		if sh.wait.FD < 0 && sh.wait.Notifier == nil {
			polled = true
		}
		if tp, ok := sh.port.(dpdkshim.TxPender); ok && tp.TxPending(sh.id) {
			polled = true // frames wait for room in the kernel: ask again soon
		}
		if t, ok := sh.wheel.NextDeadline(); ok && (!found || t < when) {
			when, found = t, true
		}
	}
	wait := time.Duration(-1) // until woken
	if found {
		wait = max(time.Duration(when-c.clock.Now()), 0)
	}
	if polled && (wait < 0 || wait > 50*time.Microsecond) {
		// A link that can neither wake us nor be waited on is polled every 50 µs.
		wait = 50 * time.Microsecond
	}
	switch {
	case wait == 0:
	case c.poller != nil:
		c.poller.wait(wait)
	case wait > 0:
		c.sleepFor(wait)
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
		c.wakeups.Add(1)
		if c.poller != nil {
			c.poller.wake()
			return
		}
		select {
		case c.wakeCh <- struct{}{}:
		default:
		}
	}
}

// startCores prepares every core and runs one goroutine per core, labelled for pprof.
func startCores(cores []*core, name string, wg *sync.WaitGroup) error {
	for i, c := range cores {
		if err := c.prepare(); err != nil {
			for _, d := range cores[:i] {
				d.release()
			}
			return err
		}
	}
	for i, c := range cores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pprof.Do(context.Background(), pprof.Labels("stack", name, "core", strconv.Itoa(i)), func(context.Context) {
				c.run()
			})
		}()
	}
	return nil
}

// stopCores stops the cores, waits for their goroutines and releases what they held.
func stopCores(cores []*core, wg *sync.WaitGroup) {
	for _, c := range cores {
		c.stop.Store(true)
		c.sleeping.Store(1)
		c.Wake()
	}
	wg.Wait()
	for _, c := range cores {
		c.release()
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
		c := newCore(i, stacks[0].clock)
		for _, s := range stacks {
			sh := s.shards[i]
			sh.core = c
			c.shards = append(c.shards, sh)
			c.busyPoll = c.busyPoll || s.cfg.BusyPoll
			c.pin = c.pin || s.cfg.Pin
		}
		g.cores = append(g.cores, c)
	}
	if err := startCores(g.cores, "group", &g.wg); err != nil {
		for _, s := range stacks {
			for _, sh := range s.shards {
				sh.core = sh.own
			}
		}
		return nil, err
	}
	for _, s := range stacks {
		s.group = g
		s.running.Store(true)
	}
	return g, nil
}

// Stop stops the group's cores; the stacks are then manual again (and can be closed).
func (g *Group) Stop() {
	g.once.Do(func() {
		stopCores(g.cores, &g.wg)
		for _, s := range g.stacks {
			s.running.Store(false)
			s.group = nil
		}
	})
}

package dpdkshim

import "github.com/shardstack/shardstack/pkg/header"

// Port is one network port with NumQueues receive/transmit queue pairs. For a given q,
// RxBurst, TxBurst and Pool(q) are used by one goroutine only.
type Port interface {
	// Name identifies the port in logs and socket tables.
	Name() string
	// MAC is the port's hardware address.
	MAC() header.MAC
	// MTU is the largest IP packet the port carries.
	MTU() int
	// NumQueues is the number of rx/tx queue pairs.
	NumQueues() int
	// Steering states how the port spreads received flows over its queues, or nil when it
	// cannot say (frames may then arrive on any queue).
	Steering() Steering
	// Offloads reports the offloads the port performs.
	Offloads() Offloads
	// RxWait says how the goroutine of queue q can sleep until frames arrive.
	RxWait(q int) Wait
	// RxBurst fills pkts with received frames from queue q and returns how many; the caller
	// owns them and frees them.
	RxBurst(q int, pkts []*Packet) int
	// TxBurst queues pkts for transmission on queue q and returns how many it took; the port
	// owns (and eventually frees) pkts[:n], the caller still owns pkts[n:].
	TxBurst(q int, pkts []*Packet) int
	// Pool returns the buffer pool owned by queue q's goroutine: the stack takes the
	// packets it transmits from it.
	Pool(q int) *Pool
	// Close releases the port.
	Close() error
}

// TxPender is a Port that can hold frames it accepted from TxBurst and could not hand on
// yet (an AF_PACKET transmit ring whose socket buffer was full): TxPending reports whether
// queue q has such frames. The stack then sleeps only briefly, and its next burst on the
// queue asks the kernel again, so frames never wait for traffic to arrive.
type TxPender interface {
	TxPending(q int) bool
}

// Offloads are the work a port does for the stack.
type Offloads struct {
	// RxCsum: received frames may carry CsumVerified.
	RxCsum bool
	// TxCsum: the port completes the transport checksum of packets marked with SetTxCsum.
	TxCsum bool
}

// Wait is how a shard that found its queue idle sleeps until frames arrive. A port gives
// an FD, a Notifier, or neither (then the shard polls).
type Wait struct {
	// FD, when >= 0, becomes readable (epoll) when the queue has frames.
	FD int
	// Notifier, when not nil, wakes a registered Waker when frames arrive.
	Notifier Notifier
}

// NoWait is the Wait of a port that can only be polled.
var NoWait = Wait{FD: -1}

// Waker wakes a parked shard. Wake must be cheap when the shard is not parked.
type Waker interface {
	Wake()
}

// Notifier is a port that can wake the goroutine of a queue when frames arrive, and say
// whether any are waiting, so that an idle shard can park instead of spinning.
type Notifier interface {
	// SetRxWaker registers w to be woken when frames arrive on queue q.
	SetRxWaker(q int, w Waker)
	// RxReady reports whether RxBurst(q) would return frames now.
	RxReady(q int) bool
}

// QueueLimiter is a port that can confine its receive traffic to its first n queues, for a
// stack with fewer shards than the port has queues.
type QueueLimiter interface {
	UseQueues(n int)
}

// ThreadBinder is a port whose queues want to be driven from OS threads it knows (DPDK's
// registered lcores, which get a mempool cache each): the stack locks each shard's
// goroutine to its OS thread and calls BindThread(q) on that thread before the shard's
// first burst, and the returned unbind on the same thread after its last.
type ThreadBinder interface {
	BindThread(q int) (unbind func(), err error)
}

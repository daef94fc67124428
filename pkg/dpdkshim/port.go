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
	// RxBurst fills pkts with received frames from queue q and returns how many; the caller
	// owns them and frees them.
	RxBurst(q int, pkts []*Packet) int
	// TxBurst queues pkts for transmission on queue q and returns how many it took; the port
	// owns (and eventually frees) pkts[:n], the caller still owns pkts[n:].
	TxBurst(q int, pkts []*Packet) int
	// Pool returns the buffer pool owned by queue q's goroutine.
	Pool(q int) *Pool
	// Close releases the port.
	Close() error
}

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

// RSSFunc computes the receiving stack's flow hash of a frame, as a NIC's receive-side
// scaling does; ok is false for frames that are not part of a flow (ARP).
type RSSFunc func(frame []byte) (hash uint64, ok bool)

// RSSPort is a port whose receive queue choice the stack can program: frames go to queue
// hash.Shard(h, NumQueues()) and carry h in Packet.RSS.
type RSSPort interface {
	SetRSS(fn RSSFunc)
	// SetRSSQueues limits RSS to the first n receive queues (the stack's shards).
	SetRSSQueues(n int)
	// SetRSSKey names the hash fn computes (its key or seed). A stack that transmits
	// packets carrying its own flow hash in Packet.RSS lets a link whose other end uses the
	// same key steer by that hash without computing it again.
	SetRSSKey(key uint64)
}

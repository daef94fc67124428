package queue

import "sync/atomic"

// SPSC is a bounded lock-free single-producer single-consumer ring. It serves
// as a shard-to-shard inbox and as a link queue.
//
// Exactly one goroutine at a time may call Push and PushBatch (the producer)
// and exactly one may call Pop, PopBatch and Empty (the consumer); Len and
// Cap may be called from anywhere. Each side keeps its own position in a
// plain field and a cached copy of the other side's published position, and
// reads the other side's cache line only when the cache says the ring is full
// (producer) or empty (consumer). That keeps the two cores from bouncing the
// counters' lines back and forth on every operation.
type SPSC[T any] struct {
	slots []T
	mask  uint64
	_     linePad

	// Consumer's line.
	head      atomic.Uint64 // published consumer position, read by the producer
	cHead     uint64        // consumer's own position (== head, without the atomic load)
	tailCache uint64        // the last tail the consumer saw
	_         [cacheLineSize - 24]byte

	// Producer's line.
	tail      atomic.Uint64 // published producer position, read by the consumer
	pTail     uint64        // producer's own position
	headCache uint64        // the last head the producer saw
	_         [cacheLineSize - 24]byte
}

// NewSPSC returns an empty ring holding capacity values, rounded up to a
// power of two and at least 2. It panics if capacity is negative or larger
// than MaxCapacity.
func NewSPSC[T any](capacity int) *SPSC[T] {
	n := ringSize(capacity)
	return &SPSC[T]{slots: make([]T, n), mask: uint64(n - 1)}
}

// free returns how many cells the producer may fill, refreshing its cached
// head only when the cache says fewer than want are free.
func (q *SPSC[T]) free(want uint64) uint64 {
	size := q.mask + 1
	if n := size - (q.pTail - q.headCache); n >= want {
		return n
	}
	q.headCache = q.head.Load()
	return size - (q.pTail - q.headCache)
}

// filled returns how many cells the consumer may take, refreshing its cached
// tail only when the cache says fewer than want are filled.
func (q *SPSC[T]) filled(want uint64) uint64 {
	if n := q.tailCache - q.cHead; n >= want {
		return n
	}
	q.tailCache = q.tail.Load()
	return q.tailCache - q.cHead
}

// Push adds v and reports whether there was room; producer only.
func (q *SPSC[T]) Push(v T) bool {
	if q.free(1) == 0 {
		return false
	}
	q.slots[q.pTail&q.mask] = v
	q.pTail++
	q.tail.Store(q.pTail)
	return true
}

// Pop removes the oldest value, or returns the zero value and false when the
// ring is empty; consumer only. The slot is cleared so the ring keeps nothing
// alive for the garbage collector.
func (q *SPSC[T]) Pop() (T, bool) {
	var zero T
	if q.filled(1) == 0 {
		return zero, false
	}
	s := &q.slots[q.cHead&q.mask]
	v := *s
	*s = zero
	q.cHead++
	q.head.Store(q.cHead)
	return v, true
}

// PushBatch pushes as many leading values of vs as fit and returns how many;
// producer only. The consumer sees the whole batch at once (one store).
func (q *SPSC[T]) PushBatch(vs []T) int {
	n := min(uint64(len(vs)), q.free(uint64(len(vs))))
	for i := uint64(0); i < n; i++ {
		q.slots[(q.pTail+i)&q.mask] = vs[i]
	}
	if n > 0 {
		q.pTail += n
		q.tail.Store(q.pTail)
	}
	return int(n)
}

// PopBatch pops up to len(out) values into out, oldest first, and returns how
// many; consumer only. Emptied slots are cleared.
func (q *SPSC[T]) PopBatch(out []T) int {
	var zero T
	n := min(uint64(len(out)), q.filled(uint64(len(out))))
	for i := uint64(0); i < n; i++ {
		s := &q.slots[(q.cHead+i)&q.mask]
		out[i] = *s
		*s = zero
	}
	if n > 0 {
		q.cHead += n
		q.head.Store(q.cHead)
	}
	return int(n)
}

// Empty reports whether the consumer would find nothing to pop; consumer
// only. It costs no atomic load when the cached tail already shows values
// and one otherwise.
func (q *SPSC[T]) Empty() bool { return q.filled(1) == 0 }

// Len returns the number of values in the ring: exact when quiescent,
// approximate while the producer or consumer is running. Any goroutine.
func (q *SPSC[T]) Len() int {
	head := q.head.Load()
	tail := q.tail.Load() // read second: tail >= head always holds
	return int(min(tail-head, q.mask+1))
}

// Cap returns the number of values the ring can hold.
func (q *SPSC[T]) Cap() int { return int(q.mask + 1) }

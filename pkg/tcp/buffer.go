package tcp

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardstack/shardstack/pkg/queue"
)

// A connection's receive and send buffers are byteRings: a run of bytes between two
// running positions, tail (consumed; for the send buffer, acknowledged) and head
// (produced), held in a linked list of fixed-size chunks that come from the shard's chunk
// pool and go back to it as soon as no byte in them is wanted. An idle connection holds no
// chunk at all: memory is spent only while data waits in a buffer.
//
// One side of each ring is the shard, the other an application goroutine (or, for
// event-driven connections, a callback on the shard):
//
//	rcv: the shard produces (and writes out-of-order data ahead of head), the application consumes
//	snd: the application produces, the shard reads what it sends and releases what is acknowledged
//
// Growing and shrinking without a lock on the per-segment path:
//   - The producer owns the last chunk (the one head is in) and is the only one to link a
//     new chunk after it; it stores the link before it publishes head, so the consumer,
//     which only reads below head, always finds the chunks it needs.
//   - The consumer frees a chunk once tail has passed its end and it has a successor, so
//     it never frees the producer's current chunk, and the producer never looks back.
//   - The last chunk of an emptied ring (tail == head) goes back by the shard's trim, under
//     the ring's mutex taken with TryLock. The application side holds that mutex for each
//     of its calls (one Read or Write, not a segment), so the shard frees the chunk only
//     when the application is not using the ring, and skips the trim otherwise (the
//     application is about to use the chunk anyway). The shard's own per-segment work,
//     producing received data and reading and releasing sent data, takes no lock.
//
// The ring's capacity (limit) is a number, not memory: it bounds used() and can grow while
// the connection runs (receive-buffer autotuning, SetReadBuffer).
type byteRing struct {
	first atomic.Pointer[chunk] // the oldest chunk still wanted (the consumer's)
	head  atomic.Uint64         // bytes ever produced (received in order / written)
	_     [40]byte
	tail  atomic.Uint64 // bytes ever consumed (read / acknowledged)
	limit atomic.Int64  // capacity in bytes
	mu    sync.Mutex    // the application side's, per call; the shard's trim TryLocks it
	last  *chunk        // the producer's current chunk (nil: the ring holds none)
	pool  *chunkPool
	// shardProduces says which side is the shard's: the producer (the receive buffer) or
	// the consumer (the send buffer), for the chunk pool's sides.
	shardProduces bool
	// The consumer's cursor: the chunk that held the last position it looked at, so that
	// the shard's reads of the send buffer, mostly sequential, do not walk the list.
	cur *chunk
}

// chunkData is the bytes a chunk holds: its struct then fits the 4096-byte size class.
const chunkData = 4096 - 24

type chunk struct {
	next atomic.Pointer[chunk]
	base uint64 // the ring position of data[0]
	_    uint64
	data [chunkData]byte
}

func (c *chunk) end() uint64 { return c.base + chunkData }

// chunkPool is a shard's store of free chunks. The shard's own side of a ring takes and
// returns chunks through a LIFO stack only it touches, so that the chunk it reuses is still
// in its core's cache; the application's side goes through a lock-free ring shared with the
// shard. Past their capacity, chunks go to the garbage collector.
//
// The shared ring does not keep what a burst left behind: every chunkDecay while it holds
// more than a reserve, the shard's decay gives the garbage collector the chunks that lay
// in it through the whole last interval (the ring is FIFO, so they are the oldest, at its
// head: as many as it held at the last decay less the takes since), down to the reserve.
// A steady flow keeps what it cycles through; after a burst the pool is back to its
// reserve within two intervals, so buffer memory is held only while data waits, and
// shortly after.
type chunkPool struct {
	local  []*chunk // the shard's, LIFO
	shared *queue.MPMC[*chunk]
	takes  atomic.Uint64 // chunks taken from shared, by either side
	// At the last decay (the shard's only): shared's length and takes.
	lastLen   int
	lastTakes uint64
}

// chunkDecay is how often the shard's decay looks at the shared ring, and chunkReserve
// what it leaves there in any case (256 KiB a shard), so that a connection arriving after
// a quiet spell, with a few kilobytes to move, finds its chunks without allocating.
const (
	chunkDecay   = int64(time.Second)
	chunkReserve = 64
)

const chunkLocal = 64

func newChunkPool(capacity int) *chunkPool {
	return &chunkPool{local: make([]*chunk, 0, chunkLocal), shared: queue.NewMPMC[*chunk](capacity)}
}

func fresh(c *chunk, base uint64) *chunk {
	c.base = base
	c.next.Store(nil)
	return c
}

// get takes a chunk for ring position base; shard says which side is asking.
func (p *chunkPool) get(base uint64, shard bool) *chunk {
	if shard {
		if n := len(p.local); n > 0 {
			c := p.local[n-1]
			p.local = p.local[:n-1]
			return fresh(c, base)
		}
	}
	if c, ok := p.shared.Pop(); ok {
		p.takes.Add(1)
		return fresh(c, base)
	}
	return fresh(new(chunk), base)
}

// decay drops the chunks that lay in the shared ring since the last decay, and reports
// whether it still holds any (then the shard calls again after chunkDecay). Shard only.
func (p *chunkPool) decay() (dropped int, more bool) {
	takes := p.takes.Load()
	idle := min(p.lastLen-int(takes-p.lastTakes), p.shared.Len()-chunkReserve)
	for ; dropped < idle; dropped++ {
		if _, ok := p.shared.Pop(); !ok {
			break
		}
	}
	p.lastLen, p.lastTakes = p.shared.Len(), takes
	return dropped, p.lastLen > chunkReserve
}

// put gives a chunk back; shard says which side is giving it.
func (p *chunkPool) put(c *chunk, shard bool) {
	if shard && len(p.local) < cap(p.local) {
		p.local = append(p.local, c)
		return
	}
	p.shared.Push(c)
}

// reset empties the ring for a new connection with capacity size, giving back any chunk it
// still holds. Shard only, with no application left on the ring.
func (r *byteRing) reset(pool *chunkPool, size int, shardProduces bool) {
	r.freeAll()
	r.pool, r.shardProduces = pool, shardProduces
	r.limit.Store(int64(size))
	if r.head.Load() != 0 {
		r.head.Store(0)
	}
	if r.tail.Load() != 0 {
		r.tail.Store(0)
	}
}

// freeAll gives every chunk back (the connection is gone, or reset). Shard only.
func (r *byteRing) freeAll() {
	for c := r.first.Load(); c != nil; {
		next := c.next.Load()
		r.pool.put(c, true)
		c = next
	}
	if r.first.Load() != nil {
		r.first.Store(nil)
	}
	r.last, r.cur = nil, nil
}

// used is the number of bytes between tail and head.
func (r *byteRing) used() int { return int(r.head.Load() - r.tail.Load()) }

// space is what the producer may still add.
func (r *byteRing) space() int { return max(int(r.limit.Load())-r.used(), 0) }

// capacity is the ring's current limit.
func (r *byteRing) capacity() int { return int(r.limit.Load()) }

// setCapacity changes the limit (it may leave used() above it for a while).
func (r *byteRing) setCapacity(n int) { r.limit.Store(int64(n)) }

// chunkFor returns the producer's chunk for position pos, linking new chunks as needed.
// Producer only.
//
// r.last is always the chunk head is in: its end lies beyond head, or at head with no chunk
// linked after it yet. The consumer frees only chunks that end at or below tail and have a
// successor, so it never frees r.last, and once a successor is linked to a chunk that ends
// at head, r.last moves to the successor before anything else touches that chunk.
func (r *byteRing) chunkFor(pos uint64) *chunk {
	c := r.last
	if c == nil {
		// An empty ring restarts at head (nothing is wanted below it).
		h := r.head.Load()
		c = r.pool.get(h-h%chunkData, r.shardProduces)
		r.last = c
		r.first.Store(c)
	}
	h := r.head.Load()
	for pos >= c.end() {
		end := c.end() // read before linking: the consumer may free c as soon as it has a successor
		n := c.next.Load()
		if n == nil {
			n = r.pool.get(end, r.shardProduces)
			c.next.Store(n)
		}
		if c == r.last && end <= h {
			r.last = n
		}
		c = n
	}
	return c
}

// writeAt copies p to ring position pos, which may lie ahead of head (out-of-order data;
// the caller keeps it within the limit); it does not move head. Producer only.
func (r *byteRing) writeAt(pos uint64, p []byte) {
	for len(p) > 0 {
		c := r.chunkFor(pos)
		n := copy(c.data[pos-c.base:], p)
		p = p[n:]
		pos += uint64(n)
	}
}

// advance publishes n more bytes at head (written already with writeAt). Producer only.
func (r *byteRing) advance(n int) {
	h := r.head.Load() + uint64(n)
	if r.last != nil {
		// Keep last at the chunk head is in, so that trim and writes start from there.
		for r.last.end() < h || (r.last.end() == h && r.last.next.Load() != nil) {
			r.last = r.last.next.Load()
		}
	}
	r.head.Store(h)
}

// produce copies as much of p as fits and returns how much it took. Producer only (the
// application side holds r.mu; the shard, for the receive buffer, does not).
func (r *byteRing) produce(p []byte) int {
	h := r.head.Load()
	n := min(len(p), int(r.limit.Load())-int(h-r.tail.Load()))
	if n <= 0 {
		return 0
	}
	r.writeAt(h, p[:n])
	r.advance(n)
	return n
}

// peek copies the len(dst) bytes that start at position pos (tail <= pos, pos+len(dst) <=
// head) into dst. Consumer only.
func (r *byteRing) peek(pos uint64, dst []byte) {
	c := r.cur
	if c == nil || pos < c.base {
		c = r.first.Load()
	}
	for len(dst) > 0 {
		for pos >= c.end() {
			c = c.next.Load()
		}
		n := copy(dst, c.data[pos-c.base:])
		dst = dst[n:]
		pos += uint64(n)
	}
	r.cur = c
}

// readSpan returns the bytes from tail to the end of tail's chunk or head, whichever comes
// first: the consumer's data in place, for io.WriterTo (nil when the ring is empty).
// Consumer only.
func (r *byteRing) readSpan() []byte {
	t, h := r.tail.Load(), r.head.Load()
	if t == h {
		return nil
	}
	c := r.cur
	if c == nil || t < c.base {
		c = r.first.Load()
	}
	for t >= c.end() {
		c = c.next.Load()
	}
	r.cur = c
	return c.data[t-c.base : min(h, c.end())-c.base]
}

// writeSpan returns the free room at head, within head's chunk and the limit, for the
// producer to fill in place (io.ReaderFrom) and then publish with advance (nil when the
// ring is full). Producer only.
func (r *byteRing) writeSpan() []byte {
	h := r.head.Load()
	room := r.limit.Load() - int64(h-r.tail.Load())
	if room <= 0 {
		return nil
	}
	c := r.chunkFor(h)
	return c.data[h-c.base : h-c.base+uint64(min(room, int64(c.end()-h)))]
}

// consume copies up to len(p) bytes out and releases them. Consumer only (the application,
// holding r.mu).
func (r *byteRing) consume(p []byte) int {
	t := r.tail.Load()
	n := min(len(p), int(r.head.Load()-t))
	if n <= 0 {
		return 0
	}
	r.peek(t, p[:n])
	r.release(n)
	return n
}

// release drops n bytes from the tail, giving back the chunks no byte of which is wanted
// any more (all but the producer's current one). Consumer only.
func (r *byteRing) release(n int) {
	t := r.tail.Load() + uint64(n)
	r.tail.Store(t)
	for c := r.first.Load(); c != nil && c.end() <= t; {
		next := c.next.Load()
		if next == nil {
			break // the producer's chunk: trim gives it back once the ring is idle
		}
		if r.cur == c {
			r.cur = nil
		}
		r.first.Store(next)
		r.pool.put(c, !r.shardProduces)
		c = next
	}
}

// trim gives back the last chunk of an empty ring. Shard only, and only as the producer of
// the receive buffer (holding no out-of-order data ahead of head: the caller checks) or the
// consumer of the send buffer; it does nothing while the application side is in a call on
// the ring.
func (r *byteRing) trim() {
	if r.first.Load() == nil || r.head.Load() != r.tail.Load() || !r.mu.TryLock() {
		return
	}
	if r.head.Load() == r.tail.Load() {
		r.freeAll()
	}
	r.mu.Unlock()
}

// holds reports whether the ring holds any chunk.
func (r *byteRing) holds() bool { return r.first.Load() != nil }

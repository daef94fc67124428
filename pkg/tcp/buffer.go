package tcp

import "sync/atomic"

// byteRing is a power-of-two ring of bytes shared by one producer and one consumer, each
// owning one of the two running counters. It is the hand-off between an application
// goroutine and the shard for a connection's data: rcv (shard writes, application reads) and
// snd (application writes, shard reads, and releases only what the peer acknowledged).
type byteRing struct {
	buf  []byte
	mask uint64
	_    [48]byte
	head atomic.Uint64 // total bytes ever produced
	_    [56]byte
	tail atomic.Uint64 // total bytes ever consumed (for snd: acknowledged)
}

func (r *byteRing) init(size int) {
	n := 1
	for n < size {
		n <<= 1
	}
	if len(r.buf) != n {
		r.buf = make([]byte, n)
	}
	r.mask = uint64(n - 1)
	r.head.Store(0)
	r.tail.Store(0)
}

// reset empties the ring for a new connection. The counters go back to zero so that a
// short connection on a recycled endpoint writes the same first bytes of the buffer as the
// last one did, which are still in this core's cache; carrying on from where the last one
// stopped would walk the whole buffer and miss the cache on every new line.
func (r *byteRing) reset(size int) {
	n := 1
	for n < size {
		n <<= 1
	}
	if len(r.buf) != n {
		r.init(size)
		return
	}
	if r.head.Load() != 0 {
		r.head.Store(0)
	}
	if r.tail.Load() != 0 {
		r.tail.Store(0)
	}
}

// used is the number of bytes between tail and head.
func (r *byteRing) used() int { return int(r.head.Load() - r.tail.Load()) }

// space is what the producer may still add.
func (r *byteRing) space() int { return len(r.buf) - r.used() }

// produce copies as much of p as fits and returns how much it took. Producer only.
func (r *byteRing) produce(p []byte) int {
	h := r.head.Load()
	n := min(len(p), len(r.buf)-int(h-r.tail.Load()))
	if n <= 0 {
		return 0
	}
	r.copyIn(h, p[:n])
	r.head.Store(h + uint64(n))
	return n
}

func (r *byteRing) copyIn(pos uint64, p []byte) {
	i := int(pos & r.mask)
	c := copy(r.buf[i:], p)
	if c < len(p) {
		copy(r.buf, p[c:])
	}
}

// peek copies the n bytes that start at absolute position pos into dst (len(dst) >= n).
func (r *byteRing) peek(pos uint64, dst []byte) {
	i := int(pos & r.mask)
	c := copy(dst, r.buf[i:])
	if c < len(dst) {
		copy(dst[c:], r.buf)
	}
}

// consume copies up to len(p) bytes out and releases them. Consumer only.
func (r *byteRing) consume(p []byte) int {
	t := r.tail.Load()
	n := min(len(p), int(r.head.Load()-t))
	if n <= 0 {
		return 0
	}
	r.peek(t, p[:n])
	r.tail.Store(t + uint64(n))
	return n
}

// release drops n bytes from the tail without copying them (the send ring, on an ACK).
func (r *byteRing) release(n int) { r.tail.Store(r.tail.Load() + uint64(n)) }

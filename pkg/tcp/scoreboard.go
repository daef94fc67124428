package tcp

import (
	"github.com/shardstack/shardstack/pkg/seqnum"
)

// The scoreboard: every segment in flight, [snd_una, snd_max), in sequence order, with when
// it was last sent and what the peer said of it (SACKed) or the sender concluded (lost).
// It is what RACK (RFC 8985), SACK-based recovery (RFC 6675) and the retransmission cursor
// read and write, as Linux's retransmission queue of skbs is. Its storage is a ring of
// records from a per-shard pool, sized to what is in flight and given back when nothing
// is, so an idle connection holds none.

// txSeg flags.
const (
	segSacked      uint8 = 1 << iota // the peer SACKed it
	segLost                          // RACK or the RTO marked it lost: due for retransmission
	segRetrans                       // its last transmission was a retransmission
	segEverRetrans                   // it was retransmitted at least once (Karn)
	segFin                           // it carries the FIN (end includes it)
)

// txSeg is one segment in flight.
type txSeg struct {
	start, end seqnum.Value
	xmit       int64  // when it was last sent
	order      uint32 // the connection's transmission count when it was last sent
	flags      uint8
}

func (g *txSeg) has(f uint8) bool { return g.flags&f != 0 }

// scoreboard is the ring of segments in flight.
type scoreboard struct {
	segs  []txSeg // power-of-two capacity, nil when empty and idle
	head  int
	n     int
	pools *segPools
}

// segPools keeps a shard's scoreboard rings by capacity (powers of two from 16).
type segPools struct {
	free [segClasses][][]txSeg
}

const (
	segMinCap  = 16
	segClasses = 12 // up to 32768 segments in flight
	segKeep    = 64 // rings kept per class
)

func segClass(capacity int) int {
	c := 0
	for n := segMinCap; n < capacity && c < segClasses-1; n <<= 1 {
		c++
	}
	return c
}

func (p *segPools) get(class int) []txSeg {
	if k := len(p.free[class]); k > 0 {
		s := p.free[class][k-1]
		p.free[class] = p.free[class][:k-1]
		return s
	}
	return make([]txSeg, segMinCap<<class)
}

func (p *segPools) put(s []txSeg) {
	c := segClass(len(s))
	if len(s) == segMinCap<<c && len(p.free[c]) < segKeep {
		p.free[c] = append(p.free[c], s)
	}
}

// len is the number of segments in flight.
func (b *scoreboard) len() int { return b.n }

// at returns the i-th segment in flight, 0 the oldest.
func (b *scoreboard) at(i int) *txSeg { return &b.segs[(b.head+i)&(len(b.segs)-1)] }

// last returns the newest segment in flight (the scoreboard must not be empty).
func (b *scoreboard) last() *txSeg { return b.at(b.n - 1) }

// push records a segment just sent for the first time.
func (b *scoreboard) push(start, end seqnum.Value, now int64, order uint32, flags uint8) {
	if b.n == len(b.segs) {
		b.grow()
	}
	*b.at(b.n) = txSeg{start: start, end: end, xmit: now, order: order, flags: flags}
	b.n++
}

func (b *scoreboard) grow() {
	if b.segs == nil {
		b.segs = b.pools.get(0)
		b.head = 0
		return
	}
	bigger := b.pools.get(segClass(2 * len(b.segs)))
	for i := 0; i < b.n; i++ {
		bigger[i] = *b.at(i)
	}
	b.pools.put(b.segs)
	b.segs, b.head = bigger, 0
}

// popFront drops the oldest segment.
func (b *scoreboard) popFront() {
	b.head = (b.head + 1) & (len(b.segs) - 1)
	b.n--
	if b.n == 0 {
		b.release()
	}
}

// release gives the ring back to the pool (nothing is in flight).
func (b *scoreboard) release() {
	if b.segs != nil {
		b.pools.put(b.segs)
		b.segs, b.head, b.n = nil, 0, 0
	}
}

// search returns the index of the first segment whose end is after seq (b.n if none).
func (b *scoreboard) search(seq seqnum.Value) int {
	lo, hi := 0, b.n
	for lo < hi {
		m := (lo + hi) / 2
		if seq.LessThan(b.at(m).end) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

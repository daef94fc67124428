package dpdkshim

import (
	"github.com/shardstack/shardstack/pkg/queue"
)

// Default buffer geometry: room for a 1500-byte IP packet behind an Ethernet header, with
// headroom for every header the stack prepends.
const (
	DefaultBufSize  = 2048
	DefaultHeadroom = 128
)

// Packet is one frame in a pool-owned buffer. Data() is the frame; the bytes before it are
// headroom for Prepend and the bytes after it tailroom for Append.
type Packet struct {
	buf   []byte
	off   int
	end   int
	pool  *Pool
	link  queue.Link[Packet]
	alien bool // freed by a goroutine other than the pool's owner

	// Queue is the queue the packet was received on.
	Queue uint16
	// RSS is the flow hash: on receive, the one the port computed for the receiving stack;
	// on transmit, the sending stack's own (valid when HasRSS).
	RSS uint64
	// HasRSS reports whether RSS holds a flow hash.
	HasRSS bool
	// Time is the port clock's time when the frame crossed the link, for ports that stamp
	// frames (the in-memory pair does while a sink or a delay is installed); 0 otherwise.
	Time int64
	// Mark is free for the stack's own use while it holds the packet.
	Mark uint8
}

// QueueLink lets a Packet sit in a queue.MPSCList (a pool's list of remotely freed packets).
func (p *Packet) QueueLink() *queue.Link[Packet] { return &p.link }

// Data returns the frame.
func (p *Packet) Data() []byte { return p.buf[p.off:p.end] }

// Len returns the frame length.
func (p *Packet) Len() int { return p.end - p.off }

// Headroom returns how many bytes Prepend can still add.
func (p *Packet) Headroom() int { return p.off }

// Tailroom returns how many bytes Append can still add.
func (p *Packet) Tailroom() int { return len(p.buf) - p.end }

// Prepend grows the frame by n bytes at the front and returns them; nil if the headroom is
// too small or n is negative.
func (p *Packet) Prepend(n int) []byte {
	if n < 0 || n > p.off {
		return nil
	}
	p.off -= n
	return p.buf[p.off : p.off+n]
}

// Append grows the frame by n bytes at the end and returns them; nil if the tailroom is too
// small or n is negative.
func (p *Packet) Append(n int) []byte {
	if n < 0 || n > len(p.buf)-p.end {
		return nil
	}
	p.end += n
	return p.buf[p.end-n : p.end]
}

// TrimFront removes n bytes from the front of the frame (n is clamped to [0, length]).
func (p *Packet) TrimFront(n int) {
	p.off += min(max(n, 0), p.end-p.off)
}

// SetLen truncates or extends the frame to n bytes from its current start (clamped to the
// buffer).
func (p *Packet) SetLen(n int) {
	// Clamp n before adding it: p.off+n would overflow for n near MaxInt.
	p.end = p.off + min(max(n, 0), len(p.buf)-p.off)
}

// Reset empties the frame and restores the pool's headroom.
func (p *Packet) Reset() {
	p.off = p.pool.headroom
	p.end = p.off
	p.Queue, p.RSS, p.HasRSS, p.Time, p.Mark = 0, 0, false, 0, 0
}

// SetData replaces the frame with a copy of b placed after the pool's headroom; it returns
// false if b does not fit.
func (p *Packet) SetData(b []byte) bool {
	p.off = p.pool.headroom
	if len(b) > len(p.buf)-p.off {
		p.end = p.off
		return false
	}
	p.end = p.off + copy(p.buf[p.off:], b)
	return true
}

// MarkAlien records that the packet will be freed by a goroutine other than its pool's owner,
// so that Free takes the lock-free remote path. Ports and stacks call it when a packet crosses
// goroutines (the in-memory pair's delivery, a shard-to-shard handoff).
func (p *Packet) MarkAlien() { p.alien = true }

// Free returns the packet to its pool. On the pool owner's goroutine it is a slice push;
// for a packet marked alien it is FreeRemote.
func (p *Packet) Free() {
	if p.alien {
		p.FreeRemote()
		return
	}
	p.pool.put(p)
}

// FreeRemote returns the packet to its pool from any goroutine (one CAS).
func (p *Packet) FreeRemote() {
	p.alien = false
	p.pool.remote.Push(p)
}

// FreeBatch frees packets for one goroutine, sending the ones that belong to another
// goroutine's pool back in chains: one lock-free push per run of packets from the same
// pool instead of one per packet. Call Flush before the goroutine parks or yields.
type FreeBatch struct {
	pool  *Pool
	chain queue.Chain[Packet, *Packet]
}

// Free frees p now (its own pool) or adds it to the batch (another goroutine's pool).
func (b *FreeBatch) Free(p *Packet) {
	if !p.alien {
		p.pool.put(p)
		return
	}
	p.alien = false
	if p.pool != b.pool {
		b.Flush()
		b.pool = p.pool
	}
	b.chain.Add(p)
}

// Flush sends the gathered packets home.
func (b *FreeBatch) Flush() {
	if b.pool != nil && b.chain.Len() > 0 {
		b.pool.remote.PushChain(&b.chain)
	}
	b.pool = nil
}

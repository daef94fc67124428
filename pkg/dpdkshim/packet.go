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

// Flags is a packet's offload metadata: what the link already did or is asked to do.
type Flags uint8

// The offload flags.
const (
	// CsumVerified: on receive, the link vouches for the transport checksum (it checked it,
	// or the frame never left this host, as Linux's CHECKSUM_UNNECESSARY and CHECKSUM_PARTIAL
	// say), so the stack does not verify it again.
	CsumVerified Flags = 1 << iota
	// TxCsum: on transmit, the transport checksum field holds only the pseudo-header sum and
	// the link completes it over the bytes from the checksum start (SetTxCsum).
	TxCsum
	// MayFragment: on transmit, the IPv4 datagram goes without DF, since its path MTU is
	// locked (a report below min_pmtu: Linux's ip_dont_fragment), so that a router may
	// fragment it. Set by TCP for the network layer; no link reads it.
	MayFragment
)

// Owner takes back packets whose memory a backend owns (an mmap'd ring frame, an rte_mbuf).
// Release may be called from any goroutine, with packets of this owner only; after it
// returns the packets' bytes may be reused at once.
type Owner interface {
	Release(pkts []*Packet)
}

// Packet is one frame. Its memory is either a buffer of the pool the packet came from, or
// memory a backend owns and lent it (Attach), which goes back to that backend when the
// packet is freed. Data() is the frame; the bytes before it are headroom for Prepend and
// the bytes after it tailroom for Append.
type Packet struct {
	buf   []byte
	off   int
	end   int
	pool  *Pool
	owner Owner
	self  [1]*Packet // a one-element batch for releasing an owned packet alone
	link  queue.Link[Packet]
	alien bool // freed by a goroutine other than the pool's owner

	// Queue is the queue the packet was received on.
	Queue uint16
	// Flags are the offload metadata.
	Flags Flags
	// GSOSize, on receive, is the segment size of a frame the sender's link coalesced from
	// several segments (a super-packet, longer than the MTU); 0 for an ordinary frame.
	GSOSize uint16
	// csumStart and csumField locate a TxCsum packet's checksum, as buffer offsets.
	csumStart, csumField uint16
	// Ref is the owner's reference to the memory of an attached packet (a ring block, an
	// mbuf pointer); free for a pool packet's backend to use while it holds the packet.
	Ref uint64
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

// Buffer returns the packet's whole buffer, headroom and tailroom included, for a backend
// that fills it (recvmmsg writes a frame at Headroom()); SetFrame then says where it is.
func (p *Packet) Buffer() []byte { return p.buf }

// SetFrame makes bytes [off, off+n) of Buffer() the frame (both clamped to the buffer).
func (p *Packet) SetFrame(off, n int) {
	p.off = min(max(off, 0), len(p.buf))
	p.end = p.off + min(max(n, 0), len(p.buf)-p.off)
}

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

// Reset empties the frame, restores the pool's headroom and clears the metadata.
func (p *Packet) Reset() {
	p.off = min(p.pool.headroom, len(p.buf))
	p.end = p.off
	p.clearMeta()
}

func (p *Packet) clearMeta() {
	p.Queue, p.Flags, p.GSOSize, p.Ref, p.Time, p.Mark = 0, 0, 0, 0, 0, 0
	p.csumStart, p.csumField = 0, 0
}

// SetData replaces the frame with a copy of b placed after the pool's headroom; it returns
// false if b does not fit.
func (p *Packet) SetData(b []byte) bool {
	p.off = min(p.pool.headroom, len(p.buf))
	if len(b) > len(p.buf)-p.off {
		p.end = p.off
		return false
	}
	p.end = p.off + copy(p.buf[p.off:], b)
	return true
}

// SetTxCsum asks the link to complete the transport checksum: start is where the checksummed
// bytes begin and field where the 16-bit checksum sits, both as offsets into the current
// frame, whose checksum field must already hold the folded (not inverted) pseudo-header
// sum. The offsets follow the bytes when headers are prepended later.
func (p *Packet) SetTxCsum(start, field int) {
	p.Flags |= TxCsum
	p.csumStart, p.csumField = uint16(p.off+start), uint16(p.off+field)
}

// TxCsumOffsets returns, for a TxCsum packet, where the checksummed bytes begin and where
// the checksum field is, as offsets into the current frame.
func (p *Packet) TxCsumOffsets() (start, field int, ok bool) {
	if p.Flags&TxCsum == 0 {
		return 0, 0, false
	}
	return int(p.csumStart) - p.off, int(p.csumField) - p.off, true
}

// Attach points a bare packet (from a pool made with PoolConfig.Bare) at memory a backend
// owns: mem is the whole area, [off, off+n) the frame. Free then hands the packet to owner
// before the packet itself goes back to its pool.
func (p *Packet) Attach(mem []byte, off, n int, owner Owner, ref uint64) {
	p.buf = mem
	p.SetFrame(off, n)
	p.owner, p.Ref = owner, ref
}

// Owned reports whether the packet's memory belongs to a backend (Attach) rather than its pool.
func (p *Packet) Owned() bool { return p.owner != nil }

// Owner returns the backend the packet's memory belongs to (nil for a pool buffer), so that
// a backend can tell its own memory (an mbuf it may transmit as it is) from another's.
func (p *Packet) Owner() Owner { return p.owner }

// Disown drops an attached packet's memory without handing it back to its owner: the
// backend has taken the memory back by itself (DPDK's transmit path frees a sent mbuf).
// The packet is then bare, and Free returns only the descriptor to its pool.
func (p *Packet) Disown() {
	if p.owner != nil {
		p.detach()
	}
}

// MarkAlien records that the packet will be freed by a goroutine other than its pool's owner,
// so that Free takes the lock-free remote path. Ports and stacks call it when a packet crosses
// goroutines (the in-memory pair's delivery, a shard-to-shard handoff).
func (p *Packet) MarkAlien() { p.alien = true }

// Free returns the packet to its pool (and its memory to its owner first, for an attached
// packet). On the pool owner's goroutine it is a slice push; for a packet marked alien it
// is FreeRemote.
func (p *Packet) Free() {
	if p.owner != nil {
		p.releaseOwned()
	}
	if p.alien {
		p.FreeRemote()
		return
	}
	p.pool.put(p)
}

func (p *Packet) releaseOwned() {
	o := p.owner
	p.self[0] = p
	o.Release(p.self[:])
	p.self[0] = nil
	p.detach()
}

func (p *Packet) detach() {
	p.owner, p.buf, p.off, p.end = nil, nil, 0, 0
}

// FreeRemote returns the packet to its pool from any goroutine (one CAS).
func (p *Packet) FreeRemote() {
	if p.owner != nil {
		p.releaseOwned()
	}
	p.alien = false
	p.pool.remote.Push(p)
}

// ownedBatch is how many attached packets FreeBatch gathers before it releases them.
const ownedBatch = 64

// FreeBatch frees packets for one goroutine in batches: packets that belong to another
// goroutine's pool go back in chains (one lock-free push per run of packets from the same
// pool), and attached packets go back to their owner in groups of up to 64, the way DPDK's
// rte_pktmbuf_free_bulk takes them. Call Flush before the goroutine parks or yields.
type FreeBatch struct {
	pool   *Pool
	chain  queue.Chain[Packet, *Packet]
	owner  Owner
	owned  [ownedBatch]*Packet
	nowned int
}

// Free frees p now (its own pool) or adds it to the batch.
func (b *FreeBatch) Free(p *Packet) {
	if p.owner != nil {
		if p.owner != b.owner || b.nowned == ownedBatch {
			b.flushOwned()
			b.owner = p.owner
		}
		b.owned[b.nowned] = p
		b.nowned++
		return
	}
	b.freeDescriptor(p)
}

func (b *FreeBatch) freeDescriptor(p *Packet) {
	if !p.alien {
		p.pool.put(p)
		return
	}
	p.alien = false
	if p.pool != b.pool {
		b.flushChain()
		b.pool = p.pool
	}
	b.chain.Add(p)
}

func (b *FreeBatch) flushOwned() {
	if b.nowned == 0 {
		return
	}
	pkts := b.owned[:b.nowned]
	b.owner.Release(pkts)
	for i, p := range pkts {
		p.detach()
		b.freeDescriptor(p)
		pkts[i] = nil
	}
	b.nowned, b.owner = 0, nil
}

func (b *FreeBatch) flushChain() {
	if b.pool != nil && b.chain.Len() > 0 {
		b.pool.remote.PushChain(&b.chain)
	}
	b.pool = nil
}

// Flush releases the gathered attached packets and sends the gathered packets home.
func (b *FreeBatch) Flush() {
	b.flushOwned()
	b.flushChain()
}

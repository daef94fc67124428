package dpdkshim

import (
	"github.com/shardstack/shardstack/pkg/queue"
)

// PoolConfig sizes a Pool.
type PoolConfig struct {
	// Size is how many packets are allocated up front (default 4096).
	Size int
	// Max caps the packets the pool may ever own; 0 means 4*Size. Get returns nil past it.
	Max int
	// BufSize is each packet's buffer size (default DefaultBufSize).
	BufSize int
	// Headroom is reserved in front of the frame (default DefaultHeadroom).
	Headroom int
	// Bare makes packets without buffers, for a backend that attaches memory it owns to
	// them (Packet.Attach): TPACKET ring frames, DPDK mbufs. BufSize and Headroom are unused.
	Bare bool
	// Source, with Bare, lends the pool's packets their memory: Get hands out packets that
	// Source attached memory to (DPDK mbufs of the port's mempool, for transmission),
	// asking it for a batch at a time. Headroom is then the headroom Source leaves.
	Source Source
}

// Source lends memory to the bare packets of a pool (PoolConfig.Source).
type Source interface {
	// Fill attaches memory (Packet.Attach) to the first packets of pkts, as many as it
	// can, and returns how many it filled.
	Fill(pkts []*Packet) int
}

// sourceBatch is how many packets a Pool asks its Source to fill at once.
const sourceBatch = 32

// Pool is a packet-buffer pool owned by one goroutine (a queue's shard). Get and owner-side
// Free never allocate or synchronise; packets freed elsewhere come back through a lock-free
// list that Get drains when the local stack runs dry. Buffers are carved out of slabs, and a
// pool that runs out grows by a slab (counted in Grows) up to Max.
type Pool struct {
	free     []*Packet
	remote   queue.MPSCList[Packet, *Packet]
	bufSize  int
	headroom int
	slab     int
	total    int
	max      int
	grows    int
	source   Source
	ready    []*Packet // filled by source, not handed out yet
	batch    []*Packet // scratch for a Fill
}

// NewPool makes a pool with cfg.Size packets ready.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Size <= 0 {
		cfg.Size = 4096
	}
	if cfg.Max <= 0 {
		cfg.Max = 4 * cfg.Size
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.Headroom <= 0 {
		cfg.Headroom = DefaultHeadroom
	}
	if cfg.Headroom >= cfg.BufSize && !cfg.Bare {
		cfg.Headroom = cfg.BufSize / 2
	}
	if cfg.Bare {
		cfg.BufSize = 0
		if cfg.Source == nil {
			cfg.Headroom = 0
		}
	}
	p := &Pool{
		bufSize:  cfg.BufSize,
		headroom: cfg.Headroom,
		slab:     cfg.Size,
		max:      max(cfg.Max, cfg.Size),
	}
	if cfg.Bare && cfg.Source != nil {
		p.source = cfg.Source
		p.ready = make([]*Packet, 0, sourceBatch)
		p.batch = make([]*Packet, 0, sourceBatch)
	}
	p.free = make([]*Packet, 0, p.max)
	p.addSlab(cfg.Size)
	p.grows = 0
	return p
}

func (p *Pool) addSlab(n int) {
	n = min(n, p.max-p.total)
	if n <= 0 {
		return
	}
	pkts := make([]Packet, n)
	var mem []byte
	if p.bufSize > 0 {
		mem = make([]byte, n*p.bufSize)
	}
	for i := range pkts {
		pk := &pkts[i]
		if mem != nil {
			pk.buf = mem[i*p.bufSize : (i+1)*p.bufSize : (i+1)*p.bufSize]
		}
		pk.pool = p
		pk.off, pk.end = p.headroom, p.headroom
		p.free = append(p.free, pk)
	}
	p.total += n
	p.grows++
}

// Get returns an empty packet with the pool's headroom, or nil when the pool is exhausted
// (or, for a pool with a Source, when the Source has no memory to lend). Owner goroutine
// only.
func (p *Pool) Get() *Packet {
	if p.source != nil {
		return p.getSourced()
	}
	return p.getDescriptor()
}

func (p *Pool) getDescriptor() *Packet {
	if len(p.free) == 0 {
		p.reclaim()
		if len(p.free) == 0 {
			p.addSlab(p.slab)
			if len(p.free) == 0 {
				return nil
			}
		}
	}
	pk := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	pk.off, pk.end = p.headroom, p.headroom
	return pk
}

// getSourced hands out a packet the source filled, asking it for a batch when none is left.
func (p *Pool) getSourced() *Packet {
	if len(p.ready) == 0 {
		b := p.batch[:0]
		for len(b) < cap(b) {
			pk := p.getDescriptor()
			if pk == nil {
				break
			}
			b = append(b, pk)
		}
		n := 0
		if len(b) > 0 {
			n = min(max(p.source.Fill(b), 0), len(b))
		}
		for i, pk := range b {
			if i < n && pk.owner != nil {
				p.ready = append(p.ready, pk)
			} else {
				pk.detach()
				p.put(pk)
			}
			b[i] = nil
		}
		if len(p.ready) == 0 {
			return nil
		}
	}
	pk := p.ready[len(p.ready)-1]
	p.ready[len(p.ready)-1] = nil
	p.ready = p.ready[:len(p.ready)-1]
	return pk
}

// Drain gives back to their owner the packets a Source filled that Get has not handed out
// yet (owner goroutine only, or once it has stopped): a backend calls it before it frees
// the memory it lends.
func (p *Pool) Drain() {
	for i, pk := range p.ready {
		pk.Free()
		p.ready[i] = nil
	}
	p.ready = p.ready[:0]
}

// reclaim moves packets freed by other goroutines to the local stack.
func (p *Pool) reclaim() {
	for pk := p.remote.TakeAll(); pk != nil; {
		next := queue.Next[Packet, *Packet](pk)
		p.put(pk)
		pk = next
	}
}

func (p *Pool) put(pk *Packet) {
	pk.clearMeta()
	p.free = append(p.free, pk)
}

// Available returns how many packets Get can hand out without growing (owner goroutine only;
// it does not count packets still on the remote list).
func (p *Pool) Available() int { return len(p.free) }

// Total returns how many packets the pool owns, wherever they are.
func (p *Pool) Total() int { return p.total }

// Grows returns how many times the pool had to allocate a slab after it was made.
func (p *Pool) Grows() int { return p.grows }

// Headroom returns the headroom of the pool's packets.
func (p *Pool) Headroom() int { return p.headroom }

// BufSize returns the buffer size of the pool's packets.
func (p *Pool) BufSize() int { return p.bufSize }

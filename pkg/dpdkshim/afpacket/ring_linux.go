package afpacket

import (
	"encoding/binary"
	"fmt"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// TPACKET_V3 layouts (include/uapi/linux/if_packet.h).
const (
	// struct tpacket_block_desc with its struct tpacket_hdr_v1.
	blkStatus   = 8
	blkNumPkts  = 12
	blkFirstPkt = 16
	blkSeqNum   = 24
	blkHdrLen   = 48

	// struct tpacket3_hdr.
	pktNextOffset = 0
	pktSnaplen    = 12
	pktLen        = 16
	pktStatus     = 20
	pktMac        = 24

	tpStatusKernel       = unix.TP_STATUS_KERNEL
	tpStatusUser         = unix.TP_STATUS_USER
	tpStatusCsumNotReady = unix.TP_STATUS_CSUMNOTREADY
	tpStatusCsumValid    = unix.TP_STATUS_CSUM_VALID
	tpStatusSendRequest  = unix.TP_STATUS_SEND_REQUEST
	tpStatusSending      = unix.TP_STATUS_SENDING
)

// setupRings creates and maps the socket's rings (before bind: see openQueue).
func (q *queue) setupRings(cfg *Config) error {
	var rxSize, txSize int
	var txBlock, txBlocks, txPerBlock int
	if cfg.TxRing {
		// A malformed frame is then skipped instead of stopping the ring for good (set
		// before any ring exists, or the kernel refuses it).
		if err := unix.SetsockoptInt(q.fd, unix.SOL_PACKET, unix.PACKET_LOSS, 1); err != nil {
			return fmt.Errorf("PACKET_LOSS: %w", err)
		}
	}
	if cfg.RxRing {
		tov := (cfg.RxRetireTimeout + time.Millisecond - 1) / time.Millisecond
		req := unix.TpacketReq3{
			Block_size:     uint32(cfg.RxBlockSize),
			Block_nr:       uint32(cfg.RxBlockCount),
			Frame_size:     uint32(cfg.RxFrameSize),
			Frame_nr:       uint32(cfg.RxBlockSize / cfg.RxFrameSize * cfg.RxBlockCount),
			Retire_blk_tov: uint32(tov),
		}
		if err := unix.SetsockoptTpacketReq3(q.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return fmt.Errorf("PACKET_RX_RING %d x %d B: %w", cfg.RxBlockCount, cfg.RxBlockSize, err)
		}
		rxSize = cfg.RxBlockSize * cfg.RxBlockCount
	}
	if cfg.TxRing {
		txBlock = max(os.Getpagesize(), 8*cfg.TxFrameSize)
		txPerBlock = txBlock / cfg.TxFrameSize
		txBlocks = (cfg.TxFrames + txPerBlock - 1) / txPerBlock
		req := unix.TpacketReq3{
			Block_size: uint32(txBlock),
			Block_nr:   uint32(txBlocks),
			Frame_size: uint32(cfg.TxFrameSize),
			Frame_nr:   uint32(txPerBlock * txBlocks),
		}
		if err := unix.SetsockoptTpacketReq3(q.fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
			return fmt.Errorf("PACKET_TX_RING %d x %d B: %w", txPerBlock*txBlocks, cfg.TxFrameSize, err)
		}
		txSize = txBlock * txBlocks
	}
	if rxSize+txSize == 0 {
		return nil
	}
	mem, err := unix.Mmap(q.fd, 0, rxSize+txSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap %d B of rings: %w", rxSize+txSize, err)
	}
	q.ring = mem
	if cfg.RxRing {
		q.rx = &rxRing{
			mem:       mem[:rxSize:rxSize],
			blockSize: cfg.RxBlockSize,
			refs:      make([]blockRef, cfg.RxBlockCount),
			seq:       make([]uint64, cfg.RxBlockCount),
			bare: dpdkshim.NewPool(dpdkshim.PoolConfig{
				Bare: true,
				Size: 1024,
				// Every frame of every block held at once, at the smallest frame.
				Max: max(1024, rxSize/(tpacket3HdrLen+sockaddrLLLen+16+ethernetLen)),
			}),
		}
	}
	if cfg.TxRing {
		q.tx = &txRing{
			mem:       mem[rxSize:],
			frameSize: cfg.TxFrameSize,
			frames:    txPerBlock * txBlocks,
			perBlock:  txPerBlock,
			blockSize: txBlock,
			vnet:      q.vnet,
			gso:       q.gso,
		}
	}
	return nil
}

// rxRing is a TPACKET_V3 receive ring. The kernel fills blocks in order and hands each
// over whole (TP_STATUS_USER); RxBurst walks the frames of the current block and attaches a
// bare packet to each, with the queue as its Owner. A block goes back to the kernel
// (TP_STATUS_KERNEL) when the walk has finished and every packet attached to it has been
// released: refs counts, per block, the walk (1) and the packets out; whoever drops it to 0
// (the walk, or a Release on any goroutine) returns the block. The walker tells a block the
// kernel filled again from one it walked and still holds by the block's sequence number.
type rxRing struct {
	mem       []byte
	blockSize int
	refs      []blockRef
	seq       []uint64 // per block, the kernel's sequence number of the fill walked last
	bare      *dpdkshim.Pool

	cur     int   // the block being walked, or to be walked next
	walking bool  // refs[cur] holds the walk's reference
	off     int   // offset in block cur of the next frame
	left    int   // frames of block cur not walked yet
	handed  int32 // packets attached to block cur and not yet added to refs[cur]
	stopped bool
}

// blockRef is one block's reference count, alone on its cache line: shards release
// packets of different blocks at once.
type blockRef struct {
	n atomic.Int32
	_ [60]byte
}

func (r *rxRing) status(b int) *uint32 { return u32(r.mem, b*r.blockSize+blkStatus) }

func (r *rxRing) unref(b int, k int32) {
	if uint(b) >= uint(len(r.refs)) {
		return
	}
	if r.refs[b].n.Add(-k) == 0 {
		atomic.StoreUint32(r.status(b), tpStatusKernel)
	}
}

// Release implements dpdkshim.Owner for the packets the queue's receive ring lent: one
// atomic decrement per run of packets of the same block.
func (q *queue) Release(pkts []*dpdkshim.Packet) {
	r := q.rx
	if r == nil {
		return
	}
	for i := 0; i < len(pkts); {
		b := pkts[i].Ref
		j := i + 1
		for j < len(pkts) && pkts[j].Ref == b {
			j++
		}
		r.unref(int(b), int32(j-i))
		i = j
	}
}

// publish adds the packets attached since the last call to the current block's count.
func (r *rxRing) publish() {
	if r.handed != 0 {
		r.refs[r.cur].n.Add(r.handed)
		r.handed = 0
	}
}

// finish ends the walk of the current block and moves to the next.
func (r *rxRing) finish() {
	r.publish()
	r.walking = false
	r.unref(r.cur, 1)
	r.cur++
	if r.cur == len(r.refs) {
		r.cur = 0
	}
}

func (r *rxRing) burst(q *queue, pkts []*dpdkshim.Packet) int {
	out, bytes, trunc, bad := 0, 0, 0, 0
	for out < len(pkts) {
		if !r.walking {
			base := r.cur * r.blockSize
			if atomic.LoadUint32(r.status(r.cur))&tpStatusUser == 0 {
				break
			}
			// A block walked before and still held (its packets not all released) is still
			// the user's: only a block the kernel filled again has a new sequence number.
			seq := binary.NativeEndian.Uint64(r.mem[base+blkSeqNum:])
			if seq == r.seq[r.cur] {
				break
			}
			r.seq[r.cur] = seq
			r.refs[r.cur].n.Add(1)
			r.walking = true
			r.left = int(binary.NativeEndian.Uint32(r.mem[base+blkNumPkts:]))
			r.off = int(binary.NativeEndian.Uint32(r.mem[base+blkFirstPkt:]))
		}
		if r.left == 0 {
			r.finish()
			continue
		}
		p := r.bare.Get()
		if p == nil {
			q.c.rxNoBuffer.Add(1)
			break
		}
		block := r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
		h, ok := frameAt(block, r.off)
		if !ok {
			// The kernel wrote something we cannot read: skip the rest of the block.
			p.Free()
			bad++
			r.left = 0
			continue
		}
		r.left--
		r.off += h.next
		if h.next == 0 && r.left > 0 {
			bad++
			r.left = 0
		}
		if h.snap < h.len {
			p.Free()
			trunc++
			continue
		}
		var flags dpdkshim.Flags
		var gso uint16
		if q.vnet {
			if h.mac < tpacket3HdrLen+virtio.HdrLen {
				p.Free()
				bad++
				continue
			}
			flags, gso = virtio.Rx(block[h.start-virtio.HdrLen : h.start])
		} else if h.status&(tpStatusCsumNotReady|tpStatusCsumValid) != 0 {
			flags = dpdkshim.CsumVerified
		}
		// No headroom or tailroom: the bytes around the frame are the ring's.
		p.Attach(block[h.start:h.start+h.snap:h.start+h.snap], 0, h.snap, q, uint64(r.cur))
		p.Flags, p.GSOSize, p.Queue = flags, gso, uint16(q.id)
		r.handed++
		pkts[out] = p
		out++
		bytes += h.snap
	}
	if r.walking {
		r.publish()
	}
	if out > 0 {
		q.c.rxPackets.Add(uint64(out))
		q.c.rxBytes.Add(uint64(bytes))
	}
	if trunc > 0 {
		q.c.rxTruncated.Add(uint64(trunc))
	}
	if bad > 0 {
		q.c.rxErrors.Add(uint64(bad))
	}
	return out
}

// frameHdr is what a struct tpacket3_hdr says, checked against its block.
type frameHdr struct {
	next, snap, len, mac, start int
	status                      uint32
}

func frameAt(block []byte, off int) (frameHdr, bool) {
	if off < blkHdrLen || off > len(block)-tpacket3HdrLen {
		return frameHdr{}, false
	}
	f := block[off:]
	h := frameHdr{
		next:   int(binary.NativeEndian.Uint32(f[pktNextOffset:])),
		snap:   int(binary.NativeEndian.Uint32(f[pktSnaplen:])),
		len:    int(binary.NativeEndian.Uint32(f[pktLen:])),
		status: binary.NativeEndian.Uint32(f[pktStatus:]),
		mac:    int(binary.NativeEndian.Uint16(f[pktMac:])),
	}
	h.start = off + h.mac
	if h.mac < tpacket3HdrLen || h.start > len(block) || h.snap > len(block)-h.start || h.next < 0 || h.next > len(block)-off {
		return frameHdr{}, false
	}
	return h, true
}

// stop ends the current walk (the queue's goroutine has stopped) and returns how many
// packets are still out.
func (r *rxRing) stop() int {
	if !r.stopped && r.walking {
		r.finish()
	}
	r.stopped = true
	held := 0
	for i := range r.refs {
		held += int(r.refs[i].n.Load())
	}
	return held
}

// txRing is a PACKET_TX_RING of fixed slots, which TxBurst fills in order, as the kernel
// sends them in order.
type txRing struct {
	mem       []byte
	frameSize int
	frames    int
	perBlock  int
	blockSize int
	vnet      bool
	gso       bool // runs of segments leave as super-packets, one slot each
	head      int  // the next slot to fill
	last      int  // the slot filled last
	pending   bool // frames may be waiting for a send(2) that could not take them
}

func (t *txRing) slot(i int) int {
	return i/t.perBlock*t.blockSize + i%t.perBlock*t.frameSize
}

func (t *txRing) burst(q *queue, pkts []*dpdkshim.Packet) int {
	taken, queued, bytes, dropped, supers, superSegs := 0, 0, 0, 0, 0, 0
	room := t.frameSize - tpacket3HdrLen
	hdr := 0
	if t.vnet {
		hdr = virtio.HdrLen
	}
	for taken < len(pkts) {
		off := t.slot(t.head)
		st := u32(t.mem, off+pktStatus)
		if atomic.LoadUint32(st)&(tpStatusSendRequest|tpStatusSending) != 0 {
			q.c.txFull.Add(1)
			break
		}
		f := t.mem[off : off+t.frameSize]
		var length, n int
		if r := t.run(pkts[taken:], room-hdr); r.N > 1 {
			// A run of segments: one super-packet in the slot.
			run := pkts[taken : taken+r.N]
			length = virtio.PutSuper(f[tpacket3HdrLen:], run, r)
			for _, p := range run {
				bytes += p.Len()
				p.Free()
			}
			n = r.N
			supers++
			superSegs += n
		} else {
			p := pkts[taken]
			data := p.Data()
			if hdr+len(data) > room {
				dropped++
				taken++
				p.Free()
				continue
			}
			if t.vnet {
				virtio.PutTx(f[tpacket3HdrLen:], p)
			}
			length = hdr + copy(f[tpacket3HdrLen+hdr:], data)
			bytes += len(data)
			n = 1
			p.Free()
		}
		binary.NativeEndian.PutUint32(f[pktNextOffset:], 0)
		binary.NativeEndian.PutUint32(f[pktLen:], uint32(length))
		binary.NativeEndian.PutUint32(f[pktSnaplen:], uint32(length))
		atomic.StoreUint32(st, tpStatusSendRequest)
		t.last = t.head
		if t.head++; t.head == t.frames {
			t.head = 0
		}
		queued += n
		taken += n
	}
	if dropped > 0 {
		q.c.txDropped.Add(uint64(dropped))
	}
	if supers > 0 {
		q.c.txSuper.Add(uint64(supers))
		q.c.txSuperSegs.Add(uint64(superSegs))
	}
	if queued > 0 {
		q.c.txPackets.Add(uint64(queued))
		q.c.txBytes.Add(uint64(bytes))
		q.kickTx()
	} else if t.pending {
		q.kickTx()
	}
	return taken
}

// run is the run of segments at the head of pkts that leaves as one super-packet of at
// most maxLen bytes in a slot (GSO), or a run of one.
func (t *txRing) run(pkts []*dpdkshim.Packet, maxLen int) virtio.Run {
	if !t.gso {
		return virtio.Run{N: 1}
	}
	return virtio.FindRun(pkts, ethernetLen, maxLen)
}

// kickTx asks the kernel to send the ring's requested frames. If it could not take them all
// (its socket buffer was full), the next RxBurst or TxBurst asks again.
func (q *queue) kickTx() {
	t := q.tx
	e := kick(q.fd)
	q.c.txSyscalls.Add(1)
	switch e {
	case 0, unix.EAGAIN, unix.ENOBUFS, unix.EINTR:
	default:
		q.c.txErrors.Add(1)
	}
	t.pending = atomic.LoadUint32(u32(t.mem, t.slot(t.last)+pktStatus))&tpStatusSendRequest != 0
}

var _ dpdkshim.Owner = (*queue)(nil)

package afpacket

import (
	"encoding/binary"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// hdrSlot is the room for one message's virtio-net header in a queue's header array.
const hdrSlot = 16

// mmsgRx is the recvmmsg receive path. Each message slot has a packet of the queue's
// receive pool posted: the kernel writes the frame straight into the packet's buffer (and
// the virtio-net header into the slot's own bytes), so a received packet is handed to the
// caller as it is, and the slot gets a fresh packet from the pool before the next call.
type mmsgRx struct {
	pool      *dpdkshim.Pool
	posted    []*dpdkshim.Packet
	msgs      []mmsghdr
	iov       []unix.Iovec // per message: [virtio-net header,] buffer
	hdrs      []byte
	ctrl      []byte // per message: a PACKET_AUXDATA control message (no virtio-net header)
	ctrlSpace int
	perMsg    int // iovecs per message
	headroom  int
}

func newMmsgRx(q *queue, cfg *Config) *mmsgRx {
	n := cfg.Burst
	m := &mmsgRx{
		pool: dpdkshim.NewPool(dpdkshim.PoolConfig{
			Size:    cfg.RxPoolSize,
			Max:     max(cfg.RxPoolSize, 16*cfg.Burst),
			BufSize: dpdkshim.DefaultHeadroom + cfg.RxBufSize,
		}),
		posted: make([]*dpdkshim.Packet, n),
		msgs:   make([]mmsghdr, n),
		perMsg: 1,
	}
	m.headroom = m.pool.Headroom()
	if q.vnet {
		m.perMsg = 2
		m.hdrs = make([]byte, n*hdrSlot)
	} else {
		m.ctrlSpace = unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{})))
		m.ctrl = make([]byte, n*m.ctrlSpace)
	}
	m.iov = make([]unix.Iovec, n*m.perMsg)
	for i := range m.msgs {
		h := &m.msgs[i].hdr
		h.Iov = &m.iov[i*m.perMsg]
		h.SetIovlen(m.perMsg)
		if q.vnet {
			m.iov[i*2].Base = &m.hdrs[i*hdrSlot]
			m.iov[i*2].SetLen(virtio.HdrLen)
		} else {
			h.Control = &m.ctrl[i*m.ctrlSpace]
		}
	}
	return m
}

// post gives slot i the packet p to receive into.
func (m *mmsgRx) post(i int, p *dpdkshim.Packet) {
	m.posted[i] = p
	buf := p.Buffer()
	v := &m.iov[i*m.perMsg+m.perMsg-1]
	v.Base = &buf[m.headroom]
	v.SetLen(len(buf) - m.headroom)
}

// release returns the posted packets to the pool (the socket is closing).
func (m *mmsgRx) release() {
	for i, p := range m.posted {
		if p != nil {
			p.Free()
			m.posted[i] = nil
			m.iov[i*m.perMsg+m.perMsg-1] = unix.Iovec{}
		}
	}
}

func (m *mmsgRx) burst(q *queue, pkts []*dpdkshim.Packet) int {
	n := min(len(pkts), len(m.msgs))
	// Replenish the slots emptied by the last burst: packets the stack freed since then
	// are back in the pool by now.
	for i := 0; i < n; i++ {
		if m.posted[i] == nil {
			p := m.pool.Get()
			if p == nil {
				q.c.rxNoBuffer.Add(1)
				n = i
				break
			}
			m.post(i, p)
		}
	}
	if n == 0 {
		return 0
	}
	for i := 0; i < n; i++ {
		h := &m.msgs[i].hdr
		h.Flags = 0
		if m.ctrl != nil {
			h.SetControllen(m.ctrlSpace)
		}
	}
	r, errno := recvmmsg(q.fd, m.msgs[:n])
	q.c.rxSyscalls.Add(1)
	if errno != 0 {
		if errno == unix.EAGAIN || errno == unix.EINTR {
			q.c.rxEmpty.Add(1)
		} else {
			q.c.rxErrors.Add(1)
		}
		return 0
	}
	out, bytes, trunc := 0, 0, 0
	for i := 0; i < r; i++ {
		msg := &m.msgs[i]
		length := int(msg.n)
		var flags dpdkshim.Flags
		var gso uint16
		if m.hdrs != nil {
			length -= virtio.HdrLen
			flags, gso = virtio.Rx(m.hdrs[i*hdrSlot : i*hdrSlot+virtio.HdrLen])
		} else {
			flags = auxFlags(m.ctrl[i*m.ctrlSpace:(i+1)*m.ctrlSpace], uint64(msg.hdr.Controllen))
		}
		if msg.hdr.Flags&unix.MSG_TRUNC != 0 || length < 0 {
			trunc++ // the packet stays posted
			continue
		}
		p := m.posted[i]
		m.posted[i] = nil
		p.SetFrame(m.headroom, length)
		p.Flags, p.GSOSize, p.Queue = flags, gso, uint16(q.id)
		pkts[out] = p
		out++
		bytes += length
	}
	if out > 0 {
		q.c.rxPackets.Add(uint64(out))
		q.c.rxBytes.Add(uint64(bytes))
	}
	if trunc > 0 {
		q.c.rxTruncated.Add(uint64(trunc))
	}
	return out
}

// auxFlags reads the checksum status of a PACKET_AUXDATA control message: the kernel's
// TP_STATUS_CSUMNOTREADY (the checksum is partial: the frame never left the host) or
// TP_STATUS_CSUM_VALID (checked), as Documentation/networking/packet_mmap.rst defines them.
func auxFlags(ctrl []byte, n uint64) dpdkshim.Flags {
	hl := unix.CmsgLen(0)
	if n < uint64(hl+4) || n > uint64(len(ctrl)) {
		return 0
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
	if h.Level != unix.SOL_PACKET || h.Type != unix.PACKET_AUXDATA {
		return 0
	}
	if binary.NativeEndian.Uint32(ctrl[hl:])&(tpStatusCsumNotReady|tpStatusCsumValid) != 0 {
		return dpdkshim.CsumVerified
	}
	return 0
}

// mmsgTx is the sendmmsg transmit path: each message points at a packet's frame (and at a
// virtio-net header of its own), so the kernel copies the frame once, from the packet.
// With GSO, a message can instead carry a run of a flow's segments as one super-packet:
// its virtio-net header and the run's headers in the message's slot, then every segment's
// payload straight from its packet, one iovec each (a gather: still one copy, the
// kernel's).
type mmsgTx struct {
	msgs []mmsghdr
	iov  []unix.Iovec
	hdrs []byte // per message, a slot of hdrSize bytes
	// per message: the packets it carries and whether they are a super-packet
	npkts   []int
	super   []bool
	hdrSize int
	gso     bool
}

// gsoSlot is a message's slot with GSO: a virtio-net header and the headers of a run.
const gsoSlot = 128

func newMmsgTx(q *queue) *mmsgTx {
	n := q.burst
	m := &mmsgTx{msgs: make([]mmsghdr, n), npkts: make([]int, n), super: make([]bool, n), gso: q.gso}
	if q.vnet {
		m.hdrSize = hdrSlot
		if q.gso {
			m.hdrSize = gsoSlot
		}
		m.hdrs = make([]byte, n*m.hdrSize)
	}
	// Two iovecs per packet at most (a header and a frame; a run takes one per segment
	// and one for its headers), and room for one more whole run.
	m.iov = make([]unix.Iovec, 2*n+virtio.MaxSegs+1)
	return m
}

// fill lays out the messages of the next sendmmsg for pkts (m.npkts says how many packets
// each carries): it returns how many messages and how many iovecs they use.
func (m *mmsgTx) fill(pkts []*dpdkshim.Packet) (msgs, v int) {
	taken := 0
	for msgs < len(m.msgs) && taken < len(pkts) && len(m.iov)-v >= virtio.MaxSegs+1 {
		h := &m.msgs[msgs].hdr
		h.Iov = &m.iov[v]
		m.super[msgs] = false
		n := 1
		if m.gso {
			if r := virtio.FindRun(pkts[taken:], ethernetLen, maxSuper); r.N > 1 {
				run := pkts[taken : taken+r.N]
				slot := m.hdrs[msgs*m.hdrSize : (msgs+1)*m.hdrSize]
				hl := virtio.PutHeaders(slot, run, r)
				m.iov[v].Base = &slot[0]
				m.iov[v].SetLen(hl)
				v++
				for _, p := range run {
					d := p.Data()[r.Hdr:]
					m.iov[v].Base = &d[0]
					m.iov[v].SetLen(len(d))
					v++
				}
				h.SetIovlen(1 + r.N)
				m.super[msgs] = true
				n = r.N
			}
		}
		if !m.super[msgs] {
			p := pkts[taken]
			k := 1
			if m.hdrs != nil {
				slot := m.hdrs[msgs*m.hdrSize:]
				virtio.PutTx(slot, p)
				m.iov[v].Base = &slot[0]
				m.iov[v].SetLen(virtio.HdrLen)
				v++
				k++
			}
			if d := p.Data(); len(d) > 0 {
				m.iov[v].Base = &d[0]
				m.iov[v].SetLen(len(d))
			} else {
				m.iov[v].Base = nil
				m.iov[v].SetLen(0)
			}
			v++
			h.SetIovlen(k)
		}
		m.npkts[msgs] = n
		taken += n
		msgs++
	}
	return msgs, v
}

// maxSuper is the longest super-packet the sendmmsg path builds: an Ethernet header and
// the largest IPv6 packet (what FindRun allows an IPv4 one is less).
const maxSuper = ethernetLen + 40 + 0xffff

func (m *mmsgTx) burst(q *queue, pkts []*dpdkshim.Packet) int {
	taken := 0
	for taken < len(pkts) {
		nm, nv := m.fill(pkts[taken:])
		r, errno := sendmmsg(q.fd, m.msgs[:nm])
		q.c.txSyscalls.Add(1)
		for i := range m.iov[:nv] {
			m.iov[i].Base = nil // hold no pointer to a freed packet
		}
		if errno == 0 {
			bytes, sent, supers, superSegs := 0, 0, 0, 0
			for i := 0; i < r; i++ {
				k := m.npkts[i]
				for _, p := range pkts[taken : taken+k] {
					bytes += p.Len()
					p.Free()
				}
				if m.super[i] {
					supers++
					superSegs += k
				}
				sent += k
				taken += k
			}
			q.c.txPackets.Add(uint64(sent))
			q.c.txBytes.Add(uint64(bytes))
			if supers > 0 {
				q.c.txSuper.Add(uint64(supers))
				q.c.txSuperSegs.Add(uint64(superSegs))
			}
			if r == 0 {
				break
			}
			continue
		}
		// The first message of the batch failed.
		switch errno {
		case unix.EAGAIN, unix.EINTR:
			// The socket buffer is full: the caller keeps the rest.
			q.c.txFull.Add(1)
			return taken
		case unix.ENOBUFS:
			// The queueing discipline or the device dropped it.
		default:
			q.c.txErrors.Add(1)
		}
		k := m.npkts[0]
		q.c.txDropped.Add(uint64(k))
		for _, p := range pkts[taken : taken+k] {
			p.Free()
		}
		taken += k
	}
	return taken
}

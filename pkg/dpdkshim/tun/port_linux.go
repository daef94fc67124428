package tun

import (
	"errors"
	"fmt"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// Port is a multi-queue TUN port: one file descriptor per queue on one TUN device, steered
// by an eBPF program that computes dpdkshim.Symmetric (or by the kernel's own rules when
// the program cannot be attached). It implements dpdkshim.Port and dpdkshim.LinkTyper
// (LinkIP: packets have no link header).
type Port struct {
	cfg     Config
	dev     string
	name    string
	mtu     int
	created bool // Open made the device: it goes away with the last descriptor
	steer   dpdkshim.Steering
	steerBy string // how the port steers, for logs
	ifindex int
	nl      *rtnl // reads the device's counters
	queues  []*queue
	closed  atomic.Bool
	mu      sync.Mutex // serialises Close and Stats
}

// queue is one queue pair: a descriptor and the state of its receive and transmit paths.
// Only the queue's goroutine touches it, except the counters.
type queue struct {
	id       int
	fd       int
	vnet     bool
	burst    int
	headroom int
	rxPool   *dpdkshim.Pool
	txPool   *dpdkshim.Pool
	hdr      [virtio.HdrLen]byte
	super    []byte // with GSO: where a run of segments becomes one super-packet
	dev      string
	logf     func(format string, args ...any)
	dead     atomic.Bool // the device was deleted (gone)
	c        counters
}

type counters struct {
	_                                       [64]byte
	rxPackets, rxBytes, rxSyscalls, rxEmpty atomic.Uint64
	rxNoBuffer, rxTruncated, rxErrors       atomic.Uint64
	txPackets, txBytes, txSyscalls, txFull  atomic.Uint64
	txDropped, txErrors, txSuper            atomic.Uint64
	_                                       [64]byte
}

var (
	_ dpdkshim.Port      = (*Port)(nil)
	_ dpdkshim.LinkTyper = (*Port)(nil)
)

// Open opens cfg.Queues queues on the TUN device cfg.Name, creating the device if no
// interface has that name, sets its MTU if cfg.MTU says so, and brings it up. The device
// and the descriptors belong to the network namespace of the calling thread: to open a
// port in another namespace, call Open on a goroutine that has locked its OS thread and
// setns(2)'d into it. On any failure Open releases what it made and the device it
// created goes away.
func Open(cfg Config) (*Port, error) {
	if cfg.Name == "" || len(cfg.Name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("%w: device name %q (1 to %d bytes)", ErrConfig, cfg.Name, unix.IFNAMSIZ-1)
	}
	if cfg.MTU < 0 || cfg.MTU > 65535 || (cfg.MTU > 0 && cfg.MTU < 68) {
		return nil, fmt.Errorf("%w: MTU %d", ErrConfig, cfg.MTU)
	}
	if cfg.QueueLen < 0 || cfg.QueueLen > 1<<20 {
		return nil, fmt.Errorf("%w: QueueLen %d", ErrConfig, cfg.QueueLen)
	}
	if cfg.GSO && !cfg.VnetHdr {
		return nil, fmt.Errorf("%w: GSO needs the virtio-net header (VnetHdr)", ErrConfig)
	}
	_, err := net.InterfaceByName(cfg.Name)
	p := &Port{cfg: cfg, dev: cfg.Name, created: err != nil}
	if err := p.open(); err != nil {
		p.Close()
		return nil, fmt.Errorf("tun: %s: %w", cfg.Name, err)
	}
	return p, nil
}

func (p *Port) open() error {
	cfg := &p.cfg
	queues := max(cfg.Queues, 1)
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_MULTI_QUEUE)
	if cfg.VnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	fds := make([]int, 0, queues)
	for i := 0; i < queues; i++ {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(fds)
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		fds = append(fds, fd)
		ifr, err := unix.NewIfreq(p.dev)
		if err != nil {
			closeAll(fds)
			return err
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			closeAll(fds)
			if !p.created && (err == unix.EINVAL || err == unix.EBUSY) {
				return fmt.Errorf("%w (TUNSETIFF: %v): make it with `ip tuntap add %s mode tun multi_queue`", ErrNotTUN, err, p.dev)
			}
			return fmt.Errorf("TUNSETIFF queue %d: %w", i, err)
		}
	}
	// The descriptors hold the device from here on; Close releases them.
	logf := cfg.Logf
	if logf == nil {
		logf = log.Printf
	}
	for i, fd := range fds {
		p.queues = append(p.queues, &queue{id: i, fd: fd, vnet: cfg.VnetHdr, dev: p.dev, logf: logf})
	}
	if err := hook("attached"); err != nil {
		return err
	}
	// The offloads belong to the device, not the descriptor: a persistent device keeps
	// those of its last user, and without the header to say so its partial checksums
	// would look corrupt. So they are always set, to none without the header.
	off := 0
	if cfg.VnetHdr {
		off = unix.TUN_F_CSUM
		if cfg.GSO {
			off |= unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		}
	}
	if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, off); err != nil {
		return fmt.Errorf("TUNSETOFFLOAD %#x: %w", off, err)
	}
	ctl, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("a control socket: %w", err)
	}
	defer unix.Close(ctl)
	if cfg.MTU > 0 {
		ifr, _ := unix.NewIfreq(p.dev)
		ifr.SetUint32(uint32(cfg.MTU))
		if err := unix.IoctlIfreq(ctl, unix.SIOCSIFMTU, ifr); err != nil {
			return fmt.Errorf("SIOCSIFMTU %d: %w", cfg.MTU, err)
		}
	}
	qlen := cfg.QueueLen
	if qlen == 0 {
		// The kernel's default (what a device Open creates, or one `ip tuntap add` made,
		// has) is raised; a length someone chose is kept.
		ifr, _ := unix.NewIfreq(p.dev)
		if err := unix.IoctlIfreq(ctl, unix.SIOCGIFTXQLEN, ifr); err == nil && ifr.Uint32() == kernelQueueLen {
			qlen = DefaultQueueLen
		}
	}
	if qlen > 0 {
		ifr, _ := unix.NewIfreq(p.dev)
		ifr.SetUint32(uint32(qlen))
		if err := unix.IoctlIfreq(ctl, unix.SIOCSIFTXQLEN, ifr); err != nil {
			return fmt.Errorf("SIOCSIFTXQLEN %d: %w", qlen, err)
		}
	}
	ifr, _ := unix.NewIfreq(p.dev)
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFINDEX, ifr); err != nil {
		return fmt.Errorf("SIOCGIFINDEX: %w", err)
	}
	p.ifindex = int(ifr.Uint32())
	if p.nl, err = newRtnl(); err != nil {
		return fmt.Errorf("a netlink socket: %w", err)
	}
	ifr, _ = unix.NewIfreq(p.dev)
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFMTU, ifr); err != nil {
		return fmt.Errorf("SIOCGIFMTU: %w", err)
	}
	p.mtu = int(ifr.Uint32())
	cfg.setDefaults(p.mtu)
	p.name = "tun:" + p.dev
	p.steer, p.steerBy = dpdkshim.Symmetric{Seed: cfg.SteerSeed}, "one queue"
	if len(p.queues) > 1 {
		if cfg.NoSteer {
			p.steer, p.steerBy = nil, "the kernel's automatic steering (NoSteer)"
			_ = setSteering(fds[0], -1) // a persistent device may keep an old program
		} else if err := steerOrHook(fds[0], cfg.SteerSeed, len(p.queues)); err != nil {
			p.steer, p.steerBy = nil, "the kernel's automatic steering"
			logf("tun: %s: no steering program (%v): the kernel's automatic steering is used instead, "+
				"and packets that reach a shard other than their flow's are handed over (the hand-off counters)", p.dev, err)
		} else {
			p.steerBy = "the eBPF steering program (Symmetric)"
		}
	}
	// Bring the device up last, with every queue attached and the steering in place.
	ifr, _ = unix.NewIfreq(p.dev)
	if err := unix.IoctlIfreq(ctl, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	if fl := ifr.Uint16(); fl&unix.IFF_UP == 0 {
		ifr.SetUint16(fl | unix.IFF_UP)
		if err := unix.IoctlIfreq(ctl, unix.SIOCSIFFLAGS, ifr); err != nil {
			return fmt.Errorf("SIOCSIFFLAGS up: %w", err)
		}
	}
	txPool := cfg.Pool
	if txPool.BufSize <= 0 {
		txPool.BufSize = max(dpdkshim.DefaultBufSize, dpdkshim.DefaultHeadroom+p.mtu+64)
	}
	for _, q := range p.queues {
		q.burst = cfg.Burst
		q.rxPool = dpdkshim.NewPool(dpdkshim.PoolConfig{
			Size:    cfg.RxPoolSize,
			Max:     max(cfg.RxPoolSize, 16*cfg.Burst),
			BufSize: dpdkshim.DefaultHeadroom + cfg.RxBufSize,
		})
		q.headroom = q.rxPool.Headroom()
		q.txPool = dpdkshim.NewPool(txPool)
		if cfg.GSO {
			q.super = make([]byte, virtio.HdrLen+40+0xffff) // an IPv6 header and its largest payload
		}
	}
	return nil
}

// failAt, set by tests, makes Open fail at a stage: "attached" (every queue attached) or
// "steer" (in place of attaching the steering program).
var failAt func(stage string) error

func hook(stage string) error {
	if failAt != nil {
		return failAt(stage)
	}
	return nil
}

func steerOrHook(fd int, seed uint32, n int) error {
	if err := hook("steer"); err != nil {
		return err
	}
	return attachSteering(fd, seed, n)
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Name implements dpdkshim.Port: "tun:" and the device.
func (p *Port) Name() string { return p.name }

// Device returns the TUN device's name.
func (p *Port) Device() string { return p.dev }

// Created reports whether Open created the device (which then goes away when the port
// closes) rather than attached to a persistent one.
func (p *Port) Created() bool { return p.created }

// SteeredBy says how the device spreads flows over the queues, in words for a log line.
func (p *Port) SteeredBy() string { return p.steerBy }

// MAC implements dpdkshim.Port: a TUN device has no hardware address (all zeros).
func (p *Port) MAC() header.MAC { return header.MAC{} }

// MTU implements dpdkshim.Port: the device's MTU when the port was opened.
func (p *Port) MTU() int { return p.mtu }

// NumQueues implements dpdkshim.Port.
func (p *Port) NumQueues() int { return len(p.queues) }

// LinkType implements dpdkshim.LinkTyper: bare IP packets.
func (p *Port) LinkType() dpdkshim.LinkType { return dpdkshim.LinkIP }

// Steering implements dpdkshim.Port: Symmetric{SteerSeed} when the steering program is
// attached (or there is one queue), nil under the kernel's automatic steering.
func (p *Port) Steering() dpdkshim.Steering { return p.steer }

// Offloads implements dpdkshim.Port: checksum offload both ways with the virtio-net header,
// none without.
func (p *Port) Offloads() dpdkshim.Offloads {
	return dpdkshim.Offloads{RxCsum: p.cfg.VnetHdr, TxCsum: p.cfg.VnetHdr}
}

// RxWait implements dpdkshim.Port: the queue's descriptor, readable when packets wait.
func (p *Port) RxWait(q int) dpdkshim.Wait {
	if uint(q) >= uint(len(p.queues)) {
		return dpdkshim.NoWait
	}
	return dpdkshim.Wait{FD: p.queues[q].fd}
}

// Pool implements dpdkshim.Port: queue q's transmit pool.
func (p *Port) Pool(q int) *dpdkshim.Pool {
	if uint(q) >= uint(len(p.queues)) {
		return nil
	}
	return p.queues[q].txPool
}

// RxBurst implements dpdkshim.Port: one read(2) per packet, into buffers of the queue's
// receive pool, until pkts is full, the burst size is reached or the device has nothing.
func (p *Port) RxBurst(q int, pkts []*dpdkshim.Packet) int {
	if uint(q) >= uint(len(p.queues)) || len(pkts) == 0 || p.closed.Load() || p.queues[q].dead.Load() {
		return 0
	}
	return p.queues[q].rx(pkts)
}

func (q *queue) rx(pkts []*dpdkshim.Packet) int {
	n := min(len(pkts), q.burst)
	out, bytes, calls, trunc, errs := 0, 0, 0, 0, 0
	start := q.headroom
	if q.vnet {
		start -= virtio.HdrLen // the header lands in the headroom, the packet after it
	}
	for out < n {
		p := q.rxPool.Get()
		if p == nil {
			q.c.rxNoBuffer.Add(1)
			break
		}
		buf := p.Buffer()
		r, _, e := unix.Syscall(unix.SYS_READ, uintptr(q.fd), uintptr(unsafe.Pointer(&buf[start])), uintptr(len(buf)-start))
		calls++
		if e != 0 {
			p.Free()
			if e == unix.EINTR {
				continue
			}
			switch e {
			case unix.EAGAIN:
				if out == 0 {
					q.c.rxEmpty.Add(1)
				}
			case unix.EBADFD:
				q.gone()
			default:
				errs++
			}
			break
		}
		length := int(r)
		if length > len(buf)-start {
			// The device copied what fitted and says how long the packet was.
			trunc++
			p.Free()
			continue
		}
		var flags dpdkshim.Flags
		var gso uint16
		if q.vnet {
			if length < virtio.HdrLen {
				errs++
				p.Free()
				continue
			}
			flags, gso = virtio.Rx(buf[start : start+virtio.HdrLen])
			length -= virtio.HdrLen
		}
		p.SetFrame(q.headroom, length)
		p.Flags, p.GSOSize, p.Queue = flags, gso, uint16(q.id)
		pkts[out] = p
		out++
		bytes += length
	}
	q.c.rxSyscalls.Add(uint64(calls))
	if out > 0 {
		q.c.rxPackets.Add(uint64(out))
		q.c.rxBytes.Add(uint64(bytes))
	}
	if trunc > 0 {
		q.c.rxTruncated.Add(uint64(trunc))
	}
	if errs > 0 {
		q.c.rxErrors.Add(uint64(errs))
	}
	return out
}

// gone retires a queue whose device was deleted under it (ip link del: the descriptor
// then answers EBADFD, and epoll reports it ready with an error forever, so its shard
// would spin). A never-readable eventfd takes the descriptor's number (dup3), which
// releases the TUN file and with it the shard's epoll entry for it; the queue then reads
// and writes nothing, and says so once.
func (q *queue) gone() {
	if q.dead.Swap(true) {
		return
	}
	if efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err == nil {
		_ = unix.Dup3(efd, q.fd, unix.O_CLOEXEC)
		unix.Close(efd)
	}
	q.logf("tun: %s queue %d: the device is gone (EBADFD): the queue stops", q.dev, q.id)
}

// TxBurst implements dpdkshim.Port: one write(2) per packet (the kernel takes the packet
// into its receive path during the call), each freed once written; with Config.GSO, one
// write per run of a flow's consecutive TCP segments, coalesced into a super-packet. When
// the device would block the burst stops there and the caller keeps the rest; a packet
// the kernel refuses is dropped and counted.
func (p *Port) TxBurst(q int, pkts []*dpdkshim.Packet) int {
	if uint(q) >= uint(len(p.queues)) || p.closed.Load() {
		return 0
	}
	if qu := p.queues[q]; qu.dead.Load() {
		// The device is gone: what the stack sends is lost, and counted.
		for _, pk := range pkts {
			pk.Free()
		}
		qu.c.txDropped.Add(uint64(len(pkts)))
		return len(pkts)
	}
	return p.queues[q].tx(pkts)
}

func (q *queue) tx(pkts []*dpdkshim.Packet) int {
	taken, sent, bytes, calls, dropped, errs, supers := 0, 0, 0, 0, 0, 0, 0
	full := false
	for taken < len(pkts) && !full {
		if q.super != nil {
			if r := virtio.FindRun(pkts[taken:], 0, len(q.super)-virtio.HdrLen); r.N > 1 {
				n := r.N
				run := pkts[taken : taken+n]
				l := virtio.PutSuper(q.super, run, r)
				e := q.write(q.super[:l], &calls)
				switch e {
				case 0:
					for _, p := range run {
						bytes += p.Len()
					}
					sent += n
					supers++
				case unix.EAGAIN:
					full = true
					continue
				default:
					if e == unix.EBADFD {
						q.gone()
					}
					errs++
					dropped += n
				}
				for _, p := range run {
					p.Free()
				}
				taken += n
				continue
			}
		}
		p := pkts[taken]
		n := p.Len()
		if q.vnet {
			virtio.PutTx(q.hdr[:], p) // before Prepend moves the frame's start
			h := p.Prepend(virtio.HdrLen)
			if h == nil {
				dropped++
				p.Free()
				taken++
				continue
			}
			copy(h, q.hdr[:])
		}
		d := p.Data()
		if len(d) == 0 {
			dropped++
			p.Free()
			taken++
			continue
		}
		switch e := q.write(d, &calls); e {
		case 0:
			sent++
			bytes += n
		case unix.EAGAIN:
			if q.vnet {
				p.TrimFront(virtio.HdrLen)
			}
			full = true
			continue
		default:
			if e == unix.EBADFD {
				q.gone()
			}
			errs++
			dropped++
		}
		p.Free()
		taken++
	}
	q.c.txSyscalls.Add(uint64(calls))
	q.c.txPackets.Add(uint64(sent))
	q.c.txBytes.Add(uint64(bytes))
	if supers > 0 {
		q.c.txSuper.Add(uint64(supers))
	}
	if full {
		q.c.txFull.Add(1)
	}
	if dropped > 0 {
		q.c.txDropped.Add(uint64(dropped))
		q.c.txErrors.Add(uint64(errs))
	}
	return taken
}

// write is one write(2) of b, retried when a signal interrupts it.
func (q *queue) write(b []byte, calls *int) unix.Errno {
	for {
		_, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(q.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		*calls++
		if e != unix.EINTR {
			return e
		}
	}
}

// Stats returns every queue's counters. Any goroutine may call it.
func (p *Port) Stats() []QueueStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]QueueStats, len(p.queues))
	for i, q := range p.queues {
		c := &q.c
		out[i] = QueueStats{
			Queue:       q.id,
			RxPackets:   c.rxPackets.Load(),
			RxBytes:     c.rxBytes.Load(),
			RxSyscalls:  c.rxSyscalls.Load(),
			RxEmpty:     c.rxEmpty.Load(),
			RxNoBuffer:  c.rxNoBuffer.Load(),
			RxTruncated: c.rxTruncated.Load(),
			RxErrors:    c.rxErrors.Load(),
			TxPackets:   c.txPackets.Load(),
			TxBytes:     c.txBytes.Load(),
			TxSyscalls:  c.txSyscalls.Load(),
			TxFull:      c.txFull.Load(),
			TxDropped:   c.txDropped.Load(),
			TxErrors:    c.txErrors.Load(),
			TxSuper:     c.txSuper.Load(),
		}
	}
	return out
}

// DeviceStats reads the device's own counters (the kernel's drops among them). Any
// goroutine may call it, until Close.
func (p *Port) DeviceStats() (DeviceStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() || p.nl == nil {
		return DeviceStats{}, fmt.Errorf("tun: %s: closed", p.dev)
	}
	st, err := p.nl.linkStats(p.ifindex)
	if err != nil {
		return st, fmt.Errorf("tun: %s: reading the device's counters: %w", p.dev, err)
	}
	return st, nil
}

// Close implements dpdkshim.Port: it closes the descriptors (call it after the queues'
// goroutines have stopped). A device Open created goes away with them; a persistent one
// stays, without the steering program. Closing again is a no-op.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return nil
	}
	var errs []error
	if !p.created && len(p.queues) > 1 && p.steer != nil {
		if err := setSteering(p.queues[0].fd, -1); err != nil {
			errs = append(errs, fmt.Errorf("tun: %s: detaching the steering program: %w", p.dev, err))
		}
	}
	if p.nl != nil {
		p.nl.close()
		p.nl = nil
	}
	for _, q := range p.queues {
		if q.fd >= 0 {
			if err := unix.Close(q.fd); err != nil {
				errs = append(errs, fmt.Errorf("tun: %s queue %d: %w", p.dev, q.id, err))
			}
			q.fd = -1
		}
	}
	return errors.Join(errs...)
}

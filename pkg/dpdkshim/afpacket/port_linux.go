package afpacket

import (
	"errors"
	"fmt"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// Port is an AF_PACKET port: one packet socket per queue, all in one fanout group that
// steers by dpdkshim.Symmetric. It implements dpdkshim.Port and dpdkshim.QueueLimiter.
type Port struct {
	cfg     Config
	name    string
	ifindex int
	mac     header.MAC
	mtu     int
	steer   dpdkshim.Symmetric
	fanout  uint16
	queues  []*queue
	closed  atomic.Bool
	mu      sync.Mutex // serialises Close, Stats and UseQueues
	useErr  error      // the last UseQueues failure
}

// queue is one queue pair: a socket and the state of its receive and transmit paths. Only
// the queue's goroutine touches it, except the counters (atomics) and a ring's block
// references (released from any goroutine).
type queue struct {
	port  *Port
	id    int
	fd    int
	vnet  bool
	gso   bool // transmit runs of segments as super-packets (Config.GSO)
	burst int

	txPool *dpdkshim.Pool
	mm     *mmsgRx   // recvmmsg receive path, or
	rx     *rxRing   // the TPACKET_V3 receive ring
	mt     *mmsgTx   // sendmmsg transmit path, or
	tx     *txRing   // the transmit ring
	ring   []byte    // the socket's whole mapping (receive ring, then transmit ring)
	c      counters  // written by the queue's goroutine
	k      kcounters // kernel counters, written by Stats
}

type counters struct {
	_                                       [64]byte
	rxPackets, rxBytes, rxSyscalls, rxEmpty atomic.Uint64
	rxNoBuffer, rxTruncated, rxErrors       atomic.Uint64
	txPackets, txBytes, txSyscalls, txFull  atomic.Uint64
	txDropped, txErrors                     atomic.Uint64
	txSuper, txSuperSegs                    atomic.Uint64
	_                                       [64]byte
}

type kcounters struct {
	packets, drops, freezes atomic.Uint64
}

// fanoutSeq numbers the ports of this process for their derived fanout IDs.
var fanoutSeq atomic.Uint32

// Open opens an AF_PACKET port on cfg.Interface. The sockets belong to the network namespace
// of the calling thread: to open a port in another namespace, call Open on a goroutine that
// has locked its OS thread and setns(2)'d into it.
func Open(cfg Config) (*Port, error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("%w: Config.Interface is empty", ErrConfig)
	}
	if cfg.GSO && cfg.NoVnetHdr {
		return nil, fmt.Errorf("%w: GSO needs the virtio-net header (no NoVnetHdr)", ErrConfig)
	}
	if cfg.GSO && cfg.QdiscBypass {
		// The kernel's direct transmit (__dev_direct_xmit) drops a packet it would have to
		// segment in software, on any device without TSO: every super-packet.
		return nil, fmt.Errorf("%w: GSO does not work with QdiscBypass (the direct transmit path cannot segment)", ErrConfig)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrNoInterface, cfg.Interface, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("afpacket: interface %s is down", cfg.Interface)
	}
	if len(ifi.HardwareAddr) != len(header.MAC{}) {
		return nil, fmt.Errorf("afpacket: interface %s is not Ethernet (hardware address %v)", cfg.Interface, ifi.HardwareAddr)
	}
	cfg.setDefaults(ifi.MTU)
	if err := cfg.checkRings(); err != nil {
		return nil, err
	}
	p := &Port{
		cfg:     cfg,
		name:    "afpacket:" + cfg.Interface,
		ifindex: ifi.Index,
		mtu:     ifi.MTU,
		steer:   dpdkshim.Symmetric{Seed: cfg.SteerSeed},
	}
	copy(p.mac[:], ifi.HardwareAddr)
	for i := 0; i < cfg.Queues; i++ {
		q, err := p.openQueue(i)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("afpacket: %s queue %d: %w", cfg.Interface, i, err)
		}
		p.queues = append(p.queues, q)
	}
	if err := p.joinFanout(); err != nil {
		p.Close()
		return nil, fmt.Errorf("afpacket: %s: %w", cfg.Interface, err)
	}
	// Every socket is in the group and the program steers: let frames in.
	for _, q := range p.queues {
		if err := unix.SetsockoptInt(q.fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
			p.Close()
			return nil, fmt.Errorf("afpacket: %s queue %d: SO_DETACH_FILTER: %w", cfg.Interface, q.id, err)
		}
	}
	return p, nil
}

func (c *Config) checkRings() error {
	page := os.Getpagesize()
	pow2 := func(v int) bool { return v > 0 && v&(v-1) == 0 }
	if c.RxRing {
		if !pow2(c.RxBlockSize) || c.RxBlockSize%page != 0 {
			return fmt.Errorf("%w: RxBlockSize %d is not a power of two multiple of the page size %d", ErrConfig, c.RxBlockSize, page)
		}
		if c.RxFrameSize%16 != 0 || c.RxFrameSize < tpacket3HdrLen+sockaddrLLLen || c.RxFrameSize > c.RxBlockSize {
			return fmt.Errorf("%w: RxFrameSize %d", ErrConfig, c.RxFrameSize)
		}
		if c.RxRetireTimeout.Milliseconds() > 1<<20 {
			return fmt.Errorf("%w: RxRetireTimeout %v", ErrConfig, c.RxRetireTimeout)
		}
	}
	if c.TxRing && (!pow2(c.TxFrameSize) || c.TxFrameSize < tpacket3HdrLen+virtio.HdrLen+ethernetLen) {
		return fmt.Errorf("%w: TxFrameSize %d is not a power of two that holds a frame", ErrConfig, c.TxFrameSize)
	}
	return nil
}

func (p *Port) openQueue(id int) (q *queue, err error) {
	cfg := &p.cfg
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	q = &queue{port: p, id: id, fd: fd, vnet: !cfg.NoVnetHdr, gso: cfg.GSO, burst: cfg.Burst}
	defer func() {
		if err != nil {
			q.close()
			q = nil
		}
	}()
	opt := func(name string, level, o, v int) error {
		if e := unix.SetsockoptInt(fd, level, o, v); e != nil {
			return fmt.Errorf("%s: %w", name, e)
		}
		return nil
	}
	// Drop everything until the whole group steers (Open detaches the filter): a frame the
	// socket took alone, or while the group had fewer members, could be on the wrong queue.
	dropAll := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: 1, Filter: &dropAll[0]}); err != nil {
		return q, fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	if err := opt("SO_RCVBUFFORCE", unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, cfg.RcvBuf); err != nil {
		if err := opt("SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.RcvBuf); err != nil {
			return q, err
		}
	}
	if err := opt("SO_SNDBUFFORCE", unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, cfg.SndBuf); err != nil {
		if err := opt("SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SndBuf); err != nil {
			return q, err
		}
	}
	if err := opt("PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return q, err
	}
	if q.vnet {
		if err := opt("PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return q, err
		}
	} else if !cfg.RxRing {
		if err := opt("PACKET_AUXDATA", unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return q, err
		}
	}
	if cfg.QdiscBypass {
		if err := opt("PACKET_QDISC_BYPASS", unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return q, err
		}
	}
	if cfg.RxRing || cfg.TxRing {
		if err := opt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
			return q, err
		}
	}
	if err := q.setupRings(cfg); err != nil {
		return q, err
	}
	q.txPool = dpdkshim.NewPool(cfg.Pool)
	if !cfg.RxRing {
		q.mm = newMmsgRx(q, cfg)
	}
	if !cfg.TxRing {
		q.mt = newMmsgTx(q)
	}
	// Bind last: setting a ring on a running socket would take it out of the fanout group
	// and put it back at the end, out of queue order.
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: p.ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return q, fmt.Errorf("bind: %w", err)
	}
	return q, nil
}

// fanoutArgs is struct fanout_args.
type fanoutArgs struct {
	id        uint16
	typeFlags uint16
	max       uint32
}

// joinFanout puts the sockets in one PACKET_FANOUT_CBPF group in queue order, so that
// socket i is member i, and programs the group's steering.
func (p *Port) joinFanout() error {
	args := fanoutArgs{
		typeFlags: unix.PACKET_FANOUT_CBPF | unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING,
		// Exactly our sockets: nobody else can join the group and shift the members, and
		// a group with this ID but another shape is refused (EINVAL), so we skip its ID.
		max: uint32(len(p.queues)),
	}
	join := func(q *queue) error {
		return setsockopt(q.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, unsafe.Pointer(&args), unsafe.Sizeof(args))
	}
	if p.cfg.FanoutID != 0 {
		args.id = p.cfg.FanoutID
		if err := join(p.queues[0]); err != nil {
			return fmt.Errorf("PACKET_FANOUT id %d: %w", args.id, err)
		}
	} else {
		h := uint32(os.Getpid())*0x9e3779b1 + fanoutSeq.Add(1)*0x85ebca6b
		base := uint16(h >> 16)
		var err error
		for try := uint16(0); try < 512; try++ {
			args.id = base + try
			if args.id == 0 {
				continue
			}
			if err = join(p.queues[0]); err == nil || (err != unix.EINVAL && err != unix.ENOSPC) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("PACKET_FANOUT: no free group ID near %d: %w", base, err)
		}
	}
	for _, q := range p.queues[1:] {
		if err := join(q); err != nil {
			return fmt.Errorf("PACKET_FANOUT id %d, queue %d: %w", args.id, q.id, err)
		}
	}
	p.fanout = args.id
	return p.program(len(p.queues))
}

// program sets the group's steering program for the first n queues.
func (p *Port) program(n int) error {
	prog, err := steerProgram(p.cfg.SteerSeed, n, kernelLayout)
	if err != nil {
		return err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assembling the steering program: %w", err)
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(p.queues[0].fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &fprog); err != nil {
		return fmt.Errorf("PACKET_FANOUT_DATA: %w", err)
	}
	return nil
}

// Name implements dpdkshim.Port: "afpacket:" and the interface.
func (p *Port) Name() string { return p.name }

// MAC implements dpdkshim.Port: the interface's address.
func (p *Port) MAC() header.MAC { return p.mac }

// MTU implements dpdkshim.Port: the interface's MTU when the port was opened.
func (p *Port) MTU() int { return p.mtu }

// NumQueues implements dpdkshim.Port.
func (p *Port) NumQueues() int { return len(p.queues) }

// Steering implements dpdkshim.Port: the fanout program computes Symmetric{SteerSeed}.
func (p *Port) Steering() dpdkshim.Steering { return p.steer }

// Offloads implements dpdkshim.Port: checksum offloads both ways with the virtio-net header;
// without it, receive checksum status only.
func (p *Port) Offloads() dpdkshim.Offloads {
	return dpdkshim.Offloads{RxCsum: true, TxCsum: !p.cfg.NoVnetHdr}
}

// RxWait implements dpdkshim.Port: the queue's socket, readable when frames are waiting (with
// RxRing, when the kernel has handed over a block: at the latest RxRetireTimeout after the
// first frame of a block).
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

// FanoutID returns the fanout group's ID.
func (p *Port) FanoutID() uint16 { return p.fanout }

// UseQueues implements dpdkshim.QueueLimiter: the group's program steers over the first n
// queues only (n <= 0 or beyond the port's queues: all of them).
func (p *Port) UseQueues(n int) {
	if n <= 0 || n > len(p.queues) {
		n = len(p.queues)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return
	}
	p.useErr = p.program(n)
}

// UseQueuesErr returns the error of the last UseQueues, which has no way to return one.
func (p *Port) UseQueuesErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.useErr
}

// TxPending implements dpdkshim.TxPender: the transmit ring holds frames that a send(2)
// could not take (its socket buffer was full); the next RxBurst or TxBurst asks again.
func (p *Port) TxPending(q int) bool {
	if uint(q) >= uint(len(p.queues)) || p.closed.Load() {
		return false
	}
	qu := p.queues[q]
	return qu.tx != nil && qu.tx.pending
}

// RxBurst implements dpdkshim.Port.
func (p *Port) RxBurst(q int, pkts []*dpdkshim.Packet) int {
	if uint(q) >= uint(len(p.queues)) || len(pkts) == 0 || p.closed.Load() {
		return 0
	}
	qu := p.queues[q]
	if qu.tx != nil && qu.tx.pending {
		qu.kickTx()
	}
	if qu.rx != nil {
		return qu.rx.burst(qu, pkts)
	}
	return qu.mm.burst(qu, pkts)
}

// TxBurst implements dpdkshim.Port. Frames are copied (sendmmsg or the transmit ring) and the
// packets freed; when the socket buffer or the ring is full the burst stops there and the
// caller keeps the rest. A frame the kernel refuses is dropped and counted.
func (p *Port) TxBurst(q int, pkts []*dpdkshim.Packet) int {
	if uint(q) >= uint(len(p.queues)) || p.closed.Load() {
		return 0
	}
	qu := p.queues[q]
	if qu.tx != nil {
		return qu.tx.burst(qu, pkts)
	}
	return qu.mt.burst(qu, pkts)
}

// Stats returns every queue's counters, reading the kernel's drop counters first. Any
// goroutine may call it.
func (p *Port) Stats() []QueueStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]QueueStats, len(p.queues))
	for i, q := range p.queues {
		if !p.closed.Load() {
			q.readKernelStats()
		}
		out[i] = q.stats()
	}
	return out
}

func (q *queue) readKernelStats() {
	packets, drops, freezes, err := packetStats(q.fd)
	if err != nil {
		return
	}
	q.k.packets.Add(uint64(packets))
	q.k.drops.Add(uint64(drops))
	q.k.freezes.Add(uint64(freezes))
}

func (q *queue) stats() QueueStats {
	c := &q.c
	return QueueStats{
		Queue:           q.id,
		RxPackets:       c.rxPackets.Load(),
		RxBytes:         c.rxBytes.Load(),
		RxSyscalls:      c.rxSyscalls.Load(),
		RxEmpty:         c.rxEmpty.Load(),
		RxNoBuffer:      c.rxNoBuffer.Load(),
		RxTruncated:     c.rxTruncated.Load(),
		RxErrors:        c.rxErrors.Load(),
		RxKernelDrops:   q.k.drops.Load(),
		RxFreezes:       q.k.freezes.Load(),
		RxKernelPackets: q.k.packets.Load(),
		TxPackets:       c.txPackets.Load(),
		TxBytes:         c.txBytes.Load(),
		TxSyscalls:      c.txSyscalls.Load(),
		TxFull:          c.txFull.Load(),
		TxDropped:       c.txDropped.Load(),
		TxErrors:        c.txErrors.Load(),
		TxSuper:         c.txSuper.Load(),
		TxSuperSegments: c.txSuperSegs.Load(),
	}
}

// Close implements dpdkshim.Port: it closes the sockets and unmaps the rings; call it after
// the queues' goroutines have stopped. A receive ring some of whose packets are still held
// stays mapped (their bytes stay valid) and Close says so; closing again is a no-op.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, q := range p.queues {
		q.readKernelStats()
		if err := q.close(); err != nil {
			errs = append(errs, fmt.Errorf("afpacket: %s queue %d: %w", p.cfg.Interface, q.id, err))
		}
	}
	return errors.Join(errs...)
}

func (q *queue) close() error {
	var err error
	if q.mm != nil {
		q.mm.release()
	}
	if q.fd >= 0 {
		err = unix.Close(q.fd)
		q.fd = -1
	}
	if q.ring != nil {
		held := 0
		if q.rx != nil {
			held = q.rx.stop()
		}
		if held > 0 {
			return errors.Join(err, fmt.Errorf("%d ring packets still held: the receive ring stays mapped", held))
		}
		err = errors.Join(err, unix.Munmap(q.ring))
		q.ring, q.rx, q.tx = nil, nil, nil
	}
	return err
}

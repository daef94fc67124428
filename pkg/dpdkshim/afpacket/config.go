package afpacket

import (
	"errors"
	virtio "github.com/shardstack/shardstack/pkg/dpdkshim/internal/vnet"
	"time"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// Defaults of Config.
const (
	DefaultBurst        = 64
	DefaultRxBufSize    = 64<<10 + 256 // a 64 KiB GSO super-packet behind its Ethernet (and VLAN) header
	DefaultRxBlockSize  = 256 << 10
	DefaultRxBlockCount = 16
	DefaultRxFrameSize  = 2048
	DefaultRetire       = time.Millisecond
	DefaultTxFrames     = 1024
	DefaultSocketBuf    = 4 << 20
	// With GSO and TxRing: slots that hold a super-packet of 22 segments of a 1448-byte
	// MSS, and fewer of them (8 MiB of ring).
	DefaultGSOTxFrameSize = 32 << 10
	DefaultGSOTxFrames    = 256
)

// Errors of Open.
var (
	// ErrNoInterface: Config.Interface names no interface in the thread's namespace.
	ErrNoInterface = errors.New("afpacket: no interface named")
	// ErrConfig: the configuration cannot work (an empty interface name, ring geometry the
	// kernel refuses).
	ErrConfig = errors.New("afpacket: bad configuration")
)

// Config configures Open. Every field has a default.
type Config struct {
	// Interface is the name of the Ethernet interface to bind, which must be up.
	Interface string
	// Queues is the number of queue pairs, one AF_PACKET socket each (default 1).
	Queues int
	// Burst is how many messages one recvmmsg or sendmmsg moves at most (default 64).
	Burst int

	// RxRing receives through a TPACKET_V3 ring mapped into the process instead of
	// recvmmsg: no system call per burst, and packets point into the ring (zero copy).
	RxRing bool
	// RxBlockSize is the size of a ring block, a power of two multiple of the page size
	// that holds at least one whole frame (default 256 KiB; it must hold a 64 KiB
	// super-packet for GSO frames to arrive whole).
	RxBlockSize int
	// RxBlockCount is the number of ring blocks per queue (default 16).
	RxBlockCount int
	// RxFrameSize is the nominal frame size the kernel checks the ring geometry with;
	// TPACKET_V3 packs frames of any length into blocks (default 2048).
	RxFrameSize int
	// RxRetireTimeout is how long the kernel keeps a partly filled block before it hands
	// it over: the bound on the receive latency at low packet rates (default 1 ms; the
	// kernel counts in whole milliseconds).
	RxRetireTimeout time.Duration

	// TxRing transmits through a PACKET_TX_RING: TxBurst copies frames into ring slots
	// and one send(2) per burst hands them all to the kernel.
	TxRing bool
	// TxFrames is the number of slots in the transmit ring (default 1024; with GSO
	// DefaultGSOTxFrames).
	TxFrames int
	// TxFrameSize is the size of a transmit slot, a power of two that holds the TPACKET
	// header, the virtio-net header and an MTU-sized frame (default: the smallest such;
	// with GSO DefaultGSOTxFrameSize, and a super-packet never outgrows its slot).
	TxFrameSize int

	// QdiscBypass transmits straight to the driver (PACKET_QDISC_BYPASS), skipping the
	// interface's queueing discipline.
	QdiscBypass bool
	// NoVnetHdr turns off the virtio-net header (PACKET_VNET_HDR), which is on by
	// default: with it, the kernel says per frame whether the checksum needs checking and
	// whether the frame is a GSO super-packet, and completes the checksums the stack
	// leaves partial (Offloads RxCsum and TxCsum). Without it, receive checksum status
	// comes from PACKET_AUXDATA or the TPACKET status bits (Offloads RxCsum only) and
	// super-packets arrive without their segment size.
	NoVnetHdr bool
	// GSO transmits runs of a flow's consecutive TCP segments in a burst (those a
	// receiver's GRO would merge) as one GSO super-packet each, behind a virtio-net header
	// with VIRTIO_NET_HDR_GSO_TCPV4 or TCPV6: one frame for the kernel instead of one per
	// segment. The kernel cuts it back into the same segments, in software when the
	// device has no TSO, or a veth hands it whole to its peer. It needs the virtio-net
	// header (not NoVnetHdr) and the stack's checksum offload (Offloads TxCsum, which
	// the header gives), and does not work with QdiscBypass. QueueStats TxSuper counts
	// the super-packets. It is off by default, as TUN's is: on a wire whose devices
	// segment in software (bench/loss turns TSO off) the kernel's per-segment work
	// dominates and it gains little; over a veth with TSO, where super-packets reach the
	// peer whole, a bulk transfer between two shardstacks took half the time.
	GSO bool

	// SteerSeed seeds the Symmetric steering the fanout program computes.
	SteerSeed uint32
	// FanoutID is the fanout group's ID in the network namespace; 0 derives one from the
	// process ID and a counter, skipping IDs that other groups hold.
	FanoutID uint16

	// Pool sizes each queue's transmit pool (dpdkshim defaults).
	Pool dpdkshim.PoolConfig
	// RxBufSize is the largest frame recvmmsg receives whole (default DefaultRxBufSize);
	// longer frames are dropped and counted as truncated.
	RxBufSize int
	// RxPoolSize is how many receive buffers of RxBufSize each queue allocates up front
	// (default 2*Burst; the pool grows to 16*Burst when the stack holds many).
	RxPoolSize int
	// RcvBuf and SndBuf size the sockets' buffers (SO_RCVBUFFORCE, SO_SNDBUFFORCE; default
	// 4 MiB each; the kernel doubles the value for its bookkeeping).
	RcvBuf, SndBuf int
}

func (c *Config) setDefaults(mtu int) {
	if c.Queues <= 0 {
		c.Queues = 1
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.RxBlockSize <= 0 {
		c.RxBlockSize = DefaultRxBlockSize
	}
	if c.RxBlockCount <= 0 {
		c.RxBlockCount = DefaultRxBlockCount
	}
	if c.RxFrameSize <= 0 {
		c.RxFrameSize = DefaultRxFrameSize
	}
	if c.RxRetireTimeout <= 0 {
		c.RxRetireTimeout = DefaultRetire
	}
	if c.TxFrames <= 0 {
		c.TxFrames = DefaultTxFrames
		if c.GSO {
			c.TxFrames = DefaultGSOTxFrames
		}
	}
	if c.TxFrameSize <= 0 && c.GSO {
		c.TxFrameSize = DefaultGSOTxFrameSize
	}
	if c.TxFrameSize <= 0 {
		need := tpacket3HdrLen + virtio.HdrLen + mtu + ethernetLen + 4
		c.TxFrameSize = 256
		for c.TxFrameSize < need {
			c.TxFrameSize <<= 1
		}
	}
	if c.RxBufSize <= 0 {
		c.RxBufSize = DefaultRxBufSize
	}
	if c.RxPoolSize <= 0 {
		c.RxPoolSize = 2 * c.Burst
	}
	if c.RcvBuf <= 0 {
		c.RcvBuf = DefaultSocketBuf
	}
	if c.SndBuf <= 0 {
		c.SndBuf = DefaultSocketBuf
	}
}

package tun

import (
	"errors"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
)

// Defaults of Config.
const (
	DefaultBurst = 64
	// DefaultGSOBufSize holds a 64 KiB GSO super-packet (Config.GSO).
	DefaultGSOBufSize = 64<<10 + 256
)

// Errors of Open.
var (
	// ErrConfig: the configuration cannot work (no device name, a name too long, a bad MTU).
	ErrConfig = errors.New("tun: bad configuration")
	// ErrNotTUN: Config.Name is an existing interface that is not a multi-queue TUN device
	// this process may attach to.
	ErrNotTUN = errors.New("tun: not a multi-queue TUN device")
)

// Config configures Open. Every field but Name has a default.
type Config struct {
	// Name is the TUN device: created if no interface has that name in the calling thread's
	// namespace (it then disappears when the port closes), attached to if one does (a
	// persistent device made with `ip tuntap add NAME mode tun multi_queue`, which stays).
	Name string
	// Queues is the number of queue pairs, one file descriptor each (default 1).
	Queues int
	// Burst is how many packets one RxBurst reads at most, one read(2) each (default 64).
	Burst int
	// MTU, if set, is given to the device; 0 keeps the device's (1500 for a new one).
	MTU int
	// QueueLen, if set, is given to the device as its txqueuelen: how many packets each
	// queue holds for the port to read before the kernel drops (DeviceStats TxDropped).
	// 0 raises the kernel's default of 500 (a device Open creates, or one made with `ip
	// tuntap add`) to DefaultQueueLen, and keeps any other length the device has.
	QueueLen int

	// VnetHdr turns on the virtio-net header (IFF_VNET_HDR) with checksum offload
	// (TUNSETOFFLOAD TUN_F_CSUM): packets from the host arrive with their checksums left
	// partial and marked verified, and the kernel completes the checksums of the packets
	// the stack leaves partial (Offloads RxCsum and TxCsum).
	VnetHdr bool
	// GSO, with VnetHdr, also offers TUN_F_TSO4 and TUN_F_TSO6: Linux's TCP then sends
	// super-packets of up to 64 KiB through the device, which arrive whole with
	// Packet.GSOSize set (the receive buffers grow to DefaultGSOBufSize). And TxBurst
	// coalesces runs of a flow's consecutive TCP segments into super-packets
	// (VIRTIO_NET_HDR_GSO_TCPV4 and TCPV6), one write each, which Linux's TCP takes whole.
	GSO bool

	// NoSteer leaves the device's own steering (tun_automq_select_queue: a flow follows
	// the queue that last wrote its packets, a hash picks the first) instead of attaching
	// the eBPF program that steers by Symmetric{SteerSeed}; Steering is then nil.
	NoSteer bool
	// SteerSeed seeds the Symmetric steering the program computes.
	SteerSeed uint32

	// Pool sizes each queue's transmit pool (dpdkshim defaults).
	Pool dpdkshim.PoolConfig
	// RxBufSize is the largest packet a receive buffer holds (default: the MTU plus 256
	// bytes, at least 2048; DefaultGSOBufSize with GSO). A longer packet is dropped and
	// counted (RxTruncated).
	RxBufSize int
	// RxPoolSize is how many receive buffers each queue allocates up front (default
	// 2*Burst; the pool grows to 16*Burst when the stack holds many).
	RxPoolSize int

	// Logf reports what Open could not do and did instead (the steering program refused);
	// nil: the standard logger.
	Logf func(format string, args ...any)
}

func (c *Config) setDefaults(mtu int) {
	if c.Queues <= 0 {
		c.Queues = 1
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.RxBufSize <= 0 {
		c.RxBufSize = max(2048, mtu+256)
		if c.GSO && c.VnetHdr {
			c.RxBufSize = max(c.RxBufSize, DefaultGSOBufSize)
		}
	}
	if c.RxPoolSize <= 0 {
		c.RxPoolSize = 2 * c.Burst
	}
}

// DefaultQueueLen is the txqueuelen a device with the kernel's default gets unless
// Config.QueueLen says otherwise. The kernel's 500 suits its own consumers; a stack that reads one packet per
// read(2) and may lose its CPU for a few milliseconds overflows it under bulk traffic
// (bench/loss over TUN: 1,500-2,600 packets dropped at the receiver's device per lossless
// cell, and a 4.5 s run; none with 4096).
const DefaultQueueLen = 4096

// kernelQueueLen is the txqueuelen the kernel gives a new TUN device.
const kernelQueueLen = 500

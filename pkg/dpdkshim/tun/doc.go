// Package tun is the TUN backend of dpdkshim: a Port over one Linux multi-queue TUN device
// (IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE), one non-blocking file descriptor per queue. Its
// frames are bare IP packets (dpdkshim.LinkIP): the stack sends and receives them with no
// link header and resolves no neighbours. It owns the descriptors, the steering program,
// the receive buffers and per-queue counters; it never parses packets, and never touches
// the stack's packets after giving them back.
//
// # The device
//
// Open creates the device when no interface in the calling thread's namespace has the
// name (it then lives as long as the port: the kernel deletes a non-persistent TUN device
// with its last descriptor), or attaches to an existing persistent multi-queue device
// (`ip tuntap add NAME mode tun multi_queue`), which stays when the port closes. Either
// way Open sets the MTU when Config.MTU asks (SIOCSIFMTU) and brings the device up
// (SIOCSIFFLAGS), through ioctls on a socket of the namespace; addresses and routes on
// the Linux side are the user's (`ip addr add 198.18.0.2 peer 198.18.0.1 dev NAME`). The
// port must be the device's only user: the kernel numbers queues in the order they attach,
// and the steering program's queue i is the port's queue i only if the port attached them
// all.
//
// # Steering
//
// With more than one queue Open loads an eBPF socket-filter program, assembled here by
// hand, and attaches it to the device (TUNSETSTEERINGEBPF) before bringing it up: it
// computes dpdkshim.Symmetric{SteerSeed}.IPQueue of every packet the kernel sends through
// the device, so Steering reports that function and each flow reaches the shard that owns
// it (and Dial picks ports whose replies come back to the dialling shard). Without the
// program (Config.NoSteer, or the kernel refused it: no CAP_BPF/CAP_NET_ADMIN, a kernel
// before 4.16) the device steers by itself (tun_automq_select_queue: a flow goes to the
// queue its packets were last written from, the first packet to a hash the stack cannot
// know; its flow table holds at most 4,096 flows for 3 s, so under a high connection rate
// most flows go by the hash alone), Steering is nil, Open says so through Config.Logf, and the stack hands packets
// that reach the wrong shard to their owner, counted in its hand-off counters.
//
// # Receiving and transmitting
//
// A TUN descriptor moves one packet per read(2) or write(2); there is no recvmmsg for it.
// RxBurst reads until the burst is full or a read finds nothing (EAGAIN), each packet
// straight into a buffer of the queue's receive pool (no copy of ours), so a burst costs
// one system call per packet plus one; RxWait gives the descriptor for epoll. TxBurst
// writes each packet from the stack's own buffer and frees it; during the write the
// kernel runs its own receive path for the packet (Linux's TCP, for a Linux peer), so
// that work is done on the shard's thread. Stats has the port's counters per queue;
// DeviceStats the device's own (through a netlink socket of the port's namespace), among
// them the packets the kernel dropped because a queue was full (tx_dropped). A device
// deleted under the port (ip link del) makes each queue stop at its next burst, with a
// log line: its descriptor is replaced by a never-readable one, so that the shard's epoll
// does not report it ready forever, and what the stack still sends is dropped and counted.
//
// # Offloads
//
// With Config.VnetHdr every packet carries a virtio-net header (IFF_VNET_HDR; the header
// is read into and written from the packet's headroom, so it costs no extra call), and
// TUNSETOFFLOAD TUN_F_CSUM lets the kernel leave checksums partial: received packets are
// marked CsumVerified (partial or checked), and packets the stack marks with SetTxCsum go
// out with NEEDS_CSUM and are completed by the kernel. Config.GSO adds TUN_F_TSO4/6, so
// Linux's TCP sends super-packets of up to 64 KiB, one read each, with Packet.GSOSize set;
// and on transmit a run of a flow's consecutive TCP segments in one burst (those a
// receiver's GRO would merge; the coalescing is internal/vnet's, shared with the AF_PACKET
// backend) is copied into one super-packet (VIRTIO_NET_HDR_GSO_TCPV4 or TCPV6) and
// written once, which Linux's TCP takes whole: one write for up to 45 segments of a
// 1448-byte MSS.
package tun

// Package dpdk is shardstack's DPDK backend: a dpdkshim.Port on one rte_ethdev, built with
// cgo and pkg-config's libdpdk behind the build tag "dpdk" (go build -tags dpdk). Without
// the tag only its pure-Go parts build (the RSS steering function, the splitting of EAL
// arguments, Config), which need neither cgo nor DPDK; internal/link's dpdk backend then
// says that DPDK was not built in.
//
// One EAL serves the process: the first Open initialises it with its EAL arguments
// (--no-huge, -m, --lcores, --vdev, ...), passed through as given; a later Open must give
// the same arguments except its --vdev devices, which it hot-plugs (rte_eal_hotplug_add)
// on the calling thread. That matters for net_af_packet, whose socket belongs to the
// network namespace of the thread that probes it.
//
// The port configures one receive and one transmit queue per shard. Where the PMD hashes
// received flows with RSS (dev_info's flow_type_rss_offloads), the port programs a
// symmetric Toeplitz key and reads back the redirection table, so that its Steering
// computes the queue of any flow (Toeplitz in this package); where it does not (net_af_packet
// spreads its queues with PACKET_FANOUT_HASH, the kernel's randomly seeded flow hash),
// Steering is nil and the stack hands packets that arrive on the wrong shard to the right
// one, and counts them.
//
// Packets are mbufs without a copy: a received rte_mbuf becomes a dpdkshim.Packet that views
// the mbuf's buffer (headroom, frame and tailroom) as a Go slice over C memory, with the
// mbuf's address as its Ref and the port as its Owner; freeing it hands the mbuf back with
// rte_pktmbuf_free_bulk, up to 64 at a time. The stack's transmit pools (Pool(q)) are bare
// pools whose Source is the port's mempool (rte_pktmbuf_alloc_bulk, 32 at a time), so a
// transmitted packet is an mbuf already, and a sent mbuf is the PMD's to free. Checksum
// offloads the PMD reports are enabled and surface as Offloads, CsumVerified and SetTxCsum.
//
// Every call into C moves a burst: rx_burst, tx_burst, alloc_bulk, free_bulk. The stack
// locks each shard's goroutine to an OS thread and registers that thread with DPDK
// (rte_thread_register, through dpdkshim.ThreadBinder) before its first burst, so that each
// shard has its own lcore id and mempool cache. C memory holds no Go pointers: the arrays
// the bursts fill are allocated with malloc, and Go reads them through unsafe.Slice.
package dpdk

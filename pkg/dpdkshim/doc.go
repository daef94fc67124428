// Package dpdkshim is the link layer's contract: a DPDK-shaped port with N receive/transmit
// queue pairs that move bursts of packets in caller-owned slices, and per-queue packet-buffer
// pools with headroom so that headers are prepended in place.
//
// Every link implements Port: the in-memory pair in this package (tests, benchmarks, the
// demo), AF_PACKET (package afpacket), DPDK's rte_ethdev (package dpdk, built with the tag
// "dpdk") and TUN (package tun). Queue q of a port is driven by exactly one goroutine, the
// shard that owns it; the package never locks on the burst path. Frames are Ethernet frames
// unless the port says otherwise (LinkTyper: LinkIP for bare IP packets, as a TUN device
// carries them).
//
// Ownership follows DPDK: RxBurst hands packets to the caller, who frees them; TxBurst takes
// the packets it accepted and the caller keeps the rest. A packet's buffer belongs to the pool
// it came from, or to the backend that lent it (an mmap'd ring frame, an mbuf), which takes
// it back through Owner.Release, in batches from a FreeBatch; a pool may itself borrow its
// packets' memory from a Source (DPDK's mempool, so that the stack builds frames in mbufs),
// and a backend that took a packet's memory back by itself (a sent mbuf) Disowns it; a packet that ends its life on
// another goroutine (a frame delivered across the in-memory pair, a packet handed to another
// shard) goes back with FreeRemote, which is lock-free. Packets carry offload metadata
// (Flags: checksum verified on receive, checksum to complete on transmit; GSOSize).
//
// Three seams keep backends honest: Steering (how flows reach queues, which the stack must
// be able to compute, or nil), ownership (above), and waiting (RxWait: a descriptor to epoll
// or a Notifier, so idle shards sleep). A port whose queues want known threads (DPDK's
// lcores) implements ThreadBinder, and the stack binds each shard's locked thread to it.
package dpdkshim

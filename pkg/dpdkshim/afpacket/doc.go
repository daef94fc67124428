// Package afpacket is the AF_PACKET backend of dpdkshim: a Port over one Linux packet socket
// per queue. It owns the sockets, their fanout group and its steering program, the
// receive buffers and mapped rings, and per-queue counters; it does not parse frames beyond
// what steering needs, and it never touches the stack's packets after giving them back.
//
// # Steering
//
// The sockets form one PACKET_FANOUT_CBPF group, joined in queue order so that socket i is
// member i. The group's classic BPF program computes dpdkshim.Symmetric{SteerSeed}'s
// FrameQueue (IPv4/IPv6 TCP and UDP by XORed addresses and ports, fragments and IPv6 with
// extension headers by addresses alone, everything else to queue 0), so Steering reports that
// function and a flow's frames reach the shard that owns it. The kernel runs the program
// before the socket pushes the Ethernet header back, so the program addresses the frame
// relative to the MAC header (SKF_LL_OFF) and counts the length from the network header.
// Until every socket has joined, a drop-all filter keeps frames out, so none lands on the
// wrong queue. UseQueues reprograms the group to spread over fewer queues.
//
// # Receiving
//
// By default RxBurst is one recvmmsg(2) into packets of the queue's receive pool that were
// posted in the message vectors beforehand: the kernel writes each frame into the buffer
// the stack then owns, without a copy of ours, and the slot gets a fresh packet before the
// next call (a burst the pool cannot fill is cut short and counted in RxNoBuffer). The
// buffers hold DefaultRxBufSize bytes: a Linux peer with TSO (a veth's default) sends GSO
// super-packets of up to 64 KiB, which arrive whole with Packet.GSOSize set. Longer frames
// are dropped and counted (RxTruncated).
//
// With Config.RxRing the socket has a TPACKET_V3 ring instead, and RxBurst makes no system
// call: it walks the blocks the kernel has handed over and attaches a bare packet to each
// frame, in place, with the queue as its dpdkshim.Owner. Per block a reference count holds
// the walk and every packet out; packets may be freed on any goroutine, in batches
// (dpdkshim.FreeBatch), and the last release hands the block back to the kernel. The kernel
// fills blocks strictly in order, so a packet held for long stops the ring at its block
// (counted as kernel drops and RxFreezes). The socket becomes readable when the kernel
// retires a block: when it is full or, at lower rates, at the latest RxRetireTimeout after
// it was opened, which bounds the receive latency. Linux 6.18 keeps that timeout with a
// high-resolution timer (a lone frame was readable after 0.1-0.7 ms at the 1 ms default,
// HZ=250); older kernels round it up to a jiffy. Blocks retired by the timer are partly
// empty (about 240 small frames per millisecond from one sender here), so a reader that
// falls behind has about RxBlockCount timeouts of slack, not the ring's size in frames.
// The kernel's poll reports the socket readable while the block before its current one is
// the user's, so a block the walk has finished but whose packets another shard still holds
// can keep an idle shard waking until they are freed.
//
// # Offloads
//
// With the virtio-net header (on unless Config.NoVnetHdr) every frame carries one: the
// kernel says whether the checksum is partial (NEEDS_CSUM, a frame from this host, like
// every TCP segment a Linux peer sends over a veth) or was checked (DATA_VALID), which the
// port passes on as dpdkshim.CsumVerified, and gives a super-packet's segment size. On
// transmit the port writes a header in front of every frame, asking the kernel to complete
// the checksum of packets marked with SetTxCsum. The kernel fills the header in TPACKET_V3
// frames too (just before the frame) and reads it in transmit ring slots. Without the
// header, receive checksum status comes from PACKET_AUXDATA (recvmmsg) or the TPACKET status
// bits (ring), and the port cannot complete checksums: Offloads says RxCsum only.
//
// # Transmitting
//
// TxBurst is sendmmsg(2) straight from the packets' frames, or with Config.TxRing a copy
// into PACKET_TX_RING slots and one send(2) per burst. Either way the packets are freed at
// once; a full socket buffer or ring ends the burst and the caller keeps the rest.
//
// With Config.GSO a run of a flow's consecutive TCP segments in a burst, IPv4 or IPv6,
// goes to the kernel as one GSO super-packet (the run rules, shared with the TUN
// backend, are internal/vnet's: those of a receiver's GRO): one sendmmsg message whose
// first iovec holds the virtio-net header (VIRTIO_NET_HDR_GSO_TCPV4 or TCPV6, the
// segment size, NEEDS_CSUM) and the run's headers, and whose other iovecs point at each
// segment's payload in its packet, so nothing is copied but by the kernel; or one ring
// slot, into which the run is copied (the slots are then DefaultGSOTxFrameSize, and a
// run never outgrows one). The kernel segments the super-packet again where the device
// cannot take it (tcp_gso_segment, in software when the device has no TSO: each segment
// is then a frame of its own on the wire, and a drop loses one segment), or a veth with
// TSO hands it whole to its peer, as Linux's own TCP does. QueueStats counts the
// segments in TxPackets and the super-packets in TxSuper. The kernel's direct transmit
// (QdiscBypass) drops what it would have to segment, so Open refuses GSO with it.
//
// # Namespaces and lifetime
//
// Sockets belong to the network namespace of the thread that creates them: Open in another
// namespace on a goroutine locked to a thread that has entered it. Close closes the sockets
// and unmaps the rings once the queues' goroutines have stopped; a ring whose packets are
// still held stays mapped, so their bytes stay valid.
package afpacket

// Package tcp is shardstack's TCP: the listener (per-shard SYN tables, requests, one accept
// ring), the connector (active open with shard-aware ephemeral ports), the connection state
// machine, TIME-WAIT, and the net.Listener / net.Conn faces that applications use.
//
// The engine is split the way the stack is. An Engine is shared by the whole stack: settings,
// secrets, the listener registry. A Shard is owned by one stack shard goroutine: its flow
// tables, pools and timers are touched by nothing else, so the packet path takes no lock.
// Applications talk to a connection through lock-free rings (the receive and send byte
// buffers) and a per-shard list of connections with pending work; the shard does the rest.
//
// An established connection has three parts, each in its own file. The receiver
// (receiver.go) writes in-order and out-of-order data straight into the receive buffer,
// keeps a bounded list of the ranges beyond a hole, and sends SACK and D-SACK blocks and
// quick or delayed ACKs as Linux does. The sender (sender.go) never rewinds snd_nxt: a
// scoreboard of the segments in flight (scoreboard.go) records what the peer SACKed and what
// RACK-TLP (RFC 8985) or the retransmission timeout found lost, recovery follows RFC 6675 with
// proportional rate reduction (RFC 6937), or NewReno (RFC 6582) for peers without SACK, and a
// recovery that proves spurious is undone from D-SACKs or timestamps. Congestion control
// (cc.go) sits behind an interface shaped like Linux's tcp_congestion_ops: CUBIC with
// HyStart++ by default, Reno by tcp_congestion_control. Buffers (buffer.go, bufsize.go) are
// lists of chunks from per-shard pools, held only while data waits in them (and the pools
// give back within two seconds what a burst left them, chunkPool); how they grow and
// shrink without a lock on the per-segment path is written at byteRing, and how their
// capacity follows tcp_rmem and tcp_wmem (receive autotuning as tcp_rcv_space_adjust) at
// the top of bufsize.go.
//
// ICMP errors reach TCP through one function for both IP families, the shard's ICMPError
// (icmp.go, what Linux's tcp_v4_err and tcp_v6_err do): the network layer decodes the
// message into an internal/tcpdrv.ICMPError (errno, whether a request is dropped, whether
// the RTO may be reverted, and the MTU of a fragmentation-needed or Packet Too Big
// report). Errors are hard during the handshake and soft after it (reported if the
// connection times out, or at once with IP_RECVERR, Handle.SetRecvErr); RFC 6069 reverts
// the RTO backoff. Path MTU discovery (pmtu.go) keeps the engine's table of path MTUs by
// destination (Linux's route exceptions, min_pmtu, mtu_expires), lowers the connection's
// MSS, resends what was too big cut to the new size (tcp_simple_retransmit), and makes new
// connections to the destination start at the path's MSS (Engine.PathMTU, SocketRow.MSS).
//
// The behaviour is Linux's, as written down in shared/spec/connection-establishment.md; names
// follow Linux (request, checkReq, createOpenreqChild, acceptQueue, synTable) so the seeds map
// onto the code. This package does not parse links or IP: the stack hands it TCP segments
// with their addresses, and it hands back segments for the stack to send (Env).
//
// Both families run through the same code: an address lives in the flow key (hash.Key: 16
// bytes, IPv4 in the first 4, V6 for IPv6), from which the pseudo-header checksum, the
// keyed ISN, timestamp and SYN-cookie hashes, the cookie MSS table and the MSS (MTU-40 or
// MTU-60) follow (family.go). A listener on the wildcard takes both families unless
// ListenOptions.V6Only, as a Linux IPv6 socket does; one on 0.0.0.0 or an IPv4 address
// takes IPv4 only.
package tcp

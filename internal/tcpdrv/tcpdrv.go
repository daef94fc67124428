// Package tcpdrv is the seam between a stack shard (pkg/stack) and its TCP shard
// (pkg/tcp): what the stack calls to drive TCP on the shard's goroutine, and what TCP needs
// from the stack. It is internal so that the machinery that runs a shard is not part of
// pkg/tcp's public surface: importers cannot feed segments to a shard, fire its timers or
// run code on its goroutine.
package tcpdrv

import (
	"syscall"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/stats"
	"github.com/shardstack/shardstack/pkg/wheel"
)

// Env is what a TCP shard needs from the stack shard that runs it.
type Env interface {
	// NewPacket returns an empty transmit packet with headroom for the IP and link headers,
	// or nil when the pool is exhausted.
	NewPacket() *dpdkshim.Packet
	// Output prepends the IP header of k's family (from k.LocalAddr to k.RemoteAddr) and the
	// link header to the TCP segment in pkt and queues it for transmission. It takes pkt in
	// every case (dropping and counting what it cannot send).
	Output(pkt *dpdkshim.Packet, k *hash.Key)
	// Wake makes the shard's goroutine run soon if it is parked (application hand-offs).
	Wake()
	// TxBacklogged reports whether the shard's transmit queue is so full that senders must
	// hold new data and retransmissions until the link takes what waits (a stopped queue,
	// Linux's qdisc backpressure). The rest of the queue is kept for control segments.
	TxBacklogged() bool
}

// Shard is one shard's TCP as the stack drives it. Every method but Control runs on the
// shard's goroutine.
type Shard interface {
	// SetNow tells the shard the time of the current poll iteration.
	SetNow(now int64)
	// HasWork reports whether application goroutines handed the shard work it has not done.
	HasWork() bool
	// Input processes one TCP segment of either family (see pkg/tcp).
	Input(seg []byte, key *hash.Key, h uint64, csumOK bool)
	// Fire runs an expired timer whose Kind is below TimerKindLimit.
	Fire(t *wheel.Timer, now int64)
	// ProcessWork does what applications asked for and returns how many connections it touched.
	ProcessWork() int
	// FlushWakes signals the applications whose connections changed in this iteration.
	FlushWakes()
	// Shutdown resets everything the shard holds (the stack is closing).
	Shutdown()
	// Control runs fn on the shard's goroutine at its next iteration (any goroutine).
	Control(fn func())
	// SocketRows returns the shard's rows of the socket table ([]tcp.SocketRow).
	SocketRows() any
	// ICMPError delivers an ICMP or ICMPv6 error that quotes a TCP segment to the flow it
	// names (see pkg/tcp, icmp.go); false means no connection, request or TIME-WAIT entry
	// of this shard has the flow (the stack counts IcmpInErrors).
	ICMPError(e *ICMPError) bool
}

// ICMPError is an ICMP (v4 or v6) error about one of TCP's segments, as the network layer
// of its family decoded it (Linux's icmp_err_convert, icmpv6_err_convert), so that one TCP
// function serves both families.
type ICMPError struct {
	// Key is the quoted segment's flow as TCP keys it: local = the quoted source.
	Key  hash.Key
	Hash uint64
	// Seq is the quoted segment's sequence number.
	Seq uint32
	// Errno is what the error means to a connection; 0 for messages TCP looks up and
	// checks but otherwise ignores (source quench, redirect, unknown codes).
	Errno syscall.Errno
	// AbortRequest says a request (SYN-RECV) the error quotes is dropped (Linux
	// tcp_req_err's abort: parameter problem, time exceeded, net or host unreachable).
	AbortRequest bool
	// RevertRTO says the error allows RFC 6069's revert of the RTO backoff (IPv4 net and
	// host unreachable, ICMPv6 no route).
	RevertRTO bool
	// MTU, when not 0, makes the error a fragmentation needed (or Packet Too Big) report
	// with this next-hop MTU: the path MTU to the quoted destination falls to it.
	MTU uint32
}

// TimerKindLimit bounds the wheel timer kinds TCP uses; kinds at or above belong to the stack.
const TimerKindLimit = 16

// NewShard makes shard id of a *tcp.Engine; package tcp installs it when it is initialised.
var NewShard func(engine any, id int, env Env, w *wheel.Wheel, ctr *stats.Counters) Shard

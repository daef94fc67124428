// Package stack is shardstack's Stack: N shards, one per core, each a goroutine that owns
// one queue of the port and every flow whose hash picks it, and runs to completion: receive
// a burst, process each packet to the end, transmit a burst, run due timers, drain its
// inboxes. It owns the link and network layers (Ethernet, ARP and a neighbour cache, IPv4
// with Linux's input filters, ICMPv4) and hands TCP segments to its shard of the tcp engine.
//
// ICMPv4 (icmp.go, icmp_out.go) is Linux's icmp_rcv as a host runs it: echo and timestamp
// requests answered (icmp_echo_ignore_all, icmp_echo_ignore_broadcasts), errors delivered
// to the TCP flow they quote on the shard that owns it (fragmentation needed lowers the path
// MTU), protocol unreachable for an unknown IP protocol and port unreachable for UDP, which
// has no sockets, under icmp_ratelimit, icmp_ratemask and icmp_msgs_per_sec/_burst; every
// message is counted in the Icmp and IcmpMsg MIBs (ICMPSettings has the knobs).
//
// Nothing on the per-packet path takes a lock or allocates: packets come from the port's
// per-queue pools, a packet that arrives on the wrong shard moves to its owner through a
// single-producer ring, and applications reach a shard through lock-free hand-offs.
//
// A stack made with Config.Manual runs no goroutines: the caller drives it with Poll, which
// is what simulations on a virtual clock (tests, the backlog lab) do.
package stack

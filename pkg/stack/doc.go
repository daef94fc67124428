// Package stack is shardstack's Stack: N shards, one per core, each a goroutine that owns
// one queue of the port and every flow whose hash picks it, and runs to completion: receive
// a burst, process each packet to the end, transmit a burst, run due timers, drain its
// inboxes. It owns the link and network layers (Ethernet; IPv4 with ARP, Linux's input
// filters and ICMPv4, icmp.go, icmp_out.go; IPv6 with its extension headers, neighbour
// discovery and ICMPv6, ip6.go, ndisc.go, icmp6.go; a neighbour cache per family; on a port
// whose link type is dpdkshim.LinkIP, a TUN device, bare IP packets of either family with no
// Ethernet header and no neighbour resolution, l3.go) and hands TCP segments of both
// families to its shard of the tcp engine.
//
// ICMPv4 is Linux's icmp_rcv as a host runs it: echo and timestamp requests answered
// (icmp_echo_ignore_all, icmp_echo_ignore_broadcasts), errors delivered to the TCP flow they
// quote on the shard that owns it (fragmentation needed lowers the path MTU), protocol
// unreachable for an unknown IP protocol and port unreachable for UDP, which has no sockets,
// under icmp_ratelimit, icmp_ratemask and icmp_msgs_per_sec/_burst; every message is counted
// in the Icmp and IcmpMsg MIBs (ICMPSettings has the knobs). ICMPv6 Packet Too Big lowers the
// path MTU the same way. ICMPv6 errors go out as Linux's icmp6_send sends them
// (icmp6_out.go): parameter problems for an unknown next header, an unknown option that
// asks for one and a routing header with segments left, port unreachable for UDP, under
// net.ipv6.icmp.ratelimit and the stack-wide budget both families share.
//
// IPv6 runs on every stack with a MAC (the link-local address is derived from it) and
// on the prefixes Config gives; fragments are counted and dropped, not reassembled; no
// router solicitations, MLD reports or duplicate address detection probes are sent
// (addresses are configured and used at once).
//
// Nothing on the per-packet path takes a lock or allocates: packets come from the port's
// per-queue pools, a packet that arrives on the wrong shard moves to its owner through a
// single-producer ring, and applications reach a shard through lock-free hand-offs.
//
// What the port refuses to take waits in the shard's transmit queue for the next burst. When
// three quarters of that queue wait, TCP holds its senders (new data and retransmissions)
// until the port takes frames again, as a stopped qdisc makes Linux's sockets wait: a
// sender faster than its link loses nothing to its own queue. The last quarter is kept for
// ACKs and other control segments; only a frame that finds the queue full is dropped
// (tx_dropped).
//
// A stack made with Config.Manual runs no goroutines: the caller drives it with Poll, which
// is what simulations on a virtual clock (tests, the backlog lab) do.
package stack

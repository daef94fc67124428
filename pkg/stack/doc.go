// Package stack is shardstack's Stack: N shards, one per core, each a goroutine that owns
// one queue of the port and every flow whose hash picks it, and runs to completion: receive
// a burst, process each packet to the end, transmit a burst, run due timers, drain its
// inboxes. It owns the link and network layers (Ethernet, ARP and a neighbour cache, IPv4;
// on a port whose link type is dpdkshim.LinkIP, a TUN device, bare IP packets with no
// Ethernet header and no neighbour resolution) and hands TCP segments to its shard of the
// tcp engine.
//
// Nothing on the per-packet path takes a lock or allocates: packets come from the port's
// per-queue pools, a packet that arrives on the wrong shard moves to its owner through a
// single-producer ring, and applications reach a shard through lock-free hand-offs.
//
// A stack made with Config.Manual runs no goroutines: the caller drives it with Poll, which
// is what simulations on a virtual clock (tests, the backlog lab) do.
package stack

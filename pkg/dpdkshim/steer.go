package dpdkshim

import (
	"encoding/binary"

	"github.com/shardstack/shardstack/pkg/hash"
	"github.com/shardstack/shardstack/pkg/header"
)

// Steering is how a port spreads received frames over its queues, stated so that the stack
// can compute it: Queue returns the receive queue, out of the first n, on which the frames
// of flow k arrive. k is seen from the receiving stack (LocalAddr is its own address); it
// is passed by value so that the caller's key does not escape to the heap through the
// interface call.
//
// Steering is not hashing: the stack's flow tables key on their own seeded hash
// (pkg/hash); the steering function only predicts where the link will deliver a flow, so
// that the shard a flow belongs to is the one that receives it, and so that Dial can pick
// ephemeral ports whose replies come back to the dialling shard.
type Steering interface {
	Queue(k hash.Key, n int) int
}

// Symmetric is the steering function shardstack programs into the links that can be told
// how to steer (AF_PACKET fanout through classic BPF, the in-memory pair): a 32-bit mix of
// the XOR of both addresses, the XOR of both ports and a seed, reduced modulo n as Linux's
// fanout reduces a BPF program's result. Both directions of a flow pick the same queue.
//
// It is fast and spreads flows evenly; it is not keyed against an adversary who can see
// which queue a flow lands on (the flow tables do not depend on it).
type Symmetric struct {
	Seed uint32
}

// Queue implements Steering.
func (s Symmetric) Queue(k hash.Key, n int) int {
	if n <= 1 {
		return 0
	}
	var a uint32
	if k.V6 {
		for i := 0; i < 16; i += 4 {
			a ^= binary.BigEndian.Uint32(k.LocalAddr[i:]) ^ binary.BigEndian.Uint32(k.RemoteAddr[i:])
		}
	} else {
		a = binary.BigEndian.Uint32(k.LocalAddr[:4]) ^ binary.BigEndian.Uint32(k.RemoteAddr[:4])
	}
	return int(s.Mix(a, uint32(k.LocalPort^k.RemotePort)) % uint32(n))
}

// Mix is the function's core, given the XOR of the addresses (for IPv6, of all their 32-bit
// words) and the XOR of the ports; a backend that computes it elsewhere (a BPF program)
// tests itself against it.
func (s Symmetric) Mix(addrs, ports uint32) uint32 {
	h := addrs ^ ports ^ s.Seed
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return h
}

// FrameQueue is Queue computed from an Ethernet frame, as a link steers it: IPv4 or IPv6
// carrying TCP or UDP use the addresses and ports (a fragment or an IPv6 packet with
// extension headers, the addresses alone); every other frame (ARP) goes to queue 0.
func (s Symmetric) FrameQueue(frame []byte, n int) int {
	if n <= 1 || len(frame) < header.EthernetLen {
		return 0
	}
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case header.EtherTypeIPv4:
		return s.ipQueue(frame[header.EthernetLen:], false, n)
	case header.EtherTypeIPv6:
		return s.ipQueue(frame[header.EthernetLen:], true, n)
	}
	return 0
}

// IPQueue is FrameQueue for a bare IP packet (a LinkIP port's frame, as a TUN device's
// steering program sees it): the version nibble tells IPv4 from IPv6, and any other
// version goes to queue 0.
func (s Symmetric) IPQueue(ip []byte, n int) int {
	if n <= 1 || len(ip) == 0 {
		return 0
	}
	switch ip[0] >> 4 {
	case 4:
		return s.ipQueue(ip, false, n)
	case 6:
		return s.ipQueue(ip, true, n)
	}
	return 0
}

func (s Symmetric) ipQueue(ip []byte, v6 bool, n int) int {
	var a, ports uint32
	if !v6 {
		if len(ip) < header.IPv4MinLen {
			return 0
		}
		a = binary.BigEndian.Uint32(ip[12:16]) ^ binary.BigEndian.Uint32(ip[16:20])
		ihl := int(ip[0]&0xf) * 4
		if proto := ip[9]; (proto == header.ProtoTCP || proto == header.ProtoUDP) &&
			binary.BigEndian.Uint16(ip[6:8])&0x3fff == 0 && len(ip) >= ihl+4 {
			ports = uint32(binary.BigEndian.Uint16(ip[ihl:]) ^ binary.BigEndian.Uint16(ip[ihl+2:]))
		}
	} else {
		if len(ip) < header.IPv6Len {
			return 0
		}
		for i := 8; i < 40; i += 4 {
			a ^= binary.BigEndian.Uint32(ip[i:])
		}
		if nh := ip[6]; (nh == header.ProtoTCP || nh == header.ProtoUDP) && len(ip) >= header.IPv6Len+4 {
			ports = uint32(binary.BigEndian.Uint16(ip[40:]) ^ binary.BigEndian.Uint16(ip[42:]))
		}
	}
	return int(s.Mix(a, ports) % uint32(n))
}

// Package header owns the wire formats shardstack speaks: zero-copy views over Ethernet,
// ARP, IPv4, IPv6 and TCP headers (with TCP options), ICMPv6 and neighbour discovery
// helpers (icmpv6.go), and builders that write them into caller-owned buffers. IPv6 has
// one header writer, EncodeIPv6. It does no I/O, keeps no state and never allocates: a view is a
// []byte, a builder fills bytes it is given.
//
// Every header has one checked entry point, ParseX, that validates lengths and fields.
// Once ParseX has returned a view without error, none of the view's accessors can panic.
// Views built by other means (a conversion such as TCP(b)) carry no such promise. Builders
// (EncodeX) state the buffer length they need; a shorter buffer is a programming error and
// panics like any out-of-range slice access.
//
// Checksums come from package checksum; sequence arithmetic is package seqnum's, not ours.
package header

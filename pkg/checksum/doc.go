// Package checksum owns the Internet checksum (RFC 1071): the running ones'-complement sum,
// folding, the IPv4 and IPv6 pseudo-headers, combining partial sums, and the incremental
// update of RFC 1624. It knows nothing about header layouts; package header applies it.
//
// A partial sum is a uint32 holding a ones'-complement sum of big-endian 16-bit words that
// has not been folded to 16 bits or complemented yet. Partial sums of pieces can be added
// with Combine as long as every piece but the last has an even length (RFC 1071 §2(B)).
package checksum

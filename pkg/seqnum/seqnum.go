// Package seqnum owns TCP sequence-number arithmetic: 32-bit values compared and moved
// modulo 2^32 (RFC 9293 §3.4), so that wrap-around is handled in one place and nowhere else.
package seqnum

// Value is a TCP sequence or acknowledgment number; compare it only with its methods.
type Value uint32

// Size is a length in sequence space: a window, a segment length, a distance.
type Size = uint32

// LessThan reports v < w in sequence space: w lies less than 2^31 ahead of v (RFC 9293 §3.4).
// Two values exactly 2^31 apart each read as less than the other; RFC 1982 §3.2 leaves that
// comparison undefined, and TCP windows never come near it.
func (v Value) LessThan(w Value) bool {
	return int32(v-w) < 0
}

// LessThanEq reports v <= w in sequence space.
func (v Value) LessThanEq(w Value) bool {
	return int32(v-w) <= 0
}

// InRange reports a <= v < b in sequence space, measuring both from a so that a range that
// crosses the wrap point is handled; an empty range (a == b) contains nothing.
func (v Value) InRange(a, b Value) bool {
	return uint32(v-a) < uint32(b-a)
}

// InWindow reports whether v lies in the size bytes starting at first: first <= v < first+size.
func (v Value) InWindow(first Value, size Size) bool {
	return uint32(v-first) < size
}

// Add returns v advanced by n, wrapping modulo 2^32.
func (v Value) Add(n Size) Value {
	return v + Value(n)
}

// Sub returns the distance from w forward to v, v - w modulo 2^32.
func (v Value) Sub(w Value) Size {
	return uint32(v - w)
}

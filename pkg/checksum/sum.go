package checksum

import (
	"encoding/binary"
	"math/bits"
)

// Partial adds the bytes of b, taken as big-endian 16-bit words with an odd final byte padded
// by a zero, to the partial sum initial and returns the new partial sum (not complemented).
// It reads 8 bytes per step and carries with bits.Add64, using the fact that the
// ones'-complement sum is byte-order independent and width independent (RFC 1071 §2(B),(C)):
// a sum of 64-bit words folded with end-around carries equals the sum of 16-bit words.
func Partial(b []byte, initial uint32) uint32 {
	acc := uint64(initial)
	var carry uint64
	// Four words per iteration; the carry chain is folded back in once per iteration.
	for len(b) >= 32 {
		var c uint64
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[0:8]), 0)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:16]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:24]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:32]), c)
		carry += c
		b = b[32:]
	}
	for len(b) >= 8 {
		var c uint64
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		carry += c
		b = b[8:]
	}
	if len(b) >= 4 {
		var c uint64
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), 0)
		carry += c
		b = b[4:]
	}
	if len(b) >= 2 {
		var c uint64
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), 0)
		carry += c
		b = b[2:]
	}
	if len(b) == 1 {
		var c uint64
		acc, c = bits.Add64(acc, uint64(b[0])<<8, 0)
		carry += c
	}
	// End-around carry: 2^64 is congruent to 1 modulo 2^16-1.
	var c uint64
	acc, c = bits.Add64(acc, carry, 0)
	acc += c // after a wrap acc is smaller than carry, so this cannot wrap again
	return fold64(acc)
}

// fold64 reduces a 64-bit ones'-complement sum to 32 bits.
func fold64(s uint64) uint32 {
	lo, c := bits.Add32(uint32(s), uint32(s>>32), 0)
	return lo + c
}

// Fold reduces a partial sum to 16 bits with end-around carries, without complementing it.
func Fold(sum uint32) uint16 {
	s := sum>>16 + sum&0xffff
	s += s >> 16
	return uint16(s)
}

// Checksum returns the Internet checksum of b started from the partial sum initial: the
// ones' complement of the folded sum, ready to be stored in a header.
func Checksum(b []byte, initial uint32) uint16 {
	return ^Fold(Partial(b, initial))
}

// Combine adds two partial sums with an end-around carry.
func Combine(a, b uint32) uint32 {
	s, c := bits.Add32(a, b, 0)
	return s + c
}

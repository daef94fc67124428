package hash

// Shard maps a hash to a shard in [0, n) from its high 32 bits, with Lemire's
// multiply-shift ("a fast alternative to the modulo reduction", 2016):
// (hi32 * n) >> 32. Tables index with the low bits, so which shard a flow
// lands on says nothing about its slot in that shard's tables.
//
// n must be in [1, 1<<32]; Shard returns 0 when n < 1 so that a bad
// configuration cannot turn into an out-of-range panic here.
func Shard(h uint64, n int) int {
	if n < 1 {
		return 0
	}
	return int((h >> 32) * uint64(n) >> 32)
}

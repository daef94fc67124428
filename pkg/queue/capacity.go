package queue

import (
	"fmt"
	"math/bits"
)

// MaxCapacity is the largest capacity a bounded ring accepts; anything larger
// is treated as a configuration bug.
const MaxCapacity = 1 << 30

// minCapacity is the smallest ring. The MPMC slot sequence numbers need it:
// with one slot the value meaning "filled at position p" (p+1) would equal
// the value meaning "free for the next lap" (p+capacity), so a full ring
// would look empty to producers. SPSC uses the same rule for consistency.
const minCapacity = 2

// ringSize rounds capacity up to a power of two in [minCapacity, MaxCapacity].
// It panics on negative or absurd sizes; it runs only at construction.
func ringSize(capacity int) int {
	if capacity < 0 || capacity > MaxCapacity {
		panic(fmt.Sprintf("queue: capacity %d outside [0, %d]", capacity, MaxCapacity))
	}
	if capacity < minCapacity {
		return minCapacity
	}
	return 1 << bits.Len(uint(capacity-1))
}

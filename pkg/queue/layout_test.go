package queue

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// The hot counters must be at least one cache line apart whatever the
// alignment of the struct, and away from the read-mostly header.
func TestLayout_CountersOnSeparateCacheLines(t *testing.T) {
	var m MPMC[int]
	require.GreaterOrEqual(t, unsafe.Offsetof(m.tail)-unsafe.Offsetof(m.head), uintptr(cacheLineSize))
	require.GreaterOrEqual(t, unsafe.Offsetof(m.head)-unsafe.Offsetof(m.mask), uintptr(cacheLineSize))
	require.GreaterOrEqual(t, unsafe.Sizeof(m)-unsafe.Offsetof(m.tail), uintptr(cacheLineSize))

	var s SPSC[int]
	require.GreaterOrEqual(t, unsafe.Offsetof(s.tail)-unsafe.Offsetof(s.head), uintptr(cacheLineSize))
	require.GreaterOrEqual(t, unsafe.Offsetof(s.head)-unsafe.Offsetof(s.mask), uintptr(cacheLineSize))
	require.GreaterOrEqual(t, unsafe.Sizeof(s)-unsafe.Offsetof(s.tail), uintptr(cacheLineSize))
	// Each side's private fields share its published counter's line.
	require.Less(t, unsafe.Offsetof(s.tailCache)-unsafe.Offsetof(s.head), uintptr(cacheLineSize))
	require.Less(t, unsafe.Offsetof(s.headCache)-unsafe.Offsetof(s.tail), uintptr(cacheLineSize))

	var l MPSCList[node, *node]
	require.GreaterOrEqual(t, unsafe.Offsetof(l.head), uintptr(cacheLineSize))
	require.GreaterOrEqual(t, unsafe.Sizeof(l)-unsafe.Offsetof(l.head), uintptr(cacheLineSize))
}

//go:build !amd64 && !arm64

package queue

// cacheLineSize is the coherence granule assumed on other architectures.
const cacheLineSize = 64

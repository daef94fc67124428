//go:build amd64 || arm64

package queue

// cacheLineSize is 128 on amd64 because Intel's adjacent-line prefetcher
// pulls cache lines in pairs, and on arm64 because Apple and some Neoverse
// parts have 128-byte lines. Two hot counters this far apart never share.
const cacheLineSize = 128

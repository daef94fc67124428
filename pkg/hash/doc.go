// Package hash owns the flow key and the flow hash: a comparable 4-tuple as
// the local stack sees it, a seeded xxhash64 of that tuple, and the mapping
// from a hash to a shard.
//
// The same hash picks a flow's shard (from its high 32 bits) and its slot in
// per-shard tables (from its low bits), so the two choices stay independent.
// The package parses no packets and keeps no tables.
package hash

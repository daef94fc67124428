// Package hash owns the flow key and the flow hash: a comparable 4-tuple as
// the local stack sees it, a seeded xxhash64 of that tuple, and the mapping
// from a hash to a shard.
//
// The hash keys the per-shard flow tables (from its low bits). Which shard owns a
// flow is the link's steering (dpdkshim.Steering): the hash picks it (Shard, from its
// high 32 bits) only on a link whose steering the stack cannot compute, and no hash a
// link supplies is ever used as a table key. The package parses no packets and keeps
// no tables.
package hash
